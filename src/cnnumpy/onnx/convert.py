"""One ONNX node -> one cnnumpy module, with the shape it gives.

Each converter checks the node's attributes against what the module computes
(symmetric pads, no ceil mode, constant weights ...) and the input shape
against the weights, and raises `ONNXError` naming the node otherwise. Shapes
carry None for the batch axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from cnnumpy import nn
from cnnumpy.nn.parameter import Parameter
from cnnumpy.onnx.read import ONNXError

__all__ = ["CONVERTERS", "Node", "Shape", "attributes"]

Shape = tuple[int | None, ...]


def attributes(node: Any) -> dict[str, Any]:
    """The node's attributes as Python values."""
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


class Node:
    """A node being converted: its attributes, constant inputs, and errors."""

    def __init__(self, node: Any, constants: dict[str, np.ndarray]) -> None:
        self.node, self.constants = node, constants
        self.op = node.op_type
        self.name = repr(node.name or f"{node.op_type} -> {list(node.output)}")
        try:
            self.attrs = attributes(node)
        except (TypeError, ValueError) as err:
            raise self.error(f"unreadable attribute ({err})") from None

    def error(self, message: str) -> ONNXError:
        return ONNXError(f"node {self.name} ({self.op}): {message}")

    def const(self, i: int, what: str, required: bool = True) -> np.ndarray | None:
        inputs = self.node.input
        if i >= len(inputs) or not inputs[i]:
            if required:
                raise self.error(f"has no {what}")
            return None
        if inputs[i] not in self.constants:
            raise self.error(
                f"its {what} {inputs[i]!r} must be a constant (an initializer)"
            )
        return self.constants[inputs[i]]

    def ints(self, key: str, default: list[int]) -> list[int]:
        value = self.attrs.get(key, default)
        if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
            raise self.error(f"attribute {key!r} must be a list of ints, got {value!r}")
        if any(abs(v) > 2**31 for v in value):
            raise self.error(f"attribute {key!r} holds sizes out of range: {value}")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.attrs.get(key, default)
        if not isinstance(value, (int, float)):
            raise self.error(f"attribute {key!r} must be a number, got {value!r}")
        return value

    def expect(self, key: str, allowed: tuple, default: Any) -> None:
        value = self.attrs.get(key, default)
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        if value not in allowed:
            only = ", ".join(map(repr, allowed))
            raise self.error(f"{key}={value!r} is not supported (only {only})")

    def build(self, factory: Callable[[], nn.Module]) -> nn.Module:
        try:
            return factory()
        except (TypeError, ValueError) as err:
            raise self.error(str(err)) from None


def _f32(value: float) -> float:
    """A float32 attribute as the shortest decimal that reads back to it (1e-05)."""
    return float(str(np.float32(value)))


def _param(array: np.ndarray) -> Parameter:
    return Parameter(np.ascontiguousarray(array, dtype=np.float32))


def _rank(n: Node, shape: Shape, ranks: tuple[int, ...]) -> None:
    if len(shape) not in ranks:
        raise n.error(f"takes a {' or '.join(map(str, ranks))}-D input, got {shape}")


