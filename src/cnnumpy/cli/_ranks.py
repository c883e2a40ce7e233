"""The command line under ``mpiexec``: errors shown once, and no rank left waiting.

A rank that fails while the others wait for it in a collective would leave
them waiting forever, so under an MPI launcher a failure ends every rank
(``MPI_Abort``) after showing its message. Before it does, a rank other than 0
waits a moment: when rank 0 fails too (the same bad flag on every rank), its
abort ends this rank before the message is repeated.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from typing import Any

from cnnumpy.distributed import environment_rank, launched_by_mpi, world

__all__ = ["fail", "parse_once"]

# Seconds a rank other than 0 waits before showing its error and aborting:
# long enough for rank 0, when it fails too, to abort it first on a busy host.
GRACE = 3.0
# Seconds a failing rank waits after printing, before aborting (see `fail`).
FORWARD = 0.5


def fail(code: int, text: str) -> int:
    """Show ``text`` on stderr and return ``code``; under mpiexec, end all ranks."""
    if not launched_by_mpi():
        comm = world()  # this process alone, or a rank of --processes
        if not comm.is_root:  # the caller's rank ends the others as it returns
            text = f"{text} (rank {comm.rank})"
        print(text, file=sys.stderr)
        return code
    rank = environment_rank()
    try:
        comm = world()  # MPI starts on every rank alike: abort needs it started
    except ImportError:
        if rank == 0:  # it says how to install mpi4py; nothing waits for us
            print(text, file=sys.stderr)
        return code
    if rank != 0:
        time.sleep(GRACE)
        text = f"{text} (rank {rank})"
    print(text, file=sys.stderr, flush=True)
    # mpiexec forwards each rank's output through its own process; an abort
    # straight after the print can end that process before it has passed the
    # message on. A moment's wait lets it through.
    time.sleep(FORWARD)
    comm.abort(code)
    return code


@contextmanager
def _quiet(errors: io.StringIO, rank: int) -> Iterator[None]:
    """Keep stderr for `fail`, and the output of ranks other than 0."""
    with redirect_stderr(errors):
        if rank == 0:
            yield
        else:
            with redirect_stdout(io.StringIO()):
                yield


def parse_once(parse: Callable[[], Any]) -> Any:
    """``parse()``, whose errors end all ranks (shown once) under mpiexec.

    A bad flag fails on every rank alike, but a missing ``--data`` folder
    may fail on one machine only, while the other ranks go on to wait for it.

    Raises
    ------
    SystemExit
        With argparse's status, after showing the error (``--help`` on rank
        0 alone).
    """
    if not launched_by_mpi():
        return parse()
    errors = io.StringIO()
    try:
        with _quiet(errors, environment_rank()):
            return parse()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 2
        if code != 0:
            code = fail(code, errors.getvalue().rstrip())
        raise SystemExit(code) from None
