"""Split the engine's big array operations across the cores.

NumPy runs each element-wise op on one core, and its BLAS threads busy-wait
after every matrix product: a second core that the op could use is spinning
instead. So the engine does its own threading. An op that is worth it cuts its
work into ``get_num_threads()`` parts (channels, output rows, flat halves of an
array) and runs them at once: one part in the calling thread, the others in
resident worker threads. A big op is cut into more, smaller pieces, which the
threads take in turn as they come free (see :data:`PIECE`). NumPy releases
the GIL inside its loops and most BLAS calls (see :func:`dot` for the
exception), so the parts really run in parallel. While they run, BLAS is held
to one thread (when its controls can be found), so no BLAS thread spins on a
core that a part needs.

Two independent products, a convolution's input and weight gradients, run
side by side instead, one per thread, when there are two threads (see
:func:`together`): one hand-off instead of one per product.

Splitting changes nothing in element-wise ops and copies. A product split along
its summed axis (the convolution's weight gradient) adds the parts' partial
sums: the result is reproducible for a given thread count, and differs in the
last bits between thread counts, as a multi-threaded BLAS does.

The machine may be shared. When another process holds the second core, a
worker starts late, the caller waits for it, and the parts would have been
done sooner one after the other in the caller. So :func:`run` keeps score
(see :class:`_Gauge`): it compares the wall time of its recent hand-offs with
the CPU time their parts took, and while handing off does not pay it runs the
parts in the caller, trying the workers again now and then. The parts are the
same either way, so the results are too, bit for bit. Pieces are always handed
off: there a late worker only leaves the caller more pieces to take.

The workers start on first use and sleep on a queue between parts; a forked
child starts its own. Each thread keeps its own :func:`scratch` buffers.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import functools
import glob
import itertools
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np

__all__ = ["get_num_threads", "set_num_threads"]

# Below this many elements per part, handing work to another thread costs
# more than it saves (tens of microseconds per hand-off).
MIN_PART = 1 << 15
# An op big enough to make more than one piece of this many elements per
# thread is cut into such pieces (at most PIECES per thread), handed out as
# threads come free (see _in_pieces). Each piece costs hand-offs of the GIL
# between the threads, so smaller ops keep one part per thread. With pieces,
# LeNet-5's inference at batch 1,000 ran 3-9% faster (two A/B runs);
# batch-100 training, whose ops stay below this size, ran 12-28% slower when
# its ops were cut too.
PIECE = 1 << 20
PIECES = 8
# A matrix product does about this many multiply-adds in the time an
# element-wise op handles one element; it scales a product's size to elements.
GEMM_ELEMENT = 16
# The gauge (see _Gauge) judges hand-offs WINDOW at a time (a LeNet-5
# training step makes about 16). A window pays if its wall time is below PAYS
# times its parts' CPU time. Two parts that overlap fully take half their CPU
# time. Run in turn they would take their CPU time less what two busy threads
# slow each other down: nothing for LeNet's thin products (two threads: 1.95x
# the throughput of one), a third for compute-bound ones (two processes of
# 256x256 float32 products: 1.33x). So the break-even lies between 0.67x and
# 1x the CPU time; PAYS sits between, nearer the compute-bound end. After a
# window that does not pay, the next HOLD hand-offs run in the caller; HOLD
# doubles with each such window in a row, up to MAX_HOLD (a few seconds of
# training), and starts again at HOLD after a window that pays.
WINDOW = 32
PAYS = 0.75
HOLD = 256
MAX_HOLD = 4096
# The gauge needs a per-thread CPU clock finer than a part. Windows counts a
# thread's CPU time in scheduler ticks (about 15 ms), so there it stays off
# and parts are always handed off.
GAUGED = sys.platform != "win32"

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
    if isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer)):
        raise TypeError(f"`num_threads` must be an int, got {num_threads!r}")
    if num_threads < 1:
        raise ValueError(f"`num_threads` must be >= 1, got {num_threads}")
    _num_threads = int(num_threads)


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


class _Gauge:
    """Whether handing parts to the workers has paid off lately.

    Each hand-off reports its wall time (from handing out the parts to having
    every result) and the CPU time its parts took, in all threads. On free
    cores the parts overlap and the wall time is well below the CPU time; when
    another process holds a core, a worker runs late and the wall time grows
    past it. See WINDOW, PAYS, HOLD and MAX_HOLD.
    """

    def __init__(self) -> None:
        self.runs = 0  # hand-offs in the current window
        self.wall = 0.0
        self.cpu = 0.0
        self.hold = 0  # hand-offs still to run in the caller
        self.next_hold = HOLD

    def hand_off(self) -> bool:
        """Whether the next run should hand parts out (False: run them here)."""
        if self.hold:
            self.hold -= 1
            return False
        return True

    def record(self, wall: float, cpu: float) -> None:
        """Add a hand-off's wall and CPU seconds; judge the window when full."""
        self.runs += 1
        self.wall += wall
        self.cpu += cpu
        if self.runs < WINDOW:
            return
        if self.wall > PAYS * self.cpu:
            self.hold = self.next_hold
            self.next_hold = min(2 * self.next_hold, MAX_HOLD)
        else:
            self.next_hold = HOLD
        self.runs, self.wall, self.cpu = 0, 0.0, 0.0


