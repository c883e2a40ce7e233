"""Which ops a layer runs: the im2col engine or the naive reference loops.

Both packages have the same function names and signatures
(``conv2d_forward``, ``max_pool2d_backward``, ...), so a layer calls either the
same way.
"""

from __future__ import annotations

from types import ModuleType

from cnnumpy import functional, reference
from cnnumpy.validation import check_choice

__all__ = ["IMPLS", "check_impl", "ops"]

IMPLS = ("im2col", "naive")
_OPS = {"im2col": functional, "naive": reference}


def check_impl(impl: object) -> str:
    """``'im2col'`` (the fast engine) or ``'naive'`` (the reference loops)."""
    return check_choice(impl, "impl", IMPLS)


def ops(impl: str) -> ModuleType:
    """The package holding the ops of ``impl``."""
    return _OPS[check_impl(impl)]
