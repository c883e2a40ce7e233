"""``cnnumpy train --dataset cifar10 --model resnet20`` and the colour path after it,
as real subprocesses on a tiny synthetic CIFAR-10 archive (random pixels: these
runs test the plumbing, not accuracy)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from cifar_files import batches, write_archive
from cnnumpy.data import load_images
from cnnumpy.data.cifar import ARCHIVE, CLASS_NAMES
from cnnumpy.training import load_checkpoint, load_trained
from test_cli_train import cnnumpy, ok

RECORDS = 6  # per batch: 30 training images, 6 test images


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    files, _ = batches(np.random.default_rng(0), n=RECORDS)
    return write_archive(tmp_path_factory.mktemp("cifar") / "data", files).parent


@pytest.fixture(scope="module")
def run(cifar_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    ok(
        cnnumpy(
            ["train", "--dataset", "cifar10", "--data", cifar_dir, "--model",
             "resnet20", "--epochs", "1", "--batch-size", "10", "--out", tmp / "run"],
            tmp,
        )
    )  # fmt: skip
    return tmp / "run"


def test_train_resnet20_on_cifar10_stores_per_channel_normalization(run):
    tree = load_checkpoint(run / "best.npz")
    assert tree["model"]["name"] == "resnet20"
    assert tree["model"]["config"] == {
        "num_classes": 10,
        "in_channels": 3,
        "input_size": 32,
    }
    assert tree["data"]["input_shape"] == [3, 32, 32]
    assert tree["data"]["class_names"] == list(CLASS_NAMES)
    stats = tree["data"]["normalization"]
    assert len(stats["mean"]) == 3 and len(stats["std"]) == 3
    assert all(0.4 < m < 0.6 for m in stats["mean"])  # uniform random pixels
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["data"]["sizes"] == {"train": 27, "val": 3, "test": RECORDS}
    assert (run / "misclassified.png").read_bytes()[:4] == b"\x89PNG"
    trained = load_trained(run / "best.npz")
    assert trained.input_shape == (3, 32, 32) and len(trained.mean) == 3


def test_predict_reads_colour_and_grey_pngs_for_a_colour_model(run, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (40, 50, 3)).astype(np.uint8)).save(
        tmp_path / "photo.png"
    )
    Image.fromarray(rng.integers(0, 256, (32, 32)).astype(np.uint8)).save(
        tmp_path / "grey.png"
    )
    out = ok(cnnumpy(["predict", run / "best.npz", "photo.png", "grey.png"], tmp_path))
    trained = load_trained(run / "best.npz")
    for name in ("photo.png", "grey.png"):
        images = load_images(tmp_path / name, size=32, channels=3)
        top = trained.top_classes(images)[0]
        guesses = ", ".join(f"{label} ({p:.1%})" for label, p in top)
        assert f"{name}: {guesses}" in out
        assert top[0][0] in CLASS_NAMES


def test_evaluate_and_inspect_a_colour_model(run, cifar_dir, tmp_path):
    out = ok(cnnumpy(["evaluate", run / "best.npz"], tmp_path))
    assert f"on the test split of {cifar_dir} ({RECORDS} images)" in out
    from PIL import Image

    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "black.png")
    ok(cnnumpy(["inspect", run / "best.npz", "black.png", "--out", "look"], tmp_path))
    assert (tmp_path / "look" / "black-saliency.png").is_file()


def test_resume_a_colour_run(run, tmp_path):
    copy = shutil.copytree(run, tmp_path / "run")
    out = ok(
        cnnumpy(
            ["train", "--resume", copy / "last.npz", "--epochs", "2", "--no-plots"],
            tmp_path,
        )
    )
    assert "epoch 2/2 - loss" in out
    assert load_checkpoint(copy / "last.npz")["progress"]["epoch"] == 2


def test_cifar10_without_download_names_the_archive(tmp_path):
    result = cnnumpy(["train", "--dataset", "cifar10", "--no-download"], tmp_path)
    assert result.returncode != 0
    assert ARCHIVE in result.stderr and "--data DIR" in result.stderr
    assert "downloads are off" in result.stderr
    assert not any((tmp_path / "cache").rglob("*.part"))
