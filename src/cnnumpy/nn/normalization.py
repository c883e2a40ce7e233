"""`BatchNorm2d`."""

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

__all__ = ["BatchNorm2d"]


class BatchNorm2d(Module):
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

    _buffer_names = ("running_mean", "running_var", "num_batches_tracked")

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
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(
                f"`x` must have shape (N, {self.num_features}, H, W), got {x.shape}"
            )
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
