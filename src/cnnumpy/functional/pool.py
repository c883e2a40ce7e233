"""Max and average pooling over strided windows, with their backward passes.

Pooling needs no column matrix: a window's maximum or sum is built one kernel
tap at a time, each tap a strided view of the padded input (see ``taps``), so the
cost is kH*kW passes over the output and no copy of the input. Like the
convolution, the outputs are NCHW views of (C, H, W, N) memory.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cnnumpy.functional import _engine
from cnnumpy.functional.geometry import Geometry, pool_geometry
from cnnumpy.functional.im2col import (
    chwn,
    crop,
    nchw,
    padded_chwn,
    padded_shape,
    padded_zeros,
    taps,
)
from cnnumpy.validation import check_ctx, check_grad

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
    xp: np.ndarray | None  # max pooling: the padded input, (C, Hp, Wp, N)
    y: np.ndarray | None  # max pooling: the output, (C, out_h, out_w, N)


def max_pool2d_forward(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> tuple[np.ndarray, PoolContext]:
    """Maximum over each window.

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
        An NCHW view of (C, out_h, out_w, N) memory. A window holding NaN gives
        NaN, as in PyTorch.
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
    xp = _padded(x, geom, -np.inf)
    tap_grid = list(_tap_views(xp, geom))
    y = np.empty(tap_grid[0].shape, dtype=x.dtype)  # (C, out_h, out_w, N)

    def channels(c0: int, c1: int) -> None:
        out = y[c0:c1]
        if len(tap_grid) == 1:
            out[...] = tap_grid[0][c0:c1]
            return
        np.maximum(tap_grid[0][c0:c1], tap_grid[1][c0:c1], out=out)
        for v in tap_grid[2:]:
            np.maximum(out, v[c0:c1], out=out)

    _engine.split(channels, y.shape[0], y[0].size * len(tap_grid))
    return nchw(y), PoolContext(x.shape, geom, xp, y)


def max_pool2d_backward(dy: np.ndarray, ctx: PoolContext) -> np.ndarray:
    """Route each window's gradient to its maximal tap; overlapping windows add.

    The winner is found again by comparing each tap with the maximum, visiting
    taps in row-major window order: on ties the first maximal element gets the
    gradient, as in PyTorch's CPU kernel. Its rare cases follow it too: in a
    window holding NaN the last NaN wins, and in a window whose maximum is -inf
    the first pixel inside the input (never the padding).
    """
    check_ctx(ctx, PoolContext, "max_pool2d_forward")
    if ctx.xp is None:
        raise TypeError("`ctx` must come from max_pool2d_forward, got avg_pool2d's")
    N, C, _, _ = ctx.input_shape
    geom, xp, y = ctx.geom, ctx.xp, ctx.y
    check_grad(dy, (N, C, *geom.out))
    dyc = chwn(dy)  # (C, out_h, out_w, N)
    dxp = padded_zeros(ctx.input_shape, geom, dy.dtype)
    nan, neg = np.isnan(y), y == -np.inf
    rare = nan.any() or neg.any()

    def channels(c0: int, c1: int) -> None:
        # Windows already routed (the rare ones are routed below).
        taken = nan[c0:c1] | neg[c0:c1]
        for _, _, sh, sw in taps(geom):
            first = xp[c0:c1, sh, sw] == y[c0:c1]
            first &= ~taken  # only the first maximal tap of each window
            taken |= first
            dxp[c0:c1, sh, sw] += dyc[c0:c1] * first

    _engine.split(channels, C, y[0].size * 4 * geom.kernel[0] * geom.kernel[1])
    if rare:
        _route_rare(dxp, dyc, ctx, nan, neg)
    return crop(dxp, ctx.input_shape, geom)


