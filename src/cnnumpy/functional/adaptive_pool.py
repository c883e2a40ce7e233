"""Adaptive average pooling: the windows follow from the input and output sizes.

Output cell ``i`` of an axis of input size ``H`` and output size ``out`` averages
the input rows ``floor(i*H/out) <= h < ceil((i+1)*H/out)`` (PyTorch's rule), so
windows may differ in size and overlap. Averaging a rectangle is averaging its
rows then its columns, so the op is two small matrix products:
``y = P_h @ x @ P_w.T``, with ``P[i, h] = 1 / window size`` inside window ``i``;
the backward pass is their transpose, ``dx = P_h.T @ dy @ P_w``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cnnumpy.functional.geometry import adaptive_output_size, adaptive_windows
from cnnumpy.validation import check_ctx, check_grad

__all__ = [
    "AdaptivePoolContext",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_avg_pool2d_forward",
]


class AdaptivePoolContext(NamedTuple):
    """What :func:`adaptive_avg_pool2d_backward` needs from the forward pass."""

    input_shape: tuple[int, int, int, int]
    rows: np.ndarray  # (out_h, H) averaging matrix
    cols: np.ndarray  # (out_w, W) averaging matrix


def _averaging(size: int, out_size: int, dtype: np.dtype) -> np.ndarray:
    P = np.zeros((out_size, size), dtype=dtype)  # (out, size)
    for i, (start, end) in enumerate(adaptive_windows(size, out_size)):
        P[i, start:end] = 1 / (end - start)
    return P


def adaptive_avg_pool2d_forward(
    x: np.ndarray, output_size: int | tuple[int | None, int | None]
) -> tuple[np.ndarray, AdaptivePoolContext]:
    """Mean over adaptive windows, as ``torch.nn.functional.adaptive_avg_pool2d``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    output_size : int or (int or None, int or None)
        ``(out_h, out_w)``; None keeps that input size. 1 is global average
        pooling.

    Returns
    -------
    y : ndarray, shape (N, C, out_h, out_w)
    ctx : AdaptivePoolContext

    Raises
    ------
    TypeError, ValueError
        ``x`` not a 4-D float array with C, H, W >= 1, ``output_size`` not
        ints >= 1 (or None).

    Shape
    -----
    Window ``i`` of an axis covers ``[floor(i*H/out_h), ceil((i+1)*H/out_h))``.
    """
    out_h, out_w = adaptive_output_size(x, output_size)
    N, C, H, W = x.shape
    rows = _averaging(H, out_h, x.dtype)
    cols = _averaging(W, out_w, x.dtype)
    y = rows @ x @ cols.T  # (N, C, out_h, W) then (N, C, out_h, out_w)
    return y, AdaptivePoolContext(x.shape, rows, cols)


def adaptive_avg_pool2d_backward(
    dy: np.ndarray, ctx: AdaptivePoolContext
) -> np.ndarray:
    """Each window's gradient spread evenly over it: ``P_h.T @ dy @ P_w``."""
    check_ctx(ctx, AdaptivePoolContext, "adaptive_avg_pool2d_forward")
    N, C = ctx.input_shape[:2]
    check_grad(dy, (N, C, ctx.rows.shape[0], ctx.cols.shape[0]))
    return ctx.rows.T @ dy @ ctx.cols  # (N, C, H, out_w) then (N, C, H, W)


def adaptive_avg_pool2d(
    x: np.ndarray, output_size: int | tuple[int | None, int | None]
) -> np.ndarray:
    """Adaptive average pooling as ``torch.nn.functional.adaptive_avg_pool2d``."""
    return adaptive_avg_pool2d_forward(x, output_size)[0]
