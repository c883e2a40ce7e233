"""PyTorch's default initialisation, drawn from a caller's `numpy.random.Generator`."""

from __future__ import annotations

import math

import numpy as np

from cnnumpy.validation import check_instance

__all__ = ["default_uniform", "resolve_rng"]


def resolve_rng(rng: np.random.Generator | None) -> np.random.Generator:
    """The caller's generator, or a freshly seeded one; never the global RNG."""
    if rng is None:
        return np.random.default_rng()
    return check_instance(
        rng, "rng", np.random.Generator, "a numpy.random.Generator or None"
    )


def default_uniform(
    shape: tuple[int, ...], fan_in: int, rng: np.random.Generator, dtype: np.dtype
) -> np.ndarray:
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``: PyTorch's default for weights and biases.

    PyTorch initialises weights with ``kaiming_uniform_(a=sqrt(5))``, whose bound
    ``gain * sqrt(3 / fan_in)`` with ``gain = sqrt(2 / (1 + a**2))`` is exactly
    ``1 / sqrt(fan_in)``, the same bound it uses for biases.
    """
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return rng.uniform(-bound, bound, size=shape).astype(dtype)
