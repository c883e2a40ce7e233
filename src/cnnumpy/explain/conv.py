"""Explanations of im2col, col2im and the convolution's backward pass."""

from __future__ import annotations

import numpy as np

from cnnumpy import functional, reference
from cnnumpy.explain._text import (
    MAX_ELEMENTS,
    Shape4,
    arange,
    check,
    matrix,
    number,
    size_lines,
)
from cnnumpy.explain.nhwc import explain_im2col_nhwc
from cnnumpy.functional.geometry import Geometry
from cnnumpy.functional.im2col_indices import (
    col2im_by_index,
    im2col_by_index,
    im2col_indices,
    index_geometry,
)
from cnnumpy.functional.layout import LAYOUTS
from cnnumpy.validation import check_choice, check_elements, check_shape

__all__ = ["explain_col2im", "explain_conv_backward", "explain_im2col"]


def conv_setup(
    input_shape: object,
    kernel_shape: object,
    stride: object,
    padding: object,
    dilation: object,
) -> tuple[Shape4, Shape4, Geometry]:
    """Validate the arguments of a conv explanation; their names in the errors."""
    N, C, H, W = check_shape(
        input_shape, "input_shape", "(N, C, H, W)", maximum=MAX_ELEMENTS
    )
    F, Ck, kH, kW = check_shape(
        kernel_shape, "kernel_shape", "(F, C, kH, kW)", maximum=MAX_ELEMENTS
    )
    if Ck != C:
        raise ValueError(
            f"`kernel_shape` must have the input's C={C} channels, got {Ck} "
            f"(kernel_shape={tuple(kernel_shape)}, input_shape={tuple(input_shape)})"
        )
    geom = index_geometry(
        (N, C, H, W), (kH, kW), stride, padding, dilation, kernel_name="kernel_shape"
    )
    # The text prints the padded input, the kernels and the column matrix.
    out_h, out_w = geom.out
    Hp, Wp = H + 2 * geom.padding[0], W + 2 * geom.padding[1]
    check_elements(N * C * Hp * Wp, "input_shape", MAX_ELEMENTS)
    check_elements(F * C * kH * kW, "kernel_shape", MAX_ELEMENTS)
    check_elements(C * kH * kW * N * out_h * out_w, "input_shape", MAX_ELEMENTS)
    return (N, C, H, W), (F, C, kH, kW), geom


def conv_header(op: str, xs: Shape4, ws: Shape4, geom: Geometry) -> list[str]:
    """The first lines: what is explained, for which shapes."""
    return [
        f"{op} for input (N, C, H, W) = {xs} and kernel (F, C, kH, kW) = {ws}",
        f"stride {geom.stride}, padding {geom.padding}, dilation {geom.dilation}",
        "",
        *size_lines(xs[2:], geom),
    ]


