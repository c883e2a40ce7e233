"""Read and write IDX files, the format of MNIST and its relatives.

An IDX file is a 4-byte big-endian magic ``0x0000TTNN`` (two zero bytes, a type
code TT, the number of dimensions NN), then NN big-endian uint32 sizes, then the
values in C order, big-endian. Files are often gzip-compressed; the reader tells
by the gzip magic bytes, not by the file name.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from cnnumpy.data._files import temporary_sibling
from cnnumpy.validation import check_instance, check_path

__all__ = ["MAX_IDX_BYTES", "IDXError", "read_idx", "write_idx"]

GZIP_MAGIC = b"\x1f\x8b"

# IDX type code -> big-endian dtype of the values.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_TYPE_NAMES = (
    "0x08 ubyte, 0x09 sbyte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64"
)


class IDXError(ValueError):
    """A file that is not a valid IDX file, or declares more data than allowed."""


# The largest array the reader allocates, in bytes: MNIST's training images take
# 47 MB, EMNIST's largest split 550 MB. A header asking for more is refused before
# anything is allocated.
MAX_IDX_BYTES = 2**31
_CHUNK = 1 << 20


def _read_bounded(f: BinaryIO, limit: int) -> bytes:
    """Up to ``limit`` bytes of ``f``: memory grows with what is there, not more."""
    parts, size = [], 0
    while size < limit:
        chunk = f.read(min(_CHUNK, limit - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def _check_header(head: bytes, path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """dtype, shape and header length of the IDX header at the start of ``head``."""
    if len(head) < 4:
        raise IDXError(
            f"{path}: not an IDX file: {len(head)} bytes, shorter than the 4-byte magic"
        )
    zero, type_code, ndim = struct.unpack(">HBB", head[:4])
    if zero != 0:
        raise IDXError(
            f"{path}: not an IDX file: the magic must start with two zero bytes, "
            f"got 0x{zero:04x}"
        )
    if type_code not in IDX_TYPES:
        raise IDXError(
            f"{path}: unknown IDX type code 0x{type_code:02x} "
            f"(expected one of {_TYPE_NAMES})"
        )
    if ndim < 1:
        raise IDXError(f"{path}: IDX header declares {ndim} dimensions, expected >= 1")
    header = 4 + 4 * ndim
    if len(head) < header:
        raise IDXError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header} bytes, "
            f"the file holds {len(head)}"
        )
    dims = struct.unpack(f">{ndim}I", head[4:header])
    dtype = IDX_TYPES[type_code]
    expected = math.prod(dims) * dtype.itemsize
    if expected > MAX_IDX_BYTES:
        raise IDXError(
            f"{path}: IDX header declares shape {dims} of {dtype.name}, "
            f"{expected:,} bytes: more than the {MAX_IDX_BYTES:,} this reader allows"
        )
    return dtype, dims, header


def read_bytes(path: Path) -> bytes:
    """The IDX bytes of ``path`` (header and data), decompressed if gzip.

    At most the header's declared size plus one byte is read or decompressed,
    so a small file that declares or inflates to a huge one costs no memory.
    """
    with open(path, "rb") as f:
        compressed = f.read(2) == GZIP_MAGIC
        f.seek(0)
        try:
            source: BinaryIO = gzip.GzipFile(fileobj=f) if compressed else f
            head = _read_bounded(source, 4)
            if len(head) == 4 and head[:2] == b"\0\0":
                head += _read_bounded(source, 4 * head[3])
            dtype, dims, header = _check_header(head, path)
            expected = math.prod(dims) * dtype.itemsize
            if not compressed:
                got = os.fstat(f.fileno()).st_size - header
                if got != expected:
                    _size_error(path, dims, dtype, expected, got)
            data = head + _read_bounded(source, expected + 1)
        except (OSError, EOFError, zlib.error) as err:
            if not compressed:
                raise
            raise IDXError(f"{path}: corrupt gzip data ({err})") from err
    return data


def _size_error(
    path: Path, dims: tuple[int, ...], dtype: np.dtype, expected: int, got: int
) -> None:
    what = "truncated" if got < expected else "has trailing bytes"
    raise IDXError(
        f"{path}: IDX file {what}: shape {dims} of {dtype.name} needs "
        f"{expected} bytes of data after the header, got {got}"
        + (" or more" if got > expected else "")
    )


def is_idx_header(data: bytes) -> bool:
    """Whether ``data`` starts with an IDX magic of a known type code."""
    if len(data) < 4:
        return False
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    return zero == 0 and type_code in IDX_TYPES and ndim >= 1


def parse_idx(data: bytes, path: Path) -> np.ndarray:
    """The array held by the (decompressed) IDX bytes ``data`` read from ``path``."""
    dtype, dims, header = _check_header(data, path)
    count = math.prod(dims)
    expected = count * dtype.itemsize
    got = len(data) - header
    if got != expected:
        _size_error(path, dims, dtype, expected, got)
    array = np.frombuffer(data, dtype=dtype, count=count, offset=header)
    # astype copies: the result is writable and native-endian.
    return array.reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, gzip-compressed or raw.

    Parameters
    ----------
    path : str or path-like
        The file. Compression is detected by the gzip magic bytes ``1f 8b``,
        whatever the file name.

    Returns
    -------
    numpy.ndarray
        A new, writable, native-endian array with the shape of the header:
        uint8, int8, int16, int32, float32 or float64 by the type code.

    Raises
    ------
    IDXError
        (a ValueError) If the file is not IDX (bad magic, unknown type code),
        its gzip data is corrupt, its size differs from the header's
        (truncated, or trailing bytes), or the header declares more than
        `MAX_IDX_BYTES`. The message names the file. Nothing is allocated
        beyond the declared size, whatever the file inflates to.
    OSError
        If the file cannot be read (``FileNotFoundError`` ...).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "labels-idx1-ubyte.gz"
    ...     write_idx(path, np.array([5, 0, 4], dtype=np.uint8))
    ...     read_idx(path)
    array([5, 0, 4], dtype=uint8)
    """
    path = Path(check_path(path, "path"))
    return parse_idx(read_bytes(path), path)


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed if ``path`` ends with ``.gz``.

    The file is written to a temporary file in the same folder and renamed into
    place, so ``path`` never holds a partial file.

    Parameters
    ----------
    path : str or path-like
        The destination; its folder must exist.
    array : numpy.ndarray
        At least 1-D, of dtype uint8, int8, int16, int32, float32 or float64,
        each size below 2**32.

    Raises
    ------
    TypeError
        If ``array`` is not an ndarray or its dtype has no IDX type code.
    ValueError
        If ``array`` is 0-D, has more than 255 dimensions or a size of 2**32 or more.
    """
    path = Path(check_path(path, "path"))
    check_instance(array, "array", np.ndarray, "a numpy.ndarray")
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise TypeError(
            "`array` dtype must be one of uint8, int8, int16, int32, float32, "
            f"float64, got {array.dtype}"
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"`array` must have 1 to 255 dimensions, got {array.ndim}")
    if max(array.shape) >= 2**32:
        raise ValueError(f"`array` sizes must be below 2**32, got shape {array.shape}")
    code = codes[native]
    header = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape)
    data = header + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    if path.name.endswith(".gz"):
        # mtime=0: the same array always gives the same bytes (and digest).
        data = gzip.compress(data, mtime=0)
    with temporary_sibling(path) as (f, tmp):
        f.write(data)
        f.close()
        os.replace(tmp, path)
