"""docs/tutorial.md runs as written: its Python blocks, in order, in one namespace."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cnnumpy.data import DatasetNotFoundError, load_dataset

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"
# The tutorial's last section reads MNIST's own test set from the folder in
# MNIST_TEST_DIR (else the cache, else a download); the tests give it the
# 1,000 real test digits under tests/data.
MNIST_DIR = ROOT / "tests" / "data" / "mnist-t10k-1k"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def sections() -> list[str]:
    """The tutorial's text cut before each ``## `` heading (the first is the intro)."""
    return re.split(r"^(?=## )", TUTORIAL.read_text(), flags=re.M)


def test_tutorial_has_its_code_and_formulas():
    text = TUTORIAL.read_text()
    assert len(python_blocks(text)) >= 10
    for formula in (
        "(softmax - one-hot) / N",  # cross-entropy
        "dx = dy W",  # linear
        "dW = dyᵀ x",
        "db = Σ dy",
        "dy · (1 - y²)",  # tanh
        "dy / 4",  # average pooling
        "dW = dy2d @ colsᵀ",  # convolution
        "dcols = W2d.T @ dy2d",
        "dx = col2im(dcols)",
        "input_grad=False",
    ):
        assert formula in text, f"tutorial no longer explains {formula!r}"


def test_only_the_last_section_reads_mnist_s_test_set():
    # So that the other sections run on the MNIST sample alone.
    *body, last = sections()
    assert "MNIST_TEST_DIR" in "".join(python_blocks(last))
    assert 'load_test_set("mnist"' in "".join(python_blocks(last))
    assert '"mnist"' not in "".join(python_blocks("".join(body)))


def test_tutorial_runs_top_to_bottom():
    try:
        load_dataset("mnist-sample")
    except DatasetNotFoundError as err:
        pytest.skip(f"the tutorial trains on the MNIST sample: {err}")
    result = subprocess.run(
        [sys.executable, "-c", "\n\n".join(python_blocks(TUTORIAL.read_text()))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MNIST_TEST_DIR": str(MNIST_DIR)},
    )
    assert result.returncode == 0, (
        f"tutorial failed (exit {result.returncode}):\n{result.stderr}"
    )
    assert "images (1000, 28, 28) uint8" in result.stdout
    assert "header 00 00 08 03 00 00 03 e8 00 00 00 1c 00 00 00 1c" in result.stdout


TUTORIAL_2 = ROOT / "docs" / "tutorial-2.md"


def test_tutorial_2_explains_the_residual_backward():
    text = TUTORIAL_2.read_text()
    for formula in (
        "dbody = dskip = ds",
        "dx = dx_body + dx_skip",
        "y = relu(body(x) + shortcut(x))",
        "nn.Residual(body, shortcut)",
    ):
        assert formula in text, f"tutorial part 2 no longer explains {formula!r}"
    assert "(tutorial-2.md)" in TUTORIAL.read_text(), "part 1 must link to part 2"


def test_tutorial_2_runs_top_to_bottom(tmp_path):
    try:
        load_dataset("mnist-sample")
    except DatasetNotFoundError as err:
        pytest.skip(f"the tutorial trains on the MNIST sample: {err}")
    result = subprocess.run(
        [sys.executable, "-c", "\n\n".join(python_blocks(TUTORIAL_2.read_text()))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TMPDIR": str(tmp_path)},  # where its pictures go
    )
    assert result.returncode == 0, (
        f"tutorial part 2 failed (exit {result.returncode}):\n{result.stderr}"
    )
    out = result.stdout
    assert "block output (2, 8, 4, 4)" in out
    assert "nn.Residual agrees with the block by hand" in out
    assert "conv2  (1, 16, 10, 10)" in out
    assert "Grad-CAM (1, 28, 28) for class 7" in out
    if "pictures in" in out:  # with matplotlib
        (folder,) = tmp_path.iterdir()
        names = sorted(p.name for p in folder.iterdir())
        assert names == ["feature-maps.png", "grad-cam.png", "saliency.png"]