def explain_im2col(
    input_shape: Shape4,
    kernel_shape: Shape4,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    layout: str = "nchw",
) -> str:
    """How im2col turns a convolution into one matrix product, worked on aranges.

    Parameters
    ----------
    input_shape : (N, C, H, W), or (N, H, W, C) for ``layout='nhwc'``
    kernel_shape : (F, C, kH, kW)
        C must equal the input's.
    stride, dilation : int or (int, int)
    padding : int, (int, int) or 'valid'
    layout : {'nchw', 'nhwc'}
        'nhwc' explains the channels-last version instead: each image
        flattened, a flat index per window tap (``start[l] + offset[r]``, with
        the strides and paddings of each dimension), one ``np.take`` per batch,
        rows ``@`` the kernels as (kH*kW*C, F); checked equal to the NCHW
        engine's column matrix and output after a transpose, and to
        ``conv2d(x, weight, layout='nhwc')``.

    Returns
    -------
    str
        The output-size arithmetic; the index matrices ``i``, ``j``, ``d`` of
        :func:`~cnnumpy.functional.im2col_indices`; the column matrix of
        ``x = arange``; the flattened kernels; their product and its reshape to
        (N, F, out_h, out_w), checked against :func:`cnnumpy.reference.conv2d`.

    Raises
    ------
    TypeError, ValueError
        Malformed shapes, channel mismatch, bad stride/padding/dilation, or a
        kernel larger than the padded input.

    Examples
    --------
    >>> text = explain_im2col((1, 3, 4, 4), (2, 3, 2, 2))
    >>> text.splitlines()[-1]
    'Check: y against cnnumpy.reference.conv2d: equal: True'
    """
    if check_choice(layout, "layout", LAYOUTS) == "nhwc":
        return explain_im2col_nhwc(input_shape, kernel_shape, stride, padding, dilation)
    xs, ws, geom = conv_setup(input_shape, kernel_shape, stride, padding, dilation)
    (N, C, _, _), (F, _, kH, kW) = xs, ws
    (out_h, out_w), (ph, pw) = geom.out, geom.padding
    K, L = C * kH * kW, out_h * out_w
    args = ((kH, kW), stride, padding, dilation)
    x, weight = arange(xs), arange(ws)
    x_padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    d, i, j = im2col_indices(xs, *args)
    cols = functional.im2col(x, *args)
    by_index = im2col_by_index(x, *args)  # the gather, batch moved fastest
    w2d = weight.reshape(F, K)  # (F, C*kH*kW)
    y2d = w2d @ cols  # (F, L*N)
    y = y2d.reshape(F, out_h, out_w, N).transpose(3, 0, 1, 2)  # (N, F, out_h, out_w)
    r, l, n = K - 1, L - 1, N - 1  # the last entry, traced by hand below
    traced = x_padded[n, d[r, 0], i[r, l], j[r, l]]
    if traced != cols[r, l * N + n]:
        raise RuntimeError("im2col disagrees with its index matrices: a bug in cnnumpy")
    lines = conv_header("im2col", xs, ws, geom)
    lines += [
        f"So each image has L = out_h*out_w = {L} windows of C*kH*kW = {K} numbers.",
        "",
        *matrix("x = arange(N*C*H*W).reshape(N, C, H, W)", x, "x"),
    ]
    if (ph, pw) != (0, 0):
        lines += ["", *matrix("x_padded (zeros around x)", x_padded, "x_padded")]
    else:
        lines.append("No padding: x_padded is x.")
    lines += [
        "",
        "Row r = (c*kH + ky)*kW + kx of the index matrices is tap (ky, kx) of",
        "channel c; column l = oy*out_w + ox is window (oy, ox). Tap r of window l",
        "reads x_padded[n, d[r], i[r, l], j[r, l]] in every image n.",
        *matrix("i0 = tile(repeat(arange(kH)*dH, kW), C): tap rows", i[:, 0]),
        *matrix("i1 = sH*repeat(arange(out_h), out_w): window rows", i[0]),
        *matrix("i = i0[:, None] + i1[None, :]", i),
        *matrix("j0 = tile(arange(kW)*dW, kH*C): tap columns", j[:, 0]),
        *matrix("j1 = sW*tile(arange(out_w), out_h): window columns", j[0]),
        *matrix("j = j0[:, None] + j1[None, :]", j),
        *matrix("d = repeat(arange(C), kH*kW)[:, None]: tap channels", d),
        "",
        "cols = im2col(x): column l*N + n holds window l of image n (batch fastest).",
        f"For instance cols[{r}, {l * N + n}] = x_padded[{n}, d[{r}], i[{r}, {l}], "
        f"j[{r}, {l}]] = x_padded[{n}, {d[r, 0]}, {i[r, l]}, {j[r, l]}] = "
        f"{number(traced)}.",
        *matrix("cols", cols),
        check("im2col", [("im2col_by_index (x_padded[:, d, i, j])", by_index, cols)]),
        "",
        *matrix("Kernels flattened: W2d = arange(F*C*kH*kW).reshape(F, -1)", w2d),
        "",
        *matrix("y2d = W2d @ cols, (F, C*kH*kW) @ (C*kH*kW, L*N)", y2d),
        "",
        *matrix("y = y2d.reshape(F, out_h, out_w, N).transpose(3, 0, 1, 2)", y, "y"),
        check(
            "cnnumpy.reference.conv2d",
            [("y", y, reference.conv2d(x, weight, None, stride, padding, dilation))],
        ),
    ]
    return "\n".join(lines)


