"""``cnnumpy train/evaluate/predict/summary`` as real subprocesses on tiny data.

The data is 400 + 100 real MNIST test digits written as the four IDX files of
a ``--data`` folder, so each run takes a second or two.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cnnumpy.data import read_idx, write_idx
from cnnumpy.training import load_checkpoint
from conftest import MNIST_DIR

TRAIN = ["train", "--epochs", "2", "--batch-size", "50", "--no-plots"]


@pytest.fixture(scope="module")
def data_dir(tiny_mnist_dir) -> Path:
    return tiny_mnist_dir


def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "COLUMNS": "100"}


def cnnumpy(args, tmp_path: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnnumpy.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env(tmp_path),
        timeout=300,
        **kwargs,
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory) -> Path:
    """One finished run with plots, shared by the read-only tests."""
    tmp = tmp_path_factory.mktemp("run")
    ok(
        cnnumpy(
            ["train", "--data", data_dir, "--epochs", "3", "--batch-size", "20",
             "--model", "lenet5-modern", "--out", tmp / "run"],
            tmp,
        )
    )  # fmt: skip
    return tmp / "run"


def test_train_writes_the_run_folder(trained):
    names = {p.name for p in trained.iterdir()}
    assert names == {
        "best.npz", "last.npz", "metrics.json", "history.csv", "history.png",
        "confusion_matrix.png", "misclassified.png", "filters.png",
    }  # fmt: skip
    metrics = json.loads((trained / "metrics.json").read_text())
    for key in (
        "test_accuracy",
        "test_loss",
        "epochs",
        "train_seconds",
        "images_per_second",
    ):
        assert key in metrics
    assert metrics["epochs"] == 3 and len(metrics["history"]) == 3
    assert 0.5 < metrics["test_accuracy"] <= 1  # learns: chance is 0.1
    assert metrics["config"]["model"] == "lenet5-modern"
    assert metrics["data"]["sizes"] == {"train": 360, "val": 40, "test": 100}
    assert len(metrics["confusion_matrix"]) == 10
    rows = (trained / "history.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,train_loss,train_accuracy,val_loss,val_accuracy")
    assert len(rows) == 4
    for png in ("history.png", "filters.png"):
        assert (trained / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_prints_progress_and_test_accuracy(data_dir, tmp_path):
    result = cnnumpy([*TRAIN, "--data", data_dir, "--out", tmp_path / "r"], tmp_path)
    out = ok(result)
    assert "epoch 1/2 - loss" in out and "img/s" in out
    assert "Test accuracy:" in out and "on 100 images" in out
    assert "Run folder:" in out
    assert "batch/s" in result.stderr or "img_s" in result.stderr  # the tqdm bar


def test_train_with_numpy_alone_prints_lines_and_says_how_to_get_plots(
    data_dir, tmp_path
):
    """As after a plain `pip install cnnumpy`: no tqdm, no matplotlib."""
    code = (
        "import sys\n"
        "for m in ('tqdm', 'matplotlib', 'PIL'):\n"
        "    sys.modules[m] = None\n"
        "from cnnumpy.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    args = ["train", "--data", data_dir, "--epochs", "2", "--batch-size", "50"]
    result = subprocess.run(
        [sys.executable, "-c", code, *map(str, args), "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env(tmp_path),
        timeout=300,
    )
    out = ok(result)
    assert "epoch 1/2 - loss" in out and "epoch 2/2 - loss" in out
    assert "Test accuracy:" in out
    assert result.stderr.splitlines() == [
        "cnnumpy: no plots: they need matplotlib; pip install 'cnnumpy[cli]' adds "
        "plots and progress bars"
    ]
    names = {p.name for p in (tmp_path / "r").iterdir()}
    assert names == {"best.npz", "last.npz", "metrics.json", "history.csv"}
    quiet = subprocess.run(
        [sys.executable, "-c", code, *map(str, args), "--quiet", "--no-plots"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env(tmp_path),
        timeout=300,
    )
    assert ok(quiet).startswith("Test accuracy:") and quiet.stderr == ""


def test_version(tmp_path):
    from cnnumpy import __version__

    assert ok(cnnumpy(["--version"], tmp_path)) == f"cnnumpy {__version__}\n"
    # pyproject.toml reads the version from cnnumpy/_version.py: one source.
    assert importlib.metadata.version("cnnumpy") == __version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


def test_quiet_prints_one_line_and_default_folder_is_under_runs(data_dir, tmp_path):
    out = ok(cnnumpy([*TRAIN, "--data", data_dir, "--quiet"], tmp_path))
    assert out.count("\n") == 1 and out.startswith("Test accuracy:")
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "last.npz").is_file()


def run_weights(folder: Path) -> dict[str, np.ndarray]:
    return load_checkpoint(folder / "last.npz")["model"]["state"]


def test_patience_stops_a_diverging_run_early(data_dir, tmp_path):
    args = [
        *TRAIN,
        "--data",
        data_dir,
        "--epochs",
        "10",
        "--lr",
        "0.5",
        "--patience",
        "1",
    ]
    out = ok(cnnumpy([*args, "--out", tmp_path / "r", "--quiet"], tmp_path))
    epochs = json.loads((tmp_path / "r" / "metrics.json").read_text())["epochs"]
    assert epochs < 10
    assert f"Stopped early after epoch {epochs} of 10: no better validation loss" in out


def test_same_seed_gives_identical_metrics_and_weights(data_dir, tmp_path):
    for name in ("a", "b"):
        ok(
            cnnumpy(
                [*TRAIN, "--data", data_dir, "--seed", "7", "--out", tmp_path / name],
                tmp_path,
            )
        )
    ma, mb = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in "ab")
    assert ma["test_accuracy"] == mb["test_accuracy"]
    assert [h["val_accuracy"] for h in ma["history"]] == [
        h["val_accuracy"] for h in mb["history"]
    ]
    wa, wb = run_weights(tmp_path / "a"), run_weights(tmp_path / "b")
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key])
    ok(
        cnnumpy(
            [*TRAIN, "--data", data_dir, "--seed", "8", "--out", tmp_path / "c"],
            tmp_path,
        )
    )
    assert not np.array_equal(run_weights(tmp_path / "c")["fc3.bias"], wa["fc3.bias"])


def test_resume_one_plus_one_epochs_equals_two(data_dir, tmp_path):
    base = ["train", "--data", data_dir, "--batch-size", "50", "--no-plots", "--quiet"]
    ok(cnnumpy([*base, "--epochs", "2", "--out", tmp_path / "straight"], tmp_path))
    ok(cnnumpy([*base, "--epochs", "1", "--out", tmp_path / "split"], tmp_path))
    resumed = ok(
        cnnumpy(
            [*base, "--epochs", "2", "--resume", tmp_path / "split" / "last.npz"],
            tmp_path,
        )
    )
    straight = run_weights(tmp_path / "straight")
    split = run_weights(tmp_path / "split")
    for key in straight:
        np.testing.assert_array_equal(split[key], straight[key], err_msg=key)
    ms = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert f"{ms['test_accuracy']:.2%}" in resumed


def test_resume_refuses_changed_settings_and_finished_runs(data_dir, trained, tmp_path):
    last = trained / "last.npz"
    result = cnnumpy(
        ["train", "--resume", last, "--lr", "0.1", "--epochs", "3"], tmp_path
    )
    assert result.returncode == 2
    assert "`lr` (=0.1) differs from the checkpoint's 0.001" in result.stderr
    result = cnnumpy(["train", "--resume", last, "--epochs", "3"], tmp_path)
    assert result.returncode == 2
    assert "must exceed the 3 epochs the checkpoint has done" in result.stderr


def test_out_folder_with_a_run_is_not_overwritten(data_dir, trained, tmp_path):
    before = (trained / "last.npz").read_bytes()
    result = cnnumpy([*TRAIN, "--data", data_dir, "--out", trained], tmp_path)
    assert result.returncode == 2 and "already holds a run" in result.stderr
    assert (trained / "last.npz").read_bytes() == before


@pytest.mark.parametrize(
    ("sig", "code"),
    [
        (signal.SIGINT, 130),
        (signal.SIGTERM, 143),
        (getattr(signal, "SIGHUP", None), 129),
    ],
)
def test_ctrl_c_saves_last_and_the_run_resumes(data_dir, tmp_path, sig, code):
    """Ctrl-C, SIGTERM and SIGHUP: save, say so, exit 128 + signal, resume."""
    if sig is None:
        pytest.skip("no SIGHUP here")
    out = tmp_path / "run"
    args = ["train", "--data", data_dir, "--epochs", "500", "--batch-size", "20",
            "--no-plots", "--out", out]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnumpy.cli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env(tmp_path),
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "last.npz").exists():  # epoch 1 done: handler installed
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    assert f"Continue with: cnnumpy train --resume {out / 'last.npz'}" in stdout
    progress = load_checkpoint(out / "last.npz")["progress"]
    done = progress["epoch"]
    assert 1 <= done < 500
    assert not (out / "metrics.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files
    ok(cnnumpy(["train", "--resume", out / "last.npz", "--epochs", done + 1], tmp_path))
    assert json.loads((out / "metrics.json").read_text())["epochs"] == done + 1


def test_ctrl_c_while_the_command_starts_is_one_line(tmp_path):
    """A Ctrl-C while the command line is still importing: no traceback."""
    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def interrupted(name, *args, **kwargs):\n"
        "    if name == 'cnnumpy.cli':\n"
        "        raise KeyboardInterrupt\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = interrupted\n"
        "from cnnumpy._launch import main\n"
        "sys.exit(main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 130
    assert result.stderr.strip().splitlines() == ["cnnumpy: interrupted"]


def test_import_cnnumpy_imports_nothing_heavy():
    """So that the entry point is running before NumPy and the library load."""
    code = "import sys, cnnumpy, cnnumpy._launch; print('numpy' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True
    )
    assert result.stdout.strip() == "False", result.stderr


def test_evaluate_prints_accuracy_per_class_and_confusion(data_dir, trained, tmp_path):
    out = ok(cnnumpy(["evaluate", trained / "best.npz", "--data", data_dir], tmp_path))
    assert f"on the test split of {data_dir} (100 images)" in out
    assert "accuracy" in out and "confusion matrix" in out
    assert len([line for line in out.splitlines() if line[:1].isdigit()]) == 10


def test_threads_flag_sets_the_engine_threads_and_changes_no_result(
    data_dir, trained, tmp_path, capsys
):
    import cnnumpy
    from cnnumpy.cli import main

    before = cnnumpy.get_num_threads()
    outputs = []
    try:
        for threads in ("1", "3"):
            args = ["evaluate", str(trained / "best.npz"), "--data", str(data_dir)]
            assert main([*args, "--threads", threads]) == 0
            assert cnnumpy.get_num_threads() == int(threads)
            outputs.append(capsys.readouterr().out)
    finally:
        cnnumpy.set_num_threads(before)
    assert outputs[0] == outputs[1] and "accuracy" in outputs[0]


def test_evaluate_on_the_real_mnist_test_set(trained, tmp_path):
    out = ok(cnnumpy(["evaluate", trained / "last.npz", "--data", MNIST_DIR], tmp_path))
    assert "(1,000 images)" in out


def test_predict_png_and_idx(data_dir, trained, tmp_path):
    from PIL import Image

    digits = read_idx(MNIST_DIR / "t10k-images-idx3-ubyte.gz")[:3]
    Image.fromarray(255 - digits[0]).save(tmp_path / "seven.png")  # dark on light
    write_idx(tmp_path / "three.idx", digits)
    out = ok(
        cnnumpy(["predict", trained / "best.npz", "seven.png", "three.idx"], tmp_path)
    )
    lines = out.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("seven.png: ")
    assert lines[1].startswith("three.idx[0]: ")
    guesses = lines[0].split(": ")[1].split(", ")
    assert len(guesses) == 3
    probs = [float(g.split("(")[1].rstrip("%)")) for g in guesses]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 100.05


def test_summary(tmp_path):
    out = ok(cnnumpy(["summary"], tmp_path))
    assert "Model: lenet5" in out and "Total params: 61,706" in out
    out = ok(
        cnnumpy(
            ["summary", "--model", "lenet5-modern", "--num-classes", "26"], tmp_path
        )
    )
    assert "MaxPool2d" in out and "(N, 26)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["train", "--epochs", "0"],
            "argument --epochs: expected a positive integer, got '0'",
        ),
        (
            ["train", "--batch-size", "-5"],
            "argument --batch-size: expected a positive integer",
        ),
        (
            ["train", "--lr", "abc"],
            "argument --lr: expected a positive number, got 'abc'",
        ),
        (
            ["train", "--val-fraction", "1"],
            "argument --val-fraction: expected a number in [0, 1)",
        ),
        (
            ["train", "--data", "no/such/dir"],
            "argument --data: folder 'no/such/dir' does not exist",
        ),
        (
            ["train", "--resume", "gone.npz"],
            "argument --resume: file 'gone.npz' does not exist",
        ),
        (["train", "--model", "vgg"], "argument --model: invalid choice: 'vgg'"),
        (
            ["evaluate", "notes.txt", "--threads", "0"],
            "argument --threads: expected a positive integer, got '0'",
        ),
        (
            ["train", "--dataset", "mnist", "--no-download"],
            "train-images-idx3-ubyte.gz",
        ),
        (["evaluate", "notes.txt"], "notes.txt"),
        (["predict", "notes.txt", "notes.txt"], "notes.txt"),
        (["predict"], "the following arguments are required: CKPT, IMAGE"),
        (["summary", "--input-size", "8"], "`input_size` must be at least 12"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, args, message):
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    result = cnnumpy(args, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnumpy: error: "), result.stderr
    assert message in lines[0]
    assert not (tmp_path / "runs").exists()


def test_missing_data_set_message_lists_files_and_how_to_pass_a_folder(tmp_path):
    result = cnnumpy(
        [
            "train",
            "--dataset",
            "mnist",
            "--no-download",
            "--cache-dir",
            tmp_path,
        ],
        tmp_path,
    )
    assert result.returncode == 2
    message = result.stderr
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):  # fmt: skip
        assert name in message
    assert "--data" in message


def test_predict_with_a_checkpoint_from_another_model_shape(trained, tmp_path):
    """A 28x28 model refuses IDX images of another size, naming the file."""
    write_idx(tmp_path / "big.idx", np.zeros((2, 32, 32), np.uint8))
    result = cnnumpy(["predict", trained / "best.npz", "big.idx"], tmp_path)
    assert result.returncode == 2 and "big.idx" in result.stderr


def test_download_bar_follows_files_of_known_and_unknown_size(capsys):
    from cnnumpy.cli._progress import download_bar

    progress = download_bar()
    for done, total in [
        (0, 100),
        (60, 100),
        (100, 100),
        (0, None),
        (5, None),
        (9, None),
    ]:
        progress(done, total)
    err = capsys.readouterr().err
    assert "100/100" in err  # a file of known size: bar to the end, closed
    assert "download: 0.00B" in err  # then a new bar for one of unknown size


def test_importing_the_command_line_loads_no_extras():
    """tqdm, matplotlib and Pillow load only when a bar, plot or image needs them."""
    code = (
        "import sys, cnnumpy, cnnumpy.cli, cnnumpy.training\n"
        "print(sorted(m for m in ('matplotlib', 'tqdm', 'PIL', 'torch')"
        " if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


RECIPE = [
    "--augment", "crop", "--crop-padding", "3", "--schedule", "onecycle",
    "--optimizer", "sgd", "--nesterov", "--lr", "0.05", "--weight-decay", "5e-4",
    "--label-smoothing", "0.1", "--warmup-epochs", "1",
]  # fmt: skip


def test_recipe_flags_reach_the_run_and_its_checkpoint(data_dir, tmp_path):
    base = ["train", "--data", data_dir, "--batch-size", "50", "--no-plots", "--quiet"]
    ok(cnnumpy([*base, *RECIPE, "--epochs", "2", "--out", tmp_path / "a"], tmp_path))
    tree = load_checkpoint(tmp_path / "a" / "last.npz")
    config = tree["config"]
    assert (config["augment"], config["crop_padding"]) == ("crop", 3)
    assert (config["schedule"], config["warmup_epochs"]) == ("onecycle", 1)
    assert (config["optimizer"], config["nesterov"]) == ("sgd", True)
    assert (config["weight_decay"], config["label_smoothing"]) == (5e-4, 0.1)
    assert tree["scheduler"]["total_steps"] == 2 * 8 == tree["scheduler"]["last_epoch"]
    groups = tree["optimizer"]["state"]["param_groups"]
    assert [g["weight_decay"] for g in groups] == [5e-4, 0.0]
    # A resume takes the recipe from the checkpoint; onecycle spans the epochs.
    last = tmp_path / "a" / "last.npz"
    result = cnnumpy(["train", "--resume", last, "--epochs", "3"], tmp_path)
    assert result.returncode == 2
    assert "its 'onecycle' schedule spans the run's epochs" in result.stderr
    result = cnnumpy(["train", "--resume", last, "--label-smoothing", "0"], tmp_path)
    assert "`label_smoothing` (=0.0) differs from the checkpoint's 0.1" in result.stderr


def test_recipe_flags_refuse_bad_values(data_dir, tmp_path):
    for args, message in [
        (["--label-smoothing", "1.5"], "expected a number in [0, 1], got '1.5'"),
        (["--weight-decay", "-1"], "expected a number >= 0, got '-1'"),
        (["--augment", "mixup"], "invalid choice: 'mixup'"),
        (["--schedule", "cosine", "--lr-step", "2"], "applies to schedule 'step'"),
        (["--nesterov"], "`nesterov` needs optimizer 'sgd'"),
        (["--crop-padding", "2"], "`crop_padding` (=2) applies to augment"),
    ]:
        result = cnnumpy([*TRAIN, "--data", data_dir, *args], tmp_path)
        assert result.returncode == 2 and message in result.stderr, (args, result)
        assert not (tmp_path / "runs").exists()
