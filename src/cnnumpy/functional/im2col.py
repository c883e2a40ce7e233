"""im2col and col2im: the unfold/fold pair that turns convolution into a matmul.

``im2col`` copies every receptive field of a padded input into one column of a
matrix, so that a convolution of the whole batch becomes a single matrix product
with the flattened kernels. ``col2im`` is its adjoint: it folds a column matrix
back onto the input grid, *adding* where windows overlap. That sum is exactly the
chain rule: a pixel that feeds several windows receives the gradient of each.

Column layout (shared by every op in this package)::

    cols[(c * kH + i) * kW + j, (oy * out_w + ox) * N + n]
        = x_padded[n, c, oy * sH + i * dH, ox * sW + j * dW]

Rows are ordered channel-major, then kernel row, then kernel column: the order of
``weight.reshape(out_channels, -1)``. Columns run over the output positions in
row-major order with the batch fastest. So ``weight2d @ cols`` is the output of
the whole batch, one large product instead of N small ones, and the weight
gradient ``dy2d @ cols.T`` needs no sum over the batch.

Why the batch fastest? Memory layout. The engine stores activations as
(C, H, W, N) and hands them out as transposed *views* with the usual NCHW shape.
Then one kernel tap of a stride-1 window, over every image, is a single
contiguous run of ``out_w * N`` numbers, so the im2col copy, the col2im sums and
the pooling taps move long contiguous blocks instead of rows of a few pixels.
Element-wise ops keep the layout; ``np.ascontiguousarray`` gives an NCHW copy
when one is really needed.

The ops built on these (convolution, pooling) cut their work between threads
along channels or output rows; see :mod:`cnnumpy.functional._engine`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.lib.stride_tricks import as_strided

from cnnumpy.functional import _engine
from cnnumpy.functional.geometry import Geometry, window_geometry
from cnnumpy.validation import check_array, check_shape

__all__ = ["col2im", "im2col"]


def chwn(x: np.ndarray) -> np.ndarray:
    """The (C, H, W, N) view of an NCHW array: no copy."""
    return x.transpose(1, 2, 3, 0)


def nchw(a: np.ndarray) -> np.ndarray:
    """The NCHW view of a (C, H, W, N) array: no copy."""
    return a.transpose(3, 0, 1, 2)


def padded_chwn(x: np.ndarray, geom: Geometry, value: float = 0.0) -> np.ndarray:
    """(C, Hp, Wp, N) padded copy of NCHW ``x`` (``padding`` before, + ``extra`` after).

    No copy when there is no padding and ``x`` is already stored as (C, H, W, N).
    """
    xc = chwn(x)
    (ph, pw), (eh, ew) = geom.padding, geom.extra
    if ph == pw == eh == ew == 0:
        return xc if xc.flags.c_contiguous else np.ascontiguousarray(xc)
    C, H, W, N = xc.shape
    xp = np.empty((C, H + 2 * ph + eh, W + 2 * pw + ew, N), dtype=x.dtype)
    # Fill only the border, then copy the interior once.
    xp[:, :ph] = value
    xp[:, ph + H :] = value
    xp[:, ph : ph + H, :pw] = value
    xp[:, ph : ph + H, pw + W :] = value
    xp[:, ph : ph + H, pw : pw + W] = xc
    return xp


def taps(
    geom: Geometry, rows: range | None = None
) -> Iterator[tuple[int, int, slice, slice]]:
    """For each kernel offset (i, j): the slices of the padded grid it reads.

    ``xp[:, sh, sw]`` for ``(i, j, sh, sw)`` in ``taps(geom)`` is the
    ``(C, out_h, out_w, N)`` grid of the pixels that tap (i, j) of every window
    sees; no two windows share a pixel within one tap. ``rows`` limits them to
    those kernel rows ``i``.
    """
    (kH, kW), (strH, strW) = geom.kernel, geom.stride
    (dH, dW), (out_h, out_w) = geom.dilation, geom.out
    span_h, span_w = strH * (out_h - 1) + 1, strW * (out_w - 1) + 1
    for i in range(kH) if rows is None else rows:
        for j in range(kW):
            y0, x0 = i * dH, j * dW
            yield i, j, slice(y0, y0 + span_h, strH), slice(x0, x0 + span_w, strW)


def padded_shape(
    input_shape: tuple[int, int, int, int], geom: Geometry
) -> tuple[int, int, int, int]:
    """(C, Hp, Wp, N): the padded input in the engine's memory order."""
    N, C, H, W = input_shape
    (ph, pw), (eh, ew) = geom.padding, geom.extra
    return C, H + 2 * ph + eh, W + 2 * pw + ew, N