def explain_col2im(
    input_shape: Shape4,
    kernel_shape: Shape4,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
) -> str:
    """How col2im folds columns back, adding where windows overlap.

    Parameters and errors as :func:`explain_im2col` (F plays no part here).

    Returns
    -------
    str
        The overlap map (``col2im`` of a matrix of ones: how many windows cover
        each pixel), the fold of ``im2col(arange)`` (each pixel times its
        overlap count), the same fold by ``np.add.at``, and the adjoint identity.
    """
    xs, ws, geom = conv_setup(input_shape, kernel_shape, stride, padding, dilation)
    (N, C, _, _), (_, _, kH, kW) = xs, ws
    K, L = C * kH * kW, geom.out[0] * geom.out[1]
    args = ((kH, kW), stride, padding, dilation)
    counts = functional.col2im(np.ones((K, L * N)), xs, *args)  # (N, C, H, W)
    x = arange(xs)
    cols = functional.im2col(x, *args)
    folded = functional.col2im(cols, xs, *args)
    c = arange(cols.shape)
    left = float(np.sum(cols * c))
    right = float(np.sum(x * functional.col2im(c, xs, *args)))
    lines = conv_header("col2im", xs, ws, geom)
    lines += [
        "",
        "col2im is the adjoint of im2col, not its inverse: it adds every entry of a",
        "column matrix into the pixel im2col read it from, so a pixel that several",
        "windows cover receives the sum of their entries (the chain rule needs it).",
        "",
        *matrix(
            "Overlap map: counts = col2im(ones((C*kH*kW, L*N)))[0, 0], windows per "
            "pixel (the same in every image and channel)",
            counts[0, 0],
        ),
        "",
        *matrix("x = arange(N*C*H*W).reshape(N, C, H, W)", x, "x"),
        "",
        *matrix("cols = im2col(x)", cols),
        "",
        *matrix("folded = col2im(cols): every pixel times its count", folded, "folded"),
        check("counts * x", [("folded", folded, counts * x)]),
        check(
            "col2im",
            [("col2im_by_index (np.add.at)", col2im_by_index(cols, xs, *args), folded)],
        ),
        "",
        "Adjoint: with c = arange over the shape of cols,",
        f"  sum(im2col(x) * c) = {number(left)} and sum(x * col2im(c)) = "
        f"{number(right)}: equal: {left == right}",
    ]
    if left != right:
        raise RuntimeError("col2im is not the adjoint of im2col: a bug in cnnumpy")
    return "\n".join(lines)


def explain_conv_backward(
    input_shape: Shape4,
    kernel_shape: Shape4,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
) -> str:
    """The convolution's backward pass as two products and a col2im.

    Parameters and errors as :func:`explain_im2col`.

    Returns
    -------
    str
        With ``x``, the kernels and ``dout`` all aranges: ``dout2d``,
        ``dW = dout2d @ cols.T``, ``db``, ``dX_col = W2d.T @ dout2d`` and
        ``dx = col2im(dX_col)`` with their shapes and numbers, checked against
        :func:`cnnumpy.reference.conv2d_backward`; then the second view of
        ``dx``: a full convolution of ``dout`` (dilated by the stride) with the
        kernel rotated by 180 degrees (dilated by the dilation), padding the
        dilated kernel's size - 1 per axis, cropped and checked equal to
        col2im's ``dx``.
    """
    xs, ws, geom = conv_setup(input_shape, kernel_shape, stride, padding, dilation)
    (N, C, _, _), (F, _, kH, kW) = xs, ws
    (out_h, out_w), K = geom.out, C * kH * kW
    args = ((kH, kW), stride, padding, dilation)
    x, weight = arange(xs), arange(ws)
    cols = functional.im2col(x, *args)  # (C*kH*kW, L*N)
    w2d = weight.reshape(F, K)
    dout = arange((N, F, out_h, out_w))
    dout2d = dout.transpose(1, 2, 3, 0).reshape(F, -1)  # (F, L*N), cols' order
    dw2d = dout2d @ cols.T  # (F, C*kH*kW)
    db = dout2d.sum(axis=1)  # (F,)
    dx_col = w2d.T @ dout2d  # (C*kH*kW, L*N)
    dx = functional.col2im(dx_col, xs, *args)  # (N, C, H, W)
    _, ctx = reference.conv2d_forward(x, weight, np.zeros(F), stride, padding, dilation)
    ref_dx, ref_dw, ref_db = reference.conv2d_backward(dout, ctx)
    lines = conv_header("conv2d backward", xs, ws, geom)
    lines += [
        "",
        "Forward: cols = im2col(x), shape "
        f"{cols.shape}; W2d = weight.reshape(F, -1), shape {w2d.shape};",
        f"y = (W2d @ cols) reshaped to (N, F, out_h, out_w) = {(N, F, out_h, out_w)}.",
        "Here x, weight and the upstream gradient dout are aranges.",
        "",
        *matrix(
            "dout = arange(N*F*out_h*out_w).reshape(N, F, out_h, out_w)", dout, "dout"
        ),
        "",
        *matrix(
            "dout2d = dout.transpose(1, 2, 3, 0).reshape(F, L*N): columns in the "
            "order of cols",
            dout2d,
        ),
        "",
        *matrix("cols = im2col(x)", cols),
        "",
        *matrix("dW2d = dout2d @ cols.T, (F, L*N) @ (L*N, C*kH*kW)", dw2d),
        f"dW = dW2d.reshape(F, C, kH, kW), shape {ws}: one product, whole batch.",
        *matrix("db = dout2d.sum(axis=1)", db),
        "",
        *matrix("dX_col = W2d.T @ dout2d, (C*kH*kW, F) @ (F, L*N)", dx_col),
        "",
        *matrix("dx = col2im(dX_col), overlaps added", dx, "dx"),
        check(
            "cnnumpy.reference.conv2d_backward",
            [("dx", dx, ref_dx), ("dW", dw2d.reshape(ws), ref_dw), ("db", db, ref_db)],
        ),
        "",
        *full_convolution_view(dout, weight, dx, geom),
    ]
    return "\n".join(lines)


