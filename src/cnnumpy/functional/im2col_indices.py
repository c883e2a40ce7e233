"""im2col by index matrices: the classic walk-through, kept as the lesson.

The fast engine (:mod:`cnnumpy.functional.im2col`) copies a strided view. The
classic way to write im2col builds three integer matrices first, ``d`` (channel),
``i`` (row) and ``j`` (column), such that one fancy-indexing gather
``x_padded[:, d, i, j]`` reads every receptive field of every image at once.
Row ``r = (c*kH + ky)*kW + kx`` of the matrices is one tap of the window, column
``l = oy*out_w + ox`` one window::

    d[r, 0] = c
    i[r, l] = ky*dH + oy*sH      (= i0[r] + i1[l])
    j[r, l] = kx*dW + ox*sW      (= j0[r] + j1[l])

so ``x_padded[n, d[r, 0], i[r, l], j[r, l]]`` is the tap ``(ky, kx)`` of channel
``c`` in window ``(oy, ox)`` of image ``n``: the same entry the engine puts at
``cols[r, l*N + n]``. The functions here build the matrices with ``np.repeat``
and ``np.tile``, gather with them, and fold back with ``np.add.at``; the results
equal :func:`~cnnumpy.functional.im2col` and :func:`~cnnumpy.functional.col2im`
exactly. They are clear, not fast.
"""

from __future__ import annotations

import numpy as np

from cnnumpy.functional.geometry import Geometry, window_geometry
from cnnumpy.validation import check_array, check_shape

__all__ = ["col2im_by_index", "im2col_by_index", "im2col_indices"]


def index_geometry(
    input_shape: tuple[int, int, int, int],
    kernel_size: object,
    stride: object,
    padding: object,
    dilation: object,
    *,
    kernel_name: str = "kernel_size",
) -> Geometry:
    """Validated window geometry; ``padding`` an int, a pair or 'valid' only."""
    if isinstance(padding, str) and padding != "valid":
        raise ValueError(
            "`padding` must be an int, a pair of ints or 'valid' "
            f"('same' is a conv2d feature), got {padding!r}"
        )
    return window_geometry(
        input_shape[2:], kernel_size, stride, padding, dilation, kernel_name=kernel_name
    )


def indices(C: int, geom: Geometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`im2col_indices` for validated arguments."""
    (kH, kW), (sH, sW) = geom.kernel, geom.stride
    (dH, dW), (out_h, out_w) = geom.dilation, geom.out
    # Tap offsets inside a window, one per row r = (c*kH + ky)*kW + kx: the row
    # offset repeats along kx and the whole pattern repeats for every channel.
    i0 = np.tile(np.repeat(np.arange(kH) * dH, kW), C)  # (C*kH*kW,)
    j0 = np.tile(np.arange(kW) * dW, kH * C)  # (C*kH*kW,)
    # Window origins, one per column l = oy*out_w + ox (row-major output order).
    i1 = sH * np.repeat(np.arange(out_h), out_w)  # (out_h*out_w,)
    j1 = sW * np.tile(np.arange(out_w), out_h)  # (out_h*out_w,)
    # Every tap of every window: an outer sum.
    i = i0[:, None] + i1[None, :]  # (C*kH*kW, out_h*out_w)
    j = j0[:, None] + j1[None, :]  # (C*kH*kW, out_h*out_w)
    d = np.repeat(np.arange(C), kH * kW)[:, None]  # (C*kH*kW, 1)
    return d.astype(np.intp), i.astype(np.intp), j.astype(np.intp)


def im2col_indices(
    input_shape: tuple[int, int, int, int],
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index matrices ``(d, i, j)`` that gather every window of the padded input.

    Parameters
    ----------
    input_shape : (N, C, H, W)
        Shape of the unpadded input (N plays no part: the same indices serve
        every image).
    kernel_size, stride, dilation : int or (int, int)
        Window size, step between windows, spacing between window taps.
    padding : int, (int, int) or 'valid'
        Zeros on both sides of each spatial axis ('same' belongs to conv2d).

    Returns
    -------
    d : ndarray of intp, shape (C*kH*kW, 1)
        Channel of each window tap; broadcasts against ``i`` and ``j``.
    i, j : ndarray of intp, shape (C*kH*kW, out_h*out_w)
        Row and column, in the padded input, of tap ``r`` of window ``l``.

    Raises
    ------
    TypeError, ValueError
        Malformed ``input_shape``; non-positive kernel, stride or dilation;
        negative or 'same' padding; a window larger than the padded input.

    Shape
    -----
    ``out = floor((size + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1``
    per spatial axis.

    Examples
    --------
    Two channels of 3x3, 2x2 windows: four windows, eight taps each.

    >>> d, i, j = im2col_indices((1, 2, 3, 3), 2)
    >>> d.ravel()
    array([0, 0, 0, 0, 1, 1, 1, 1])
    >>> i
    array([[0, 0, 1, 1],
           [0, 0, 1, 1],
           [1, 1, 2, 2],
           [1, 1, 2, 2],
           [0, 0, 1, 1],
           [0, 0, 1, 1],
           [1, 1, 2, 2],
           [1, 1, 2, 2]])
    >>> j[:4]
    array([[0, 1, 0, 1],
           [1, 2, 1, 2],
           [0, 1, 0, 1],
           [1, 2, 1, 2]])
    """
    _, C, _, _ = check_shape(input_shape)
    geom = index_geometry(input_shape, kernel_size, stride, padding, dilation)
    return indices(C, geom)


def im2col_by_index(
    x: np.ndarray,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
) -> np.ndarray:
    """:func:`~cnnumpy.functional.im2col` by one fancy-indexing gather.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Input, any floating dtype (kept).
    kernel_size, stride, padding, dilation
        As in :func:`im2col_indices`.

    Returns
    -------
    cols : ndarray, shape (C*kH*kW, out_h*out_w*N)
        The engine's layout, batch fastest:
        ``cols[r, l*N + n] = x_padded[n, d[r, 0], i[r, l], j[r, l]]``;
        equal to ``im2col(x, ...)`` element for element.

    Raises
    ------
    TypeError, ValueError
        As :func:`im2col_indices`, and on a non-4-D or non-float ``x``.

    Examples
    --------
    >>> x = np.arange(8.0).reshape(2, 1, 2, 2)  # two images
    >>> im2col_by_index(x, (2, 1))  # windows (0,0) and (0,1), image fastest
    array([[0., 4., 1., 5.],
           [2., 6., 3., 7.]])
    """
    check_array(x, "x", 4, "(N, C, H, W)")
    N, C = x.shape[:2]
    geom = index_geometry(x.shape, kernel_size, stride, padding, dilation)
    d, i, j = indices(C, geom)
    ph, pw = geom.padding
    x_padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C, Hp, Wp)
    # d broadcasts against i and j: one gather reads every tap of every window.
    gathered = x_padded[:, d, i, j]  # (N, C*kH*kW, out_h*out_w)
    # Move the image axis last so that it runs fastest along a row of cols.
    K, L = i.shape
    return gathered.transpose(1, 2, 0).reshape(K, L * N)  # (C*kH*kW, L*N)


