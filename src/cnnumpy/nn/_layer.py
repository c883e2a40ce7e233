"""Shared argument checks for layer constructors."""

from __future__ import annotations

from types import ModuleType

import numpy as np

from cnnumpy import functional, reference

IMPLS = {"im2col": functional, "naive": reference}


def positive_int(value: object, name: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"`{name}` must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"`{name}` must be >= 1, got {value}")
    return int(value)


def check_impl(impl: object) -> str:
    """``'im2col'`` (the fast engine) or ``'naive'`` (the reference loops)."""
    if impl not in IMPLS:
        raise ValueError(f"`impl` must be one of {sorted(IMPLS)}, got {impl!r}")
    return impl  # type: ignore[return-value]


def ops(impl: str) -> ModuleType:
    """The module holding the ops of ``impl``: same function names and signatures."""
    return IMPLS[check_impl(impl)]
