"""Find the four IDX files of an MNIST-like data set in a folder, by name pattern."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import numpy as np

from cnnumpy.data.idx import IDXError, read_idx

__all__ = ["FILE_NAMES", "MAX_CLASSES", "ROLES", "find_idx_files", "read_split"]

# Labels index classes: the class names and every (K,)-sized array follow from
# the largest label, so it is bounded before anything is built from it.
MAX_CLASSES = 2**16

ROLES = ("train images", "train labels", "test images", "test labels")

# The canonical names, as published (and cached) for MNIST and Fashion-MNIST.
FILE_NAMES = {
    "train images": "train-images-idx3-ubyte.gz",
    "train labels": "train-labels-idx1-ubyte.gz",
    "test images": "t10k-images-idx3-ubyte.gz",
    "test labels": "t10k-labels-idx1-ubyte.gz",
}

# Patterns that also match prefixed (EMNIST: ``emnist-digits-train-images-idx3-ubyte``)
# and dotted (``train-images.idx3-ubyte``) names, compressed or not.
_PATTERNS = {
    "train images": ("*train-images-idx3-ubyte", "*train-images.idx3-ubyte"),
    "train labels": ("*train-labels-idx1-ubyte", "*train-labels.idx1-ubyte"),
    "test images": ("*t10k-images*", "*test-images*"),
    "test labels": ("*t10k-labels*", "*test-labels*"),
}
PATTERNS = {
    role: tuple(p + gz for p in patterns for gz in ("", ".gz"))
    if role.startswith("train")
    else patterns
    for role, patterns in _PATTERNS.items()
}


def find_idx_files(folder: Path, roles: tuple[str, ...] = ROLES) -> dict[str, Path]:
    """The file for each of ``roles`` in ``folder``; exactly one must match each.

    Hidden files (a leading dot, like unfinished downloads) are ignored.
    """
    names = sorted(
        p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
    )
    found = {}
    for role in roles:
        patterns = PATTERNS[role]
        matches = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
        if len(matches) != 1:
            got = ", ".join(matches) if matches else "no file"
            raise FileNotFoundError(
                f"{folder}: expected exactly one {role} file matching "
                f"{' or '.join(patterns)}, found {got}"
            )
        found[role] = folder / matches[0]
    return found


def read_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images as (N, 1, H, W) and int64 labels (N,) from two IDX files."""
    labels = read_idx(labels_path)  # the small file first: cheap to refuse
    images = read_idx(images_path)
    if images.ndim != 3:
        raise IDXError(
            f"{images_path}: expected 3-D images (N, H, W), got shape {images.shape}"
        )
    if images.dtype != np.uint8 and not np.issubdtype(images.dtype, np.floating):
        raise IDXError(
            f"{images_path}: expected ubyte or float images, got {images.dtype}"
        )
    if images.dtype.kind == "f" and not np.isfinite(images).all():
        raise IDXError(f"{images_path}: images hold NaN or infinite values")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise IDXError(
            f"{labels_path}: expected 1-D integer labels, got shape {labels.shape} "
            f"of {labels.dtype}"
        )
    if len(labels) != len(images):
        raise IDXError(
            f"{labels_path} holds {len(labels)} labels but {images_path} holds "
            f"{len(images)} images"
        )
    if labels.size and labels.min() < 0:
        raise IDXError(f"{labels_path}: labels must be >= 0, got {labels.min()}")
    if labels.size and labels.max() >= MAX_CLASSES:
        raise IDXError(
            f"{labels_path}: labels must be below {MAX_CLASSES} (class indices), "
            f"got {labels.max()}"
        )
    return images[:, None], labels.astype(np.int64)  # (N, 1, H, W)
