"""Shared test helpers: PyTorch comparisons and real MNIST digits.

Test modules import the plain helpers with ``from conftest import ...`` (pytest puts
``tests/`` on ``sys.path``); the fixtures are found by name.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings

from cnnumpy.data import read_idx, write_idx

# In CI, property tests draw the same examples every run, so a landing never
# hinges on luck; locally they explore new examples each run.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

TOLERANCE = {
    np.dtype(np.float64): {"rtol": 1e-10, "atol": 1e-12},
    np.dtype(np.float32): {"rtol": 1e-4, "atol": 1e-5},
}
TORCH_DTYPE = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}

# The first 1,000 digits of MNIST's own test set, real and never in the sample.
MNIST_DIR = Path(__file__).resolve().parent / "data" / "mnist-t10k-1k"


def to_numpy(a: object) -> np.ndarray:
    """A torch tensor (detached) or anything array-like, as a numpy array."""
    if isinstance(a, torch.Tensor):
        return a.detach().numpy()
    return np.asarray(a)


def assert_close(actual: object, expected: object, dtype: object) -> None:
    """``actual`` has exactly ``dtype`` and matches ``expected`` at its tolerance."""
    dtype = np.dtype(dtype)
    assert isinstance(actual, np.ndarray), f"expected an ndarray, got {type(actual)}"
    assert actual.dtype == dtype, f"dtype {actual.dtype}, expected {dtype}"
    np.testing.assert_allclose(actual, to_numpy(expected), **TOLERANCE[dtype])


def leaf(a: np.ndarray) -> torch.Tensor:
    """A torch leaf tensor holding a copy of ``a``, requiring grad."""
    return torch.from_numpy(np.array(a)).requires_grad_(True)


def numpy_state(module: torch.nn.Module) -> dict[str, np.ndarray]:
    """A torch module's state_dict as numpy arrays, in torch's order."""
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """The first 16 MNIST test digits as uint8 (16, 1, 28, 28) and their int64 labels."""
    x = read_idx(MNIST_DIR / "t10k-images-idx3-ubyte.gz")[:16]
    y = read_idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz")[:16]
    assert x.shape == (16, 28, 28) and y.shape == (16,)
    return x[:, None], y.astype(np.int64)


def write_mnist_dir(folder: Path, n_train: int, n_test: int) -> Path:
    """A --data folder: the first n_train real MNIST test digits to train on, the
    next n_test to test on, as the four IDX files."""
    images = read_idx(MNIST_DIR / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    end = n_train + n_test
    write_idx(folder / "train-images-idx3-ubyte.gz", images[:n_train])
    write_idx(folder / "train-labels-idx1-ubyte.gz", labels[:n_train])
    write_idx(folder / "t10k-images-idx3-ubyte.gz", images[n_train:end])
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels[n_train:end])
    return folder


@pytest.fixture(scope="session")
def tiny_mnist_dir(tmp_path_factory) -> Path:
    """A --data folder of 400 training and 100 test digits."""
    return write_mnist_dir(tmp_path_factory.mktemp("tiny-mnist"), 400, 100)
