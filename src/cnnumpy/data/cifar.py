"""CIFAR-10 from its binary version: the archive, or the folder it unpacks to.

The binary version, ``cifar-10-binary.tar.gz``, holds a folder
``cifar-10-batches-bin`` with the training batches ``data_batch_1.bin`` ..
``data_batch_5.bin``, ``test_batch.bin`` and ``batches.meta.txt`` (the class
names, one a line). A batch is a run of 3073-byte records: a label byte, then
the 1024 red, 1024 green and 1024 blue pixels of a 32x32 image, each plane row
by row. The Python version of the data set is a pickle, which runs code when
it is loaded: it is never read.

The archive is read in memory, never unpacked to disk. Only the expected
member names are taken; each must be a regular file (not a link) of at most
`MAX_BATCH_BYTES`, and at most `MAX_ARCHIVE_BYTES` of the tar stream are read,
so a hostile archive can neither write anywhere nor make the reader allocate
or inflate what its headers declare.
"""

from __future__ import annotations

import gzip
import os
import tarfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from cnnumpy.data.download import Progress, download
from cnnumpy.data.idx import GZIP_MAGIC
from cnnumpy.validation import check_choice, check_path

__all__ = [
    "ARCHIVE",
    "CLASS_NAMES",
    "MAX_ARCHIVE_BYTES",
    "MAX_BATCH_BYTES",
    "CIFARError",
    "cached_archive",
    "find_cifar10",
    "read_cifar10",
]

URLS = ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",)
# The only digest the CIFAR page publishes for the binary version.
MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
ARCHIVE = "cifar-10-binary.tar.gz"
FOLDER = "cifar-10-batches-bin"
TRAIN_BATCHES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_BATCH = "test_batch.bin"
META = "batches.meta.txt"
CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

SIDE = 32
RECORD_BYTES = 1 + 3 * SIDE * SIDE  # a label byte, then the R, G and B planes
# Each of CIFAR-10's batches holds exactly this many records; fewer are
# accepted (a subset, a test's fixture), more are refused before reading.
MAX_RECORDS = 10_000
MAX_BATCH_BYTES = MAX_RECORDS * RECORD_BYTES
MAX_META_BYTES = 1 << 12
# The tar stream read at most: six full batches and room for the small files
# and the headers. The real archive holds 9 entries.
MAX_ARCHIVE_BYTES = 7 * MAX_BATCH_BYTES
MAX_MEMBERS = 64
_CHUNK = 1 << 20


class CIFARError(ValueError):
    """A CIFAR-10 file or archive that is malformed or larger than allowed."""


def cached_archive(
    cache: Path, allow_download: bool, progress: Progress | None
) -> Path:
    """``cache / ARCHIVE``, downloaded there first if it is missing.

    The download is checked against `MD5` and renamed into place only then.

    Raises
    ------
    FileNotFoundError
        If the archive is missing and ``allow_download`` is False.
    DownloadError
        If the download failed (the message says why).
    """
    archive = cache / ARCHIVE
    if archive.is_file():
        return archive
    if not allow_download:
        raise FileNotFoundError(
            f"downloads are off (download=False) and the cache lacks {ARCHIVE}"
        )
    return download(URLS, archive, md5=MD5, progress=progress)


def find_cifar10(folder: Path) -> Path:
    """Where CIFAR-10 is in ``folder``: the batch files, a subfolder or the archive.

    Raises
    ------
    FileNotFoundError
        If ``folder`` holds none of them (the message says what was looked for).
    """
    for candidate in (folder, folder / FOLDER):
        if any((candidate / name).is_file() for name in (TEST_BATCH, *TRAIN_BATCHES)):
            return candidate
    if (folder / ARCHIVE).is_file():
        return folder / ARCHIVE
    raise FileNotFoundError(
        f"{folder}: no CIFAR-10 binary version found: expected its batch files "
        f"({', '.join(TRAIN_BATCHES)}, {TEST_BATCH}), a {FOLDER} folder holding "
        f"them, or the archive {ARCHIVE}"
    )


