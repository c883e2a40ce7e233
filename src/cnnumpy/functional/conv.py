"""2-D convolution (cross-correlation, as in every deep-learning library) by im2col."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cnnumpy.functional._checks import Geometry, check_grad, conv_geometry
from cnnumpy.functional.im2col import fold, unfold

__all__ = ["Conv2dContext", "conv2d", "conv2d_backward", "conv2d_forward"]


class Conv2dContext(NamedTuple):
    """What :func:`conv2d_backward` needs from the forward pass."""

    cols: np.ndarray  # (N, groups, C/groups*kH*kW, out_h*out_w)
    weight: np.ndarray
    has_bias: bool
    input_shape: tuple[int, int, int, int]
    geom: Geometry
    groups: int


def conv2d_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> tuple[np.ndarray, Conv2dContext]:
    """Convolve ``x`` with ``weight`` and keep what the backward pass needs.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    weight : ndarray, shape (F, C // groups, kH, kW)
        Same dtype as ``x``.
    bias : ndarray, shape (F,), optional
    stride, dilation : int or (int, int)
    padding : int, (int, int), 'valid' or 'same'
        'same' keeps H and W (stride 1 only); an odd total padding puts the extra
        row/column at the bottom/right, as PyTorch does.
    groups : int
        Input and output channels are split into ``groups`` independent
        convolutions; both channel counts must be divisible by it.

    Returns
    -------
    y : ndarray, shape (N, F, out_h, out_w)
    ctx : Conv2dContext

    Raises
    ------
    TypeError, ValueError
        Wrong ndim or dtype, channel count not matching the weight, groups not
        dividing the channels, bad stride/padding/dilation, kernel larger than
        the padded input.

    Shape
    -----
    ``out = floor((size + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1``.

    Notes
    -----
    With ``cols = im2col(x)`` of shape (N, C*kH*kW, L) and the kernels flattened to
    (F, C*kH*kW), ``y[n] = weight2d @ cols[n]``: one batched matrix product.
    """
    geom = conv_geometry(x, weight, bias, stride, padding, dilation, groups)
    N = x.shape[0]
    F = weight.shape[0]
    out_h, out_w = geom.out
    cols = unfold(x, geom).reshape(N, groups, -1, out_h * out_w)  # (N, g, Cg*kH*kW, L)
    w3 = weight.reshape(groups, F // groups, -1)  # (g, F/g, Cg*kH*kW)
    y = np.matmul(w3, cols)  # (N, g, F/g, L)
    y = y.reshape(N, F, out_h, out_w)
    if bias is not None:
        y += bias.reshape(F, 1, 1)
    ctx = Conv2dContext(cols, weight, bias is not None, x.shape, geom, groups)
    return y, ctx


def conv2d_backward(
    dy: np.ndarray, ctx: Conv2dContext, input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`conv2d_forward` w.r.t. input, weight and bias.

    Parameters
    ----------
    dy : ndarray, shape (N, F, out_h, out_w)
        Gradient of the loss w.r.t. the output.
    ctx : Conv2dContext
        From :func:`conv2d_forward`.
    input_grad : bool
        Compute ``dx``. The first layer of a network can skip it (its input is
        data), which saves the largest matmul and the col2im of the layer.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W), or None if ``input_grad`` is False
        ``col2im(weight2d.T @ dy)``: every output position sends its gradient back
        to the pixels of its window, summed where windows overlap.
    dweight : ndarray, shape of weight
        ``sum_n dy[n] @ cols[n].T``.
    dbias : ndarray, shape (F,), or None if the forward had no bias
        ``dy`` summed over batch and positions.
    """
    N, C, H, W = ctx.input_shape
    F = ctx.weight.shape[0]
    g = ctx.groups
    out_h, out_w = ctx.geom.out
    check_grad(dy, (N, F, out_h, out_w))
    dy4 = dy.reshape(N, g, F // g, out_h * out_w)  # (N, g, F/g, L)
    dweight = np.matmul(dy4, ctx.cols.transpose(0, 1, 3, 2)).sum(axis=0)
    dweight = dweight.reshape(ctx.weight.shape)
    dbias = dy.sum(axis=(0, 2, 3)) if ctx.has_bias else None
    dx = None
    if input_grad:
        w3 = ctx.weight.reshape(g, F // g, -1)  # (g, F/g, Cg*kH*kW)
        dcols = np.matmul(w3.transpose(0, 2, 1), dy4)  # (N, g, Cg*kH*kW, L)
        kH, kW = ctx.geom.kernel
        dx = fold(dcols.reshape(N, C, kH, kW, out_h, out_w), ctx.input_shape, ctx.geom)
    return dx, dweight, dbias


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> np.ndarray:
    """2-D convolution as ``torch.nn.functional.conv2d``; see :func:`conv2d_forward`."""
    return conv2d_forward(x, weight, bias, stride, padding, dilation, groups)[0]
