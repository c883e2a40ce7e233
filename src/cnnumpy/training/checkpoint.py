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
import os
import zipfile
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

    Returns
    -------
    dict
        The tree as saved, arrays in place, plus ``format`` and ``version``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    CheckpointError
        The file is not a cnnumpy checkpoint: not an npz archive, truncated,
        holds pickled objects, lacks the metadata or has a newer version.
    """
    path = Path(check_path(path, "path"))
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    where = f"checkpoint {str(path)!r}"
    try:
        # From memory: np.load leaks its file handle when the archive is broken.
        with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except ValueError as err:  # pickled members, or an unreadable .npy header
        raise CheckpointError(f"{where} cannot be read safely: {err}") from None
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise CheckpointError(
            f"{where} is not a complete .npz archive (truncated or not a "
            f"checkpoint): {err}"
        ) from None
    for name, array in arrays.items():
        if not isinstance(array, np.ndarray):
            raise CheckpointError(f"{where}: member {name!r} is not a .npy array")
    if META not in arrays:
        raise CheckpointError(
            f"{where} has no {META!r} entry: not a cnnumpy checkpoint"
        )
    try:
        meta = json.loads(arrays.pop(META).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{where} has malformed metadata: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{where} is not a {FORMAT!r} file")
    version = meta.get("version")
    if not isinstance(version, int) or not 1 <= version <= VERSION:
        raise CheckpointError(
            f"{where} has version {version!r}; this cnnumpy reads 1 to {VERSION}"
        )
    for name, array in arrays.items():
        if array.dtype.kind not in "biuf":
            raise CheckpointError(f"{where}: array {name!r} has dtype {array.dtype}")
    return _unpack(meta, arrays, where)
