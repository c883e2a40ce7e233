"""Explanation of the transposed convolution as the adjoint of conv2d."""

from __future__ import annotations

import numpy as np

from cnnumpy import functional, reference
from cnnumpy.explain._text import MAX_ELEMENTS, Shape4, arange, check, matrix, number
from cnnumpy.functional.geometry import Geometry, conv_transpose_geometry
from cnnumpy.validation import check_elements, check_pair, check_shape

__all__ = ["explain_conv_transpose"]

TRANSPOSE_FORMULA = (
    "out = (size - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1"
)


def transpose_setup(
    input_shape: object,
    kernel_shape: object,
    stride: object,
    padding: object,
    dilation: object,
    output_padding: object,
) -> tuple[Shape4, Shape4, Geometry, tuple[int, int]]:
    """Validate the arguments; the geometry of the adjoint convolution and out."""
    N, C, H, W = check_shape(
        input_shape, "input_shape", "(N, C, H, W)", maximum=MAX_ELEMENTS
    )
    Ck, F, kH, kW = check_shape(
        kernel_shape, "kernel_shape", "(C, F, kH, kW)", maximum=MAX_ELEMENTS
    )
    if Ck != C:
        raise ValueError(
            f"`kernel_shape` must start with the input's C={C} channels, got {Ck} "
            f"(kernel_shape={tuple(kernel_shape)}, input_shape={tuple(input_shape)})"
        )
    if isinstance(padding, str):  # conv_transpose2d takes no 'valid'/'same'
        raise TypeError(f"`padding` must be an int or a pair of ints, got {padding!r}")
    # Zero-size stand-ins carry the shapes through the op's own validation.
    stand_in = np.broadcast_to(np.zeros(()), (N, C, H, W))
    kernel = np.broadcast_to(np.zeros(()), (C, F, kH, kW))
    geom, out = conv_transpose_geometry(
        stand_in, kernel, None, stride, padding, output_padding, 1, dilation
    )
    # The text prints the column matrix and the output.
    check_elements(
        F * kH * kW * N * geom.out[0] * geom.out[1], "input_shape", MAX_ELEMENTS
    )
    check_elements(N * F * out[0] * out[1], "input_shape", MAX_ELEMENTS)
    return (N, C, H, W), (C, F, kH, kW), geom, out


