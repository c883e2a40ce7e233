"""Atomic writes: a temporary file beside the destination, renamed into place.

``os.replace`` is atomic on one file system, so a reader sees either the old
file or the complete new one, never a partial write. The temporary file lives
in the destination's folder so that the rename never crosses file systems.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["temporary_sibling"]

# O_BINARY exists (and matters) only on Windows.
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


@contextmanager
def temporary_sibling(dest: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """An open temporary file beside ``dest``, deleted on exit unless renamed.

    The caller writes, closes the file and ``os.replace``-s it onto ``dest``
    to keep it; on any exit otherwise (an error, a KeyboardInterrupt, a failed
    check) the temporary file is removed.
    """
    while True:
        # A hidden name, so folder scans for data files never pick it up; the
        # pid lets a later run tell a dead process's leftovers.
        token = f"{os.getpid()}.{secrets.token_hex(4)}"
        tmp = dest.with_name(f".{dest.name}.{token}.part")
        try:
            # 0o666 minus the umask, like an ordinary file (mkstemp would give 0o600).
            fd = os.open(tmp, _FLAGS, 0o666)
        except FileExistsError:
            continue
        break
    try:
        with os.fdopen(fd, "wb") as f:
            yield f, tmp
    finally:
        tmp.unlink(missing_ok=True)
