"""Batch normalization over every axis but the channel axis 1."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

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


def _channel_view(v: np.ndarray, ndim: int) -> np.ndarray:
    return v.reshape(-1, *([1] * (ndim - 2)))  # (C, 1, 1) for NCHW


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
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
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
    axes = (0, *range(2, x.ndim))
    count = x.size // C
    if training:
        if count < 2:
            raise ValueError(
                f"batch norm in training needs more than 1 value per channel, got "
                f"input shape {x.shape}"
            )
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += momentum * var * (count / (count - 1))
    else:
        if running_mean is None or running_var is None:
            raise ValueError(
                "`running_mean` and `running_var` are required when `training` is False"
            )
        mean, var = running_mean, running_var
    inv_std = (1 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
    x_hat = (
        x - _channel_view(mean.astype(x.dtype, copy=False), x.ndim)
    ) * _channel_view(inv_std, x.ndim)
    # y must not alias x_hat, which the backward pass reads.
    y = x_hat.copy() if weight is None else x_hat * _channel_view(weight, x.ndim)
    if bias is not None:
        y += _channel_view(bias, x.ndim)
    return y, BatchNormContext(x_hat, inv_std, weight, bias is not None, training)


def batch_norm_backward(
    dy: np.ndarray, ctx: BatchNormContext
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Gradients w.r.t. input, weight and bias.

    In training the batch statistics depend on every input, which gives
    ``dx = inv_std / M * (M * g - sum(g) - x_hat * sum(g * x_hat))`` with
    ``g = dy * weight`` and sums over the ``M`` values of each channel. In
    evaluation the statistics are constants: ``dx = g * inv_std``.

    Returns
    -------
    dx, dweight, dbias
        ``dweight`` is None without weight, ``dbias`` without bias.
    """
    check_ctx(ctx, BatchNormContext, "batch_norm_forward")
    x_hat = ctx.x_hat
    check_grad(dy, x_hat.shape)
    nd = x_hat.ndim
    axes = (0, *range(2, nd))
    dweight = (dy * x_hat).sum(axis=axes) if ctx.weight is not None else None
    dbias = dy.sum(axis=axes) if ctx.has_bias else None
    g = dy if ctx.weight is None else dy * _channel_view(ctx.weight, nd)
    inv_std = _channel_view(ctx.inv_std, nd)
    if not ctx.training:
        return g * inv_std, dweight, dbias
    M = x_hat.size // x_hat.shape[1]
    g_sum = _channel_view(g.sum(axis=axes), nd)
    gx_sum = _channel_view((g * x_hat).sum(axis=axes), nd)
    dx = (inv_std / M) * (M * g - g_sum - x_hat * gx_sum)
    return dx.astype(dy.dtype, copy=False), dweight, dbias


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
