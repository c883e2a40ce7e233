"""train_run: the run folder, resume with a scheduler, interrupts, config checks."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from cnnumpy.data import Dataset
from cnnumpy.training import (
    Callback,
    CheckpointError,
    TrainConfig,
    load_checkpoint,
    load_trained,
    resume_config,
    split_validation,
    train_run,
)


@pytest.fixture
def config(tiny_mnist_dir, tmp_path) -> TrainConfig:
    return TrainConfig(
        data_dir=str(tiny_mnist_dir),
        epochs=2,
        batch_size=50,
        plots=False,
        out=str(tmp_path / "run"),
    )


def last_weights(folder) -> dict[str, np.ndarray]:
    return load_checkpoint(folder / "last.npz")["model"]["state"]


def test_run_folder_metrics_and_checkpoint_contents(config, tmp_path):
    result = train_run(config)
    out = tmp_path / "run"
    assert {p.name for p in out.iterdir()} == {
        "best.npz", "last.npz", "metrics.json", "history.csv"
    }  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] == result.test.accuracy
    assert metrics["epochs"] == 2 and metrics["best_epoch"] in (1, 2)
    assert metrics["train_seconds"] > 0 and metrics["images_per_second"] > 0
    tree = load_checkpoint(out / "last.npz")
    assert tree["model"]["name"] == "lenet5"
    assert tree["model"]["config"] == {
        "num_classes": 10,
        "in_channels": 1,
        "input_size": 28,
    }
    assert tree["data"]["class_names"] == [str(i) for i in range(10)]
    assert tree["progress"]["epoch"] == 2 and tree["progress"]["batch"] == 0
    assert tree["optimizer"]["name"] == "adam"
    assert tree["config"]["data_dir"] == str(config.data_dir)
    assert "scheduler" not in tree


def test_normalization_comes_from_the_training_part_only(config):
    result = train_run(config)
    stats = load_checkpoint(result.out / "last.npz")["data"]["normalization"]
    from cnnumpy.data import load_dataset, normalization_stats

    full, _ = load_dataset("mnist", data_dir=config.data_dir)
    train_part, _ = split_validation(full, config.val_fraction, config.seed)
    assert (stats["mean"], stats["std"]) == normalization_stats(train_part)
    assert stats["mean"] != normalization_stats(full)[0]


def test_trained_model_predicts_like_the_run(config):
    result = train_run(config)
    trained = load_trained(result.out / "last.npz")
    from cnnumpy.data import load_test_set

    test = load_test_set("mnist", data_dir=config.data_dir)
    again = trained.evaluate(test)
    assert again.accuracy == result.test.accuracy
    np.testing.assert_array_equal(again.predictions, result.test.predictions)
    top = trained.top_classes(test.images[:5], k=3)
    assert [row[0][0] for row in top] == [str(p) for p in result.test.predictions[:5]]
    probs = [[p for _, p in row] for row in top]
    assert all(r == sorted(r, reverse=True) and sum(r) <= 1 + 1e-6 for r in probs)
    with pytest.raises(ValueError, match="`k` must be >= 1, got 0"):
        trained.top_classes(test.images[:1], k=0)
    with pytest.raises(ValueError, match=r"`images` must have shape \(N, 1, 28, 28\)"):
        trained.top_classes(np.zeros((1, 1, 32, 32), np.uint8))


def test_scheduler_steps_and_resumes_exactly(config, tmp_path):
    scheduled = replace(config, lr_step=1, lr_gamma=0.5, epochs=3)
    straight = train_run(replace(scheduled, out=str(tmp_path / "straight")))
    assert [h["lr"] for h in straight.state.history] == [1e-3, 5e-4, 2.5e-4]
    first = train_run(replace(scheduled, epochs=2, out=str(tmp_path / "split")))
    assert load_checkpoint(first.out / "last.npz")["scheduler"]["last_epoch"] == 2
    resumed = train_run(resume_config(first.out / "last.npz", epochs=3))
    assert resumed.out == first.out
    assert [h["lr"] for h in resumed.state.history] == [1e-3, 5e-4, 2.5e-4]
    for key, value in last_weights(straight.out).items():
        np.testing.assert_array_equal(last_weights(first.out)[key], value, err_msg=key)


class StopAt(Callback):
    def __init__(self, batch: int) -> None:
        self.batch = batch

    def on_batch_end(self, state, logs):
        if state.epoch == 1 and state.batch == self.batch:
            state.stop = state.interrupted = True


def test_interrupted_run_saves_last_and_resumes_to_the_same_weights(config, tmp_path):
    straight = train_run(replace(config, out=str(tmp_path / "straight")))
    part = train_run(config, callbacks=[StopAt(3)])
    assert part.interrupted and part.test is None
    assert not (part.out / "metrics.json").exists()
    progress = load_checkpoint(part.out / "last.npz")["progress"]
    assert (progress["epoch"], progress["batch"]) == (1, 3)
    done = train_run(resume_config(part.out / "last.npz", epochs=2))
    assert not done.interrupted and done.test.accuracy == straight.test.accuracy
    for key, value in last_weights(straight.out).items():
        np.testing.assert_array_equal(last_weights(part.out)[key], value, err_msg=key)


def test_resume_refuses_other_data_and_other_settings(config, tmp_path, tiny_mnist_dir):
    first = train_run(replace(config, epochs=1))
    last = first.out / "last.npz"
    with pytest.raises(
        ValueError, match=r"`batch_size` \(=20\) differs from the checkpoint's 50"
    ):
        train_run(resume_config(last, epochs=2, batch_size=20))
    with pytest.raises(TypeError, match=r"unknown settings \['epoch'\]"):
        resume_config(last, epoch=2)
    other = tmp_path / "other"
    other.mkdir()
    for f in tiny_mnist_dir.iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    from cnnumpy.data import read_idx, write_idx

    images = read_idx(other / "train-images-idx3-ubyte.gz")
    write_idx(other / "train-images-idx3-ubyte.gz", 255 - images)
    with pytest.raises(CheckpointError, match="was trained on other data"):
        train_run(resume_config(last, epochs=2, data_dir=str(other)))


def test_out_folder_holding_a_run_is_refused(config):
    train_run(replace(config, epochs=1))
    with pytest.raises(FileExistsError, match="already holds a run"):
        train_run(config)


def test_split_validation_is_deterministic_disjoint_and_sized():
    images = (
        np.arange(50, dtype=np.uint8).reshape(50, 1, 1, 1).repeat(4, 2).repeat(4, 3)
    )
    data = Dataset(images, np.arange(50) % 10, tuple("0123456789"), "toy")
    a_train, a_val = split_validation(data, 0.2, seed=3)
    b_train, b_val = split_validation(data, 0.2, seed=3)
    assert len(a_val) == 10 and len(a_train) == 40
    np.testing.assert_array_equal(a_val.images, b_val.images)
    seen = set(a_train.images[:, 0, 0, 0]) | set(a_val.images[:, 0, 0, 0])
    assert seen == set(range(50))
    assert split_validation(data, 0.0, seed=3)[1] is None
    _, c_val = split_validation(data, 0.2, seed=4)
    assert not np.array_equal(a_val.images, c_val.images)


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"epochs": 0}, ValueError, r"`epochs` must be >= 1, got 0"),
        ({"epochs": "3"}, TypeError, r"`epochs` must be an int, got str '3'"),
        (
            {"batch_size": True},
            TypeError,
            r"`batch_size` must be an int, got bool True",
        ),
        ({"lr": -1.0}, ValueError, r"`lr` must be > 0, got -1.0"),
        ({"lr": "0.1"}, TypeError, r"`lr` must be a real number, got str '0.1'"),
        ({"lr": float("nan")}, ValueError, r"`lr` must be a finite number, got nan"),
        ({"momentum": 1.0}, ValueError, r"`momentum` must be in \[0, 1\), got 1.0"),
        (
            {"val_fraction": 1.0},
            ValueError,
            r"`val_fraction` must be in \[0, 1\), got 1.0",
        ),
        ({"seed": -1}, ValueError, r"`seed` must be >= 0, got -1"),
        ({"patience": 0}, ValueError, r"`patience` must be >= 1, got 0"),
        ({"patience": True}, TypeError, r"`patience` must be an int, got bool True"),
        ({"lr_step": 0}, ValueError, r"`lr_step` must be >= 1, got 0"),
        ({"lr_gamma": 0}, ValueError, r"`lr_gamma` must be in \(0, 1\], got 0"),
        ({"lr_gamma": True}, TypeError, r"`lr_gamma` must be a real number, got bool"),
        (
            {"model": "vgg"},
            ValueError,
            r"`model` must be one of 'lenet5', 'lenet5-modern', 'resnet8', 'resnet20', 'vgg-bn', got 'vgg'",
        ),
        (
            {"dataset": "cifar"},
            ValueError,
            r"`dataset` must be one of 'mnist-sample', 'mnist', 'fashion-mnist'",
        ),
        (
            {"optimizer": "rmsprop"},
            ValueError,
            r"`optimizer` must be one of 'adam', 'adamw', 'sgd'",
        ),
        (
            {"dtype": "float16"},
            ValueError,
            r"`dtype` must be one of 'float32', 'float64'",
        ),
        ({"impl": "fast"}, ValueError, r"`impl` must be one of 'im2col', 'naive'"),
        ({"impl": 1}, TypeError, r"`impl` must be one of 'im2col', 'naive', got int 1"),
        ({"plots": 1}, TypeError, r"`plots` must be a bool, got int 1"),
        (
            {"out": 3},
            TypeError,
            r"`out` must be a path \(str or os.PathLike\), got int 3",
        ),
    ],
)
def test_config_rejects_bad_values(changes, error, match):
    with pytest.raises(error, match=match):
        TrainConfig(**changes)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (
            ("data", 0.1, 0),
            TypeError,
            "`dataset` must be a cnnumpy.data.Dataset, got str",
        ),
        ((None, -0.1, 0), ValueError, r"`fraction` must be in \[0, 1\), got -0.1"),
        ((None, 1.0, 0), ValueError, r"`fraction` must be in \[0, 1\), got 1.0"),
        ((None, 0.1, -2), ValueError, "`seed` must be >= 0, got -2"),
        ((None, 0.1, 1.5), TypeError, "`seed` must be an int, got float 1.5"),
    ],
)
def test_split_validation_rejects_bad_arguments(args, error, match):
    data = Dataset(
        np.zeros((10, 1, 2, 2), np.uint8), np.zeros(10, np.int64), ("0",), "t"
    )
    dataset, fraction, seed = args
    with pytest.raises(error, match=match):
        split_validation(data if dataset is None else dataset, fraction, seed)


def test_train_run_rejects_non_config():
    with pytest.raises(TypeError, match="`config` must be a TrainConfig, got dict"):
        train_run({"epochs": 1})


@pytest.fixture(scope="module")
def micro_mnist_dir(tmp_path_factory):
    """6 training and 4 test digits: few enough for the naive loops."""
    from conftest import write_mnist_dir

    return write_mnist_dir(tmp_path_factory.mktemp("micro-mnist"), 6, 4)


def test_naive_impl_trains_to_the_same_weights(micro_mnist_dir, tmp_path):
    """``--impl naive`` (the reference loops) and im2col give one result."""
    base = TrainConfig(
        data_dir=str(micro_mnist_dir),
        epochs=1,
        batch_size=3,
        val_fraction=0.0,
        dtype="float64",
        plots=False,
    )
    fast = train_run(replace(base, out=str(tmp_path / "fast")))
    naive = train_run(replace(base, impl="naive", out=str(tmp_path / "naive")))
    assert naive.config.impl == "naive"
    for key, value in last_weights(fast.out).items():
        np.testing.assert_allclose(
            last_weights(naive.out)[key], value, rtol=1e-9, atol=1e-12, err_msg=key
        )
    np.testing.assert_array_equal(naive.test.predictions, fast.test.predictions)