def padded_zeros(
    input_shape: tuple[int, int, int, int], geom: Geometry, dtype: np.dtype
) -> np.ndarray:
    """A zero (C, Hp, Wp, N) gradient buffer for the padded input."""
    return np.zeros(padded_shape(input_shape, geom), dtype=dtype)


def crop(
    dxp: np.ndarray, input_shape: tuple[int, int, int, int], geom: Geometry
) -> np.ndarray:
    """NCHW view of a (C, Hp, Wp, N) gradient without its padded border.

    The border's gradient goes nowhere: it belongs to constants.
    """
    H, W = input_shape[2:]
    (ph, pw) = geom.padding
    if dxp.shape[1:3] != (H, W):
        dxp = dxp[:, ph : ph + H, pw : pw + W].copy()
    return nchw(dxp)


def windows(x: np.ndarray, geom: Geometry) -> np.ndarray:
    """Read-only view ``(C, kH, kW, out_h, out_w, N)`` of every window of ``x``.

    ``view[c, i, j, oy, ox, n] == x_padded[n, c, oy*sH + i*dH, ox*sW + j*dW]``.
    The input is copied only to pad it or to store it as (C, H, W, N); im2col is
    a C-ordered copy of this view.
    """
    N, C = x.shape[:2]
    (kH, kW), (out_h, out_w) = geom.kernel, geom.out
    xp = padded_chwn(x, geom)  # (C, Hp, Wp, N)
    sC, sH, sW, sN = xp.strides
    (strH, strW), (dH, dW) = geom.stride, geom.dilation
    return as_strided(
        xp,
        shape=(C, kH, kW, out_h, out_w, N),
        strides=(sC, sH * dH, sW * dW, sH * strH, sW * strW, sN),
        writeable=False,
    )


def fold(
    cols: np.ndarray, input_shape: tuple[int, int, int, int], geom: Geometry
) -> np.ndarray:
    """col2im for validated arguments; ``cols`` is (C*kH*kW, out_h*out_w*N).

    One strided ``+=`` per kernel offset, never ``np.add.at``: within one offset
    no two windows touch the same pixel, so plain in-place addition is exact.
    """
    C = input_shape[1]
    dxp = padded_zeros(input_shape, geom, cols.dtype)
    rows = cols.reshape(C, -1, cols.shape[1])  # (C, kH*kW, L*N)

    def channels(c0: int, c1: int) -> None:
        fold_into(dxp[c0:c1], rows[c0:c1], geom)

    # Channels never share a pixel, so each thread folds its own.
    _engine.split(channels, C, rows[0].size)
    return crop(dxp, input_shape, geom)


def fold_into(
    dxp: np.ndarray,
    cols: np.ndarray,
    geom: Geometry,
    kernel_row: int | None = None,
    out_rows: tuple[int, int] | None = None,
) -> None:
    """Add columns onto a padded (C, Hp, Wp, N) grid: col2im's sum, in place.

    ``cols`` holds the rows of the same C channels, (C*kH*kW, L*N), or with
    ``kernel_row=i`` only the kW rows per channel of kernel row i,
    (C*kW, L*N); any shape of that size. With ``out_rows=(r0, r1)`` the
    columns are those of output rows r0..r1 only, (C*kH*kW, (r1-r0)*out_w*N).
    """
    C, N = dxp.shape[0], dxp.shape[3]
    (kH, kW), (out_h, out_w) = geom.kernel, geom.out
    r0, r1 = (0, out_h) if out_rows is None else out_rows
    strH = geom.stride[0]
    rows = range(kH) if kernel_row is None else range(kernel_row, kernel_row + 1)
    cols6 = cols.reshape(C, len(rows), kW, r1 - r0, out_w, N)
    for i, j, sh, sw in taps(geom, rows):
        sh = slice(sh.start + r0 * strH, sh.start + (r1 - 1) * strH + 1, strH)
        dxp[:, sh, sw] += cols6[:, i - rows.start, j]