def read_cifar10(
    source: str | os.PathLike[str], splits: tuple[str, ...] = ("train", "test")
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Images (N, 3, 32, 32) uint8 and int64 labels (N,) of each split in ``source``.

    Every batch read must hold the same number of records, at most
    `MAX_RECORDS`; labels are below 10; ``batches.meta.txt``, when present,
    must name CIFAR-10's classes.

    Parameters
    ----------
    source : str or path-like
        The archive (gzip-compressed or a plain tar), or a folder in which
        `find_cifar10` finds the batch files or the archive.
    splits : tuple of {'train', 'test'}
        The splits to read: ``'train'`` is the five ``data_batch_*.bin``,
        ``'test'`` is ``test_batch.bin``.

    Returns
    -------
    dict
        ``{split: (images, labels)}``, new writable arrays, batches in order.

    Raises
    ------
    CIFARError
        (a ValueError) If a file or member is malformed, too large, missing
        from the archive or not a regular file; the message names it.
    FileNotFoundError
        If ``source`` holds no CIFAR-10, or a batch file is missing from it.
    """
    source = Path(check_path(source, "source"))
    for split in splits:
        check_choice(split, "splits", ("train", "test"))
    if source.is_dir():
        source = find_cifar10(source)
    batches = {
        split: TRAIN_BATCHES if split == "train" else (TEST_BATCH,) for split in splits
    }
    wanted = {name: MAX_BATCH_BYTES for names in batches.values() for name in names}
    wanted[META] = MAX_META_BYTES
    if source.is_dir():
        raw = _read_folder(source, wanted)
        where = {name: str(source / name) for name in wanted}
    else:
        raw = _read_archive(source, wanted)
        where = {name: f"{source}: member {FOLDER}/{name}" for name in wanted}
    if META in raw:
        _check_meta(raw.pop(META), where[META])
    out, counts = {}, {}
    for split, names in batches.items():
        parsed = []
        for name in names:
            parsed.append(_parse_batch(raw.pop(name), where[name]))
            counts[name] = len(parsed[-1][1])
        # concatenate copies: the arrays are writable, the bytes freed.
        out[split] = (
            np.concatenate([images for images, _ in parsed]),
            np.concatenate([labels for _, labels in parsed]),
        )
    if len(set(counts.values())) > 1:
        sizes = ", ".join(f"{name} {n}" for name, n in counts.items())
        raise CIFARError(
            f"{source}: the batches hold different numbers of records ({sizes}); "
            f"CIFAR-10's hold {MAX_RECORDS} each"
        )
    return out


def _parse_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    if not data or len(data) % RECORD_BYTES:
        raise CIFARError(
            f"{where}: {len(data):,} bytes, not a whole number of records of "
            f"{RECORD_BYTES} bytes (a label byte, then 3x{SIDE}x{SIDE} pixels)"
        )
    n = len(data) // RECORD_BYTES
    records = np.frombuffer(data, np.uint8).reshape(n, RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= len(CLASS_NAMES):
        first = int(np.argmax(labels >= len(CLASS_NAMES)))
        raise CIFARError(
            f"{where}: labels must be below {len(CLASS_NAMES)}, got {labels[first]} "
            f"in record {first}"
        )
    return records[:, 1:].reshape(n, 3, SIDE, SIDE), labels  # (N, 3, 32, 32)


def _check_meta(data: bytes, where: str) -> None:
    try:
        names = tuple(line.strip() for line in data.decode("ascii").splitlines())
    except UnicodeDecodeError:
        raise CIFARError(f"{where}: not ASCII text") from None
    names = tuple(name for name in names if name)
    if names != CLASS_NAMES:
        raise CIFARError(
            f"{where}: names the classes {names!r}, expected CIFAR-10's {CLASS_NAMES}"
        )


def _read_folder(folder: Path, wanted: dict[str, int]) -> dict[str, bytes]:
    out = {}
    for name, limit in wanted.items():
        path = folder / name
        if not path.is_file():
            if name == META:
                continue
            raise FileNotFoundError(f"{folder}: lacks the CIFAR-10 batch {name}")
        size = path.stat().st_size
        if size > limit:
            raise CIFARError(f"{path}: {size:,} bytes, more than the {limit:,} allowed")
        with open(path, "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:  # it grew since stat
            raise CIFARError(f"{path}: more than the {limit:,} bytes allowed")
        out[name] = data
    return out


def _read_archive(path: Path, wanted: dict[str, int]) -> dict[str, bytes]:
    """The wanted members of the archive at ``path``, by name within `FOLDER`."""
    with open(path, "rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        stream: BinaryIO = gzip.GzipFile(fileobj=raw) if compressed else raw
        try:
            with tarfile.open(fileobj=_Bounded(stream, path), mode="r:") as tar:
                found = _members(tar, path, wanted)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise CIFARError(f"{path}: unreadable tar archive ({err})") from None
    missing = [name for name in wanted if name not in found and name != META]
    if missing:
        raise CIFARError(
            f"{path}: the archive lacks {', '.join(f'{FOLDER}/{n}' for n in missing)}"
        )
    return found


def _members(
    tar: tarfile.TarFile, path: Path, wanted: dict[str, int]
) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for count in range(1, MAX_MEMBERS + 2):
        member = tar.next()
        if member is None:
            break
        if count > MAX_MEMBERS:
            raise CIFARError(f"{path}: more than {MAX_MEMBERS} archive members")
        if member.offset_data + member.size > MAX_ARCHIVE_BYTES:
            raise CIFARError(
                f"{path}: member {member.name!r} declares {member.size:,} bytes, "
                f"past the {MAX_ARCHIVE_BYTES:,} bytes of tar data allowed"
            )
        # Names are compared, never used as paths: '../x' or '/x' match nothing.
        name = member.name.removeprefix("./")
        folder, _, base = name.partition("/")
        if folder != FOLDER or base not in wanted:
            continue
        if not member.isreg():
            raise CIFARError(
                f"{path}: member {member.name!r} is not a regular file (a link, "
                f"folder or device), refused"
            )
        if base in found:
            raise CIFARError(f"{path}: member {member.name!r} appears twice")
        if member.size > wanted[base]:
            raise CIFARError(
                f"{path}: member {member.name!r} declares {member.size:,} bytes, "
                f"more than the {wanted[base]:,} allowed"
            )
        f = tar.extractfile(member)
        data = b"" if f is None else f.read(member.size)
        if len(data) != member.size:
            raise CIFARError(f"{path}: member {member.name!r} is truncated")
        found[base] = data
    return found


class _Bounded:
    """A read-only file that refuses to go past `MAX_ARCHIVE_BYTES`.

    tarfile reads an extended header (pax, GNU long name) with one ``read`` of
    the size the header declares: here every read stops at the limit and
    proceeds in chunks, so memory follows the bytes that are there.
    """

    def __init__(self, f: BinaryIO, path: Path) -> None:
        self._f = f
        self._path = path

    def _refuse(self) -> CIFARError:
        return CIFARError(
            f"{self._path}: more than the {MAX_ARCHIVE_BYTES:,} bytes of tar data "
            f"allowed"
        )

    def read(self, size: int | None = -1) -> bytes:
        start = self._f.tell()
        remaining = MAX_ARCHIVE_BYTES + 1 - start
        size = remaining if size is None or size < 0 else min(size, remaining)
        parts, done = [], 0
        while done < size:
            chunk = self._f.read(min(_CHUNK, size - done))
            if not chunk:
                break
            parts.append(chunk)
            done += len(chunk)
        if start + done > MAX_ARCHIVE_BYTES:
            raise self._refuse()
        return b"".join(parts)

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0 and offset > MAX_ARCHIVE_BYTES:
            raise self._refuse()
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()
