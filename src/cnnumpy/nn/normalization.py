"""`BatchNorm1d` and `BatchNorm2d`: one module, two input ranks."""

from __future__ import annotations

import numpy as np

from cnnumpy import functional as F
from cnnumpy.nn.module import Module, as_float_array
from cnnumpy.nn.parameter import Parameter
from cnnumpy.validation import (
    check_bool,
    check_dtype,
    check_grad_dtype,
    check_int,
    check_real,
)

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class _BatchNorm(Module):
    """Batch normalization over every axis but the channel axis 1.

    Subclasses say which input ranks they take (``_ndims``) and how to name the
    expected shape in errors (``_shapes``).
    """

    _buffer_names = ("running_mean", "running_var", "num_batches_tracked")
    _ndims: tuple[int, ...] = (4,)
    _shapes = "(N, {C}, H, W)"

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype: object = np.float32,
    ) -> None:
        super().__init__()
        self.num_features = check_int(num_features, "num_features", minimum=1)
        self.eps = check_real(eps, "eps", above=0)
        if momentum is not None:
            check_real(momentum, "momentum", minimum=0, maximum=1)
        self.momentum = momentum
        self.affine = check_bool(affine, "affine")
        self.track_running_stats = check_bool(
            track_running_stats, "track_running_stats"
        )
        self.dtype = check_dtype(dtype)
        C = num_features
        self.weight = Parameter(np.ones(C, dtype=self.dtype)) if affine else None
        self.bias = Parameter(np.zeros(C, dtype=self.dtype)) if affine else None
        if track_running_stats:
            self.running_mean = np.zeros(C, dtype=self.dtype)
            self.running_var = np.ones(C, dtype=self.dtype)
            self.num_batches_tracked = np.zeros((), dtype=np.int64)
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None
        self._ctx: F.BatchNormContext | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float_array(x, self.dtype, "x")
        if x.ndim not in self._ndims or x.shape[1] != self.num_features:
            expected = self._shapes.format(C=self.num_features)
            raise ValueError(f"`x` must have shape {expected}, got {x.shape}")
        use_batch_stats = self.training or not self.track_running_stats
        tracking = self.training and self.track_running_stats
        momentum = self.momentum
        if tracking and momentum is None:  # cumulative moving average
            momentum = 1.0 / float(self.num_batches_tracked + 1)
        y, self._ctx = F.batch_norm_forward(
            x,
            self.running_mean,  # updated in place in training, used in evaluation
            self.running_var,
            None if self.weight is None else self.weight.data,
            None if self.bias is None else self.bias.data,
            training=use_batch_stats,
            momentum=0.0 if momentum is None else momentum,
            eps=self.eps,
        )
        # Counted only once the batch is accepted: a failed forward changes nothing.
        if tracking:
            self.num_batches_tracked += 1
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        ctx = self._cached()
        dx, dweight, dbias = F.batch_norm_backward(
            as_float_array(check_grad_dtype(dy), self.dtype, "dy"), ctx
        )
        if self.weight is not None:
            self.weight.accumulate_grad(dweight)
            self.bias.accumulate_grad(dbias)
        return dx if self.input_grad else None

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalization over (N, C) or (N, C, L) inputs, as ``torch.nn.BatchNorm1d``.

    Statistics are taken per channel C over the batch (and the length L). The
    arguments, the buffers and the ``state_dict`` keys are those of
    :class:`BatchNorm2d` (``running_mean``, ``running_var``,
    ``num_batches_tracked``, ``weight``, ``bias``).
    """

    _ndims = (2, 3)
    _shapes = "(N, {C}) or (N, {C}, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalization over (N, C, H, W) inputs, as ``torch.nn.BatchNorm2d``.

    Parameters
    ----------
    num_features : int
        Channel count C.
    eps : float
        Added to the variance before the square root.
    momentum : float or None
        Weight of the batch statistic in the running averages; None gives the
        cumulative average over all batches seen (PyTorch's rule).
    affine : bool
        Learn ``weight`` (init 1) and ``bias`` (init 0).
    track_running_stats : bool
        Keep ``running_mean``, ``running_var`` and ``num_batches_tracked`` buffers;
        without them, evaluation also uses batch statistics.
    dtype : float32 (default) or float64
    """