_gauge = _Gauge()  # used under _lock


def _forget_workers() -> None:
    """After a fork the child has none of the parent's threads, nor their locks."""
    global _workers, _lock, _blas_lock, _blas_holders, _gauge
    _workers = []
    _lock = threading.Lock()
    _gauge = _Gauge()
    _blas_lock = threading.Lock()
    _blas_holders = 0


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


def run(tasks: Sequence[Callable[[], None]], balanced: bool = False) -> None:
    """Run ``tasks`` at once: the first here, the others on workers.

    Returns when all are done; re-raises the first exception of any. BLAS is
    held to one thread meanwhile. Another thread calling in while the workers
    are busy runs its tasks one after the other instead of waiting, and so
    does every caller while handing off has not been paying (see
    :class:`_Gauge`), unless the tasks are ``balanced``: they share their work
    out among themselves as they go, as :func:`_in_pieces` does, so a late
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
        if balanced or not GAUGED:
            _hand_off(tasks, gauged=False)
        elif _gauge.hand_off():
            _hand_off(tasks, gauged=True)
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


def _hand_off(tasks: Sequence[Callable[[], None]], gauged: bool) -> None:
    """Run the first of ``tasks`` here, the others on workers (told to the gauge)."""
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
        _gauge.record(time.perf_counter() - start, cpu + worker_cpu)
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
    fn: Callable[[int, int], None], n: int, size: int = 1, k: int | None = None
) -> None:
    """Call ``fn(a, b)`` on ranges covering ``range(n)``, in ``k`` threads at once.

    ``k`` defaults to :func:`parts` of ``n`` units of ``size`` elements. One
    range per thread, or for a big op more, smaller ones (see :data:`PIECE`):
    ``fn`` must not care which thread runs a range, nor how many it gets.
    """
    k = parts(n, size) if k is None else k
    pieces = min(n, k * PIECES, n * size // PIECE)
    if k > 1 and pieces > k:
        _in_pieces(fn, ranges(n, pieces), k)
    else:
        run([lambda a=a, b=b: fn(a, b) for a, b in ranges(n, k)])


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
    split(lambda a, b: fn(*(v[a:b] for v in views)), out.size, cost)
    return out


def dot(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-D arrays, written into ``out``, without holding the GIL.

    ``np.matmul`` keeps the GIL through the BLAS call when the output is small
    (a few hundred elements, such as a weight gradient), so two threads would
    take turns; ``np.dot`` always lets go of it, but copies an operand that is
    not one contiguous block and writes only into a C-ordered ``out``. So:
    ``np.dot`` where it copies nothing, ``np.matmul`` elsewhere.
    """
    if (
        out.flags.c_contiguous
        and (a.flags.c_contiguous or a.flags.f_contiguous)
        and (b.flags.c_contiguous or b.flags.f_contiguous)
    ):
        np.dot(a, b, out=out)
    else:
        np.matmul(a, b, out=out)
    return out


