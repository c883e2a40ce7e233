"""`Conv2d`: a thin module over `cnnumpy.functional.conv2d_forward/backward`."""

from __future__ import annotations

import numpy as np

from cnnumpy.functional.geometry import check_groups, check_padding
from cnnumpy.nn.impl import check_impl, ops
from cnnumpy.nn.init import default_uniform, resolve_rng
from cnnumpy.nn.module import Module, as_float_array
from cnnumpy.nn.parameter import Parameter
from cnnumpy.validation import (
    check_bool,
    check_dtype,
    check_grad_dtype,
    check_int,
    check_pair,
)

__all__ = ["Conv2d"]


class _ConvModule(Module):
    """What `Conv2d` and `ConvTranspose2d` share: PyTorch's initialisation, the
    backward pass (``<_op>_backward`` of the chosen ops) and the repr."""

    _op = ""

    def _init_parameters(
        self,
        w_shape: tuple[int, int, int, int],
        fan_in: int,
        bias: bool,
        rng: np.random.Generator | None,
    ) -> None:
        rng = resolve_rng(rng)
        self.weight = Parameter(default_uniform(w_shape, fan_in, rng, self.dtype))
        self.bias = (
            Parameter(default_uniform((self.out_channels,), fan_in, rng, self.dtype))
            if bias
            else None
        )
        self._ctx = None  # the forward's context, of the fast or the naive op

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        ctx = self._cached()
        op = getattr(ops(self.impl), f"{self._op}_backward")
        dx, dweight, dbias = op(
            as_float_array(check_grad_dtype(dy), self.dtype, "dy"), ctx, self.input_grad
        )
        self.weight.accumulate_grad(dweight)
        if self.bias is not None:
            self.bias.accumulate_grad(dbias)
        return dx

    def _options(self) -> list[tuple[str, object]]:
        """The (name, value) of the arguments the repr shows beyond the sizes."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        s += "".join(f", {name}={value!r}" for name, value in self._options())
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv2d(_ConvModule):
    """2-D convolution over an (N, C, H, W) input, as ``torch.nn.Conv2d``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (int, int)
    stride, dilation : int or (int, int)
    padding : int, (int, int), 'valid' or 'same'
    groups : int
        Must divide both channel counts.
    bias : bool
    dtype : float32 (default) or float64
        The compute dtype; inputs of another dtype are converted to it.
    rng : numpy.random.Generator, optional
        Source of the initial weights (PyTorch's default init).
    impl : 'im2col' (default) or 'naive'
        The fast engine or the nested loops of :mod:`cnnumpy.reference`; same
        results, very different speed. The attribute can be changed later.

    Attributes
    ----------
    weight : Parameter, shape (out_channels, in_channels // groups, kH, kW)
    bias : Parameter, shape (out_channels,), or None

    Shape
    -----
    Output (N, out_channels, out_h, out_w) with
    ``out = floor((size + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1``.
    """

    _op = "conv2d"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        dtype: object = np.float32,
        rng: np.random.Generator | None = None,
        *,
        impl: str = "im2col",
    ) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", minimum=1)
        self.out_channels = check_int(out_channels, "out_channels", minimum=1)
        self.groups = check_groups(in_channels, out_channels, groups)
        self.kernel_size = check_pair(kernel_size, "kernel_size", minimum=1)
        self.stride = check_pair(stride, "stride", minimum=1)
        self.dilation = check_pair(dilation, "dilation", minimum=1)
        self.padding = check_padding(padding, self.stride)
        check_bool(bias, "bias")
        self.dtype = check_dtype(dtype)
        self.impl = check_impl(impl)
        kH, kW = self.kernel_size
        fan_in = in_channels // groups * kH * kW
        w_shape = (out_channels, in_channels // groups, kH, kW)
        self._init_parameters(w_shape, fan_in, bias, rng)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float_array(x, self.dtype, "x")
        y, self._ctx = ops(self.impl).conv2d_forward(
            x,
            self.weight.data,
            None if self.bias is None else self.bias.data,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
        )
        return y

    def _options(self) -> list[tuple[str, object]]:
        return [
            (name, value)
            for name, value, hidden in (
                ("padding", self.padding, ((0, 0), "valid")),
                ("dilation", self.dilation, ((1, 1),)),
                ("groups", self.groups, (1,)),
            )
            if value not in hidden
        ]