def col2im_by_index(
    cols: np.ndarray,
    input_shape: tuple[int, int, int, int],
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
) -> np.ndarray:
    """:func:`~cnnumpy.functional.col2im` by ``np.add.at``: fold, adding overlaps.

    The adjoint of :func:`im2col_by_index`: every entry of ``cols`` is added to the
    pixel it was gathered from, then the padded border is dropped.

    Parameters
    ----------
    cols : ndarray, shape (C*kH*kW, out_h*out_w*N)
        Column matrix in the engine's layout (batch fastest).
    input_shape : (N, C, H, W)
        Shape of the unpadded input.
    kernel_size, stride, padding, dilation
        As in :func:`im2col_indices`.

    Returns
    -------
    ndarray, shape input_shape
        Equal to ``col2im(cols, input_shape, ...)``.

    Raises
    ------
    TypeError, ValueError
        As :func:`im2col_indices`, and on a ``cols`` that is not a float matrix
        of the shape ``input_shape`` implies.

    Notes
    -----
    Where windows overlap, one pixel appears at several places of ``(d, i, j)``.
    A fancy-indexed ``x_padded[:, d, i, j] += cols`` would then keep only one of
    the repeated contributions (the assignment is buffered), so the unbuffered
    ``np.add.at`` is needed here; it is clear but slow. The engine avoids it with
    one strided ``+=`` per kernel offset: within one offset no two windows touch
    the same pixel, so the plain in-place addition is exact.

    Examples
    --------
    Folding ones counts the windows that cover each pixel:

    >>> ones = np.ones((4, 4))  # 2x2 windows at stride 1 over a 3x3 input
    >>> col2im_by_index(ones, (1, 1, 3, 3), 2)[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    N, C, H, W = check_shape(input_shape)
    check_array(cols, "cols", 2, "(C*kH*kW, out_h*out_w*N)")
    geom = index_geometry(input_shape, kernel_size, stride, padding, dilation)
    d, i, j = indices(C, geom)
    K, L = i.shape
    if cols.shape != (K, L * N):
        raise ValueError(
            f"`cols` must have shape {(K, L * N)} for input_shape {(N, C, H, W)}, "
            f"got {cols.shape}"
        )
    ph, pw = geom.padding
    x_padded = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    # Undo the gather's layout: the image axis back in front.
    per_image = cols.reshape(K, L, N).transpose(2, 0, 1)  # (N, C*kH*kW, L)
    np.add.at(x_padded, (slice(None), d, i, j), per_image)
    return x_padded[:, :, ph : ph + H, pw : pw + W]  # (N, C, H, W)
