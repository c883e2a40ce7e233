"""im2col for channels-last (NHWC) input, by flat indices and ``np.take``.

Keras and TensorFlow store images as (N, H, W, C), and the classic NumPy
course code for that layout unfolds windows differently from the NCHW engine:
each image is flattened, every window tap becomes one flat index, and one
``np.take`` gathers a row per window. The arithmetic, per dimension::

    flat(h, w, c) = (h*Wp + w)*C + c           (Wp: the padded width)
    start[l]      = oy*sH*Wp*C + ox*sW*C       (window l = oy*out_w + ox)
    offset[r]     = ky*dH*Wp*C + kx*dW*C + c   (tap r = (ky*kW + kx)*C + c)
    idx[l, r]     = start[l] + offset[r]

The rows of ``np.take(x_flat, idx, axis=1)`` are the NCHW engine's columns,
with the taps in (ky, kx, c) order instead of (c, ky, kx).
"""

from __future__ import annotations

import numpy as np

from cnnumpy import functional
from cnnumpy.explain._text import (
    MAX_ELEMENTS,
    arange,
    check,
    matrix,
    number,
    size_lines,
)
from cnnumpy.functional.im2col_indices import index_geometry
from cnnumpy.validation import check_elements, check_shape

__all__ = ["explain_im2col_nhwc"]


