"""Explanation of max and average pooling: windows, winners, divisor, routing."""

from __future__ import annotations

import math

import numpy as np

from cnnumpy import functional, reference
from cnnumpy.explain._text import (
    MAX_ELEMENTS,
    MAX_NUMBERS,
    Shape4,
    arange,
    check,
    matrix,
    number,
    size_lines,
)
from cnnumpy.functional.geometry import pool_geometry
from cnnumpy.validation import check_elements, check_shape

__all__ = ["explain_pool"]

# At most this many windows are listed one per line.
MAX_WINDOWS = 200


def scrambled(shape: Shape4) -> tuple[np.ndarray, int]:
    """0 .. M-1 in the order ``(k * step) mod M``, step the first >= 7 prime to M.

    All values differ (no ties) and the maximum of a window moves around, where
    a plain arange would always put it at the window's last tap.
    """
    M = math.prod(shape)
    step = 7
    while math.gcd(step, M) != 1:
        step += 1
    x = (np.arange(M) * step % M).astype(np.float64).reshape(shape)
    return x, step


def explain_pool(
    input_shape: Shape4,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    kind: str = "max",
) -> str:
    """Pooling window by window, forward and backward, worked on small numbers.

    Parameters
    ----------
    input_shape : (N, C, H, W)
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size``.
    padding : int or (int, int)
        At most half the kernel (PyTorch's rule).
    kind : {'max', 'avg'}

    Returns
    -------
    str
        Every window with its values and output; for max pooling the element
        that wins, for average pooling the divisor; the routing of an arange
        upstream gradient back to the input; all checked against
        :mod:`cnnumpy.reference`.

    Raises
    ------
    TypeError, ValueError
        Malformed ``input_shape``, unknown ``kind``, bad kernel/stride/padding.

    Examples
    --------
    >>> explain_pool((1, 1, 2, 2), 2, kind="avg").splitlines()[-1]
    'Check: y, dx against cnnumpy.reference.avg_pool2d: equal: True'
    """
    xs = check_shape(input_shape, "input_shape", "(N, C, H, W)", maximum=MAX_ELEMENTS)
    if kind not in ("max", "avg"):
        raise ValueError(f"`kind` must be 'max' or 'avg', got {kind!r}")
    is_max = kind == "max"
    if is_max:
        x, step = scrambled(xs)
        about_x = f"x = (arange(N*C*H*W) * {step}) mod {x.size}, no two values equal"
    else:
        x, about_x = arange(xs), "x = arange(N*C*H*W).reshape(N, C, H, W)"
    geom = pool_geometry(x, kernel_size, stride, padding)
    (kH, kW), (sH, sW), (ph, pw) = geom.kernel, geom.stride, geom.padding
    N, C, H, W = xs
    check_elements(N * C * (H + 2 * ph) * (W + 2 * pw), "input_shape", MAX_ELEMENTS)
    x_padded = np.pad(
        x,
        ((0, 0), (0, 0), (ph, ph), (pw, pw)),
        constant_values=-np.inf if is_max else 0,
    )
    op, ref_op = (
        (functional.max_pool2d_forward, reference.max_pool2d_forward)
        if is_max
        else (functional.avg_pool2d_forward, reference.avg_pool2d_forward)
    )
    y, ctx = op(x, kernel_size, stride, padding)
    dy = arange(y.shape) + 1
    back = functional.max_pool2d_backward if is_max else functional.avg_pool2d_backward
    dx = back(dy, ctx)
    ref_y, ref_ctx = ref_op(x, kernel_size, stride, padding)
    ref_back = (
        reference.max_pool2d_backward if is_max else reference.avg_pool2d_backward
    )
    ref_dx = ref_back(dy, ref_ctx)

    lines = [
        f"{kind} pooling for input (N, C, H, W) = {xs}, kernel {geom.kernel}, "
        f"stride {geom.stride}, padding {geom.padding}",
        "",
        *size_lines(xs[2:], geom, pool=True),
        "",
        *matrix(about_x, x, "x"),
    ]
    if (ph, pw) != (0, 0):
        fill = "-inf: it never wins" if is_max else "zeros: they count in the mean"
        lines += ["", *matrix(f"x_padded (padding is {fill})", x_padded, "x_padded")]
    if is_max:
        rule = [
            "y is the largest value of each window. The element that wins gets the",
            "whole gradient; on ties the first in row-major window order wins.",
        ]
    else:
        rule = [
            f"y is the sum of each window divided by kH*kW = {kH * kW}, always: padded",
            f"zeros count (count_include_pad=True). Each pixel gets dy / {kH * kW}.",
        ]
    forward, backward = [], []
    for n, c, oy, ox in np.ndindex(*y.shape):
        if len(forward) == MAX_WINDOWS or len(forward) * kH * kW >= MAX_NUMBERS:
            rest = y.size - len(forward)
            forward.append(f"... ({rest} more windows not shown)")
            backward.append(f"... ({rest} more windows not shown)")
            break
        r0, c0 = oy * sH, ox * sW
        window = x_padded[n, c, r0 : r0 + kH, c0 : c0 + kW].ravel()
        out, g = number(y[n, c, oy, ox]), number(dy[n, c, oy, ox])
        at = f"[{n}, {c}, {oy}, {ox}]"
        if is_max:
            iy, ix = ref_ctx.argmax[n, c, oy, ox]
            vals = " ".join(number(v) for v in window)
            forward.append(f"y{at} = max({vals}) = {out}, from x[{n}, {c}, {iy}, {ix}]")
            backward.append(f"dy{at} = {g} -> dx[{n}, {c}, {iy}, {ix}]")
        else:
            vals = " + ".join(number(v) for v in window)
            forward.append(f"y{at} = ({vals}) / {kH * kW} = {out}")
            share = number(dy[n, c, oy, ox] / (kH * kW))
            where = f"x_padded[{n}, {c}, {r0}:{r0 + kH}, {c0}:{c0 + kW}]"
            backward.append(
                f"dy{at} = {g} -> {g}/{kH * kW} = {share} to each of {where}"
            )
    lines += [
        "",
        *rule,
        "Windows (y[n, c, oy, ox] reads rows oy*sH .. oy*sH + kH - 1 of x_padded):",
        *forward,
        *matrix("y", y, "y"),
        "",
        *matrix("Backward: dy = 1 + arange(N*C*out_h*out_w)", dy, "dy"),
        "Routing (where windows overlap, a pixel receives the sum):",
        *backward,
        *matrix("dx (the padding's share is dropped)", dx, "dx"),
        check(
            f"cnnumpy.reference.{kind}_pool2d",
            [("y", np.asarray(y), ref_y), ("dx", np.asarray(dx), ref_dx)],
        ),
    ]
    return "\n".join(lines)
