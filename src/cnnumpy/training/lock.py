"""One run per folder: a lock file, and the clean-up of dead runs' temporary files.

`run_lock` takes ``DIR/.lock`` atomically (``O_CREAT | O_EXCL``) and writes the
holder's pid and host into it; another process that finds it refuses the folder
with a `RunLockedError` naming the holder, unless the holder is a process of this
host that no longer exists: that lock is stale and is taken over. The lock is
released on every way out of the ``with`` block (an error, Ctrl-C included);
only a killed process leaves it behind, for the next run to find stale.

Files are written through temporaries named ``.NAME.PID....tmp`` (or
``.part``); `remove_stale_temporaries` deletes those of dead processes.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cnnumpy.validation import check_path

__all__ = ["LOCK_NAME", "RunLockedError", "remove_stale_temporaries", "run_lock"]

LOCK_NAME = ".lock"
# A lock file still empty after this long belongs to a process that died
# between creating it and writing its pid (an empty one is otherwise held).
_EMPTY_GRACE = 10.0
_EMPTY_RETRIES = 200  # times 10 ms: how long an empty lock file is re-read
_TEMPORARY = re.compile(r"^\..+\.(\d+)(\.[0-9a-f]{8})?\.(tmp|part)(\.\w+)?$")


class RunLockedError(FileExistsError):
    """Another process is running in the folder (it holds the lock file)."""


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError as err:
        return err.errno != errno.ESRCH
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited but is not yet reaped (Linux's /proc tells)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the command name, which is in parentheses.
    return stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] == "Z"


def _holder(path: Path) -> tuple[int, str] | None:
    """(pid, host) written in lock file ``path``, or None if unreadable."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    parts = text.split()
    if len(parts) >= 2 and parts[0].isdigit():
        return int(parts[0]), parts[1]
    return None


def _stale(path: Path, holder: tuple[int, str] | None) -> bool:
    if holder is None:
        try:
            return time.time() - path.stat().st_mtime > _EMPTY_GRACE
        except FileNotFoundError:
            return True
    pid, host = holder
    return host == socket.gethostname() and not _alive(pid)


@contextmanager
def run_lock(folder: Path) -> Iterator[Path]:
    """Hold ``folder/.lock`` for the ``with`` block; the folder must exist.

    Raises
    ------
    RunLockedError
        If a live process (or one of another host) holds the folder; the
        message names its pid and host.
    """
    path = Path(check_path(folder, "folder")) / LOCK_NAME
    mine = f"{os.getpid()} {socket.gethostname()}\n"
    for _ in range(100):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _holder(path)
            for _ in range(_EMPTY_RETRIES):  # created, its pid not written yet
                if holder is not None or not path.exists():
                    break
                time.sleep(0.01)
                holder = _holder(path)
            if not _stale(path, holder):
                who = (
                    f"process {holder[0]} on host {holder[1]}"
                    if holder is not None
                    else "a process that is starting"
                )
                raise RunLockedError(
                    f"run folder {str(folder)!r} is in use by {who} (lock file "
                    f"{path}); wait for that run to end, or use another folder"
                ) from None
            # Take the stale lock over: only one process renames it away.
            grave = path.with_name(f"{LOCK_NAME}.{os.getpid()}.stale")
            try:
                os.replace(path, grave)
            except FileNotFoundError:
                continue
            if _holder(grave) != holder:  # a live lock taken meanwhile: give back
                os.replace(grave, path)
            else:
                grave.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(mine)
        break
    else:
        raise RunLockedError(f"could not take the lock file {path}")
    try:
        yield path
    finally:
        if path.exists() and _holder(path) == (os.getpid(), socket.gethostname()):
            path.unlink(missing_ok=True)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files in ``folder`` left by dead processes."""
    removed = []
    for path in Path(check_path(folder, "folder")).iterdir():
        match = _TEMPORARY.match(path.name)
        if match and path.is_file() and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
