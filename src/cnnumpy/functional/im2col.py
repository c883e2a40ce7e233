"""im2col and col2im: the unfold/fold pair that turns convolution into a matmul.

``im2col`` copies every receptive field of a padded input into one column of a
matrix, so that a convolution becomes a single matrix product with the flattened
kernels. ``col2im`` is its adjoint: it folds a column matrix back onto the input
grid, *adding* where windows overlap. That sum is exactly the chain rule: a pixel
that feeds several windows receives the gradient of each.

Column layout (shared by every op in this package)::

    cols[n, (c * kH + i) * kW + j, oy * out_w + ox]
        = x_padded[n, c, oy * sH + i * dH, ox * sW + j * dW]

Rows are ordered channel-major, then kernel row, then kernel column, which is
the order of ``weight.reshape(out_channels, -1)``; columns are output positions in
row-major order, which is the order of ``y.reshape(N, out_channels, -1)``. So
``weight2d @ cols[n]`` is already the NCHW output, with no transpose.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from cnnumpy.functional._checks import Geometry, check_array, window_geometry

__all__ = ["col2im", "im2col"]


def pad_input(x: np.ndarray, geom: Geometry, value: float = 0.0) -> np.ndarray:
    """Pad the two spatial axes of ``x`` (before: ``padding``, after: + ``extra``)."""
    (ph, pw), (eh, ew) = geom.padding, geom.extra
    if ph == pw == eh == ew == 0:
        return x
    N, C, H, W = x.shape
    xp = np.empty((N, C, H + 2 * ph + eh, W + 2 * pw + ew), dtype=x.dtype)
    # Fill only the border, then copy the interior once.
    xp[:, :, :ph] = value
    xp[:, :, ph + H :] = value
    xp[:, :, ph : ph + H, :pw] = value
    xp[:, :, ph : ph + H, pw + W :] = value
    xp[:, :, ph : ph + H, pw : pw + W] = x
    return xp


def windows(xp: np.ndarray, geom: Geometry) -> np.ndarray:
    """Read-only strided view ``(N, C, kH, kW, out_h, out_w)`` of a padded input.

    ``view[n, c, i, j, oy, ox] == xp[n, c, oy*sH + i*dH, ox*sW + j*dW]``: no copy.
    """
    N, C = xp.shape[:2]
    sN, sC, sH, sW = xp.strides
    (kH, kW), (strH, strW) = geom.kernel, geom.stride
    (dH, dW), (out_h, out_w) = geom.dilation, geom.out
    return as_strided(
        xp,
        shape=(N, C, kH, kW, out_h, out_w),
        strides=(sN, sC, sH * dH, sW * dW, sH * strH, sW * strW),
        writeable=False,
    )


def unfold(x: np.ndarray, geom: Geometry, pad_value: float = 0.0) -> np.ndarray:
    """im2col for already validated arguments: one copy of the strided view."""
    N, C = x.shape[:2]
    (kH, kW), (out_h, out_w) = geom.kernel, geom.out
    cols = np.empty((N, C * kH * kW, out_h * out_w), dtype=x.dtype)
    cols.reshape(N, C, kH, kW, out_h, out_w)[...] = windows(
        pad_input(x, geom, pad_value), geom
    )
    return cols  # (N, C*kH*kW, out_h*out_w)


def fold(cols6: np.ndarray, input_shape: tuple[int, ...], geom: Geometry) -> np.ndarray:
    """col2im for validated arguments; ``cols6`` is ``(N, C, kH, kW, out_h, out_w)``.

    ``cols6`` may be a broadcast view (average pooling folds one value per window).
    One strided ``+=`` per kernel offset, never ``np.add.at``: within one offset
    no two windows touch the same pixel, so plain in-place addition is exact.
    """
    N, C, H, W = input_shape
    (kH, kW), (strH, strW) = geom.kernel, geom.stride
    (dH, dW), (out_h, out_w) = geom.dilation, geom.out
    (ph, pw), (eh, ew) = geom.padding, geom.extra
    Hp, Wp = H + 2 * ph + eh, W + 2 * pw + ew
    dxp = np.zeros((N, C, Hp, Wp), dtype=cols6.dtype)
    span_h, span_w = strH * (out_h - 1) + 1, strW * (out_w - 1) + 1
    for i in range(kH):
        for j in range(kW):
            y0, x0 = i * dH, j * dW
            dxp[:, :, y0 : y0 + span_h : strH, x0 : x0 + span_w : strW] += cols6[
                :, :, i, j
            ]
    if Hp == H and Wp == W:
        return dxp
    return np.ascontiguousarray(dxp[:, :, ph : ph + H, pw : pw + W])


def im2col(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    *,
    pad_value: float = 0.0,
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
    pad_value : float
        Value of the padded border (0 for convolution, -inf for max pooling).

    Returns
    -------
    cols : ndarray, shape (N, C*kH*kW, out_h*out_w)
        ``cols[n, (c*kH + i)*kW + j, oy*out_w + ox] = x_pad[n, c, oy*sH + i*dH,
        ox*sW + j*dW]``.

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
    >>> im2col(x, 2, stride=2)[0]
    array([[ 0.,  2.,  8., 10.],
           [ 1.,  3.,  9., 11.],
           [ 4.,  6., 12., 14.],
           [ 5.,  7., 13., 15.]])
    """
    check_array(x, "x", 4, "(N, C, H, W)")
    geom = window_geometry(x.shape[2:], kernel_size, stride, padding, dilation)
    return unfold(x, geom, pad_value)


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
    cols : ndarray, shape (N, C*kH*kW, out_h*out_w)
        Column matrix in :func:`im2col`'s layout.
    input_shape : (N, C, H, W)
        Shape of the (unpadded) input that ``im2col`` unfolded.
    kernel_size, stride, padding, dilation
        As in :func:`im2col`.

    Returns
    -------
    ndarray, shape input_shape
        Entries of ``cols`` summed into the pixels they were read from; the
        padded border is dropped (its gradient goes nowhere).

    Raises
    ------
    TypeError, ValueError
        On a malformed ``input_shape`` or a ``cols`` shape that does not match it.
    """
    if (
        not isinstance(input_shape, (tuple, list))
        or len(input_shape) != 4
        or not all(isinstance(v, (int, np.integer)) and v > 0 for v in input_shape)
    ):
        raise ValueError(
            f"`input_shape` must be 4 positive ints (N, C, H, W), got {input_shape!r}"
        )
    check_array(cols, "cols", 3, "(N, C*kH*kW, out_h*out_w)")
    N, C, H, W = (int(v) for v in input_shape)
    geom = window_geometry((H, W), kernel_size, stride, padding, dilation)
    (kH, kW), (out_h, out_w) = geom.kernel, geom.out
    expected = (N, C * kH * kW, out_h * out_w)
    if cols.shape != expected:
        raise ValueError(
            f"`cols` must have shape {expected} for input_shape {tuple(input_shape)}, "
            f"got {cols.shape}"
        )
    return fold(cols.reshape(N, C, kH, kW, out_h, out_w), (N, C, H, W), geom)
