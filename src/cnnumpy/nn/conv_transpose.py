"""`ConvTranspose2d`: a thin module over `cnnumpy.functional.conv_transpose2d_*`."""

from __future__ import annotations

import numpy as np

from cnnumpy.functional.geometry import check_groups
from cnnumpy.nn.conv import _ConvModule
from cnnumpy.nn.impl import check_impl, ops
from cnnumpy.nn.module import as_float_array
from cnnumpy.validation import (
    check_bool,
    check_dtype,
    check_int,
    check_pair,
)

__all__ = ["ConvTranspose2d"]


class ConvTranspose2d(_ConvModule):
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

    _op = "conv_transpose2d"

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
        kH, kW = self.kernel_size
        fan_in = out_channels // groups * kH * kW
        w_shape = (in_channels, out_channels // groups, kH, kW)
        self._init_parameters(w_shape, fan_in, bias, rng)

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

    def _options(self) -> list[tuple[str, object]]:
        return [
            (name, value)
            for name, value, hidden in (
                ("padding", self.padding, (0, 0)),
                ("dilation", self.dilation, (1, 1)),
                ("output_padding", self.output_padding, (0, 0)),
                ("groups", self.groups, 1),
            )
            if value != hidden
        ]
