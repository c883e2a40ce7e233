"""What the ranks of tests/test_local_ranks.py run (spawned: module-level functions).

A module of tests/ without tests: pytest imports it (doctests) and runs nothing.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from cnnumpy.distributed import Communicator


def exchange(comm: Communicator, out: str) -> int:
    """Every collective, with arrays larger than a slot; rank 0 saves the results."""
    r, n = comm.rank, comm.size
    results = {}
    for dtype in (np.float64, np.float32, np.int32):
        # 1,001 values: not a whole number of 64-byte slots of any dtype.
        a = (np.arange(1001) * (r + 1) + r).astype(dtype)
        for op in ("sum", "max", "min"):
            b = a.copy()
            comm.allreduce(b, op)
            results[f"{np.dtype(dtype).name}/{op}"] = b
    # The same bits on every rank: rank 0 compares everyone's sum with its own.
    mine = np.random.default_rng(r).standard_normal(777)
    comm.allreduce(mine)
    every = comm.allgather_rows(mine[None], n)  # one row per rank
    results["same_bits"] = np.array(all(np.array_equal(row, mine) for row in every))
    results["text"] = np.array(comm.broadcast_text("from rank 0" if r == 0 else None))
    part = comm.part(11)
    rows = np.repeat(np.arange(part.start, part.stop)[:, None], 3, axis=1)
    results["rows"] = comm.allgather_rows(rows, 11)
    results["any"] = np.array(comm.any(r == n - 1, False))
    results["same"] = np.array([comm.same(5, 7), comm.same(5, r)])
    for _ in range(50):
        comm.barrier()
    if r == 0:
        np.savez(out, **results)
    return 0


def fail_on_last(comm: Communicator, how: str) -> int:
    """The last rank fails (``how``) while the others wait in a collective."""
    if comm.rank == comm.size - 1:
        time.sleep(0.2)
        if how == "raise":
            raise RuntimeError("rank failed on purpose")
        if how == "exit":
            return 3
        os.kill(os.getpid(), signal.SIGKILL)
    comm.barrier()
    return 0


def wait_for_root(comm: Communicator) -> int:
    """The other ranks wait in a collective; rank 0 (the test) never comes."""
    comm.barrier()
    return 0
