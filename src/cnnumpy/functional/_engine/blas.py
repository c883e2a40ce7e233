"""NumPy's BLAS threads: found through ctypes, held to one while the engine's run.

OpenBLAS's own threads busy-wait after every product, so a core that one of
the engine's parts needs would spin instead. Only OpenBLAS can be told:
with another BLAS (MKL, Accelerate) :func:`blas_controls` is None and the
engine leaves products to BLAS's own threads.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import threading
from collections.abc import Callable

import numpy as np

__all__ = ["blas_controls", "blas_single_thread"]


def _find_blas_controls() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """OpenBLAS's get/set thread-count functions, if NumPy's BLAS is OpenBLAS.

    NumPy's wheels bundle their OpenBLAS beside the package, so that one is
    tried first; then any OpenBLAS the process has loaded (Linux only), as for
    a NumPy built against the system's.
    """
    np_dir = os.path.dirname(os.path.dirname(np.__file__))
    paths = [
        path
        for pattern in ("numpy.libs/*openblas*", "numpy/.dylibs/*openblas*")
        for path in sorted(glob.glob(os.path.join(np_dir, pattern)))
    ]
    with contextlib.suppress(OSError), open("/proc/self/maps") as f:
        loaded = {
            line.split(None, 5)[-1].strip()
            for line in f
            if "openblas" in line.lower() and "/" in line
        }
        paths += sorted(loaded - set(paths))
    for path in paths:
        with contextlib.suppress(OSError):
            lib = ctypes.CDLL(path)
            for prefix, suffix in (
                ("scipy_openblas", "64_"),
                ("scipy_openblas", ""),
                ("openblas", "64_"),
                ("openblas", ""),
            ):
                get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                if get is not None and set_ is not None:
                    get.restype, set_.restype = ctypes.c_int, None
                    set_.argtypes = [ctypes.c_int]
                    return get, set_
    return None


_blas: list = []  # [controls or None], found on first use


def blas_controls() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """OpenBLAS's thread-count functions (looked up once), or None."""
    if not _blas:
        _blas.append(_find_blas_controls())
    return _blas[0]


_blas_lock = threading.Lock()
_blas_holders = 0  # blocks inside blas_single_thread, in all threads
_blas_before = 1  # the thread count to give back when the last one leaves


class _SingleThread:
    """The context manager :func:`blas_single_thread` returns.

    A class rather than a generator: the engine enters one around every
    product, and a generator-based context manager costs more per entry,
    which a small layer at batch 1 notices.
    """

    __slots__ = ()

    def __enter__(self) -> None:
        global _blas_holders, _blas_before
        controls = blas_controls()
        if controls is None:
            return
        with _blas_lock:
            if _blas_holders == 0:
                _blas_before = controls[0]()
                if _blas_before != 1:
                    controls[1](1)
            _blas_holders += 1

    def __exit__(self, *exc: object) -> None:
        global _blas_holders
        controls = blas_controls()
        if controls is None:
            return
        with _blas_lock:
            _blas_holders -= 1
            if _blas_holders == 0 and _blas_before != 1:
                controls[1](_blas_before)


_SINGLE_THREAD = _SingleThread()


def blas_single_thread() -> _SingleThread:
    """Hold NumPy's BLAS to one thread inside the block (no-op if unknown).

    Blocks nest and may overlap between threads: the first to enter saves
    BLAS's thread count, the last to leave gives it back.
    """
    return _SINGLE_THREAD


def _forget_holders() -> None:
    """After a fork the child has none of the parent's threads, nor their locks."""
    global _blas_lock, _blas_holders
    _blas_lock = threading.Lock()
    _blas_holders = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_holders)
