"""docs/tutorial.md runs as written: its Python blocks, in order, in one namespace."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from cnnumpy.data import DatasetNotFoundError, load_dataset

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"
# The tutorial's last section reads MNIST's own test set from
# ../shared/data/mnist-t10k, relative to the repo root; the rest needs only the
# MNIST sample.
MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist-t10k"
MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


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


def test_only_the_last_section_reads_mnist_t10k():
    # So that without ../shared/data the other sections still run on their own.
    *body, last = sections()
    assert "mnist-t10k" in "".join(python_blocks(last))
    assert "mnist-t10k" not in "".join(python_blocks("".join(body)))


def test_tutorial_runs_top_to_bottom():
    try:
        load_dataset("mnist-sample")
    except DatasetNotFoundError as err:
        pytest.skip(f"the tutorial trains on the MNIST sample: {err}")
    missing = [name for name in MNIST_FILES if not (MNIST_DIR / name).is_file()]
    *body, last = sections()
    text = "".join(body) if missing else "".join(body) + last
    result = subprocess.run(
        [sys.executable, "-c", "\n\n".join(python_blocks(text))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"tutorial failed (exit {result.returncode}):\n{result.stderr}"
    )
    if missing:
        pytest.skip(
            f"ran all but the last section, which needs MNIST's test set in "
            f"{MNIST_DIR} (missing: {', '.join(missing)})"
        )
