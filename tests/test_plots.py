"""cnnumpy.training.plots: the images of a training run folder.

Each picture is checked as a file: a PNG that matplotlib reads back, alone in its
folder (no temporary file left), with the number of panels the function reports.
Bad arguments raise before anything is drawn; a failure while drawing leaves no
file behind.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import matplotlib.image
from matplotlib.backends.backend_agg import FigureCanvasAgg

from cnnumpy.training.plots import (
    plot_confusion_matrix,
    plot_filters,
    plot_history,
    plot_misclassified,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAMES = ["cat", "dog", "horse"]
HISTORY = [
    {"epoch": 1, "train_loss": 1.1, "train_accuracy": 0.6, "val_loss": 0.9},
    {"epoch": 2, "train_loss": 0.7, "train_accuracy": 0.8, "val_accuracy": None},
    {"epoch": 3, "train_loss": 0.5, "train_accuracy": 0.9, "val_accuracy": 0.85},
]
MATRIX = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 9]])
IMAGES = np.random.default_rng(0).random((5, 1, 8, 8))  # (N, 1, H, W)
TRUTH = np.array([0, 1, 2, 0, 1])
PREDICTED = np.array([1, 2, 0, 2, 0])
WEIGHT = np.random.default_rng(1).normal(size=(6, 1, 3, 3))

# One good call of each function, as (draw(path) -> panels, expected panels).
CASES = {
    "history": (lambda path: plot_history(path, HISTORY), 2),
    "confusion": (lambda path: plot_confusion_matrix(path, MATRIX, NAMES), 1),
    "misclassified": (
        lambda path: plot_misclassified(path, IMAGES, TRUTH, PREDICTED, NAMES),
        5,
    ),
    "filters": (lambda path: plot_filters(path, WEIGHT), 6),
}


def read_png(path) -> np.ndarray:
    """The pixels of the PNG at ``path``, after checking it is the only file there."""
    assert sorted(path.parent.iterdir()) == [path], "a temporary file was left over"
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    return pixels


@pytest.mark.parametrize("name", CASES)
def test_writes_one_png(tmp_path, name):
    draw, panels = CASES[name]
    path = tmp_path / f"{name}.png"
    assert draw(path) == panels
    pixels = read_png(path)
    assert pixels.std() > 0.01  # something was drawn


def test_history_size_and_single_epoch(tmp_path):
    path = tmp_path / "history.png"
    assert plot_history(str(path), HISTORY[:1]) == 2
    assert read_png(path).shape == (400, 1000, 4)  # figsize (10, 4) at 100 dpi


def test_history_with_diverged_loss(tmp_path):
    history = [
        {"epoch": 1, "train_loss": 2.3, "train_accuracy": 0.1},
        {"epoch": 2, "train_loss": float("nan"), "train_accuracy": 0.1},
        {"epoch": 3, "train_loss": float("inf"), "train_accuracy": 0.1},
    ]
    assert plot_history(tmp_path / "history.png", history) == 2
    read_png(tmp_path / "history.png")


def test_misclassified_caps_at_max_images(tmp_path):
    images = np.random.default_rng(2).integers(0, 256, (7, 8, 8), dtype=np.uint8)
    labels = np.zeros(7, dtype=np.int64)
    path = tmp_path / "wrong.png"
    assert plot_misclassified(path, images, labels, labels + 1, NAMES, 3) == 3
    read_png(path)


def test_misclassified_rgb(tmp_path):
    images = np.random.default_rng(4).normal(size=(2, 3, 8, 8))  # (N, 3, H, W)
    path = tmp_path / "wrong.png"
    assert plot_misclassified(path, images, [0, 1], [1, 2], NAMES) == 2
    read_png(path)


def test_misclassified_empty_selection(tmp_path):
    path = tmp_path / "wrong.png"
    assert plot_misclassified(path, IMAGES[:0], [], [], NAMES) == 0
    read_png(path)


def test_filters_many_channels(tmp_path):
    weight = np.random.default_rng(3).normal(size=(4, 3, 5, 5)).astype(np.float32)
    assert plot_filters(tmp_path / "filters.png", weight) == 4
    read_png(tmp_path / "filters.png")


def test_format_follows_suffix(tmp_path):
    path = tmp_path / "confusion.pdf"
    assert plot_confusion_matrix(path, MATRIX, NAMES) == 1
    assert sorted(tmp_path.iterdir()) == [path]
    assert path.read_bytes()[:5] == b"%PDF-"


@pytest.mark.parametrize("name", CASES)
def test_failed_drawing_leaves_no_file(tmp_path, monkeypatch, name):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(FigureCanvasAgg, "print_png", broken)
    draw, _ = CASES[name]
    with pytest.raises(RuntimeError, match="disk on fire"):
        draw(tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_failed_drawing_keeps_the_older_image(tmp_path, monkeypatch):
    path = tmp_path / "history.png"
    path.write_bytes(b"older image")

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(FigureCanvasAgg, "print_png", broken)
    with pytest.raises(RuntimeError):
        plot_history(path, HISTORY)
    assert sorted(tmp_path.iterdir()) == [path]
    assert path.read_bytes() == b"older image"


BAD_CALLS = {
    "history empty": (lambda p: plot_history(p, []), ValueError, "`history` must hold"),
    "history not a list": (
        lambda p: plot_history(p, HISTORY[0]),
        TypeError,
        "`history` must be a list of per-epoch dicts, got dict",
    ),
    "history missing key": (
        lambda p: plot_history(p, [{"epoch": 1, "train_loss": 0.5}]),
        ValueError,
        r"`history\[0\]` must have the keys .* \(missing train_accuracy\)",
    ),
    "history epoch not increasing": (
        lambda p: plot_history(p, [HISTORY[1], HISTORY[0]]),
        ValueError,
        r"`history\[1\]\['epoch'\]` must be an int > 2 .*, got 1",
    ),
    "history accuracy in percent": (
        lambda p: plot_history(
            p, [{"epoch": 1, "train_loss": 0.5, "train_accuracy": 97.5}]
        ),
        ValueError,
        r"`history\[0\]\['train_accuracy'\]` must be in \[0, 1\], got 97.5",
    ),
    "matrix not square": (
        lambda p: plot_confusion_matrix(p, MATRIX[:2], NAMES),
        ValueError,
        r"`matrix` must be a square 2-D array \(K, K\), K >= 1, got \(2, 3\)",
    ),
    "matrix of floats": (
        lambda p: plot_confusion_matrix(p, MATRIX / 2, NAMES),
        TypeError,
        "`matrix` must hold integer counts, got dtype float64",
    ),
    "matrix negative": (
        lambda p: plot_confusion_matrix(p, -MATRIX, NAMES),
        ValueError,
        "`matrix` must hold counts >= 0, got -9",
    ),
    "class_names too short": (
        lambda p: plot_confusion_matrix(p, MATRIX, NAMES[:2]),
        ValueError,
        r"`class_names` must have one name per class of `matrix` \(3\), got 2",
    ),
    "class_names a str": (
        lambda p: plot_confusion_matrix(p, MATRIX, "abc"),
        TypeError,
        "`class_names` must be a sequence of str, got str",
    ),
    "labels length mismatch": (
        lambda p: plot_misclassified(p, IMAGES, TRUTH[:4], PREDICTED, NAMES),
        ValueError,
        r"`true_labels` must have one label per image, shape \(5,\), got \(4,\)",
    ),
    "label out of range": (
        lambda p: plot_misclassified(p, IMAGES, TRUTH, PREDICTED + 1, NAMES),
        ValueError,
        r"`predicted_labels` must lie in \[0, 3\) .*, got values in \[1, 3\]",
    ),
    "images 2 channels": (
        lambda p: plot_misclassified(p, IMAGES.repeat(2, 1), TRUTH, PREDICTED, NAMES),
        ValueError,
        r"`images` must have shape \(N, H, W\), .* or \(N, 3, H, W\), got \(5, 2, 8, 8\)",
    ),
    "max_images zero": (
        lambda p: plot_misclassified(p, IMAGES, TRUTH, PREDICTED, NAMES, 0),
        ValueError,
        "`max_images` must be >= 1, got 0",
    ),
    "weight 3-D": (
        lambda p: plot_filters(p, WEIGHT[0]),
        ValueError,
        r"`weight` must be a non-empty 4-D array \(F, C, kH, kW\), got \(1, 3, 3\)",
    ),
    "weight not finite": (
        lambda p: plot_filters(p, WEIGHT * np.inf),
        ValueError,
        "`weight` must be finite",
    ),
    "weight not numbers": (
        lambda p: plot_filters(p, object()),
        TypeError,
        "`weight` must be an array of real numbers, got object",
    ),
}


@pytest.mark.parametrize("case", BAD_CALLS)
def test_bad_arguments_raise_and_write_nothing(tmp_path, case):
    call, error, message = BAD_CALLS[case]
    with pytest.raises(error, match=message):
        call(tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["out.txt", "out"])
def test_path_needs_an_image_suffix(tmp_path, name):
    with pytest.raises(ValueError, match="`path` must end in an image suffix"):
        plot_filters(tmp_path / name, WEIGHT)
    assert list(tmp_path.iterdir()) == []


def test_missing_matplotlib_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(ImportError, match=r"pip install 'cnnumpy\[plot\]'"):
        plot_history(tmp_path / "history.png", HISTORY)


def test_import_does_not_import_matplotlib(tmp_path):
    code = "import sys, cnnumpy.training.plots; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.stdout == "False\n", result.stderr