def _pads(n: Node, weight_hw: tuple[int, ...]) -> tuple[int, int] | str:
    """Symmetric pads as a pair; PyTorch's 'same' (more after) as 'same'."""
    n.expect("auto_pad", ("NOTSET", "VALID"), "NOTSET")
    pads = n.ints("pads", [0, 0, 0, 0])
    if len(pads) != 4 or min(pads) < 0:
        raise n.error(f"pads={pads} must be 4 non-negative ints")
    if pads[:2] == pads[2:]:
        return pads[0], pads[1]
    dil = n.ints("dilations", [1, 1])
    total = [d * (k - 1) for d, k in zip(dil, weight_hw)]
    same = [t // 2 for t in total] + [t - t // 2 for t in total]
    if pads == same and n.ints("strides", [1, 1]) == [1, 1]:
        return "same"
    raise n.error(f"asymmetric pads={pads} are not supported")


def _kernel(n: Node, hw: tuple[int, ...]) -> None:
    kernel = n.ints("kernel_shape", list(hw))
    if tuple(kernel) != tuple(hw):
        raise n.error(f"kernel_shape={kernel} disagrees with the weight's {hw}")


def _spatial(size: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _conv(n: Node, shape: Shape) -> tuple[nn.Module, Shape]:
    _rank(n, shape, (4,))
    w = n.const(1, "weight")
    b = n.const(2, "bias", required=False)
    if w.ndim != 4:
        raise n.error(f"weight of shape {w.shape}: only 2-D convolutions are read")
    group = int(n.number("group", 1))
    _kernel(n, w.shape[2:])
    padding = _pads(n, w.shape[2:])
    stride, dil = n.ints("strides", [1, 1]), n.ints("dilations", [1, 1])
    cin, cout = w.shape[1] * group, w.shape[0]
    if shape[1] != cin:
        raise n.error(f"weight takes {cin} channels, the input has {shape[1]}")
    m = n.build(
        lambda: nn.Conv2d(
            cin,
            cout,
            w.shape[2:],
            stride,
            padding,
            dil,
            group,
            bias=b is not None,
            rng=np.random.default_rng(0),
        )
    )
    m.weight = _param(w)
    if b is not None:
        m.bias = _param(b.reshape(cout))
    pad = (0, 0) if padding == "same" else padding
    if padding == "same":
        out = shape[2:]
    else:
        out = tuple(
            _spatial(shape[2 + i], w.shape[2 + i], stride[i], pad[i], dil[i])
            for i in range(2)
        )
    return m, (None, cout, *out)


def _conv_transpose(n: Node, shape: Shape) -> tuple[nn.Module, Shape]:
    _rank(n, shape, (4,))
    w = n.const(1, "weight")
    b = n.const(2, "bias", required=False)
    if w.ndim != 4:
        raise n.error(f"weight of shape {w.shape}: only 2-D convolutions are read")
    if "output_shape" in n.attrs:
        raise n.error("output_shape is not supported (give pads and output_padding)")
    group = int(n.number("group", 1))
    _kernel(n, w.shape[2:])
    padding = _pads(n, w.shape[2:])
    if padding == "same":
        raise n.error("asymmetric pads are not supported")
    stride, dil = n.ints("strides", [1, 1]), n.ints("dilations", [1, 1])
    extra = n.ints("output_padding", [0, 0])
    cin, cout = w.shape[0], w.shape[1] * group
    if shape[1] != cin:
        raise n.error(f"weight takes {cin} channels, the input has {shape[1]}")
    m = n.build(
        lambda: nn.ConvTranspose2d(
            cin,
            cout,
            w.shape[2:],
            stride,
            padding,
            extra,
            group,
            b is not None,
            dil,
            rng=np.random.default_rng(0),
        )
    )
    m.weight = _param(w)
    if b is not None:
        m.bias = _param(b.reshape(cout))
    out = tuple(
        (shape[2 + i] - 1) * stride[i]
        - 2 * padding[i]
        + dil[i] * (w.shape[2 + i] - 1)
        + extra[i]
        + 1
        for i in range(2)
    )
    return m, (None, cout, *out)


def linear(n: Node, shape: Shape, weight: np.ndarray, bias: np.ndarray | None):
    """A Linear of ``weight`` (out, in) and ``bias`` on input ``shape``."""
    out_f, in_f = weight.shape
    if shape[-1] != in_f:
        raise n.error(f"weight takes {in_f} features, the input has {shape[-1]}")
    if bias is not None:
        if bias.shape not in ((out_f,), (1, out_f)):
            raise n.error(f"bias of shape {bias.shape} for {out_f} outputs")
        bias = bias.reshape(out_f)
    m = n.build(
        lambda: nn.Linear(in_f, out_f, bias is not None, rng=np.random.default_rng(0))
    )
    m.weight = _param(weight)
    if bias is not None:
        m.bias = _param(bias)
    return m, (*shape[:-1], out_f)


def _gemm(n: Node, shape: Shape) -> tuple[nn.Module, Shape]:
    _rank(n, shape, (2,))
    n.expect("transA", (0,), 0)
    n.expect("alpha", (1.0,), 1.0)
    w = n.const(1, "weight")
    c = n.const(2, "bias", required=False)
    if c is not None:
        n.expect("beta", (1.0,), 1.0)
    if w.ndim != 2:
        raise n.error(f"weight of shape {w.shape} is not a matrix")
    return linear(n, shape, w if n.number("transB", 0) else w.T, c)


def _pool(n: Node, shape: Shape) -> tuple[nn.Module, Shape]:
    _rank(n, shape, (4,))
    kernel = n.ints("kernel_shape", [])
    if len(kernel) != 2:
        raise n.error(f"kernel_shape={kernel}: only 2-D pooling is read")
    n.expect("ceil_mode", (0,), 0)
    n.expect("storage_order", (0,), 0)
    if n.ints("dilations", [1, 1]) != [1, 1]:
        raise n.error(f"dilations={n.ints('dilations', [])} are not supported")
    if len(n.node.output) > 1 and n.node.output[1]:
        raise n.error("the indices output is not supported")
    padding = _pads(n, (1, 1))
    stride = n.ints("strides", [1, 1])
    if n.op == "AveragePool" and padding != (0, 0):
        # cnnumpy's AvgPool2d counts padded zeros, as PyTorch's default.
        n.expect("count_include_pad", (1,), 0)
    cls = nn.MaxPool2d if n.op == "MaxPool" else nn.AvgPool2d
    m = n.build(lambda: cls(tuple(kernel), tuple(stride), padding))
    out = tuple(
        _spatial(shape[2 + i], kernel[i], stride[i], padding[i]) for i in range(2)
    )
    if min(out) < 1:
        raise n.error(f"window larger than the padded input {shape}")
    return m, (*shape[:2], *out)


def _global_pool(n: Node, shape: Shape) -> tuple[nn.Module, Shape]:
    _rank(n, shape, (4,))
    return nn.AdaptiveAvgPool2d(1), (*shape[:2], 1, 1)


def _reduce_mean(n: Node, shape: Shape) -> tuple[nn.Module, Shape]:
    """A mean over H and W: global average pooling (and a flatten, without keepdims)."""
    _rank(n, shape, (4,))
    axes = n.const(1, "axes", required=False)
    axes = n.ints("axes", []) if axes is None else [int(a) for a in axes.reshape(-1)]
    if sorted(a % 4 for a in axes) != [2, 3]:
        raise n.error(f"axes={axes}: only the mean over H and W (2, 3) is read")
    pool = nn.AdaptiveAvgPool2d(1)
    if n.number("keepdims", 1):
        return pool, (*shape[:2], 1, 1)
    return nn.Sequential(pool, nn.Flatten()), shape[:2]


def _batch_norm(n: Node, shape: Shape) -> tuple[nn.Module, Shape]:
    _rank(n, shape, (2, 3, 4))
    n.expect("training_mode", (0,), 0)
    n.expect("spatial", (1,), 1)
    if len(n.node.output) > 1 and any(n.node.output[1:]):
        raise n.error("the running-statistics outputs of training are not supported")
    arrays = [
        n.const(i, what)
        for i, what in enumerate(("scale", "bias", "mean", "variance"), start=1)
    ]
    C = shape[1]
    if any(a.shape != (C,) for a in arrays):
        raise n.error(f"scale, bias, mean and variance must have shape ({C},)")
    eps = _f32(n.number("epsilon", 1e-5))
    momentum = round(1 - float(n.number("momentum", 0.9)), 6)
    cls = nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d
    m = n.build(lambda: cls(C, eps=eps, momentum=momentum))
    m.weight, m.bias = _param(arrays[0]), _param(arrays[1])
    m.running_mean = np.array(arrays[2], np.float32)
    m.running_var = np.array(arrays[3], np.float32)
    return m, shape


def _axis(n: Node, shape: Shape, default: int) -> int:
    axis = int(n.number("axis", default))
    if not -len(shape) <= axis < len(shape):
        raise n.error(f"axis={axis} out of range for a {len(shape)}-D input")
    return axis


def _flatten(n: Node, shape: Shape) -> tuple[nn.Module, Shape]:
    axis = _axis(n, shape, 1) % len(shape)
    if axis != 1:
        raise n.error(f"axis={axis}: only axis=1 (keep the batch axis) is read")
    return nn.Flatten(), (None, math.prod(shape[1:]))


def _activation(n: Node, shape: Shape) -> tuple[nn.Module, Shape]:
    if n.op == "LeakyRelu":
        return nn.LeakyReLU(_f32(n.number("alpha", 0.01))), shape
    if n.op == "Gelu":
        approx = n.attrs.get("approximate", b"none")
        approx = (
            approx.decode(errors="replace") if isinstance(approx, bytes) else approx
        )
        n.expect("approximate", ("none", "tanh"), "none")
        return nn.GELU(approx), shape
    if n.op in ("Softmax", "LogSoftmax"):
        cls = nn.Softmax if n.op == "Softmax" else nn.LogSoftmax
        return cls(_axis(n, shape, -1)), shape
    return {"Relu": nn.ReLU, "Tanh": nn.Tanh, "Sigmoid": nn.Sigmoid}[n.op](), shape


def _dropout(n: Node, shape: Shape) -> tuple[nn.Module, Shape]:
    ratio = n.const(1, "ratio", required=False)
    mode = n.const(2, "training_mode", required=False)
    if mode is not None and mode.size == 1 and bool(mode.reshape(())):
        raise n.error("training_mode=true is not supported")
    if len(n.node.output) > 1 and n.node.output[1]:
        raise n.error("the mask output is not supported")
    p = 0.5 if ratio is None or ratio.size != 1 else float(ratio.reshape(()))
    return n.build(lambda: nn.Dropout(p)), shape


CONVERTERS: dict[str, Callable[[Node, Shape], tuple[nn.Module, Shape]]] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "Gemm": _gemm,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _global_pool,
    "ReduceMean": _reduce_mean,
    "BatchNormalization": _batch_norm,
    "Flatten": _flatten,
    "Dropout": _dropout,
    **dict.fromkeys(
        ("Relu", "Tanh", "Sigmoid", "LeakyRelu", "Gelu", "Softmax", "LogSoftmax"),
        _activation,
    ),
}
