"""2-D transposed convolution: the adjoint of :func:`conv2d`, by col2im and im2col.

A convolution maps its input ``z`` to ``y = conv2d(z, W)``; its transpose maps
``x`` (shaped as ``y``) back to the shape of ``z``. So the forward pass here is
the input gradient of that convolution, ``col2im(W2d.T @ x2d)``, and the
backward pass is that convolution itself: ``dx = conv2d(dy, W)`` (im2col of
``dy``) and ``dW`` the convolution's weight gradient with the roles of input
and output gradient swapped.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cnnumpy.functional.conv import (
    Conv2dContext,
    _input_grad,
    conv2d_backward,
    conv2d_forward,
)
from cnnumpy.functional.geometry import Geometry, conv_transpose_geometry
from cnnumpy.functional.im2col import chwn
from cnnumpy.validation import check_ctx, check_grad

__all__ = [
    "ConvTranspose2dContext",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "conv_transpose2d_forward",
]


class ConvTranspose2dContext(NamedTuple):
    """What :func:`conv_transpose2d_backward` needs from the forward pass."""

    x: np.ndarray  # (N, in_channels, H, W), the input
    weight: np.ndarray  # (in_channels, out_channels/groups, kH, kW)
    has_bias: bool
    geom: Geometry  # of the convolution whose input is this op's output
    groups: int
    out: tuple[int, int]


def _fit(x: np.ndarray, geom: Geometry) -> np.ndarray:
    """``x`` zero-padded at the end to the adjoint convolution's output size.

    The sizes differ only when ``output_padding >= stride`` (allowed when the
    dilation is larger): the convolution then has output positions beyond
    ``x``, whose value in ``x`` is zero.
    """
    if x.shape[2:] == geom.out:
        return x
    xp = np.zeros((*x.shape[:2], *geom.out), dtype=x.dtype)
    xp[:, :, : x.shape[2], : x.shape[3]] = x
    return xp


def conv_transpose2d_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
) -> tuple[np.ndarray, ConvTranspose2dContext]:
    """Transposed convolution, as ``torch.nn.functional.conv_transpose2d``.

    Parameters
    ----------
    x : ndarray, shape (N, in_channels, H, W)
    weight : ndarray, shape (in_channels, out_channels // groups, kH, kW)
        Same dtype as ``x``.
    bias : ndarray, shape (out_channels,), optional
    stride, dilation : int or (int, int)
    padding : int or (int, int)
        Removed from each border of the output (the padding of the convolution
        this op is the adjoint of).
    output_padding : int or (int, int)
        Extra rows/columns at the bottom/right of the output, smaller than the
        stride or the dilation: they pick one of the input sizes that a strided
        convolution maps to the same output size.
    groups : int
        Must divide ``in_channels``.

    Returns
    -------
    y : ndarray, shape (N, out_channels, out_h, out_w)
    ctx : ConvTranspose2dContext

    Raises
    ------
    TypeError, ValueError
        Wrong ndim or dtype, channel counts not matching the weight, groups not
        dividing them, bad stride/padding/output_padding/dilation, an empty
        output.

    Shape
    -----
    ``out = (size - 1)*stride - 2*padding + dilation*(kernel - 1)
    + output_padding + 1``.

    Notes
    -----
    ``y = col2im(W2d.T @ x2d)`` with ``W2d`` the (in_channels, out_channels/g
    * kH*kW) kernels of each group and ``x2d`` the (in_channels, H*W*N)
    input: every input pixel spreads its kernel-weighted value over a window
    of the output, summed where windows overlap. This is exactly the input
    gradient of :func:`conv2d_forward`, whose code it runs.
    """
    geom, out = conv_transpose_geometry(
        x, weight, bias, stride, padding, output_padding, groups, dilation
    )
    groups = int(groups)
    N, C = x.shape[:2]
    out_channels = weight.shape[1] * groups
    # The adjoint convolution's context: only the shape and dtype of its input
    # (this op's output) are read, so a zero-size stand-in holds them.
    stand_in = np.broadcast_to(np.zeros((), x.dtype), (N, out_channels, *out))
    conv_ctx = Conv2dContext(stand_in, weight, False, geom, groups)
    x2 = chwn(_fit(x, geom)).reshape(C, -1)  # (in_channels, H*W*N)
    y = _input_grad(x2, conv_ctx)  # (N, out_channels, out_h, out_w)
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y, ConvTranspose2dContext(x, weight, bias is not None, geom, groups, out)


def conv_transpose2d_backward(
    dy: np.ndarray, ctx: ConvTranspose2dContext, input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`conv_transpose2d_forward` w.r.t. input, weight and bias.

    Returns
    -------
    dx : ndarray, shape (N, in_channels, H, W), or None if ``input_grad`` is False
        ``conv2d(dy, weight)``: the im2col of ``dy`` times the kernels.
    dweight : ndarray, shape of weight
        The weight gradient of that convolution with ``x`` as its output
        gradient: ``x2d @ im2col(dy).T``.
    dbias : ndarray, shape (out_channels,), or None if the forward had no bias
    """
    check_ctx(ctx, ConvTranspose2dContext, "conv_transpose2d_forward")
    x, weight, geom, groups = ctx.x, ctx.weight, ctx.geom, ctx.groups
    N = x.shape[0]
    check_grad(dy, (N, weight.shape[1] * groups, *ctx.out))
    conv_ctx = Conv2dContext(dy, weight, False, geom, groups)
    dweight = conv2d_backward(_fit(x, geom), conv_ctx, input_grad=False)[1]
    dbias = dy.sum(axis=(0, 2, 3)) if ctx.has_bias else None
    if not input_grad:
        return None, dweight, dbias
    dx, _ = conv2d_forward(
        dy, weight, None, geom.stride, geom.padding, geom.dilation, groups
    )
    return dx[:, :, : x.shape[2], : x.shape[3]], dweight, dbias


def conv_transpose2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
) -> np.ndarray:
    """As ``torch.nn.functional.conv_transpose2d``; see the ``_forward``."""
    return conv_transpose2d_forward(
        x, weight, bias, stride, padding, output_padding, groups, dilation
    )[0]
