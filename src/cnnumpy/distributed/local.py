"""Ranks on one machine without MPI: ``cnnumpy train --processes N``.

The second core of a machine is better used by a second *process* than by a
second thread. Threads of one Python process share its GIL: between two NumPy
calls a thread must take the GIL back, and when the other thread holds it, it
sleeps until woken, which is slow on a virtual machine (``benchmarks/threads.py``
measures what it costs). Processes share nothing of the kind:
each rank trains on its part of every batch, as under ``mpiexec``, and the
ranks meet only to add their gradients, once a step.

`start` spawns N-1 processes (``multiprocessing``'s "spawn": fresh
interpreters, safe beside threads) that each call a function with their own
`Communicator`; the caller is rank 0. The ranks exchange arrays through one
block of shared memory, ``SLOT`` bytes per rank, in chunks, and meet at
barriers built on one process-shared lock. A rank that waits first checks for
a while without sleeping (a hand-over then costs microseconds), then in short
naps, and checks that the other ranks are still alive: a rank that dies or
aborts ends the others, as ``MPI_Abort`` does. Sums are made in rank order,
the same on every rank, so every rank holds the same bits.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import traceback
from collections.abc import Callable
from multiprocessing import shared_memory
from typing import Any

import numpy as np

from cnnumpy.validation import check_bool, check_callable, check_int

__all__ = ["LocalGroup", "RankLost", "finish", "start"]

# Bytes each rank has in the exchange area; larger arrays go in chunks.
SLOT = 1 << 22
# A waiting rank checks without sleeping for SPIN seconds (the ranks of a
# training step arrive within that of each other), then naps between checks,
# from NAP seconds doubling up to MAX_NAP (a long wait, such as rank 0 writing
# a checkpoint, costs next to no CPU), and looks whether the others live every
# ALIVE seconds. A spinning rank yields its CPU at each check, for a rank it
# may share it with.
SPIN = 2e-3
NAP = 5e-5
MAX_NAP = 1e-3
ALIVE = 0.05
# The header: a count and a generation for the barrier, an abort code (-1:
# none); each on its own cache line.
_COUNT, _GEN, _ABORT = 0, 8, 16
_HEADER = 24  # int64s

_OPS = {"sum": np.add, "max": np.maximum, "min": np.minimum}
_yield = getattr(os, "sched_yield", lambda: time.sleep(0))


class RankLost(RuntimeError):
    """Another rank ended without finishing (it failed, or was killed)."""


class LocalGroup:
    """One rank's end of a group of processes on this machine.

    Made by `start`, which passes each rank its end; not built by hand. Rank
    0's end (``name`` None) makes the shared memory and holds the other
    ranks' processes (``peers``).
    """

    def __init__(
        self,
        rank: int,
        size: int,
        name: str | None,
        lock: Any,
        slot: int = SLOT,
        peers: list[Any] | None = None,
    ) -> None:
        self.rank, self.size, self.slot = rank, size, slot
        self._lock = lock
        self._peers = peers
        if name is None:
            nbytes = _HEADER * 8 + size * slot
            self._shm = shared_memory.SharedMemory(create=True, size=nbytes)
        else:
            self._shm = shared_memory.SharedMemory(name=name)
        buf = self._shm.buf
        self._header = np.ndarray((_HEADER,), np.int64, buf)
        self._slots = np.ndarray((size, slot), np.uint8, buf, _HEADER * 8)
        if name is None:
            self._header[:] = 0
            self._header[_ABORT] = -1

    # What a rank needs to attach; sent to the spawned processes.
    def handle(self, rank: int) -> tuple[int, int, str, Any, int]:
        return rank, self.size, self._shm.name, self._lock, self.slot

    def close(self) -> None:
        """Let go of the shared memory (rank 0 also removes it)."""
        self._header = self._slots = None  # type: ignore[assignment]
        self._shm.close()
        if self._peers is not None:
            self._shm.unlink()
        self._shm = None  # type: ignore[assignment]

    # -- meeting ----------------------------------------------------------

    def barrier(self) -> None:
        """Return when every rank has called `barrier`."""
        h = self._header
        self._acquire()
        try:
            gen = int(h[_GEN])
            h[_COUNT] += 1
            if h[_COUNT] == self.size:
                h[_COUNT] = 0
                h[_GEN] = gen + 1
                return
        finally:
            self._lock.release()
        self._wait(gen)

    def _acquire(self) -> None:
        """Take the lock without sleeping while another rank holds it briefly."""
        for _ in range(1000):
            if self._lock.acquire(False):
                return
            _yield()
        self._lock.acquire()

    def _wait(self, gen: int) -> None:
        h = self._header
        start = checked = time.monotonic()
        spins, nap = 0, NAP
        while True:
            if h[_GEN] != gen or h[_ABORT] >= 0:
                # Seen without the lock; taken to order memory: what a rank
                # wrote before it arrived is seen once the generation moved.
                self._acquire()
                moved, code = int(h[_GEN]) != gen, int(h[_ABORT])
                self._lock.release()
                if moved:
                    return
                if code >= 0:
                    self._exit(code)
            spins += 1
            if spins < 64:
                continue
            if time.monotonic() - start < SPIN:
                _yield()
                continue
            time.sleep(nap)
            nap = min(2 * nap, MAX_NAP)
            if time.monotonic() - checked > ALIVE:
                checked = time.monotonic()
                self._check_alive()

    def _check_alive(self) -> None:
        if self._peers is None:  # a spawned rank: is rank 0 there?
            parent = multiprocessing.parent_process()
            if parent is not None and not parent.is_alive():
                self._exit(1)
            return
        for i, proc in enumerate(self._peers, start=1):
            if not proc.is_alive():
                self.abort(1)
                raise RankLost(
                    f"rank {i} of {self.size} ended (exit status {proc.exitcode}) "
                    f"while rank 0 waited for it"
                )

    # -- collectives ------------------------------------------------------

    def allreduce(self, array: np.ndarray, op: str) -> None:
        """``array`` (C-contiguous) becomes its element-wise ``op`` over the ranks."""
        flat = array.reshape(-1).view(np.uint8)
        item = array.itemsize
        step = self.slot // item * item
        combine = _OPS[op]
        for lo in range(0, flat.size, step):
            hi = min(lo + step, flat.size)
            n = hi - lo
            self._slots[self.rank, :n] = flat[lo:hi]
            self.barrier()
            parts = [self._slots[r, :n].view(array.dtype) for r in range(self.size)]
            out = flat[lo:hi].view(array.dtype)
            out[...] = parts[0]
            for part in parts[1:]:  # rank order: the same bits everywhere
                combine(out, part, out=out)
            self.barrier()  # read by all before the slots are written again

    def broadcast(self, array: np.ndarray, root: int = 0) -> None:
        """Rank ``root``'s ``array`` (C-contiguous) on every rank."""
        flat = array.reshape(-1).view(np.uint8)
        for lo in range(0, max(flat.size, 1), self.slot):
            hi = min(lo + self.slot, flat.size)
            if self.rank == root:
                self._slots[root, : hi - lo] = flat[lo:hi]
            self.barrier()
            if self.rank != root:
                flat[lo:hi] = self._slots[root, : hi - lo]
            self.barrier()

    def allgather(self, part: np.ndarray, out: np.ndarray, counts: list[int]) -> None:
        """Each rank's ``part`` (``counts[r]`` elements) into ``out``, rank order."""
        mine = part.reshape(-1).view(np.uint8)
        whole = out.reshape(-1).view(np.uint8)
        sizes = [c * out.itemsize for c in counts]
        starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        for lo in range(0, max(max(sizes), 1), self.slot):
            hi = lo + self.slot
            n = max(0, min(hi, mine.size) - lo)
            self._slots[self.rank, :n] = mine[lo : lo + n]
            self.barrier()
            for r, size in enumerate(sizes):
                m = max(0, min(hi, size) - lo)
                whole[starts[r] + lo : starts[r] + lo + m] = self._slots[r, :m]
            self.barrier()

    # -- ending -----------------------------------------------------------

    def abort(self, code: int) -> None:
        """Tell every rank to end with ``code`` (they do at their next wait)."""
        with self._lock:
            if self._header[_ABORT] < 0:
                self._header[_ABORT] = code

    def _exit(self, code: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        if self._peers is None:  # a spawned rank ends at once, as MPI_Abort does
            os._exit(code)
        raise SystemExit(code)


def _spawned(
    fn: Callable[[Any], int], handle: tuple, stdout_quiet: bool
) -> None:  # pragma: no cover - runs in the spawned processes
    """A spawned rank: attach, install its communicator, run ``fn(comm)``."""
    from cnnumpy.distributed.comm import Communicator, _install

    group = LocalGroup(*handle)
    comm = Communicator._local(group)
    _install(comm)
    if stdout_quiet:
        sys.stdout = open(os.devnull, "w")  # for the rest of the process
    code = 1
    try:
        code = int(fn(comm) or 0)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:  # shown by this rank; the others end too
        traceback.print_exc()
        code = 1
    finally:
        if code:
            group.abort(code)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def start(
    n: int, fn: Callable[[Any], int], *, quiet_others: bool = True, slot: int = SLOT
) -> Any:
    """Run ``fn(comm)`` on ``n`` ranks of this machine; return rank 0's `Communicator`.

    Spawns ranks 1..n-1, each calling ``fn`` (a picklable, module-level
    function) with its own `Communicator`, then returns rank 0's: the caller
    runs ``fn`` itself as rank 0 and then calls `finish`. Ranks other than 0
    print nothing on stdout when ``quiet_others`` (their errors still show).
    ``slot``: bytes of shared memory per rank for the exchanges (larger
    arrays go through in chunks of it).
    """
    from cnnumpy.distributed.comm import Communicator

    n = check_int(n, "n", minimum=1)
    check_callable(fn, "fn")
    check_bool(quiet_others, "quiet_others")
    slot = check_int(slot, "slot", minimum=8)
    ctx = multiprocessing.get_context("spawn")
    peers: list[Any] = []
    group = LocalGroup(0, n, None, ctx.Lock(), slot, peers)
    try:
        for rank in range(1, n):
            proc = ctx.Process(
                target=_spawned,
                args=(fn, group.handle(rank), quiet_others),
                name=f"cnnumpy-rank-{rank}",
                daemon=True,
            )
            proc.start()
            peers.append(proc)
    except BaseException:
        _end(group, 1)
        raise
    return Communicator._local(group)


def finish(comm: Any, code: int) -> int:
    """Rank 0 after its ``fn``: wait for the other ranks; the run's exit status.

    A failing rank 0 (``code`` != 0) ends the others; otherwise the first
    non-zero status of another rank, if any, is the run's.
    """
    group = getattr(comm, "_group", None)
    if not isinstance(group, LocalGroup) or group.rank != 0 or group._shm is None:
        raise TypeError(
            f"`comm` must be the Communicator that start() returned, got {comm!r}"
        )
    code = check_int(code, "code", minimum=0, maximum=255)
    return _end(group, code)


def _end(group: LocalGroup, code: int) -> int:
    if code:
        group.abort(code)
    peers = group._peers or []
    deadline = time.monotonic() + (5.0 if code else 60.0)
    for proc in peers:
        proc.join(max(0.0, deadline - time.monotonic()))
    for proc in peers:
        if proc.is_alive():  # stuck: end it
            group.abort(code or 1)
            proc.join(2.0)
            if proc.is_alive():
                proc.terminate()
                proc.join()
    status = code
    for proc in peers:
        if not status and proc.exitcode:
            status = proc.exitcode if proc.exitcode > 0 else 1
    group.close()
    return status
