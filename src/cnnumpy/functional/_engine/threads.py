"""Worker threads, and the calls that cut an op's work into parts for them.

An op that is worth it cuts its work into ``get_num_threads()`` parts
(channels, output rows, flat slices of an array) and runs them at once: one
part in the calling thread, the others in resident worker threads, which
start on first use and sleep on a queue between parts (a forked child starts
its own). NumPy releases the GIL inside its loops, so the parts really run in
parallel; while they run, BLAS is held to one thread (see ``blas``). A big op
is cut into more, smaller pieces, which the threads take in turn as they come
free (see :data:`PIECE`). The gauge (see ``gauge``) keeps the parts in the
caller while handing them off does not pay.
"""

from __future__ import annotations

import contextvars
import functools
import itertools
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from cnnumpy.functional._engine import gauge
from cnnumpy.functional._engine.blas import blas_single_thread
from cnnumpy.validation import check_int

__all__ = [
    "elementwise",
    "get_num_threads",
    "parts",
    "ranges",
    "run",
    "scratch",
    "set_num_threads",
    "split",
]

# Below this many elements per part, handing work to another thread costs
# more than it saves (tens of microseconds per hand-off).
MIN_PART = 1 << 15
# An op big enough to make more than one piece of this many elements per
# thread is cut into such pieces (at most PIECES per thread), handed out as
# threads come free (see _in_pieces), so that a thread that starts late or
# runs slow does not leave the others waiting. Each piece costs hand-offs of
# the GIL between the threads, which only a big op (inference at a large
# batch) earns back; smaller ops, such as those of a training step at a
# usual batch size, keep one part per thread.
# Chosen by A/B runs; see benchmarks/results-lenet.md#engine-constants
PIECE = 1 << 20
PIECES = 8

_lock = threading.Lock()  # held by the thread handing out parts
_state = threading.local()  # .in_part: this thread is running a part
_num_threads: int | None = None
_workers: list[_Worker] = []


def _default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def get_num_threads() -> int:
    """Number of threads the engine's ops use (default: the usable CPUs)."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _default_threads()
    return _num_threads


def set_num_threads(num_threads: int) -> None:
    """Use ``num_threads`` threads in the engine's ops, as ``torch.set_num_threads``.

    Parameters
    ----------
    num_threads : int
        At least 1. With 1, every op runs in the calling thread.

    Raises
    ------
    TypeError, ValueError
        If ``num_threads`` is not an int >= 1.
    """
    global _num_threads
    _num_threads = check_int(num_threads, "num_threads", minimum=1)


class _Worker:
    """A daemon thread that runs the parts handed to it, one at a time."""

    def __init__(self) -> None:
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()
        self.done: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._loop, daemon=True, name="cnnumpy").start()

    def _loop(self) -> None:
        _state.in_part = True  # a part never splits again
        while True:
            task = self.tasks.get()
            start = time.thread_time()
            error: BaseException | None = None
            try:
                task()
            except BaseException as e:  # handed back to the caller
                error = e
            self.done.put((error, time.thread_time() - start))


_gauges = gauge.Gauges()  # used under _lock


def _forget_workers() -> None:
    """After a fork the child has none of the parent's threads, nor their locks."""
    global _workers, _lock, _gauges
    _workers = []
    _lock = threading.Lock()
    _gauges = gauge.Gauges()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)


def scratch(size: int, dtype: np.dtype, slot: str) -> np.ndarray:
    """A 1-D buffer of ``size`` elements, this thread's own, reused between calls.

    For blocks that an op fills and uses before it returns (never handed out).
    A fresh multi-megabyte array costs the kernel's page faults each time it is
    made; a kept one does not. ``slot`` names the buffer, so one op can hold
    several at once. A thread keeps the largest of each slot it has needed.
    """
    buffers = _state.__dict__.setdefault("scratch", {})
    key = (slot, np.dtype(dtype))
    buf = buffers.get(key)
    if buf is None or buf.size < size:
        buf = buffers[key] = np.empty(size, dtype=dtype)
    return buf[:size]


