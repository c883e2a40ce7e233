"""Matrix products cut across the engine's threads, without holding the GIL."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

from cnnumpy.functional._engine.blas import blas_controls, blas_single_thread
from cnnumpy.functional._engine.threads import (
    gauge_key,
    get_num_threads,
    parts,
    run,
    split,
)

__all__ = ["dot", "gemm_parts", "matmul", "split_blas", "together"]

# A matrix product does about this many multiply-adds in the time an
# element-wise op handles one element; it scales a product's size to elements.
GEMM_ELEMENT = 16


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
        key = gauge_key(tuple(getattr(f, "__code__", f) for f in fns), size)
        run([functools.partial(call, i) for i in range(n)], key=key)
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
