"""`ConvTranspose2d`: a thin module over `cnnumpy.functional.conv_transpose2d_*`."""

from __future__ import annotations

import numpy as np

from cnnumpy import functional as F
from cnnumpy.functional.geometry import check_groups
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

__all__ = ["ConvTranspose2d"]


class ConvTranspose2d(Module):
    """2-D transposed convolution, as ``torch.nn.ConvTranspose2d``.

    The adjoint of :class:`Conv2d` with the same arguments: it maps an output
    of that convolution back to the shape of its input (up-sampling when
    strided), by col2im in the forward pass and im2col in the backward pass.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (int, int)
    stride, dilation : int or (int, int)
    padding : int or (int, int)
        Removed from each border of the output.
    output_padding : int or (int, int)
        Added to the bottom/right of the output; smaller than the stride or
        the dilation.
    groups : int
        Must divide both channel counts.
    bias : bool
    dtype : float32 (default) or float64
        The compute dtype; inputs of another dtype are converted to it.
    rng : numpy.random.Generator, optional
        Source of the initial weights (PyTorch's default init, with
        ``fan_in = out_channels // groups * kH * kW`` as PyTorch computes it
        from this weight's shape).
    impl : 'im2col' (default) or 'naive'
        The fast engine or the nested loops of :mod:`cnnumpy.reference`.

    Attributes
    ----------
    weight : Parameter, shape (in_channels, out_channels // groups, kH, kW)
    bias : Parameter, shape (out_channels,), or None

    Shape
    -----
    Output (N, out_channels, out_h, out_w) with ``out = (size - 1)*stride
    - 2*padding + dilation*(kernel - 1) + output_padding + 1``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        output_padding: int | tuple[int, int] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | tuple[int, int] = 1,
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
        self.padding = check_pair(padding, "padding", minimum=0)
        self.dilation = check_pair(dilation, "dilation", minimum=1)
        self.output_padding = check_pair(output_padding, "output_padding", minimum=0)
        if any(
            op >= max(s, d)
            for op, s, d in zip(self.output_padding, self.stride, self.dilation)
        ):
            raise ValueError(
                f"`output_padding` (={output_padding!r}) must be smaller than "
                f"`stride` (={stride!r}) or `dilation` (={dilation!r})"
            )
        check_bool(bias, "bias")
        self.dtype = check_dtype(dtype)
        self.impl = check_impl(impl)
        rng = resolve_rng(rng)
        kH, kW = self.kernel_size
        fan_in = out_channels // groups * kH * kW
        w_shape = (in_channels, out_channels // groups, kH, kW)
        self.weight = Parameter(default_uniform(w_shape, fan_in, rng, self.dtype))
        self.bias = (
            Parameter(default_uniform((out_channels,), fan_in, rng, self.dtype))
            if bias
            else None
        )
        self._ctx: F.ConvTranspose2dContext | None = None  # or the naive op's

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float_array(x, self.dtype, "x")
        y, self._ctx = ops(self.impl).conv_transpose2d_forward(
            x,
            self.weight.data,
            None if self.bias is None else self.bias.data,
            self.stride,
            self.padding,
            self.output_padding,
            self.groups,
            self.dilation,
        )
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        ctx = self._cached()
        dx, dweight, dbias = ops(self.impl).conv_transpose2d_backward(
            as_float_array(check_grad_dtype(dy), self.dtype, "dy"), ctx, self.input_grad
        )
        self.weight.accumulate_grad(dweight)
        if self.bias is not None:
            self.bias.accumulate_grad(dbias)
        return dx

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
