"""docs/tutorial.md runs as written: its Python blocks, in order, in one namespace."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"
# The tutorial reads MNIST from ../shared/data/mnist-t10k, relative to the repo root.
MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist-t10k"
MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", TUTORIAL.read_text(), flags=re.S | re.M)


def test_tutorial_has_its_code_and_formulas():
    text = TUTORIAL.read_text()
    assert len(python_blocks()) >= 10
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


def test_tutorial_runs_top_to_bottom():
    missing = [name for name in MNIST_FILES if not (MNIST_DIR / name).is_file()]
    if missing:
        pytest.skip(f"MNIST test set not found in {MNIST_DIR}: {', '.join(missing)}")
    code = "\n\n".join(python_blocks())
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"tutorial failed (exit {result.returncode}):\n{result.stderr}"
    )
