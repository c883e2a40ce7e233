"""Naive nested-loop 2-D convolution: the oracle for the fast ops, and the lesson.

Every output element is written as the sum it is, one multiply-add at a time,
so the indices can be read off the formula. Nothing here is meant to be fast.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cnnumpy.functional.geometry import Geometry, conv_geometry
from cnnumpy.functional.layout import from_nchw, to_nchw
from cnnumpy.validation import check_ctx, check_grad

__all__ = ["Conv2dContext", "conv2d", "conv2d_backward", "conv2d_forward"]


class Conv2dContext(NamedTuple):
    """What :func:`conv2d_backward` needs from the forward pass."""

    x: np.ndarray
    weight: np.ndarray
    has_bias: bool
    geometry: Geometry
    groups: int
    layout: str = "nchw"


def _pad(x: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Zero-pad H and W: ``padding`` before, ``padding + extra`` after."""
    (ph, pw), (eh, ew) = geometry.padding, geometry.extra
    return np.pad(x, ((0, 0), (0, 0), (ph, ph + eh), (pw, pw + ew)))


def conv2d_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: object = 1,
    padding: object = 0,
    dilation: object = 1,
    groups: int = 1,
    layout: str = "nchw",
) -> tuple[np.ndarray, Conv2dContext]:
    r"""2-D convolution (cross-correlation, as in PyTorch) by explicit loops.

    With ``x_p`` the zero-padded input, ``g = f // (F // groups)`` the group of
    output channel ``f`` and ``Cg = C // groups`` channels per group::

        y[n, f, oy, ox] = bias[f] + sum_{c < Cg, ky, kx} weight[f, c, ky, kx]
                          * x_p[n, g*Cg + c, oy*sH + ky*dH, ox*sW + kx*dW]

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Input, floating dtype; the computation stays in this dtype.
    weight : ndarray, shape (F, C // groups, kH, kW)
        Filters.
    bias : ndarray, shape (F,), optional
        Added to every output position of its channel.
    stride, dilation : int or (int, int)
        Step between windows; spacing between kernel taps.
    padding : int, (int, int), 'valid' or 'same'
        Zeros added on each side. 'same' (stride 1 only) keeps H and W; when the
        total padding ``dilation * (k - 1)`` is odd, the extra row/column goes at
        the bottom/right, as PyTorch does.
    groups : int
        Input and output channels are split into ``groups`` independent blocks.
    layout : {'nchw', 'nhwc'}
        Axes of ``x`` and ``y`` (and of ``dy``, ``dx``): 'nhwc' is (N, H, W, C),
        read through its NCHW view as :func:`cnnumpy.functional.conv2d` does.

    Returns
    -------
    y : ndarray, shape (N, F, out_h, out_w), or (N, out_h, out_w, F) for 'nhwc'
    ctx : Conv2dContext
        Pass it to :func:`conv2d_backward`.

    Raises
    ------
    TypeError, ValueError
        On a bad argument (see ``cnnumpy.functional.geometry.conv_geometry``).

    Notes
    -----
    Shape: ``out = floor((size + 2 * padding - dilation * (k - 1) - 1) / stride) + 1``
    per spatial axis.

    Examples
    --------
    A 1x1 kernel of ones sums the channels:

    >>> x = np.arange(8.0).reshape(1, 2, 2, 2)
    >>> y, _ = conv2d_forward(x, np.ones((1, 2, 1, 1)))
    >>> y[0, 0]
    array([[ 4.,  6.],
           [ 8., 10.]])
    """
    x = to_nchw(x, layout)  # (N, C, H, W)
    geometry = conv_geometry(x, weight, bias, stride, padding, dilation, groups)
    N = x.shape[0]
    F, Cg, kH, kW = weight.shape
    F_per_group = F // groups
    sH, sW = geometry.stride
    dH, dW = geometry.dilation
    out_h, out_w = geometry.out
    x_p = _pad(x, geometry)

    y = np.zeros((N, F, out_h, out_w), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            g = f // F_per_group  # this filter only sees its group's channels
            for oy in range(out_h):
                for ox in range(out_w):
                    total = x.dtype.type(0) if bias is None else bias[f]
                    for c in range(Cg):
                        c_in = g * Cg + c  # the input channel this tap reads
                        for ky in range(kH):
                            for kx in range(kW):
                                iy = oy * sH + ky * dH
                                ix = ox * sW + kx * dW
                                total += weight[f, c, ky, kx] * x_p[n, c_in, iy, ix]
                    y[n, f, oy, ox] = total
    ctx = Conv2dContext(x, weight, bias is not None, geometry, groups, layout)
    return from_nchw(y, layout), ctx


def conv2d_backward(
    dy: np.ndarray, ctx: Conv2dContext, input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    r"""Gradients of a loss through :func:`conv2d_forward`, by the same loops.

    Each multiply-add ``y[n, f, oy, ox] += w * x_p[...]`` of the forward pass
    sends ``dy[n, f, oy, ox]`` back to both of its factors::

        dweight[f, c, ky, kx] += dy[n, f, oy, ox] * x_p[n, g*Cg + c, iy, ix]
        dx_p[n, g*Cg + c, iy, ix] += dy[n, f, oy, ox] * weight[f, c, ky, kx]
        dbias[f] = sum_{n, oy, ox} dy[n, f, oy, ox]

    ``dx`` is ``dx_p`` with the padding cropped off: padded zeros are constants.

    Parameters
    ----------
    dy : ndarray, shape (N, F, out_h, out_w)
        Gradient of the loss with respect to ``y``; (N, out_h, out_w, F) if the
        forward pass had ``layout='nhwc'`` (and ``dx`` is then NHWC too).
    ctx : Conv2dContext
        From :func:`conv2d_forward`.
    input_grad : bool
        If False, skip ``dx`` (a first layer does not need it) and return None.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W), or None if ``input_grad`` is False
    dweight : ndarray, shape (F, C // groups, kH, kW)
    dbias : ndarray, shape (F,), or None if the forward pass had no bias

    Raises
    ------
    TypeError, ValueError
        If ``dy`` is not an array of the output's shape.
    """
    check_ctx(ctx, Conv2dContext, "conv2d_forward")
    x, weight, has_bias, geometry, groups, layout = ctx
    N, _, H, W = x.shape
    F, Cg, kH, kW = weight.shape
    F_per_group = F // groups
    sH, sW = geometry.stride
    dH, dW = geometry.dilation
    out_h, out_w = geometry.out
    if layout == "nhwc":
        check_grad(dy, (N, out_h, out_w, F))
        dy = dy.transpose(0, 3, 1, 2)  # (N, F, out_h, out_w)
    check_grad(dy, (N, F, out_h, out_w))
    x_p = _pad(x, geometry)

    dx_p = np.zeros_like(x_p)
    dweight = np.zeros_like(weight)
    for n in range(N):
        for f in range(F):
            g = f // F_per_group
            for oy in range(out_h):
                for ox in range(out_w):
                    grad = dy[n, f, oy, ox]
                    for c in range(Cg):
                        c_in = g * Cg + c
                        for ky in range(kH):
                            for kx in range(kW):
                                iy = oy * sH + ky * dH
                                ix = ox * sW + kx * dW
                                dweight[f, c, ky, kx] += grad * x_p[n, c_in, iy, ix]
                                if input_grad:
                                    dx_p[n, c_in, iy, ix] += grad * weight[f, c, ky, kx]

    # A padded position is a constant zero, so its gradient is dropped; rows and
    # columns that no window reached (stride leftovers) keep a zero gradient.
    ph, pw = geometry.padding
    dx = dx_p[:, :, ph : ph + H, pw : pw + W] if input_grad else None
    dbias = None
    if has_bias:
        # The bias is added once to every output position of its channel.
        dbias = np.zeros(F, dtype=weight.dtype)
        for n in range(N):
            for f in range(F):
                for oy in range(out_h):
                    for ox in range(out_w):
                        dbias[f] += dy[n, f, oy, ox]
    return (None if dx is None else from_nchw(dx, layout)), dweight, dbias


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: object = 1,
    padding: object = 0,
    dilation: object = 1,
    groups: int = 1,
    layout: str = "nchw",
) -> np.ndarray:
    """:func:`conv2d_forward` without the context: inference only."""
    return conv2d_forward(x, weight, bias, stride, padding, dilation, groups, layout)[0]
