"""Max and average pooling over strided windows, with their backward passes."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cnnumpy.functional._checks import Geometry, check_grad, pool_geometry
from cnnumpy.functional.im2col import fold, pad_input, unfold, windows

__all__ = [
    "PoolContext",
    "avg_pool2d",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_forward",
]


class PoolContext(NamedTuple):
    """What the pooling backward passes need from the forward pass."""

    input_shape: tuple[int, int, int, int]
    geom: Geometry
    argmax: np.ndarray | None  # (N*C, out_h*out_w): window offset of the max


def max_pool2d_forward(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> tuple[np.ndarray, PoolContext]:
    """Maximum over each window, remembering which tap won.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size`` (non-overlapping windows).
    padding : int or (int, int)
        Implicit ``-inf`` padding, at most half the kernel (PyTorch's rule), so
        every window holds at least one real pixel.

    Returns
    -------
    y : ndarray, shape (N, C, out_h, out_w)
    ctx : PoolContext

    Raises
    ------
    TypeError, ValueError
        Bad ndim/dtype, non-positive kernel or stride, padding over half the
        kernel, window larger than the padded input.

    Shape
    -----
    ``out = floor((size + 2*padding - kernel) / stride) + 1``.
    """
    geom = pool_geometry(x, kernel_size, stride, padding)
    N, C, H, W = x.shape
    out_h, out_w = geom.out
    # Channels become batch: each (n, c) plane is pooled on its own.
    cols = unfold(x.reshape(N * C, 1, H, W), geom, pad_value=-np.inf)  # (NC, kk, L)
    # argmax returns the first maximal tap in row-major window order, which is
    # the element PyTorch's CPU kernel routes the gradient to on ties.
    argmax = cols.argmax(axis=1)  # (NC, L)
    y = np.take_along_axis(cols, argmax[:, None, :], axis=1)  # (NC, 1, L)
    return y.reshape(N, C, out_h, out_w), PoolContext(x.shape, geom, argmax)


def max_pool2d_backward(dy: np.ndarray, ctx: PoolContext) -> np.ndarray:
    """Route each window's gradient to its maximal tap; overlapping windows add."""
    N, C, H, W = ctx.input_shape
    out_h, out_w = ctx.geom.out
    kH, kW = ctx.geom.kernel
    check_grad(dy, (N, C, out_h, out_w))
    dcols = np.zeros((N * C, kH * kW, out_h * out_w), dtype=dy.dtype)
    np.put_along_axis(
        dcols, ctx.argmax[:, None, :], dy.reshape(N * C, 1, out_h * out_w), axis=1
    )
    dcols6 = dcols.reshape(N * C, 1, kH, kW, out_h, out_w)
    return fold(dcols6, (N * C, 1, H, W), ctx.geom).reshape(N, C, H, W)


def max_pool2d(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> np.ndarray:
    """Max pooling as ``torch.nn.functional.max_pool2d``."""
    return max_pool2d_forward(x, kernel_size, stride, padding)[0]


def avg_pool2d_forward(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> tuple[np.ndarray, PoolContext]:
    """Mean over each window; padded zeros count (PyTorch's count_include_pad=True).

    Parameters and shapes as :func:`max_pool2d_forward`, but the padding is zeros
    and the divisor is always ``kH * kW``.

    Notes
    -----
    No column matrix is built: the window sum is ``kH*kW`` additions of strided
    views of the padded input, one per kernel offset.
    """
    geom = pool_geometry(x, kernel_size, stride, padding)
    kH, kW = geom.kernel
    win = windows(pad_input(x, geom), geom)  # (N, C, kH, kW, out_h, out_w), a view
    y = win[:, :, 0, 0].copy()
    for i in range(kH):
        for j in range(kW):
            if i or j:
                y += win[:, :, i, j]
    y /= kH * kW
    return y, PoolContext(x.shape, geom, None)


def avg_pool2d_backward(dy: np.ndarray, ctx: PoolContext) -> np.ndarray:
    """Spread each window's gradient evenly, ``dy / (kH*kW)``, over its taps."""
    N, C, H, W = ctx.input_shape
    out_h, out_w = ctx.geom.out
    kH, kW = ctx.geom.kernel
    check_grad(dy, (N, C, out_h, out_w))
    share = dy / (kH * kW)
    # A broadcast view: every tap of a window reads the same share, no copy.
    dcols6 = np.broadcast_to(share[:, :, None, None], (N, C, kH, kW, out_h, out_w))
    return fold(dcols6, ctx.input_shape, ctx.geom)


def avg_pool2d(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> np.ndarray:
    """Average pooling as ``torch.nn.functional.avg_pool2d``."""
    return avg_pool2d_forward(x, kernel_size, stride, padding)[0]