def _route_rare(
    dxp: np.ndarray, dyc: np.ndarray, ctx: PoolContext, nan: np.ndarray, neg: np.ndarray
) -> None:
    """PyTorch's winners of NaN windows (last NaN) and -inf windows (first pixel)."""
    (ph, pw), (_, Hp, Wp, _) = ctx.geom.padding, padded_shape(ctx.input_shape, ctx.geom)
    H, W = ctx.input_shape[2:]
    inside = np.zeros((Hp, Wp), dtype=bool)
    inside[ph : ph + H, pw : pw + W] = True
    tap_list = list(taps(ctx.geom))
    for group, order, hit_of in (
        (neg, tap_list, lambda sh, sw: inside[sh, sw][None, :, :, None]),
        (nan, tap_list[::-1], lambda sh, sw: np.isnan(ctx.xp[:, sh, sw])),
    ):
        todo = group.copy()
        for _, _, sh, sw in order:
            hit = todo & hit_of(sh, sw)
            todo &= ~hit
            dxp[:, sh, sw] += dyc * hit


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
    A window sum is separable: sum the kH rows of each window first, then the kW
    columns of those row sums. That is kH + kW - 2 additions per output instead
    of kH * kW - 1, each over long contiguous runs of memory.
    """
    geom = pool_geometry(x, kernel_size, stride, padding)
    (kH, kW), (sH, sW), (out_h, out_w) = geom.kernel, geom.stride, geom.out
    xp = _padded(x, geom, 0.0)  # (C, Hp, Wp, N)
    C, _, Wp, N = xp.shape
    y = np.empty((C, out_h, out_w, N), dtype=x.dtype)

    def channels(c0: int, c1: int) -> None:
        rows = _sum_taps(xp[c0:c1], 1, kH, sH, out_h)  # (c, out_h, Wp, N)
        _sum_taps(rows, 2, kW, sW, out_w, out=y[c0:c1])  # (c, out_h, out_w, N)
        y[c0:c1] /= kH * kW

    _engine.split(channels, C, out_h * Wp * N * (kH + kW))
    return nchw(y), PoolContext(x.shape, geom, None, None)


def avg_pool2d_backward(dy: np.ndarray, ctx: PoolContext) -> np.ndarray:
    """Spread each window's gradient evenly, ``dy / (kH*kW)``, over its taps.

    The adjoint of the separable sum: spread over the kW columns, then over the
    kH rows.
    """
    check_ctx(ctx, PoolContext, "avg_pool2d_forward")
    N, C, _, _ = ctx.input_shape
    geom = ctx.geom
    (kH, kW), (sH, sW) = geom.kernel, geom.stride
    check_grad(dy, (N, C, *geom.out))
    shape = padded_shape(ctx.input_shape, geom)  # (C, Hp, Wp, N)
    dyc = chwn(dy)  # (C, out_h, out_w, N)
    dxp = np.empty(shape, dtype=dy.dtype)

    def channels(c0: int, c1: int) -> None:
        share = dyc[c0:c1] / (kH * kW)
        rows = _spread(share, 2, kW, sW, shape[2])  # (c, out_h, Wp, N)
        _spread(rows, 1, kH, sH, shape[1], out=dxp[c0:c1])  # (c, Hp, Wp, N)

    _engine.split(channels, C, dxp[0].size * 3)
    return crop(dxp, ctx.input_shape, geom)


def _along(axis: int, index: slice, ndim: int = 4) -> tuple[slice, ...]:
    """An index tuple selecting ``index`` on ``axis`` and everything elsewhere."""
    return (slice(None),) * axis + (index,) + (slice(None),) * (ndim - axis - 1)


def _sum_taps(
    a: np.ndarray, axis: int, k: int, s: int, n: int, out: np.ndarray | None = None
) -> np.ndarray:
    """``out[.., o, ..] = sum_i a[.., o*s + i, ..]`` for o < n, i < k.

    Into ``out`` if given, else into a new array.
    """
    span = s * (n - 1) + 1
    taps = [a[_along(axis, slice(i, i + span, s))] for i in range(k)]
    if k == 1:
        if out is None:
            return taps[0].copy()
        out[...] = taps[0]
        return out
    out = np.add(taps[0], taps[1], out=out)  # adds and stores in one pass
    for tap in taps[2:]:
        out += tap
    return out


def _spread(
    g: np.ndarray,
    axis: int,
    k: int,
    s: int,
    size: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Adjoint of :func:`_sum_taps`: every ``g[.., o, ..]`` added to its k taps.

    Into ``out`` if given (overwritten), else into a new array.
    """
    n = g.shape[axis]
    if out is None:
        out = np.empty((*g.shape[:axis], size, *g.shape[axis + 1 :]), dtype=g.dtype)
    if s != k:  # windows overlap (or skip pixels): add tap by tap
        out[...] = 0
        span = s * (n - 1) + 1
        for i in range(k):
            out[_along(axis, slice(i, i + span, s))] += g
        return out
    # Windows tile the axis: one broadcast copy writes every tap at once.
    out[_along(axis, slice(n * k, None))] = 0  # a last partial window's pixels
    tiles = out[_along(axis, slice(0, n * k))]
    # Splitting one axis in two is always a view, so this writes into ``out``.
    tiles = tiles.reshape((*g.shape[:axis], n, k, *g.shape[axis + 1 :]))
    tiles[...] = np.expand_dims(g, axis + 1)
    return out


def avg_pool2d(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> np.ndarray:
    """Average pooling as ``torch.nn.functional.avg_pool2d``."""
    return avg_pool2d_forward(x, kernel_size, stride, padding)[0]


def _padded(x: np.ndarray, geom: Geometry, value: float) -> np.ndarray:
    """(C, Hp, Wp, N) input; without padding a view (pooling reads it only once)."""
    if geom.padding == (0, 0):
        return chwn(x)
    return padded_chwn(x, geom, value)


def _tap_views(xp: np.ndarray, geom: Geometry):
    """The (C, out_h, out_w, N) view of every kernel tap, in row-major order."""
    for _, _, sh, sw in taps(geom):
        yield xp[:, sh, sw]