def parts(n: int, size: int = 1, nested: bool = False) -> int:
    """How many parts to cut ``n`` units of ``size`` elements each into.

    Inside a part, 1, unless ``nested``: then as many as outside, to be run
    there in turn (see :func:`gemm_parts`).
    """
    if getattr(_state, "in_part", False) and not nested:
        return 1
    return max(1, min(get_num_threads(), n, n * size // MIN_PART))


def ranges(n: int, k: int) -> list[tuple[int, int]]:
    """``k`` contiguous ranges covering ``range(n)``, sizes differing by at most 1."""
    bounds = [n * i // k for i in range(k + 1)]
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def run(
    tasks: Sequence[Callable[[], None]], balanced: bool = False, key: object = None
) -> None:
    """Run ``tasks`` at once: the first here, the others on workers.

    Returns when all are done; re-raises the first exception of any. BLAS is
    held to one thread meanwhile. Another thread calling in while the workers
    are busy runs its tasks one after the other instead of waiting, and so
    does every caller while handing off tasks of this ``key`` (the kind of
    work: see :func:`gauge_key`) has not been paying (see
    :class:`gauge.Gauges`), unless the tasks are ``balanced``: they share their
    work out among themselves as they go, as :func:`_in_pieces` does, so a late
    worker costs little and the gauge is neither asked nor told.
    """
    if not tasks:  # an empty array: nothing to do
        return
    if len(tasks) == 1:
        tasks[0]()
        return
    if not _lock.acquire(blocking=False):
        _in_turn(tasks)
        return
    try:
        if balanced or not gauge.GAUGED:
            _hand_off(tasks)
        elif _gauges.hand_off(key):
            _hand_off(tasks, key, gauged=True)
        else:
            _in_turn(tasks)
    finally:
        _lock.release()


def _in_turn(tasks: Sequence[Callable[[], None]]) -> None:
    """Run ``tasks`` here, one after the other, as parts (no task splits again)."""
    was_in_part = getattr(_state, "in_part", False)
    with blas_single_thread():
        _state.in_part = True
        try:
            for task in tasks:
                task()
        finally:
            _state.in_part = was_in_part


def _hand_off(
    tasks: Sequence[Callable[[], None]], key: object = None, gauged: bool = False
) -> None:
    """Run the first of ``tasks`` here, the others on workers (told to the gauge
    of ``key`` if ``gauged``)."""
    while len(_workers) < len(tasks) - 1:
        _workers.append(_Worker())
    with blas_single_thread():
        start, cpu_start = time.perf_counter(), time.thread_time()
        for worker, task in zip(_workers, tasks[1:]):
            # In the caller's context, so np.errstate and the like hold there.
            worker.tasks.put(functools.partial(contextvars.copy_context().run, task))
        error: BaseException | None = None
        _state.in_part = True
        try:
            tasks[0]()
        except BaseException as e:  # Ctrl-C included: the workers finish first
            error = e
        finally:
            _state.in_part = False
            cpu = time.thread_time() - cpu_start
            error, worker_cpu = _wait(_workers[: len(tasks) - 1], error)
    if gauged:
        _gauges.record(key, time.perf_counter() - start, cpu + worker_cpu)
    if error is not None:
        raise error


def _wait(
    workers: list[_Worker], error: BaseException | None
) -> tuple[BaseException | None, float]:
    """Collect every worker's result and CPU time; the first exception seen wins.

    A Ctrl-C while waiting is held back until all have answered: a result left
    in a queue would be taken for the next call's.
    """
    cpu = 0.0
    for worker in workers:
        while True:
            try:
                result, seconds = worker.done.get()
                break
            except BaseException as e:  # interrupted while waiting: wait on
                error = error or e
        error = error or result
        cpu += seconds
    return error, cpu


def split(
    fn: Callable[[int, int], None],
    n: int,
    size: int = 1,
    k: int | None = None,
    key: object = None,
) -> None:
    """Call ``fn(a, b)`` on ranges covering ``range(n)``, in ``k`` threads at once.

    ``k`` defaults to :func:`parts` of ``n`` units of ``size`` elements. One
    range per thread, or for a big op more, smaller ones (see :data:`PIECE`):
    ``fn`` must not care which thread runs a range, nor how many it gets.
    ``key`` names the op for its gauge (default: ``fn``; see :func:`gauge_key`).
    """
    k = parts(n, size) if k is None else k
    if k == 1:  # the common case of a small op: no ranges, no hand-off
        if n > 0:
            fn(0, n)
        return
    pieces = min(n, k * PIECES, n * size // PIECE)
    if k > 1 and pieces > k:
        _in_pieces(fn, ranges(n, pieces), k)
    else:
        tasks = [lambda a=a, b=b: fn(a, b) for a, b in ranges(n, k)]
        run(tasks, key=gauge_key(fn if key is None else key, n * size))


def gauge_key(op: object, size: int) -> tuple[object, int]:
    """The kind of a hand-off, for its gauge: the op and its size within 2x.

    ``op`` is a function (its code stands for every call of that op, whatever
    closure it carries) or anything hashable that names the op.
    """
    return getattr(op, "__code__", op), max(0, size).bit_length()


def _in_pieces(
    fn: Callable[[int, int], None], pieces: list[tuple[int, int]], k: int
) -> None:
    """Call ``fn`` on each of ``pieces``, handed out in order as threads come free.

    Equal parts finish together only if the threads start together and run
    at the same speed; here a worker starts tens of microseconds after the
    caller, and a core shared with another process runs slower. So a big op
    is cut into more pieces than threads and each thread takes the next piece
    when it is done with one. After an error no piece is handed out any more.
    A late worker then only leaves the caller more pieces to do, so the parts
    are handed off even when the gauge would keep equal parts in the caller.
    """
    todo = iter(pieces)
    lock = threading.Lock()
    failed: list[bool] = []

    def drain() -> None:
        while True:
            with lock:
                piece = None if failed else next(todo, None)
            if piece is None:
                return
            try:
                fn(*piece)
            except BaseException:
                failed.append(True)
                raise

    run([drain] * k, balanced=True)


def flat(a: np.ndarray) -> np.ndarray | None:
    """A 1-D view of all of ``a`` in memory order, or None if there is none."""
    v = a.ravel(order="K")
    # ravel returns either a view or a fresh copy; only a view overlaps ``a``.
    return v if a.size == 0 or np.may_share_memory(v, a) else None


def elementwise(
    fn: Callable[..., None], out: np.ndarray, *inputs: np.ndarray, cost: int = 1
) -> np.ndarray:
    """``fn(out, *inputs)`` for an element-wise ``fn`` that writes into ``out``.

    Runs on flat slices in parallel when all arrays share ``out``'s shape and
    memory order (as the engine's arrays do); otherwise in one call. ``cost``
    is the number of passes ``fn`` makes, to judge whether splitting pays.
    """
    views = [flat(a) for a in (out, *inputs)]
    same = all(a.shape == out.shape and a.strides == out.strides for a in inputs)
    if not same or any(v is None for v in views):
        fn(out, *inputs)
        return out
    split(lambda a, b: fn(*(v[a:b] for v in views)), out.size, cost, key=fn)
    return out
