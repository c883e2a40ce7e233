"""Inverted dropout: zero elements with probability p, scale the rest by 1/(1-p)."""

from __future__ import annotations

import numpy as np

from cnnumpy.validation import check_grad

__all__ = ["dropout", "dropout_backward", "dropout_forward"]


def dropout_forward(
    x: np.ndarray,
    p: float = 0.5,
    training: bool = True,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Zero elements with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Parameters
    ----------
    x : ndarray
    p : float in [0, 1]
    training : bool
        When False (or ``p == 0``) the input passes through unchanged.
    rng : numpy.random.Generator, optional
        Source of the mask; a fresh ``default_rng()`` if None (never the global RNG).

    Returns
    -------
    y : ndarray
    scale : ndarray or None
        The per-element factor (0 or ``1/(1-p)``) for the backward pass; None when
        nothing was dropped.

    Raises
    ------
    ValueError
        ``p`` outside [0, 1].
    """
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError(f"`x` must be a floating numpy.ndarray, got {type(x).__name__}")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ValueError(f"`p` must be a probability in [0, 1], got {p!r}")
    if not training or p == 0:
        return x, None
    if rng is None:
        rng = np.random.default_rng()
    if p == 1:
        scale = np.zeros_like(x)
    else:
        keep = rng.random(x.shape, dtype=np.float32) >= p
        scale = keep.astype(x.dtype) * x.dtype.type(1 / (1 - p))
    return x * scale, scale


def dropout_backward(dy: np.ndarray, scale: np.ndarray | None) -> np.ndarray:
    """``dy * scale``: dropped elements get no gradient, survivors the same factor."""
    if scale is None:
        return dy
    if not isinstance(scale, np.ndarray):
        raise TypeError(
            "`scale` must be the array dropout_forward returned, "
            f"got {type(scale).__name__}"
        )
    check_grad(dy, scale.shape)
    return dy * scale


def dropout(
    x: np.ndarray,
    p: float = 0.5,
    training: bool = True,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Dropout as ``torch.nn.functional.dropout``, with the mask drawn from ``rng``."""
    return dropout_forward(x, p, training, rng)[0]
