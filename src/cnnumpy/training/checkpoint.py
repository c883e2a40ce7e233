"""Checkpoints: NumPy arrays in an ``.npz`` file, everything else as JSON inside it.

A checkpoint is a tree of dicts and lists whose leaves are JSON values or NumPy
arrays. `save_checkpoint` moves every array into the ``.npz`` archive under a
path-like key (``model/state/conv1.weight``) and stores the rest of the tree,
with ``{"__array__": key}`` where each array was, as UTF-8 JSON in the member
``__meta__``. `load_checkpoint` reverses this with ``allow_pickle=False``:
loading a checkpoint never runs code, and a pickled, truncated or malformed file
is refused with a `CheckpointError` that names it.

Writes are atomic: the archive goes to a temporary file in the same folder,
is flushed to disk, then renamed over the target. A crash or Ctrl-C at any point
leaves either the old checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from cnnumpy.validation import check_instance, check_path

__all__ = [
    "FORMAT",
    "VERSION",
    "CheckpointError",
    "atomic_write_bytes",
    "load_checkpoint",
    "save_checkpoint",
]

FORMAT = "cnnumpy-checkpoint"
VERSION = 1
META = "__meta__"
ARRAY = "__array__"


class CheckpointError(ValueError):
    """A file that is not a readable cnnumpy checkpoint."""


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    The temporary file sits in the same folder (a rename across file systems
    is not atomic) and is removed if anything fails, Ctrl-C included.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _pack(tree: Any, key: str, arrays: dict[str, np.ndarray]) -> Any:
    """``tree`` with arrays replaced by references, collected into ``arrays``."""
    if isinstance(tree, np.ndarray):
        if tree.dtype.kind not in "biuf":
            raise TypeError(
                f"checkpoint array {key!r} must be numeric, got {tree.dtype}"
            )
        arrays[key] = tree
        return {ARRAY: key}
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(
                    f"checkpoint keys must be str or int, got {k!r} in {key!r}"
                )
            out[str(k)] = _pack(v, f"{key}/{k}" if key else str(k), arrays)
        return out
    if isinstance(tree, (list, tuple)):
        return [_pack(v, f"{key}/{i}", arrays) for i, v in enumerate(tree)]
    if isinstance(tree, np.generic):
        return tree.item()
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    raise TypeError(
        f"checkpoint values must be arrays, numbers, strings, lists or dicts; "
        f"got {type(tree).__name__} at {key!r}"
    )


def _unpack(tree: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if isinstance(tree, dict):
        if set(tree) == {ARRAY}:
            key = tree[ARRAY]
            if not isinstance(key, str) or key not in arrays:
                raise CheckpointError(f"{where}: refers to a missing array {key!r}")
            return arrays[key]
        return {k: _unpack(v, arrays, where) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_unpack(v, arrays, where) for v in tree]
    return tree


def save_checkpoint(path: str | Path, tree: dict[str, Any]) -> Path:
    """Write ``tree`` (arrays anywhere inside) to ``path`` atomically.

    Parameters
    ----------
    path : str or Path
        Target file, conventionally ``*.npz``. Its folder must exist.
    tree : dict
        Nested dicts (str or int keys) and lists of arrays, numbers, strings,
        booleans and None. ``format`` and ``version`` entries are added.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    TypeError
        A value cannot be stored without pickle (an object, a non-numeric array).
    FileNotFoundError
        The folder of ``path`` does not exist.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> p = save_checkpoint(f"{folder}/a.npz", {"w": np.arange(3.0), "epoch": 2})
    >>> tree = load_checkpoint(p)
    >>> tree["w"], tree["epoch"]
    (array([0., 1., 2.]), 2)
    """
    path = Path(check_path(path, "path"))
    check_instance(tree, "tree", dict, "a dict")
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"checkpoint folder {str(path.parent)!r} does not exist"
        )
    arrays: dict[str, np.ndarray] = {}
    meta = _pack({"format": FORMAT, "version": VERSION, **tree}, "", arrays)
    if META in arrays:
        raise TypeError(f"checkpoint key {META!r} is reserved")
    buffer = io.BytesIO()
    text = json.dumps(meta, allow_nan=True).encode("utf-8")
    np.savez(buffer, **arrays, **{META: np.frombuffer(text, dtype=np.uint8)})
    return atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`, without unpickling.

    Memory is bounded by what the file holds: each member's size is checked
    in the zip directory and its ``.npy`` header (against `MAX_MEMBER_BYTES`
    and against each other) before it is read, the JSON against
    `MAX_META_BYTES`, the file and all its arrays together against
    `MAX_FILE_BYTES`, and only the arrays the JSON refers to are read.

    Returns
    -------
    dict
        The tree as saved, arrays in place, plus ``format`` and ``version``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    CheckpointError
        The file is not a cnnumpy checkpoint: not an npz archive (a plain
        ``.npy`` ...), truncated, holds pickled objects or non-numeric arrays,
        declares sizes over the limits or at odds with each other, lacks the
        metadata, has malformed or too deeply nested metadata, or a newer
        version.
    """
    return read_checkpoint(path)