def explain_im2col_nhwc(
    input_shape: object,
    kernel_shape: object,
    stride: object = 1,
    padding: object = 0,
    dilation: object = 1,
) -> str:
    """:func:`~cnnumpy.explain.explain_im2col` for ``layout='nhwc'``.

    ``input_shape`` is (N, H, W, C); ``kernel_shape`` stays PyTorch's
    (F, C, kH, kW), read channels-last as (kH, kW, C, F).
    """
    N, H, W, C = check_shape(
        input_shape, "input_shape", "(N, H, W, C)", maximum=MAX_ELEMENTS
    )
    F, Ck, kH, kW = check_shape(
        kernel_shape, "kernel_shape", "(F, C, kH, kW)", maximum=MAX_ELEMENTS
    )
    if Ck != C:
        raise ValueError(
            f"`kernel_shape` must have the input's C={C} channels, got {Ck} "
            f"(kernel_shape={tuple(kernel_shape)}, input_shape={tuple(input_shape)}, "
            "layout 'nhwc')"
        )
    args = ((kH, kW), stride, padding, dilation)
    geom = index_geometry((N, C, H, W), *args, kernel_name="kernel_shape")
    (sH, sW), (dH, dW) = geom.stride, geom.dilation
    (ph, pw), (out_h, out_w) = geom.padding, geom.out
    Hp, Wp = H + 2 * ph, W + 2 * pw
    K, L = kH * kW * C, out_h * out_w
    check_elements(N * Hp * Wp * C, "input_shape", MAX_ELEMENTS)
    check_elements(N * L * K, "input_shape", MAX_ELEMENTS)

    x, weight = arange((N, H, W, C)), arange((F, C, kH, kW))
    x_padded = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))  # (N, Hp, Wp, C)
    x_flat = x_padded.reshape(N, Hp * Wp * C)
    ky, kx, c = (
        a.ravel() for a in np.meshgrid(*map(np.arange, (kH, kW, C)), indexing="ij")
    )
    offset = ky * dH * Wp * C + kx * dW * C + c  # (kH*kW*C,), taps (ky, kx, c)
    oy, ox = (
        a.ravel()
        for a in np.meshgrid(np.arange(out_h), np.arange(out_w), indexing="ij")
    )
    start = oy * sH * Wp * C + ox * sW * C  # (out_h*out_w,), windows row-major
    idx = start[:, None] + offset[None, :]  # (L, K)
    patches = np.take(x_flat, idx, axis=1)  # (N, L, K)
    rows = patches.reshape(N * L, K)  # one row per window (n, oy, ox)
    w_hwio = weight.transpose(2, 3, 1, 0).reshape(K, F)  # (kH*kW*C, F)
    y2d = rows @ w_hwio  # (N*L, F)
    y = y2d.reshape(N, out_h, out_w, F)

    # The NCHW engine on the same numbers, brought to this layout.
    x_nchw = x.transpose(0, 3, 1, 2)  # (N, C, H, W)
    cols = functional.im2col(x_nchw, *args)  # (C*kH*kW, L*N)
    cols_as_rows = (
        cols.reshape(C, kH, kW, L, N).transpose(4, 3, 1, 2, 0).reshape(N * L, K)
    )  # (N*L, kH*kW*C)
    y_engine = functional.conv2d(x_nchw, weight, None, *args[1:]).transpose(0, 2, 3, 1)
    n, l, r = N - 1, L - 1, K - 1  # the last entry, traced by hand below
    h, rest = divmod(int(idx[l, r]), Wp * C)
    w_, ch = divmod(rest, C)

    lines = [
        f"im2col, channels-last: input (N, H, W, C) = {(N, H, W, C)} and kernel "
        f"(F, C, kH, kW) = {(F, C, kH, kW)}",
        f"stride {geom.stride}, padding {geom.padding}, dilation {geom.dilation} "
        "(per dimension: (along H, along W))",
        "",
        *size_lines((H, W), geom),
        f"So each image has L = out_h*out_w = {L} windows of kH*kW*C = {K} numbers.",
        "",
        *matrix(
            "x = arange(N*H*W*C).reshape(N, H, W, C): x[n, h] has one row per "
            "pixel, its C channels side by side",
            x,
            "x",
        ),
        "",
        f"x_padded = pad(x, ((0, 0), ({ph}, {ph}), ({pw}, {pw}), (0, 0))): padding "
        f"{ph} along H and {pw} along W, shape {x_padded.shape}.",
        *matrix("x_flat = x_padded.reshape(N, Hp*Wp*C): one row per image", x_flat),
        "",
        f"In x_flat, pixel (h, w, c) sits at (h*Wp + w)*C + c: a step of Wp*C = "
        f"{Wp * C} per row, C = {C} per column, 1 per channel.",
        f"Window (oy, ox) starts at oy*sH*Wp*C + ox*sW*C = oy*{sH * Wp * C} + "
        f"ox*{sW * C}; tap (ky, kx, c) of it adds ky*dH*Wp*C + kx*dW*C + c = "
        f"ky*{dH * Wp * C} + kx*{dW * C} + c.",
        *matrix("start: one per window l = oy*out_w + ox", start),
        *matrix("offset: one per tap r = (ky*kW + kx)*C + c", offset),
        *matrix("idx = start[:, None] + offset[None, :]", idx),
        "",
        "patches = np.take(x_flat, idx, axis=1), shape (N, L, kH*kW*C); its rows,",
        "one per window (n, oy, ox), are the column matrix of this layout.",
        f"For instance rows[{n * L + l}, {r}] = x_flat[{n}, idx[{l}, {r}]] = "
        f"x_flat[{n}, {idx[l, r]}] = x_padded[{n}, {h}, {w_}, {ch}] = "
        f"{number(rows[n * L + l, r])}.",
        *matrix("rows = patches.reshape(N*L, kH*kW*C)", rows),
        check(
            "the NCHW engine's cols, transposed: cols.reshape(C, kH, kW, L, N)"
            ".transpose(4, 3, 1, 2, 0).reshape(N*L, -1)",
            [("rows", rows, cols_as_rows)],
        ),
        "",
        *matrix(
            "Kernels channels-last: W_hwio = weight.transpose(2, 3, 1, 0)"
            ".reshape(kH*kW*C, F), weight = arange(F*C*kH*kW).reshape(F, C, kH, kW)",
            w_hwio,
        ),
        "",
        *matrix("y2d = rows @ W_hwio, (N*L, kH*kW*C) @ (kH*kW*C, F)", y2d),
        "",
        *matrix("y = y2d.reshape(N, out_h, out_w, F)", y, "y"),
        check(
            "conv2d(x.transpose(0, 3, 1, 2), weight).transpose(0, 2, 3, 1)",
            [
                ("y", y, y_engine),
                (
                    "conv2d(x, weight, layout='nhwc')",
                    functional.conv2d(x, weight, None, *args[1:], layout="nhwc"),
                    y_engine,
                ),
            ],
        ),
    ]
    return "\n".join(lines)
