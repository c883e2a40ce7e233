"""How the engine's big array operations use the cores.

NumPy runs each element-wise op on one core, and its BLAS threads busy-wait
after every matrix product: a second core that the op could use is spinning
instead. So the engine does its own threading, behind the few calls the ops
make:

- :func:`split` and :func:`elementwise` cut an op's work into parts that run
  at once on resident worker threads (``threads``);
- :func:`matmul`, :func:`split_blas` and :func:`together` do the same for
  matrix products, with BLAS held to one thread meanwhile (``products``,
  ``blas``);
- :func:`scratch` hands an op a reusable buffer of its thread's own.

An op reads the same with one thread: every call then runs its work in the
caller. Splitting changes nothing in element-wise ops and copies. A product
split along its summed axis (a convolution's weight gradient) adds the parts'
partial sums: the result is reproducible for a given thread count and differs
in the last bits between thread counts, as a multi-threaded BLAS does. While
another process holds a core, or where an op is too small for its parts to
overlap on this machine, the gauges (``gauge``, one per op and size) keep the
parts in the caller, with the same results bit for bit.
"""

from cnnumpy.functional._engine.blas import blas_single_thread
from cnnumpy.functional._engine.products import gemm_parts, matmul, split_blas, together
from cnnumpy.functional._engine.threads import (
    elementwise,
    gauge_key,
    get_num_threads,
    ranges,
    run,
    scratch,
    set_num_threads,
    split,
)

__all__ = [
    "blas_single_thread",
    "elementwise",
    "gauge_key",
    "gemm_parts",
    "get_num_threads",
    "matmul",
    "ranges",
    "run",
    "scratch",
    "set_num_threads",
    "split",
    "split_blas",
    "together",
]