def im2col(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
) -> np.ndarray:
    """Unfold every receptive field of ``x`` into a column.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Input, any floating dtype (kept).
    kernel_size, stride, dilation : int or (int, int)
        Window size, step between windows, spacing between window taps.
    padding : int, (int, int), 'valid' or 'same'
        Implicit padding on both sides of each spatial axis.

    Returns
    -------
    cols : ndarray, shape (C*kH*kW, out_h*out_w*N)
        ``cols[(c*kH + i)*kW + j, (oy*out_w + ox)*N + n] = x_pad[n, c,
        oy*sH + i*dH, ox*sW + j*dW]``: one column per receptive field.

    Raises
    ------
    TypeError, ValueError
        On a non-4-D or non-float ``x``, non-positive kernel/stride/dilation,
        negative padding, or a window larger than the padded input.

    Shape
    -----
    ``out = floor((size + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1``
    per spatial axis.

    Examples
    --------
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> im2col(x, 2, stride=2)
    array([[ 0.,  2.,  8., 10.],
           [ 1.,  3.,  9., 11.],
           [ 4.,  6., 12., 14.],
           [ 5.,  7., 13., 15.]])

    A convolution is then one product; its (F, out_h, out_w, N) result is the
    NCHW output once transposed (here 3 filters of ones: window sums):

    >>> w = np.ones((3, 1, 2, 2))
    >>> y = (w.reshape(3, -1) @ im2col(x, 2, stride=2)).reshape(3, 2, 2, 1)
    >>> y.transpose(3, 0, 1, 2)[0, 0]
    array([[10., 18.],
           [42., 50.]])
    """
    check_array(x, "x", 4, "(N, C, H, W)")
    geom = window_geometry(x.shape[2:], kernel_size, stride, padding, dilation)
    return unfold(x, geom)


def unfold(x: np.ndarray, geom: Geometry) -> np.ndarray:
    """im2col for validated arguments: one copy of the :func:`windows` view."""
    win = windows(x, geom)
    C, kH, kW, out_h, out_w, N = win.shape
    cols = np.empty((C * kH * kW, out_h * out_w * N), dtype=x.dtype)
    cols.reshape(win.shape)[...] = win  # the one copy
    return cols


def col2im(
    cols: np.ndarray,
    input_shape: tuple[int, int, int, int],
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
) -> np.ndarray:
    """Fold a column matrix back onto the input grid, summing overlaps.

    The exact adjoint of :func:`im2col` with the same arguments:
    ``sum(im2col(x) * c) == sum(x * col2im(c))`` for every ``x`` and ``c``.

    Parameters
    ----------
    cols : ndarray, shape (C*kH*kW, out_h*out_w*N)
        Column matrix in :func:`im2col`'s layout.
    input_shape : (N, C, H, W)
        Shape of the (unpadded) input that ``im2col`` unfolded.
    kernel_size, stride, padding, dilation
        As in :func:`im2col`.

    Returns
    -------
    ndarray, shape input_shape
        Entries of ``cols`` summed into the pixels they were read from; the
        padded border is dropped (its gradient goes nowhere). Stored as
        (C, H, W, N) (see the module notes).

    Raises
    ------
    TypeError, ValueError
        On a malformed ``input_shape`` or a ``cols`` shape that does not match it.
    """
    check_array(cols, "cols", 2, "(C*kH*kW, out_h*out_w*N)")
    N, C, H, W = check_shape(input_shape)
    geom = window_geometry((H, W), kernel_size, stride, padding, dilation)
    (kH, kW), (out_h, out_w) = geom.kernel, geom.out
    expected = (C * kH * kW, out_h * out_w * N)
    if cols.shape != expected:
        raise ValueError(
            f"`cols` must have shape {expected} for input_shape {tuple(input_shape)}, "
            f"got {cols.shape}"
        )
    return fold(cols, (N, C, H, W), geom)