def explain_conv_transpose(
    input_shape: Shape4,
    kernel_shape: Shape4,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    output_padding: int | tuple[int, int] = 0,
) -> str:
    """ConvTranspose2d as the adjoint of Conv2d: one product and a col2im.

    Parameters
    ----------
    input_shape : (N, C, H, W)
        The transposed convolution's input.
    kernel_shape : (C, F, kH, kW)
        PyTorch's ``ConvTranspose2d`` weight: C input channels, F output channels.
    stride, dilation : int or (int, int)
    padding : int or (int, int)
        Taken off each border of the output (the padding of the adjoint conv).
    output_padding : int or (int, int)
        Extra rows/columns at the bottom/right of the output; smaller than the
        stride or the dilation.

    Returns
    -------
    str
        The output-size arithmetic; ``x`` and the kernels (aranges);
        ``x2d``; the column matrix ``cols = W2d.T @ x2d`` (column ``l*N + n``
        holds what input pixel ``l`` of image ``n`` spreads over its window);
        the overlap map and the fold ``y = col2im(cols)`` that adds where
        windows overlap, checked against :func:`cnnumpy.reference.conv_transpose2d`;
        then the adjoint identity ``<conv2d(z, W), x> == <z, conv_transpose2d(x, W)>``.

    Raises
    ------
    TypeError, ValueError
        Malformed shapes, channel mismatch, bad stride/padding/dilation/
        output_padding, an empty output.

    Shape
    -----
    ``out = (size - 1)*stride - 2*padding + dilation*(kernel - 1)
    + output_padding + 1`` per spatial axis.

    Examples
    --------
    >>> text = explain_conv_transpose((1, 1, 2, 2), (1, 1, 2, 2), stride=2)
    >>> text.splitlines()[-1]
    'Check: <conv2d(z, W), x> against <z, conv_transpose2d(x, W)>: equal: True'
    """
    xs, ws, geom, out = transpose_setup(
        input_shape, kernel_shape, stride, padding, dilation, output_padding
    )
    (N, C, H, W), (_, F, kH, kW) = xs, ws
    ys = (N, F, *out)
    args = ((kH, kW), geom.stride, geom.padding, geom.dilation)
    x, weight = arange(xs), arange(ws)
    # The adjoint convolution's windows; more than H x W only when
    # output_padding >= stride leaves windows that no input pixel feeds.
    x_fit = np.zeros((N, C, *geom.out))
    x_fit[:, :, :H, :W] = x
    x2d = x_fit.transpose(1, 2, 3, 0).reshape(C, -1)  # (C, H*W*N), batch fastest
    w2d = weight.reshape(C, F * kH * kW)  # (C, F*kH*kW)
    cols = w2d.T @ x2d  # (F*kH*kW, H*W*N)
    counts = functional.col2im(np.ones_like(cols), ys, *args)  # (N, F, out_h, out_w)
    y = functional.col2im(cols, ys, *args)  # (N, F, out_h, out_w)
    z = arange(ys)
    conv_z = functional.conv2d(
        z, weight, None, geom.stride, geom.padding, geom.dilation
    )
    conv_z = conv_z[:, :, :H, :W]  # (N, C, H, W): the windows x feeds
    left, right = float(np.sum(conv_z * x)), float(np.sum(z * y))
    op = check_pair(output_padding, "output_padding", minimum=0)
    per_axis = zip(("out_h", "out_w"), (H, W), *args, op, out)
    lines = [
        f"conv_transpose2d for input (N, C, H, W) = {xs} and weight (C, F, kH, kW) "
        f"= {ws}",
        f"stride {geom.stride}, padding {geom.padding}, dilation {geom.dilation}, "
        f"output_padding {op}",
        "",
        f"Output size per axis: {TRANSPOSE_FORMULA}",
        *(
            f"  {name} = ({size} - 1)*{s} - 2*{p} + {d}*({k} - 1) + {op} + 1 = {o}"
            for name, size, k, s, p, d, op, o in per_axis
        ),
        "",
        "A convolution conv2d(z, W) with this stride, padding and dilation maps z",
        f"of shape {ys} to the shape of x, {xs}.",
        "Its transpose maps x back to the shape of z: the forward pass of",
        "ConvTranspose2d is the input gradient of that convolution,",
        "col2im(W2d.T @ x2d), the very code of conv2d's backward pass.",
        "",
        *matrix("x = arange(N*C*H*W).reshape(N, C, H, W)", x, "x"),
        "",
        *matrix("weight = arange(C*F*kH*kW).reshape(C, F, kH, kW)", weight, "weight"),
        "",
    ]
    if geom.out != (H, W):
        lines += [
            f"output_padding reaches windows {geom.out} beyond x's {(H, W)}: x is",
            "padded with zeros at the bottom/right before the product.",
            "",
        ]
    lines += [
        *matrix(
            "x2d = x.transpose(1, 2, 3, 0).reshape(C, H*W*N): one column per input "
            "pixel, batch fastest",
            x2d,
        ),
        *matrix("W2d = weight.reshape(C, F*kH*kW)", w2d),
        "",
        "cols = W2d.T @ x2d: column l*N + n holds what pixel l of image n spreads",
        "over its output window, tap by tap (row (f*kH + ky)*kW + kx).",
        *matrix("cols, (F*kH*kW, C) @ (C, H*W*N)", cols),
        "",
        *matrix(
            "Overlap map: col2im(ones_like(cols))[0, 0], windows per output pixel",
            counts[0, 0],
        ),
        "",
        *matrix("y = col2im(cols): the fold, adding where windows overlap", y, "y"),
        check(
            "cnnumpy.reference.conv_transpose2d",
            [
                (
                    "y",
                    y,
                    reference.conv_transpose2d(
                        x, weight, None, stride, padding, output_padding, 1, dilation
                    ),
                ),
                (
                    "functional.conv_transpose2d",
                    functional.conv_transpose2d(
                        x, weight, None, stride, padding, output_padding, 1, dilation
                    ),
                    y,
                ),
            ],
        ),
        "",
        "Adjoint: with z = arange over the shape of y,",
        f"  <conv2d(z, W), x> = sum(conv2d(z, W) * x) = {number(left)}",
        f"  <z, conv_transpose2d(x, W)> = sum(z * y) = {number(right)}",
        check(
            "<z, conv_transpose2d(x, W)>",
            [("<conv2d(z, W), x>", np.array(left), np.array(right))],
        ),
    ]
    return "\n".join(lines)
