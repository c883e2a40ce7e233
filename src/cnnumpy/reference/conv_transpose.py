"""Naive nested-loop 2-D transposed convolution, forward and backward.

The oracle for :mod:`cnnumpy.functional.conv_transpose` and the lesson: input
pixel ``(h, w)`` adds ``x[n, c, h, w] * weight[c, o, i, j]`` to output pixel
``(h*sH - pH + i*dH, w*sW - pW + j*dW)`` of every output channel ``o`` of its
group: a convolution run backwards, scattering where the convolution gathers.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cnnumpy.functional.geometry import conv_transpose_geometry
from cnnumpy.validation import check_ctx, check_grad

__all__ = [
    "ConvTranspose2dContext",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "conv_transpose2d_forward",
]


class ConvTranspose2dContext(NamedTuple):
    """What :func:`conv_transpose2d_backward` needs: the arguments of the forward."""

    x: np.ndarray
    weight: np.ndarray
    has_bias: bool
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    out: tuple[int, int]


def _taps(ctx: ConvTranspose2dContext):
    """Every (n, c, h, w, o, i, j, oy, ox): input pixel, output channel, kernel
    tap and the output pixel it reaches (only those inside the output)."""
    N, C, H, W = ctx.x.shape
    Cg, Og, kH, kW = C // ctx.groups, *ctx.weight.shape[1:]
    (sH, sW), (pH, pW), (dH, dW) = ctx.stride, ctx.padding, ctx.dilation
    for n in range(N):
        for c in range(C):
            g = c // Cg
            for h in range(H):
                for w in range(W):
                    for o in range(Og):
                        for i in range(kH):
                            for j in range(kW):
                                oy = h * sH - pH + i * dH
                                ox = w * sW - pW + j * dW
                                if 0 <= oy < ctx.out[0] and 0 <= ox < ctx.out[1]:
                                    yield n, c, h, w, g * Og + o, o, i, j, oy, ox


def conv_transpose2d_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: object = 1,
    padding: object = 0,
    output_padding: object = 0,
    groups: object = 1,
    dilation: object = 1,
) -> tuple[np.ndarray, ConvTranspose2dContext]:
    """Transposed convolution by explicit loops, with PyTorch's semantics.

    Arguments, shapes and errors as
    :func:`cnnumpy.functional.conv_transpose2d_forward`.
    """
    geom, out = conv_transpose_geometry(
        x, weight, bias, stride, padding, output_padding, groups, dilation
    )
    groups = int(groups)
    ctx = ConvTranspose2dContext(
        x,
        weight,
        bias is not None,
        geom.stride,
        geom.padding,
        geom.dilation,
        groups,
        out,
    )
    y = np.zeros((x.shape[0], weight.shape[1] * groups, *out), dtype=x.dtype)
    for n, c, h, w, oc, o, i, j, oy, ox in _taps(ctx):
        y[n, oc, oy, ox] += x[n, c, h, w] * weight[c, o, i, j]
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y, ctx


def conv_transpose2d_backward(
    dy: np.ndarray, ctx: ConvTranspose2dContext, input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients by the same loops: each tap's product, differentiated."""
    check_ctx(ctx, ConvTranspose2dContext, "conv_transpose2d_forward")
    x, weight = ctx.x, ctx.weight
    check_grad(dy, (x.shape[0], weight.shape[1] * ctx.groups, *ctx.out))
    dx = np.zeros(x.shape, dtype=dy.dtype)
    dweight = np.zeros(weight.shape, dtype=dy.dtype)
    for n, c, h, w, oc, o, i, j, oy, ox in _taps(ctx):
        dx[n, c, h, w] += dy[n, oc, oy, ox] * weight[c, o, i, j]
        dweight[c, o, i, j] += dy[n, oc, oy, ox] * x[n, c, h, w]
    dbias = dy.sum(axis=(0, 2, 3)) if ctx.has_bias else None
    return (dx if input_grad else None), dweight, dbias


def conv_transpose2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: object = 1,
    padding: object = 0,
    output_padding: object = 0,
    groups: object = 1,
    dilation: object = 1,
) -> np.ndarray:
    """As ``torch.nn.functional.conv_transpose2d``, by loops."""
    return conv_transpose2d_forward(
        x, weight, bias, stride, padding, output_padding, groups, dilation
    )[0]
