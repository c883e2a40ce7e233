"""2-D convolution (cross-correlation, as in every deep-learning library) by im2col."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from cnnumpy.functional import _engine
from cnnumpy.functional.geometry import Geometry, conv_geometry
from cnnumpy.functional.im2col import (
    chwn,
    crop,
    fold_into,
    nchw,
    padded_zeros,
    windows,
)
from cnnumpy.functional.layout import from_nchw, to_nchw
from cnnumpy.validation import check_ctx, check_grad

__all__ = ["Conv2dContext", "conv2d", "conv2d_backward", "conv2d_forward"]

# Each thread fills the column matrix a block of output rows at a time and
# multiplies each block while it is still in cache, one BLAS call a block. A
# block must be large enough that its call and its Python are worth it, and
# small enough to stay in the cache of the core that filled it. Counted in
# elements, not bytes: the sizes that pay follow the product's shape. OpenBLAS's
# AVX-512 kernels run a thin product (LeNet-5's first convolution: few kernels,
# few taps) much faster when each call is small, so the block is the smallest
# that still leaves the calls and their Python cheap; on AVX2 the size hardly
# mattered across this range. benchmarks/conv_blocks.py times the sizes.
# Chosen by A/B runs; see benchmarks/results-lenet.md#engine-constants
BLOCK_ELEMENTS = 1 << 17


class Conv2dContext(NamedTuple):
    """What :func:`conv2d_backward` needs from the forward pass.

    The column matrix, the largest array of a CNN, is not kept: the backward
    pass unfolds ``x`` again, a cache-sized block at a time, as the forward
    pass did. Its columns have the batch fastest, like every array of the
    engine: a gradient ``dy`` of shape (N, F, out_h, out_w) lines up with them
    as ``dy.transpose(1, 2, 3, 0).reshape(F, -1)``.
    ``weight`` and ``x`` are the forward's arrays themselves, not copies: change
    one in place before the backward pass (a finite-difference check, an
    optimizer step) and the backward uses the new values. PyTorch raises in
    that case; here it is on you to run backward first.
    """

    x: np.ndarray  # (N, C, H, W), the input
    weight: np.ndarray
    has_bias: bool
    geom: Geometry
    groups: int
    layout: str = "nchw"  # of the caller's x and y; the engine's are NCHW views


def conv2d_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    layout: str = "nchw",
) -> tuple[np.ndarray, Conv2dContext]:
    """Convolve ``x`` with ``weight`` and keep what the backward pass needs.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    weight : ndarray, shape (F, C // groups, kH, kW)
        Same dtype as ``x``.
    bias : ndarray, shape (F,), optional
    stride, dilation : int or (int, int)
    padding : int, (int, int), 'valid' or 'same'
        'same' keeps H and W (stride 1 only); an odd total padding puts the extra
        row/column at the bottom/right, as PyTorch does.
    groups : int
        Input and output channels are split into ``groups`` independent
        convolutions; both channel counts must be divisible by it.
    layout : {'nchw', 'nhwc'}
        How ``x`` and ``y`` (and, in the backward pass, ``dy`` and ``dx``) hold
        their axes: 'nhwc' is channels-last, (N, H, W, C), as Keras stores
        images. The weight is (F, C // groups, kH, kW) in both layouts. See
        :mod:`cnnumpy.functional.layout`: the NHWC arrays are views of the
        NCHW engine's, so the results are the same bits.

    Returns
    -------
    y : ndarray, shape (N, F, out_h, out_w), or (N, out_h, out_w, F) for 'nhwc'
        A view of (F, out_h, out_w, N) memory (see
        :mod:`cnnumpy.functional.im2col`).
    ctx : Conv2dContext

    Raises
    ------
    TypeError, ValueError
        Wrong ndim or dtype, channel count not matching the weight, groups not
        dividing the channels, bad stride/padding/dilation, kernel larger than
        the padded input, a layout other than 'nchw' or 'nhwc'.

    Shape
    -----
    ``out = floor((size + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1``.

    Notes
    -----
    With ``cols = im2col(x)`` of shape (C*kH*kW, L*N) and the kernels flattened to
    (F, C*kH*kW), the whole batch is ``y2d = weight2d @ cols``: one matrix product
    (one per group). Each thread unfolds a block of its output rows at a time
    into a small buffer of its own and multiplies it while it is in cache, so
    the full column matrix is never written.

    Examples
    --------
    Channels-last in, channels-last out:

    >>> x = np.ones((2, 5, 5, 3))  # (N, H, W, C)
    >>> y, ctx = conv2d_forward(x, np.ones((4, 3, 3, 3)), layout="nhwc")
    >>> y.shape
    (2, 3, 3, 4)
    >>> conv2d_backward(np.ones_like(y), ctx)[0].shape
    (2, 5, 5, 3)
    """
    if layout != "nchw":
        x = to_nchw(x, layout)  # (N, C, H, W), a view
    geom = conv_geometry(x, weight, bias, stride, padding, dilation, groups)
    N, C = x.shape[:2]
    F = weight.shape[0]
    (kH, kW), (out_h, out_w) = geom.kernel, geom.out
    row = out_w * N  # columns per output row
    shape = (C * kH * kW, out_h * row)
    win = windows(x, geom)  # (C, kH, kW, out_h, out_w, N), a view
    w3 = weight.reshape(groups, F // groups, -1)  # (g, F/g, Cg*kH*kW)
    y3 = np.empty((groups, F // groups, shape[1]), dtype=x.dtype)  # (g, F/g, L*N)
    blocks = _blocks(shape[0] * N, out_h, out_w)
    b3 = None if bias is None else bias.reshape(groups, F // groups, 1)

    def out_rows(start: int, stop: int) -> None:
        cols = _engine.scratch(shape[0] * blocks.size * N, x.dtype, "cols")
        for a, b, o0, o1 in blocks.of(start, stop):
            c0, c1 = (a * out_w + o0) * N, ((b - 1) * out_w + o1) * N
            taps = win[:, :, :, a:b, o0:o1]  # (C, kH, kW, b-a, o1-o0, N)
            block = cols[: shape[0] * (c1 - c0)].reshape(shape[0], c1 - c0)
            block.reshape(taps.shape)[...] = taps  # im2col of this block
            yb = y3[:, :, c0:c1]
            np.matmul(w3, block.reshape(groups, shape[0] // groups, -1), out=yb)
            if b3 is not None:
                yb += b3

    # Each thread fills and multiplies its own share of the output rows, in
    # blocks that stay in its cache. (This product's output is large, so
    # np.matmul lets go of the GIL.)
    _engine.split_blas(out_rows, out_h, shape[0] * row * F)
    y2 = y3.reshape(F, -1)  # (F, L*N)
    y = nchw(y2.reshape(F, out_h, out_w, N))
    ctx = Conv2dContext(x, weight, bias is not None, geom, groups, layout)
    return from_nchw(y, layout), ctx


class _Blocks(NamedTuple):
    """Blocks of output positions whose columns fit in BLOCK_ELEMENTS."""

    rows: int  # whole output rows per block, or 1 and ...
    step: int  # ... at most this many output columns per block
    out_w: int

    @property
    def size(self) -> int:
        """Output positions in the largest block."""
        return self.rows * self.step

    def of(self, start: int, stop: int) -> Iterator[tuple[int, int, int, int]]:
        """``(a, b, o0, o1)``: rows a..b, columns o0..o1, covering rows start..stop.

        Blocks of equal size (within one row or column): 28 rows at most 9 a
        block are 4 blocks of 7, not 3 of 9 and 1 of 1, and a block has only
        the BLAS call and the Python of one block to pay for.
        """
        if self.step == self.out_w:
            for a, b in _even(start, stop, self.rows):
                yield a, b, 0, self.out_w
            return
        cuts = _even(0, self.out_w, self.step)  # a row is too big: cut it too
        for a in range(start, stop):
            for o0, o1 in cuts:
                yield a, a + 1, o0, o1


def _even(start: int, stop: int, most: int) -> list[tuple[int, int]]:
    """As few ranges of at most ``most`` as cover start..stop, sizes within 1."""
    n = stop - start
    if n <= 0:
        return []
    return [(start + a, start + b) for a, b in _engine.ranges(n, -(-n // most))]


def _blocks(per_position: int, out_h: int, out_w: int) -> _Blocks:
    """Blocks for columns of ``per_position`` elements per output position."""
    per_row = per_position * out_w
    if per_row == 0:  # an empty batch: nothing to cut
        return _Blocks(out_h, out_w, out_w)
    if per_row <= BLOCK_ELEMENTS:
        return _Blocks(min(out_h, BLOCK_ELEMENTS // per_row), out_w, out_w)
    return _Blocks(1, max(1, BLOCK_ELEMENTS // per_position), out_w)


def conv2d_backward(
    dy: np.ndarray, ctx: Conv2dContext, input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`conv2d_forward` w.r.t. input, weight and bias.

    Parameters
    ----------
    dy : ndarray, shape (N, F, out_h, out_w)
        Gradient of the loss w.r.t. the output; (N, out_h, out_w, F) if the
        forward pass had ``layout='nhwc'`` (and ``dx`` is then NHWC too).
    ctx : Conv2dContext
        From :func:`conv2d_forward`.
    input_grad : bool
        Compute ``dx``. The first layer of a network can skip it (its input is
        data), which saves the layer's largest product and its col2im.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W), or None if ``input_grad`` is False
        ``col2im(weight2d.T @ dy2d)``: every output position sends its gradient
        back to the pixels of its window, summed where windows overlap. For
        stride 1, an output as large as the input and no more output channels
        than input ones, the same sums are made as a forward convolution of
        ``dy`` with the kernels rotated 180 degrees (the "full" convolution
        that ``cnnumpy explain conv-backward`` shows), which is faster there.
    dweight : ndarray, shape of weight
        ``dy2d @ cols.T``: one product covers the whole batch.
    dbias : ndarray, shape (F,), or None if the forward had no bias
        ``dy`` summed over batch and positions.

    Notes
    -----
    ``dx`` and ``dweight`` need nothing from each other. On two threads they
    are computed side by side, one thread each (when big enough to be worth a
    thread, and BLAS's threads can be held); otherwise one after the other,
    each cut across the threads.
    """
    check_ctx(ctx, Conv2dContext, "conv2d_forward")
    N, F = ctx.x.shape[0], ctx.weight.shape[0]
    if ctx.layout != "nchw":
        # dy and dx in the caller's layout: views of the engine's NCHW arrays.
        check_grad(dy, (N, *ctx.geom.out, F))
        # Stored as the engine stores it, (F, out_h, out_w, N): the copy that
        # chwn(dy).reshape would make anyway, and the same bits as an NCHW dy.
        dy = nchw(np.ascontiguousarray(dy.transpose(3, 1, 2, 0)))  # (N, F, oh, ow)
        nchw_ctx = ctx._replace(layout="nchw")
        dx, dweight, dbias = conv2d_backward(dy, nchw_ctx, input_grad)
        return (None if dx is None else from_nchw(dx, ctx.layout)), dweight, dbias
    check_grad(dy, (N, F, *ctx.geom.out))
    # Free when dy is stored (F, out_h, out_w, N), as the ops here make it.
    dy2 = chwn(dy).reshape(F, -1)  # (F, L*N)
    dbias = dy2.sum(axis=1) if ctx.has_bias else None
    if not input_grad:
        return None, _weight_grad(dy2, ctx), dbias
    # Two independent products of F x C*kH*kW x L*N multiply-adds each.
    input_grad_of = _input_grad_by_conv if _by_conv(ctx) else _input_grad
    dx, dweight = _engine.together(
        [lambda: input_grad_of(dy2, ctx), lambda: _weight_grad(dy2, ctx)],
        ctx.weight.size * dy2.shape[1],
    )
    return dx, dweight, dbias


def _weight_grad(dy2: np.ndarray, ctx: Conv2dContext) -> np.ndarray:
    """``dy2d @ cols.T``, with the columns unfolded again a block at a time.

    Each thread unfolds blocks of its share of the output rows into a buffer
    of its own and adds ``dy_block @ block.T`` to its partial sum, so the full
    matrix is never written; the partial sums are added at the end. The rows
    are cut by the thread count even inside a part (and run there in turn), so
    the bits do not depend on whether the input gradient ran beside it.
    """
    x, geom, g = ctx.x, ctx.geom, ctx.groups
    N, C = x.shape[:2]
    F = ctx.weight.shape[0]
    (kH, kW), (out_h, out_w) = geom.kernel, geom.out
    K, row = C * kH * kW, out_w * N
    Fg, Kg = F // g, K // g
    win = windows(x, geom)  # (C, kH, kW, out_h, out_w, N), a view
    blocks = _blocks(K * N, out_h, out_w)

    def out_rows(start: int, stop: int, acc: np.ndarray) -> None:
        cols = _engine.scratch(K * blocks.size * N, x.dtype, "cols")
        dys = _engine.scratch(F * blocks.size * N, x.dtype, "dy")
        for a, b, o0, o1 in blocks.of(start, stop):
            c0, c1 = (a * out_w + o0) * N, ((b - 1) * out_w + o1) * N
            taps = win[:, :, :, a:b, o0:o1]  # (C, kH, kW, b-a, o1-o0, N)
            block = cols[: K * (c1 - c0)].reshape(K, c1 - c0)  # (C*kH*kW, n)
            block.reshape(taps.shape)[...] = taps
            dyb = dys[: F * (c1 - c0)].reshape(F, c1 - c0)  # (F, n), contiguous
            dyb[...] = dy2[:, c0:c1]
            for gi in range(g):
                # block @ dyb.T, not dyb @ block.T: the same sum, but BLAS
                # runs it faster with the long axis of the (few) rows of dy
                # in the second operand (benchmarks/conv_paths.py times both).
                # Contiguous operands, so np.dot lets go of the GIL.
                acc[gi] += np.dot(
                    block[gi * Kg : (gi + 1) * Kg], dyb[gi * Fg : (gi + 1) * Fg].T
                )

    k = _engine.gemm_parts(out_h, K * row * F, nested=True)  # see the docstring
    pieces = _engine.ranges(out_h, k)
    partial = np.zeros((len(pieces), g, Kg, Fg), dtype=x.dtype)  # one per thread
    with _engine.blas_single_thread():
        _engine.run(
            [lambda i=i, p=p: out_rows(*p, partial[i]) for i, p in enumerate(pieces)],
            key=_engine.gauge_key(out_rows, K * row * F),
        )
    dw = partial.sum(axis=0).transpose(0, 2, 1)  # (g, Fg, Kg)
    return np.ascontiguousarray(dw).reshape(ctx.weight.shape)


def _input_grad(dy2: np.ndarray, ctx: Conv2dContext) -> np.ndarray:
    """``col2im(weight2d.T @ dy2)``, each thread on its own input channels.

    A thread makes the rows of ``weight2d.T @ dy2`` for its channels a block
    of output rows and one kernel row at a time (kW rows per channel, small
    enough to stay in its cache) and folds them at once; the full matrix is
    never written.
    """
    N, C = ctx.x.shape[:2]
    F, g = ctx.weight.shape[0], ctx.groups
    (kH, kW), Cg = ctx.geom.kernel, C // g
    out_h, out_w = ctx.geom.out
    w5 = ctx.weight.reshape(g, F // g, Cg, kH, kW)
    dy3 = dy2.reshape(g, F // g, -1)  # (g, F/g, L*N)
    dxp = padded_zeros(ctx.x.shape, ctx.geom, dy2.dtype)  # (C, Hp, Wp, N)
    row = out_w * N  # columns per output row
    if row == 0:  # an empty batch: nothing to fold
        return crop(dxp, ctx.x.shape, ctx.geom)

    def channels(c0: int, c1: int) -> None:
        for gi in range(c0 // Cg, (c1 - 1) // Cg + 1):  # the groups c0..c1 touch
            a, b = max(c0, gi * Cg), min(c1, (gi + 1) * Cg)
            w = w5[gi, :, a - gi * Cg : b - gi * Cg]  # (F/g, b-a, kH, kW)
            # One ((b-a)*kW, F/g) matrix per kernel row.
            # C-ordered: np.matmul runs a transposed (F-ordered) operand as
            # fast alone, but two threads doing so took as long as one.
            wT = [
                np.ascontiguousarray(w[:, :, i].reshape(F // g, -1).T)
                for i in range(kH)
            ]
            per_row = (b - a) * kW * row  # elements of one output row
            step = max(1, BLOCK_ELEMENTS // max(1, per_row))
            buf = _engine.scratch(
                (b - a) * kW * min(step, out_h) * row, dy2.dtype, "dx"
            )
            for r0 in range(0, out_h, step):
                r1 = min(r0 + step, out_h)
                d = dy3[gi][:, r0 * row : r1 * row]  # (F/g, n)
                part = buf[: (b - a) * kW * d.shape[1]].reshape(-1, d.shape[1])
                for i in range(kH):
                    np.matmul(wT[i], d, out=part)
                    fold_into(dxp[a:b], part, ctx.geom, kernel_row=i, out_rows=(r0, r1))

    _engine.split_blas(channels, C, kH * kW * dy2.shape[1] * (F // g))
    return crop(dxp, ctx.x.shape, ctx.geom)


def _by_conv(ctx: Conv2dContext) -> bool:
    """Whether :func:`_input_grad_by_conv` applies and pays.

    It applies with stride 1, no extra padding and no padding wider than the
    dilated kernel's reach. Its product has one row per input channel and
    sums over the output channels, where col2im's has kH*kW rows per input
    channel; it unfolds ``dy`` where col2im adds back the products. It pays
    when the output is as large as the input ('same' padding, as in ResNets)
    and has no more channels than the input, on one thread and two. A 'valid'
    convolution (LeNet-5's second) would multiply the zeros of a border as
    wide as the kernel, and a widening one (1 -> 6 channels) unfolds more than
    col2im adds: both are slower this way. Timed by benchmarks/conv_paths.py.
    """
    geom, (C, H, W) = ctx.geom, ctx.x.shape[1:]
    (kH, kW), (dH, dW) = geom.kernel, geom.dilation
    (ph, pw), (eh, ew) = geom.padding, geom.extra
    out_h, out_w = geom.out
    return (
        geom.stride == (1, 1)
        and eh == ew == 0
        and ph <= dH * (kH - 1)
        and pw <= dW * (kW - 1)
        and out_h * out_w >= H * W
        and ctx.weight.shape[0] <= C
    )


def _input_grad_by_conv(dy2: np.ndarray, ctx: Conv2dContext) -> np.ndarray:
    """The input gradient of a stride-1 convolution as a forward convolution.

    ``dx`` is the "full" convolution of ``dy`` with each kernel rotated 180
    degrees and its in and out channels swapped, padded by the dilated
    kernel's reach less the forward padding (``cnnumpy explain conv-backward``
    shows why): the same sums as ``col2im(weight2d.T @ dy2)``, in another
    order. It unfolds ``dy`` and multiplies, as the forward pass does, which
    costs less than folding the product back with col2im's adds.
    """
    N, C = ctx.x.shape[:2]
    F, g = ctx.weight.shape[0], ctx.groups
    (kH, kW), (dH, dW) = ctx.geom.kernel, ctx.geom.dilation
    (ph, pw), (out_h, out_w) = ctx.geom.padding, ctx.geom.out
    Cg, Fg = C // g, F // g
    # (g, F/g, C/g, kH, kW) -> (g, C/g, F/g, kH, kW), rotated: (C, F/g, kH, kW).
    w5 = ctx.weight.reshape(g, Fg, Cg, kH, kW)[:, :, :, ::-1, ::-1]
    flipped = np.ascontiguousarray(w5.transpose(0, 2, 1, 3, 4)).reshape(C, Fg, kH, kW)
    dy = nchw(dy2.reshape(F, out_h, out_w, N))
    padding = (dH * (kH - 1) - ph, dW * (kW - 1) - pw)
    dx, _ = conv2d_forward(dy, flipped, None, 1, padding, (dH, dW), g)
    return dx


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    layout: str = "nchw",
) -> np.ndarray:
    """2-D convolution as ``torch.nn.functional.conv2d``; see :func:`conv2d_forward`."""
    return conv2d_forward(x, weight, bias, stride, padding, dilation, groups, layout)[0]
