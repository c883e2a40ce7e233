"""`MaxPool2d`, `AvgPool2d` and `AdaptiveAvgPool2d`."""

from __future__ import annotations

import numpy as np

from cnnumpy import functional as F
from cnnumpy.functional.geometry import pool_args
from cnnumpy.nn.impl import check_impl, ops
from cnnumpy.nn.module import Module, as_float_array
from cnnumpy.validation import check_output_size

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "MaxPool2d"]


class _Pool2d(Module):
    _op = "max_pool2d"

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        *,
        impl: str = "im2col",
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = pool_args(
            kernel_size, stride, padding
        )
        self.impl = check_impl(impl)
        self._ctx: F.PoolContext | None = None  # or the naive op's context

    def forward(self, x: np.ndarray) -> np.ndarray:
        y, self._ctx = getattr(ops(self.impl), f"{self._op}_forward")(
            as_float_array(x, name="x"), self.kernel_size, self.stride, self.padding
        )
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        ctx = self._cached()
        if not self.input_grad:
            return None
        return getattr(ops(self.impl), f"{self._op}_backward")(dy, ctx)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}"
        )


class MaxPool2d(_Pool2d):
    """Max over windows, as ``torch.nn.MaxPool2d``; padding is -inf.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size``.
    padding : int or (int, int)
        At most half the kernel.
    impl : 'im2col' (default) or 'naive'
        The fast engine or the nested loops of :mod:`cnnumpy.reference`.

    Shape
    -----
    ``out = floor((size + 2*padding - kernel) / stride) + 1``.
    """


class AvgPool2d(_Pool2d):
    """Mean over windows, as ``torch.nn.AvgPool2d`` (padded zeros are counted).

    Parameters and shape as :class:`MaxPool2d`.
    """

    _op = "avg_pool2d"


class AdaptiveAvgPool2d(Module):
    """Mean over windows sized to ``output_size``, as ``torch.nn.AdaptiveAvgPool2d``.

    Output cell ``i`` of an axis averages the inputs ``floor(i*H/out) <= h <
    ceil((i+1)*H/out)``, PyTorch's rule; ``AdaptiveAvgPool2d(1)`` is global
    average pooling, ``(N, C, H, W) -> (N, C, 1, 1)``.

    Parameters
    ----------
    output_size : int or (int or None, int or None)
        ``(out_h, out_w)``; None keeps that input size.
    impl : 'im2col' (default) or 'naive'
        The fast op (two small matrix products) or the nested loops of
        :mod:`cnnumpy.reference`.

    Shape
    -----
    ``(N, C, H, W) -> (N, C, out_h, out_w)``, for any H, W >= 1.
    """

    def __init__(
        self,
        output_size: int | tuple[int | None, int | None],
        *,
        impl: str = "im2col",
    ) -> None:
        super().__init__()
        pair = check_output_size(output_size)
        self.output_size = (
            pair[0] if isinstance(output_size, (int, np.integer)) else pair
        )
        self.impl = check_impl(impl)
        self._ctx: F.AdaptivePoolContext | None = None  # or the naive op's context

    def forward(self, x: np.ndarray) -> np.ndarray:
        y, self._ctx = ops(self.impl).adaptive_avg_pool2d_forward(
            as_float_array(x, name="x"), self.output_size
        )
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        ctx = self._cached()
        if not self.input_grad:
            return None
        return ops(self.impl).adaptive_avg_pool2d_backward(dy, ctx)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
