"""Batch normalization over every axis but the channel axis 1."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from cnnumpy.functional import _engine
from cnnumpy.validation import check_ctx, check_grad

__all__ = [
    "BatchNormContext",
    "batch_norm",
    "batch_norm_backward",
    "batch_norm_forward",
]


class BatchNormContext(NamedTuple):
    """What :func:`batch_norm_backward` needs from the forward pass."""

    x_hat: np.ndarray  # normalised input, shape of x
    inv_std: np.ndarray  # (C,)
    weight: np.ndarray | None
    has_bias: bool
    training: bool


def batch_norm_forward(
    x: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, BatchNormContext]:
    """Normalise each channel, then scale and shift: ``weight * x_hat + bias``.

    Parameters
    ----------
    x : ndarray, shape (N, C, *)
    running_mean, running_var : ndarray, shape (C,), or None
        Updated in place when ``training``:
        ``running = (1 - momentum) * running + momentum * batch_statistic``, with
        the unbiased batch variance for ``running_var`` (PyTorch's rule).
        Used instead of batch statistics when not ``training``.
    weight, bias : ndarray, shape (C,), optional
    training : bool
        Normalise with the batch statistics (biased variance).
    momentum, eps : float

    Returns
    -------
    y : ndarray, shape of x
    ctx : BatchNormContext

    Raises
    ------
    TypeError, ValueError
        Bad ndim or dtype, mismatched channel counts, fewer than two values per
        channel in training, missing running statistics in evaluation.
    """
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError(f"`x` must be a floating numpy.ndarray, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"`x` must be at least 2-D (N, C, *), got shape {x.shape}")
    C = x.shape[1]
    for name, v in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        if v is not None and (not isinstance(v, np.ndarray) or v.shape != (C,)):
            got = v.shape if isinstance(v, np.ndarray) else type(v).__name__
            raise ValueError(
                f"`{name}` must have shape ({C},) for {C} channels, got {got}"
            )
    count = x.size // C
    if training and count < 2:
        raise ValueError(
            f"batch norm in training needs more than 1 value per channel, got "
            f"input shape {x.shape}"
        )
    if not training and (running_mean is None or running_var is None):
        raise ValueError(
            "`running_mean` and `running_var` are required when `training` is False"
        )
    rows, back = _channel_rows(x)  # (C, M): each channel's values in one row
    x_hat = np.empty_like(rows)  # (C, M)
    y = np.empty_like(rows)  # (C, M); must not alias x_hat, which backward reads
    if training:
        mean = np.empty(C, dtype=x.dtype)
        var = np.empty(C, dtype=x.dtype)
    else:
        mean = running_mean.astype(x.dtype, copy=False)
        var = running_var.astype(x.dtype, copy=False)
        inv_std = (1 / np.sqrt(var + eps)).astype(x.dtype, copy=False)

    def channels(c0: int, c1: int) -> None:
        xr, xh, yr = rows[c0:c1], x_hat[c0:c1], y[c0:c1]
        if training:
            mean[c0:c1] = xr.sum(axis=1) / count
            np.subtract(xr, mean[c0:c1, None], out=xh)
            np.square(xh, out=yr)  # y's rows as scratch for the squares
            var[c0:c1] = yr.sum(axis=1) / count  # biased, as in normalisation
            xh *= 1 / np.sqrt(var[c0:c1, None] + eps)
        else:
            np.subtract(xr, mean[c0:c1, None], out=xh)
            xh *= inv_std[c0:c1, None]
        if weight is None:
            yr[...] = xh
        else:
            np.multiply(xh, weight[c0:c1, None], out=yr)
        if bias is not None:
            yr += bias[c0:c1, None]

    # Each channel is independent: threads take whole channels.
    _engine.split(channels, C, 6 * count)
    if training:
        inv_std = (1 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += momentum * var * (count / (count - 1))
    return back(y), BatchNormContext(
        back(x_hat), inv_std, weight, bias is not None, training
    )


def _channel_rows(
    a: np.ndarray,
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """``a`` as (C, M) rows, one per channel, and the way back to ``a``'s shape.

    The order of the M values within a row does not matter to batch norm, so
    the rows are a view whenever ``a``'s memory holds each channel in one block
    (NCHW views of the engine's (C, H, W, N) arrays do); else a copy. ``back``
    turns an array of the rows' layout into ``a``'s shape, as a view.
    """
    order = _axes_order(a)
    t = a.transpose(order)
    if not t.flags.c_contiguous:
        t = np.ascontiguousarray(t)
    inverse = np.argsort(order)
    return t.reshape(a.shape[1], -1), lambda r: r.reshape(t.shape).transpose(inverse)


def batch_norm_backward(
    dy: np.ndarray, ctx: BatchNormContext
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Gradients w.r.t. input, weight and bias.

    In training the batch statistics depend on every input, which gives
    ``dx = weight * inv_std * (dy - mean(dy) - x_hat * mean(dy * x_hat))`` with
    means over the values of each channel; ``sum(dy)`` and ``sum(dy * x_hat)``
    are also ``dbias`` and ``dweight``. In evaluation the statistics are
    constants: ``dx = weight * inv_std * dy``.

    Returns
    -------
    dx, dweight, dbias
        ``dweight`` is None without weight, ``dbias`` without bias.
    """
    check_ctx(ctx, BatchNormContext, "batch_norm_forward")
    check_grad(dy, ctx.x_hat.shape)
    x_hat, back = _channel_rows(ctx.x_hat)  # (C, M), a view of the kept array
    # dy's values in x_hat's order: a view when the two share a layout.
    dyr = np.ascontiguousarray(dy.transpose(_axes_order(ctx.x_hat)))
    dyr = dyr.reshape(x_hat.shape)  # (C, M)
    C, M = x_hat.shape
    scale = ctx.inv_std if ctx.weight is None else ctx.weight * ctx.inv_std
    dsum = np.empty(C, dtype=dyr.dtype)
    dxsum = np.empty(C, dtype=dyr.dtype)
    dx = np.empty_like(dyr)  # (C, M)

    def channels(c0: int, c1: int) -> None:
        g, xh, out = dyr[c0:c1], x_hat[c0:c1], dx[c0:c1]
        dsum[c0:c1] = g.sum(axis=1)
        np.multiply(g, xh, out=out)  # dx's rows as scratch
        dxsum[c0:c1] = out.sum(axis=1)
        if ctx.training:
            np.multiply(xh, dxsum[c0:c1, None] / M, out=out)
            np.subtract(g, out, out=out)
            out -= dsum[c0:c1, None] / M
            out *= scale[c0:c1, None]
        else:
            np.multiply(g, scale[c0:c1, None], out=out)

    _engine.split(channels, C, 6 * M)
    dweight = dxsum if ctx.weight is not None else None
    dbias = dsum if ctx.has_bias else None
    return back(dx), dweight, dbias


def _axes_order(a: np.ndarray) -> tuple[int, ...]:
    """Channel axis first, then the others from slowest to fastest in memory."""
    rest = sorted(
        (i for i in range(a.ndim) if i != 1), key=lambda i: -abs(a.strides[i])
    )
    return (1, *rest)


def batch_norm(
    x: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> np.ndarray:
    """Batch normalization as ``torch.nn.functional.batch_norm``."""
    return batch_norm_forward(
        x, running_mean, running_var, weight, bias, training, momentum, eps
    )[0]