# The largest array member read from a checkpoint, and the largest JSON entry.
# LeNet-5's weights take 0.5 MB in float64; the largest model the registry
# builds (cnnumpy.models.registry.MAX_PARAMETERS, 2**26) 512 MB. A checkpoint
# asking for more is refused before anything is allocated.
MAX_MEMBER_BYTES = 2**29
MAX_FILE_BYTES = 2**31  # the file, and all the arrays read from it together
MAX_META_BYTES = 16 * 2**20
_NPY_MAGIC = b"\x93NUMPY"


def read_checkpoint(path: str | Path, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """`load_checkpoint`, leaving out the top-level entries named in ``skip``
    (their arrays are never read)."""
    path = Path(check_path(path, "path"))
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    where = f"checkpoint {str(path)!r}"
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CheckpointError(
            f"{where} holds {size:,} bytes, more than the {MAX_FILE_BYTES:,} allowed"
        )
    # From memory: reading a file object with a size the archive declares (its
    # central directory, a member) would allocate that size before reading.
    raw = path.read_bytes()
    if raw.startswith(_NPY_MAGIC):
        raise CheckpointError(
            f"{where} is a single .npy array, not a checkpoint (.npz)"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            infos = _members(archive, where)
            if META not in infos:
                raise CheckpointError(
                    f"{where} has no {META!r} entry: not a cnnumpy checkpoint"
                )
            text = _read_member(archive, infos[META], where, MAX_META_BYTES)
            meta = _parse_meta(text, where)
            for key in skip:
                meta.pop(key, None)
            wanted = _references(meta, where)
            for key in wanted:
                if key not in infos or key == META:
                    raise CheckpointError(f"{where}: refers to a missing array {key!r}")
            total = sum(infos[key].file_size for key in wanted)
            if total > MAX_FILE_BYTES:  # many members, each under its own limit
                raise CheckpointError(
                    f"{where}: its arrays declare {total:,} bytes in all, more than "
                    f"the {MAX_FILE_BYTES:,} allowed"
                )
            arrays = {
                key: _read_member(archive, infos[key], where, MAX_MEMBER_BYTES)
                for key in wanted
            }
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as err:
        raise CheckpointError(
            f"{where} is not a complete .npz archive (truncated or not a "
            f"checkpoint): {err}"
        ) from None
    except (ValueError, OSError, NotImplementedError, RuntimeError) as err:
        # Unreadable .npy headers, bad CRCs, unsupported or encrypted members.
        raise CheckpointError(f"{where} cannot be read safely: {err}") from None
    return _unpack(meta, arrays, where)


def _members(archive: zipfile.ZipFile, where: str) -> dict[str, zipfile.ZipInfo]:
    """Array name -> zip entry, each a ``.npy`` of a bounded declared size."""
    infos: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        name = info.filename
        if not name.endswith(".npy"):
            raise CheckpointError(f"{where}: member {name!r} is not a .npy array")
        key = name[: -len(".npy")]
        if key in infos:
            raise CheckpointError(f"{where}: member {name!r} appears twice")
        infos[key] = info
    return infos


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, limit: int
) -> np.ndarray:
    """The array of one member, its sizes checked before its data is read."""
    name = info.filename
    if info.file_size > limit + 4096:  # + room for the .npy header
        raise CheckpointError(
            f"{where}: member {name!r} declares {info.file_size:,} bytes, "
            f"more than the {limit:,} allowed"
        )
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise CheckpointError(
                f"{where}: member {name!r} has .npy version {version}"
            )
        if dtype.hasobject:
            raise CheckpointError(
                f"{where} cannot be read safely: member {name!r} holds pickled "
                f"objects (dtype {dtype})"
            )
        if dtype.kind not in "biuf" or dtype.fields is not None:
            raise CheckpointError(f"{where}: array {name!r} has dtype {dtype}")
        nbytes = math.prod(shape) * dtype.itemsize
        header = f.tell()
        if nbytes > limit or header + nbytes != info.file_size:
            raise CheckpointError(
                f"{where}: member {name!r} declares shape {shape} of {dtype} "
                f"({nbytes:,} bytes) in {info.file_size:,} bytes with its header"
                + (f", more than the {limit:,} allowed" if nbytes > limit else "")
            )
        data = _read_chunks(f, nbytes)
        if len(data) != nbytes or f.read(1):
            raise CheckpointError(f"{where}: member {name!r} is truncated")
    # A bytearray: the array is writable without a copy, unless swapped.
    array = np.frombuffer(data, dtype=dtype, count=math.prod(shape))
    array = array.reshape(shape, order="F" if fortran else "C")
    return array if dtype.isnative else array.astype(dtype.newbyteorder("="))


def _read_chunks(f: Any, size: int) -> bytearray:
    """Up to ``size`` bytes of ``f``, read in pieces: memory follows the bytes
    that are there, not a size the archive declares."""
    data = bytearray()
    while len(data) < size:
        part = f.read(min(1 << 20, size - len(data)))
        if not part:
            break
        data += part
    return data


def _parse_meta(raw: np.ndarray, where: str) -> dict[str, Any]:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(
            f"{where}: {META!r} must be 1-D uint8 (UTF-8 JSON), got {raw.dtype} "
            f"of shape {raw.shape}"
        )
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{where} has malformed metadata: {err}") from None
    except RecursionError:
        raise CheckpointError(f"{where} has metadata nested too deeply") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{where} is not a {FORMAT!r} file")
    version = meta.get("version")
    if not isinstance(version, int) or not 1 <= version <= VERSION:
        raise CheckpointError(
            f"{where} has version {version!r}; this cnnumpy reads 1 to {VERSION}"
        )
    if _depth(meta) > MAX_DEPTH:
        raise CheckpointError(f"{where} has metadata nested too deeply")
    return meta


# Nesting deeper than this is refused: real checkpoints stay below 10 levels, and
# the walks over the tree recurse once per level.
MAX_DEPTH = 64


def _depth(tree: Any) -> int:
    """How deeply ``tree`` nests, without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        if isinstance(node, dict):
            stack += [(v, depth + 1) for v in node.values()]
        elif isinstance(node, list):
            stack += [(v, depth + 1) for v in node]
    return deepest


def _references(tree: Any, where: str) -> list[str]:
    """The array keys that ``tree`` refers to, each once."""
    found: dict[str, None] = {}
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if set(node) == {ARRAY}:
                key = node[ARRAY]
                if not isinstance(key, str):
                    raise CheckpointError(f"{where}: refers to a missing array {key!r}")
                found[key] = None
            else:
                stack += node.values()
        elif isinstance(node, list):
            stack += node
    return list(found)