def gemm_parts(n: int, size: int, nested: bool = False) -> int:
    """:func:`parts` for a matrix product: 1 if BLAS's threads are not ours to hold.

    A product cut along its summed axis adds its parts' partial sums, whose
    rounding depends on the cut. ``nested`` cuts it the same inside a part
    (see :func:`together`) as outside, so its bits depend only on the thread
    count.
    """
    if blas_controls() is None:
        return 1
    return parts(n, size // GEMM_ELEMENT, nested)


def split_blas(
    fn: Callable[[int, int], None], n: int, size: int, nested: bool = False
) -> None:
    """:func:`split` for matrix products: ``n`` units of ``size`` multiply-adds.

    BLAS is held to one thread even when the work stays in one piece, so that
    its own threads never wake to spin beside the engine's. ``nested``: cut
    the same inside a part, as :func:`gemm_parts`.
    """
    with blas_single_thread():
        split(fn, n, size // GEMM_ELEMENT, k=gemm_parts(n, size, nested))


def together(fns: Sequence[Callable[[], object]], size: int) -> list:
    """Call independent ``fns`` and return their results, in order.

    Side by side, one per thread, when there are exactly as many threads as
    functions and the smallest is a product of at least ``size`` multiply-adds,
    big enough to be worth a part; each then runs as a part and does not split
    its own work again. Otherwise one after the other, here, each free to split
    its work across the threads. A layer's input and weight gradients are two
    such products: side by side they make one hand-off instead of one or more
    each, and neither waits on the other's thinner operations.
    """
    results: list = [None] * len(fns)

    def call(i: int) -> None:
        results[i] = fns[i]()

    n = len(fns)
    if n > 1 and n == get_num_threads() and gemm_parts(n, size) == n:
        run([functools.partial(call, i) for i in range(n)])
    else:
        for i in range(n):
            call(i)
    return results


def matmul(a: np.ndarray, b: np.ndarray, nested: bool = False) -> np.ndarray:
    """``a @ b`` for 2-D arrays, the rows of ``a`` (or columns of ``b``) split.

    Each thread's product keeps the whole summed axis, so the result depends
    on the thread count only as far as BLAS's kernels round a block of rows
    differently from the whole (in the last bits, if at all). ``nested``: cut
    the same inside a part, as :func:`gemm_parts`. Rows are cut when there are
    enough of them: a block of rows of a C-ordered matrix is contiguous, so
    nothing is copied.
    """
    (M, K), N = a.shape, b.shape[1]
    out = np.empty((M, N), dtype=np.result_type(a, b))
    if M >= 4 * get_num_threads() or M >= N:
        split_blas(lambda r0, r1: dot(a[r0:r1], b, out[r0:r1]), M, K * N, nested)
    else:
        split_blas(lambda c0, c1: dot(a, b[:, c0:c1], out[:, c0:c1]), N, K * M, nested)
    return out


# --- BLAS threads ------------------------------------------------------------------


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


@contextlib.contextmanager
def blas_single_thread() -> Iterator[None]:
    """Hold NumPy's BLAS to one thread inside the block (no-op if unknown).

    Blocks nest and may overlap between threads: the first to enter saves
    BLAS's thread count, the last to leave gives it back.
    """
    global _blas_holders, _blas_before
    controls = blas_controls()
    if controls is None:
        yield
        return
    get, set_ = controls
    with _blas_lock:
        if _blas_holders == 0:
            _blas_before = get()
            if _blas_before != 1:
                set_(1)
        _blas_holders += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_holders -= 1
            if _blas_holders == 0 and _blas_before != 1:
                set_(_blas_before)
