"""Shared test helpers: PyTorch comparisons and a small IDX (MNIST) reader.

Test modules import the plain helpers with ``from conftest import ...`` (pytest puts
``tests/`` on ``sys.path``); the fixtures are found by name.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings

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

# shared/ is a sibling of the repository: <root>/main/tests/conftest.py -> <root>/shared
MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"
IDX_UBYTE = 0x08


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


def read_idx(path: Path, count: int | None = None) -> np.ndarray:
    """The first ``count`` items (all if None) of a gzipped IDX file of unsigned bytes.

    The header is a big-endian magic ``0x0000TTNN`` (type code TT, NN dimensions)
    followed by NN big-endian uint32 sizes.
    """
    with gzip.open(path, "rb") as f:
        zero, type_code, ndim = struct.unpack(">HBB", f.read(4))
        if zero != 0 or type_code != IDX_UBYTE or ndim < 1:
            raise ValueError(f"{path}: not an IDX file of unsigned bytes")
        dims = struct.unpack(f">{ndim}I", f.read(4 * ndim))
        n = dims[0] if count is None else min(count, dims[0])
        shape = (n, *dims[1:])
        size = int(np.prod(shape))
        data = f.read(size)
    if len(data) != size:
        raise ValueError(f"{path}: expected {size} bytes of data, got {len(data)}")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def mnist_digits() -> tuple[np.ndarray, np.ndarray]:
    """The first 16 MNIST test digits as uint8 (16, 1, 28, 28) and their int64 labels."""
    images = MNIST_DIR / "t10k-images-idx3-ubyte.gz"
    labels = MNIST_DIR / "t10k-labels-idx1-ubyte.gz"
    if not (images.is_file() and labels.is_file()):
        pytest.skip(f"MNIST test set not found in {MNIST_DIR}")
    x = read_idx(images, 16)
    y = read_idx(labels, 16)
    assert x.shape == (16, 28, 28) and y.shape == (16,)
    return x[:, None], y.astype(np.int64)
