"""Naive nested-loop 2-D max and average pooling, forward and backward.

The oracle for the fast pooling ops and the lesson: each window is visited
explicitly, so PyTorch's rules (which element wins a tie, what the divisor
is) are written out where they apply.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from cnnumpy.functional.geometry import Geometry, pool_geometry
from cnnumpy.validation import check_ctx, check_grad

__all__ = [
    "AvgPool2dContext",
    "MaxPool2dContext",
    "avg_pool2d",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_forward",
]


class MaxPool2dContext(NamedTuple):
    """What :func:`max_pool2d_backward` needs: the winner of every window."""

    x_shape: tuple[int, int, int, int]
    dtype: np.dtype
    argmax: np.ndarray
    """(N, C, out_h, out_w, 2) int array: the (iy, ix) input position that won."""


def max_pool2d_forward(
    x: np.ndarray,
    kernel_size: object,
    stride: object = None,
    padding: object = 0,
) -> tuple[np.ndarray, MaxPool2dContext]:
    """2-D max pooling by explicit loops, with PyTorch's semantics.

    ``y[n, c, oy, ox]`` is the maximum of ``x[n, c, iy, ix]`` over the window
    ``iy = oy*sH - pH + ky``, ``ix = ox*sW - pW + kx`` (``ky < kH``, ``kx < kW``).
    Padding acts as ``-inf``: positions outside the input are never the maximum,
    so they are simply skipped. The first maximal element in row-major window
    order wins (PyTorch's CPU kernel compares with a strict ``>``), and a NaN
    propagates: the window's last NaN wins, as in PyTorch.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Input, floating dtype; the output keeps it.
    kernel_size : int or (int, int)
        Window size.
    stride : int or (int, int), optional
        Step between windows; defaults to ``kernel_size``.
    padding : int or (int, int)
        Implicit ``-inf`` on each side; at most half the kernel.

    Returns
    -------
    y : ndarray, shape (N, C, out_h, out_w)
    ctx : MaxPool2dContext
        Pass it to :func:`max_pool2d_backward`.

    Raises
    ------
    TypeError, ValueError
        On a bad argument (see ``cnnumpy.functional.geometry.pool_geometry``).

    Notes
    -----
    Shape: ``out = floor((size + 2 * padding - kernel_size) / stride) + 1`` per
    spatial axis.

    Examples
    --------
    >>> x = np.array([[[[1.0, 3.0], [3.0, 2.0]]]])
    >>> y, ctx = max_pool2d_forward(x, 2)
    >>> y[0, 0], ctx.argmax[0, 0, 0, 0]  # the tie goes to the first 3
    (array([[3.]]), array([0, 1]))
    """
    geometry = pool_geometry(x, kernel_size, stride, padding)
    N, C, H, W = x.shape
    kH, kW = geometry.kernel
    sH, sW = geometry.stride
    pH, pW = geometry.padding
    out_h, out_w = geometry.out

    y = np.empty((N, C, out_h, out_w), dtype=x.dtype)
    argmax = np.empty((N, C, out_h, out_w, 2), dtype=np.intp)
    for n in range(N):
        for c in range(C):
            for oy in range(out_h):
                for ox in range(out_w):
                    best, best_at = None, None
                    for ky in range(kH):
                        for kx in range(kW):
                            iy = oy * sH - pH + ky
                            ix = ox * sW - pW + kx
                            if not (0 <= iy < H and 0 <= ix < W):
                                continue  # padding: -inf never wins
                            value = x[n, c, iy, ix]
                            # Strict '>' keeps the first of equal maxima; the
                            # first in-bounds element wins even if all are -inf.
                            if best is None or value > best or math.isnan(value):
                                best, best_at = value, (iy, ix)
                    # padding <= kernel // 2 leaves every window an input element.
                    y[n, c, oy, ox] = best
                    argmax[n, c, oy, ox] = best_at
    return y, MaxPool2dContext(x.shape, x.dtype, argmax)


def max_pool2d_backward(dy: np.ndarray, ctx: MaxPool2dContext) -> np.ndarray:
    """Gradient of a loss through :func:`max_pool2d_forward`.

    A window's output is one of its inputs, so ``dy[n, c, oy, ox]`` flows to that
    input alone (the one recorded in ``ctx.argmax``); every other element of the
    window gets nothing. Where windows overlap, an input that wins several of
    them receives the sum of their gradients.

    Parameters
    ----------
    dy : ndarray, shape (N, C, out_h, out_w)
        Gradient of the loss with respect to ``y``.
    ctx : MaxPool2dContext
        From :func:`max_pool2d_forward`.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)

    Raises
    ------
    TypeError, ValueError
        If ``dy`` is not an array of the output's shape.
    """
    check_ctx(ctx, MaxPool2dContext, "max_pool2d_forward")
    x_shape, dtype, argmax = ctx
    N, C, out_h, out_w = argmax.shape[:4]
    check_grad(dy, (N, C, out_h, out_w))

    dx = np.zeros(x_shape, dtype=dtype)
    for n in range(N):
        for c in range(C):
            for oy in range(out_h):
                for ox in range(out_w):
                    iy, ix = argmax[n, c, oy, ox]
                    dx[n, c, iy, ix] += dy[n, c, oy, ox]  # '+=': overlapping windows
    return dx


def max_pool2d(
    x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0
) -> np.ndarray:
    """:func:`max_pool2d_forward` without the context: inference only."""
    return max_pool2d_forward(x, kernel_size, stride, padding)[0]


class AvgPool2dContext(NamedTuple):
    """What :func:`avg_pool2d_backward` needs: only shapes, the op is linear."""

    x_shape: tuple[int, int, int, int]
    dtype: np.dtype
    geometry: Geometry


def avg_pool2d_forward(
    x: np.ndarray,
    kernel_size: object,
    stride: object = None,
    padding: object = 0,
) -> tuple[np.ndarray, AvgPool2dContext]:
    """2-D average pooling by explicit loops, with PyTorch's default semantics.

    ``y[n, c, oy, ox] = sum_{ky, kx} x_p[n, c, oy*sH + ky, ox*sW + kx] / (kH*kW)``
    where ``x_p`` is ``x`` zero-padded. The padded zeros count in the divisor,
    which is always ``kH * kW`` (PyTorch's ``count_include_pad=True``), so a
    border window of ones averages to less than one.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Input, floating dtype; the output keeps it.
    kernel_size : int or (int, int)
        Window size.
    stride : int or (int, int), optional
        Step between windows; defaults to ``kernel_size``.
    padding : int or (int, int)
        Zeros added on each side; at most half the kernel.

    Returns
    -------
    y : ndarray, shape (N, C, out_h, out_w)
    ctx : AvgPool2dContext
        Pass it to :func:`avg_pool2d_backward`.

    Raises
    ------
    TypeError, ValueError
        On a bad argument (see ``cnnumpy.functional.geometry.pool_geometry``).

    Notes
    -----
    Shape: ``out = floor((size + 2 * padding - kernel_size) / stride) + 1`` per
    spatial axis.

    Examples
    --------
    >>> x = np.ones((1, 1, 2, 2))
    >>> avg_pool2d(x, 2, stride=1, padding=1)[0, 0]  # corners see one 1 in four
    array([[0.25, 0.5 , 0.25],
           [0.5 , 1.  , 0.5 ],
           [0.25, 0.5 , 0.25]])
    """
    geometry = pool_geometry(x, kernel_size, stride, padding)
    N, C, _, _ = x.shape
    kH, kW = geometry.kernel
    sH, sW = geometry.stride
    pH, pW = geometry.padding
    out_h, out_w = geometry.out
    x_p = np.pad(x, ((0, 0), (0, 0), (pH, pH), (pW, pW)))

    y = np.empty((N, C, out_h, out_w), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for oy in range(out_h):
                for ox in range(out_w):
                    total = x.dtype.type(0)
                    for ky in range(kH):
                        for kx in range(kW):
                            total += x_p[n, c, oy * sH + ky, ox * sW + kx]
                    y[n, c, oy, ox] = total / (kH * kW)
    return y, AvgPool2dContext(x.shape, x.dtype, geometry)


def avg_pool2d_backward(dy: np.ndarray, ctx: AvgPool2dContext) -> np.ndarray:
    """Gradient of a loss through :func:`avg_pool2d_forward`.

    Every element of a window enters its average with weight ``1 / (kH*kW)``,
    so each receives ``dy[n, c, oy, ox] / (kH*kW)``; overlapping windows add.
    Gradients landing on the padding are dropped (padded zeros are constants).

    Parameters
    ----------
    dy : ndarray, shape (N, C, out_h, out_w)
        Gradient of the loss with respect to ``y``.
    ctx : AvgPool2dContext
        From :func:`avg_pool2d_forward`.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)

    Raises
    ------
    TypeError, ValueError
        If ``dy`` is not an array of the output's shape.
    """
    check_ctx(ctx, AvgPool2dContext, "avg_pool2d_forward")
    (N, C, H, W), dtype, geometry = ctx
    kH, kW = geometry.kernel
    sH, sW = geometry.stride
    pH, pW = geometry.padding
    out_h, out_w = geometry.out
    check_grad(dy, (N, C, out_h, out_w))

    dx_p = np.zeros((N, C, H + 2 * pH, W + 2 * pW), dtype=dtype)
    for n in range(N):
        for c in range(C):
            for oy in range(out_h):
                for ox in range(out_w):
                    share = dy[n, c, oy, ox] / (kH * kW)
                    for ky in range(kH):
                        for kx in range(kW):
                            dx_p[n, c, oy * sH + ky, ox * sW + kx] += share
    return dx_p[:, :, pH : pH + H, pW : pW + W]


def avg_pool2d(
    x: np.ndarray, kernel_size: object, stride: object = None, padding: object = 0
) -> np.ndarray:
    """:func:`avg_pool2d_forward` without the context: inference only."""
    return avg_pool2d_forward(x, kernel_size, stride, padding)[0]