def full_convolution_view(
    dout: np.ndarray, weight: np.ndarray, dx: np.ndarray, geom: Geometry
) -> list[str]:
    """The second view of dx: a full convolution of dout with the rotated kernel.

    Every output entry ``dout[oy, ox]`` scatters ``dout * w`` onto the window it
    read; gathered per input pixel, that scatter is a stride-1 correlation of
    dout (spread out by the stride) with the kernel turned 180 degrees (spread
    out by the dilation), over dout padded by the dilated kernel's size - 1.
    """
    (sH, sW), (dH, dW), (ph, pw) = geom.stride, geom.dilation, geom.padding
    N, F, out_h, out_w = dout.shape
    _, C, H, W = dx.shape
    _, _, kH, kW = weight.shape
    kdH, kdW = dH * (kH - 1) + 1, dW * (kW - 1) + 1  # the dilated kernel's size
    dout_dilated = np.zeros((N, F, (out_h - 1) * sH + 1, (out_w - 1) * sW + 1))
    dout_dilated[:, :, ::sH, ::sW] = dout
    kernel_dilated = np.zeros((F, C, kdH, kdW))
    kernel_dilated[:, :, ::dH, ::dW] = weight
    # Rotate by 180 degrees and swap F and C: (C, F, kdH, kdW), C kernels of F channels.
    rotated = kernel_dilated[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    full = reference.conv2d(
        dout_dilated, np.ascontiguousarray(rotated), None, 1, (kdH - 1, kdW - 1)
    )  # (N, C, (out_h-1)*sH + kdH, (out_w-1)*sW + kdW)
    # Rows and columns of the padded input no window reached get no gradient.
    Hp, Wp = H + 2 * ph, W + 2 * pw
    dx_padded = np.zeros((N, C, Hp, Wp))
    dx_padded[:, :, : full.shape[2], : full.shape[3]] = full
    dx_full = dx_padded[:, :, ph : ph + H, pw : pw + W]  # (N, C, H, W)
    lines = [
        "Second view: dx as a full convolution of dout with the kernel rotated by",
        "180 degrees. Pixel (i, j) of the padded input receives dout[oy, ox] *",
        "w[ky, kx] from every window with i = oy*sH + ky*dH, j = ox*sW + kx*dW;",
        "gathered per pixel, that sum is a stride-1 correlation of dout with the",
        "rotated kernel, where dout is padded by (dilated kernel size - 1) per axis.",
    ]
    if (sH, sW) != (1, 1):
        lines += [
            "",
            f"Stride {(sH, sW)} > 1: dout is dilated by the stride (stride - 1 zeros",
            "between its entries), so each entry lands where its window started.",
            *matrix("dout_dilated", dout_dilated, "dout_dilated"),
        ]
    if (dH, dW) != (1, 1):
        lines += [
            "",
            f"Dilation {(dH, dW)} > 1: the kernel is dilated (dilation - 1 zeros",
            "between its taps), as the forward pass spread them over the input.",
            *matrix("kernel_dilated", kernel_dilated, "kernel_dilated"),
        ]
    lines += [
        "",
        *matrix(
            f"rot = {'kernel_dilated' if (dH, dW) != (1, 1) else 'weight'}"
            "[:, :, ::-1, ::-1].transpose(1, 0, 2, 3): rotated 180 degrees, "
            "F and C swapped",
            rotated,
            "rot",
        ),
        "",
        *matrix(
            f"full = correlate(dout{'_dilated' if (sH, sW) != (1, 1) else ''}, "
            f"rot, stride 1, padding ({kdH - 1}, {kdW - 1}))",
            full,
            "full",
        ),
    ]
    if full.shape[2:] != (Hp, Wp):
        lines.append(
            f"The padded input is {Hp}x{Wp}: its last rows or columns, which no "
            "window reached, get zeros."
        )
    lines += [
        "",
        *matrix(
            f"dx_full = full[:, :, {ph}:{ph}+H, {pw}:{pw}+W]: the padding cropped",
            dx_full,
            "dx_full",
        ),
        check("col2im's dx", [("dx_full", dx_full, dx)]),
    ]
    return lines
