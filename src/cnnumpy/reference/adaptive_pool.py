"""Naive nested-loop adaptive average pooling, forward and backward."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cnnumpy.functional.geometry import adaptive_output_size, adaptive_windows
from cnnumpy.validation import check_ctx, check_grad

__all__ = [
    "AdaptiveAvgPool2dContext",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_avg_pool2d_forward",
]


class AdaptiveAvgPool2dContext(NamedTuple):
    """What :func:`adaptive_avg_pool2d_backward` needs: the input's shape and dtype."""

    x_shape: tuple[int, int, int, int]
    dtype: np.dtype
    out: tuple[int, int]


def adaptive_avg_pool2d_forward(
    x: np.ndarray, output_size: object
) -> tuple[np.ndarray, AdaptiveAvgPool2dContext]:
    """Adaptive average pooling by explicit loops, with PyTorch's windows.

    ``y[n, c, i, j]`` is the mean of ``x[n, c, h, w]`` over
    ``floor(i*H/out_h) <= h < ceil((i+1)*H/out_h)`` and the same rule for ``w``.
    Arguments as :func:`cnnumpy.functional.adaptive_avg_pool2d_forward`.
    """
    out_h, out_w = adaptive_output_size(x, output_size)
    N, C, _, _ = x.shape
    y = np.empty((N, C, out_h, out_w), dtype=x.dtype)
    rows = adaptive_windows(x.shape[2], out_h)
    cols = adaptive_windows(x.shape[3], out_w)
    for n in range(N):
        for c in range(C):
            for i, (h0, h1) in enumerate(rows):
                for j, (w0, w1) in enumerate(cols):
                    total = 0.0
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            total += x[n, c, h, w]
                    y[n, c, i, j] = total / ((h1 - h0) * (w1 - w0))
    return y, AdaptiveAvgPool2dContext(x.shape, x.dtype, (out_h, out_w))


def adaptive_avg_pool2d_backward(
    dy: np.ndarray, ctx: AdaptiveAvgPool2dContext
) -> np.ndarray:
    """Each output's gradient shared equally by the inputs of its window."""
    check_ctx(ctx, AdaptiveAvgPool2dContext, "adaptive_avg_pool2d_forward")
    N, C, H, W = ctx.x_shape
    check_grad(dy, (N, C, *ctx.out))
    dx = np.zeros(ctx.x_shape, dtype=dy.dtype)
    rows = adaptive_windows(H, ctx.out[0])
    cols = adaptive_windows(W, ctx.out[1])
    for n in range(N):
        for c in range(C):
            for i, (h0, h1) in enumerate(rows):
                for j, (w0, w1) in enumerate(cols):
                    share = dy[n, c, i, j] / ((h1 - h0) * (w1 - w0))
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            dx[n, c, h, w] += share
    return dx


def adaptive_avg_pool2d(x: np.ndarray, output_size: object) -> np.ndarray:
    """Adaptive average pooling as ``torch.nn.functional.adaptive_avg_pool2d``."""
    return adaptive_avg_pool2d_forward(x, output_size)[0]
