"""Synthetic CIFAR-10 binary files: the real layout, a few records per batch.

A record is a label byte and 3x32x32 pixels (the R, G, B planes, row by row);
the archive holds ``cifar-10-batches-bin/<batch>`` as the real one does.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import numpy as np

from cnnumpy.data.cifar import ARCHIVE, CLASS_NAMES, FOLDER, TEST_BATCH, TRAIN_BATCHES

BATCHES = (*TRAIN_BATCHES, TEST_BATCH)
META = ("\n".join(CLASS_NAMES) + "\n\n").encode()


def records(labels: np.ndarray, images: np.ndarray) -> bytes:
    """The bytes of a batch: labels (N,) and images (N, 3, 32, 32) uint8."""
    flat = images.reshape(len(images), -1)  # (N, 3072), R then G then B
    return np.concatenate([labels[:, None], flat], axis=1).astype(np.uint8).tobytes()


def batches(
    rng: np.random.Generator, n: int = 4
) -> tuple[dict[str, bytes], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """(bytes of each file by name, with the meta file; arrays of each batch)."""
    files, arrays = {}, {}
    for name in BATCHES:
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 256, (n, 3, 32, 32)).astype(np.uint8)
        files[name] = records(labels, images)
        arrays[name] = (labels.astype(np.int64), images)
    files["batches.meta.txt"] = META
    return files, arrays


def tar_bytes(members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    """An uncompressed tar of ``members``: (name, data) pairs or bare headers."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def archive_bytes(files: dict[str, bytes], compress: bool = True) -> bytes:
    """The archive holding ``files`` under cifar-10-batches-bin/."""
    data = tar_bytes([(f"{FOLDER}/{name}", data) for name, data in files.items()])
    return gzip.compress(data, mtime=0) if compress else data


def write_archive(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ARCHIVE
    path.write_bytes(archive_bytes(files))
    return path


def write_folder(folder: Path, files: dict[str, bytes]) -> Path:
    """The files as extracted: ``folder`` holds the batch files themselves."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder
