"""The ONNX nodes of each cnnumpy module, written into a `Graph`.

Each writer appends the nodes that compute the module's evaluation-mode
forward pass and returns the name of its output tensor. Parameters become
initializers named by their ``state_dict`` keys.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from cnnumpy import nn
from cnnumpy.functional.geometry import resolve_padding

__all__ = [
    "ELEMENTWISE",
    "GELU_OPSET",
    "Graph",
    "adaptive",
    "batch_norm",
    "conv",
    "conv_transpose",
    "flatten",
    "gelu",
    "linear",
    "pool",
]

# From this opset on GELU is one operator; before it, erf or tanh arithmetic.
GELU_OPSET = 20


class Graph:
    """The nodes and initializers being written, with fresh tensor names."""

    def __init__(self, opset: int) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.opset = opset
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._names: set[str] = set()

    def name(self, base: str) -> str:
        name, i = base, 0
        while name in self._names:
            i += 1
            name = f"{base}_{i}"
        self._names.add(name)
        return name

    def constant(self, name: str, array: np.ndarray) -> str:
        """An initializer holding ``array`` (float arrays as float32)."""
        array = np.asarray(array)
        if array.dtype.kind == "f":
            array = array.astype(np.float32)
        name = self.name(name)
        self.initializers.append(self.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], path: str, **attrs: Any) -> str:
        """Append a node; return the name of its one output."""
        node_name = self.name(f"{path}/{op}")
        out = self.name(f"{node_name}_output_0")
        self.nodes.append(
            self.helper.make_node(op, inputs, [out], name=node_name, **attrs)
        )
        return out


def onnx_pads(before: tuple[int, int], after: tuple[int, int]) -> list[int]:
    """ONNX's pads: (top, left, bottom, right)."""
    return [before[0], before[1], after[0], after[1]]


def conv(g: Graph, m: nn.Conv2d, x: str, path: str, prefix: str) -> str:
    before, extra = resolve_padding(m.padding, m.stride, m.kernel_size, m.dilation)
    after = (before[0] + extra[0], before[1] + extra[1])
    inputs = [x, g.constant(prefix + "weight", m.weight.data)]
    if m.bias is not None:
        inputs.append(g.constant(prefix + "bias", m.bias.data))
    return g.node(
        "Conv",
        inputs,
        path,
        kernel_shape=list(m.kernel_size),
        strides=list(m.stride),
        pads=onnx_pads(before, after),
        dilations=list(m.dilation),
        group=m.groups,
    )


def conv_transpose(
    g: Graph, m: nn.ConvTranspose2d, x: str, path: str, prefix: str
) -> str:
    inputs = [x, g.constant(prefix + "weight", m.weight.data)]
    if m.bias is not None:
        inputs.append(g.constant(prefix + "bias", m.bias.data))
    return g.node(
        "ConvTranspose",
        inputs,
        path,
        kernel_shape=list(m.kernel_size),
        strides=list(m.stride),
        pads=onnx_pads(m.padding, m.padding),
        output_padding=list(m.output_padding),
        dilations=list(m.dilation),
        group=m.groups,
    )


def linear(g: Graph, m: nn.Linear, x: str, path: str, prefix: str, ndim: int) -> str:
    weight = g.constant(prefix + "weight", m.weight.data)
    bias = None if m.bias is None else g.constant(prefix + "bias", m.bias.data)
    if ndim == 2:
        inputs = [x, weight] if bias is None else [x, weight, bias]
        return g.node("Gemm", inputs, path, alpha=1.0, beta=1.0, transB=1)
    # Gemm takes matrices only: (*, in) @ (in, out), then the bias.
    weight_t = g.node("Transpose", [weight], path, perm=[1, 0])
    y = g.node("MatMul", [x, weight_t], path)
    return y if bias is None else g.node("Add", [y, bias], path)


def pool(g: Graph, m: nn.MaxPool2d | nn.AvgPool2d, x: str, path: str) -> str:
    attrs: dict[str, Any] = {
        "kernel_shape": list(m.kernel_size),
        "strides": list(m.stride),
        "pads": onnx_pads(m.padding, m.padding),
        "ceil_mode": 0,
    }
    if isinstance(m, nn.AvgPool2d):
        # cnnumpy's average counts the padded zeros, as PyTorch's default.
        return g.node("AveragePool", [x], path, count_include_pad=1, **attrs)
    return g.node("MaxPool", [x], path, **attrs)


def adaptive(
    g: Graph, m: nn.AdaptiveAvgPool2d, x: str, path: str, shape: tuple[int, ...]
) -> str:
    H, W = shape[2:]
    size = m.output_size if isinstance(m.output_size, tuple) else (m.output_size,) * 2
    out_h, out_w = (
        (H if size[0] is None else size[0]),
        (W if size[1] is None else size[1]),
    )
    if (out_h, out_w) == (1, 1):
        return g.node("GlobalAveragePool", [x], path)
    if H % out_h or W % out_w:
        where = path.strip("/") or "the model"
        raise ValueError(
            f"cannot export {where}: AdaptiveAvgPool2d from {H}x{W} "
            f"to {out_h}x{out_w} has windows of different sizes, which no ONNX "
            f"pooling computes (export with an input size divisible by the output)"
        )
    # PyTorch's windows are then uniform: size and stride H / out_h.
    kernel = [H // out_h, W // out_w]
    return g.node("AveragePool", [x], path, kernel_shape=kernel, strides=kernel)


def gelu(g: Graph, approximate: str, x: str, path: str) -> str:
    if g.opset >= GELU_OPSET:
        return g.node("Gelu", [x], path, approximate=approximate)
    half = g.constant(f"{path}/half", np.array(0.5, np.float32))
    one = g.constant(f"{path}/one", np.array(1.0, np.float32))
    if approximate == "tanh":
        # 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
        cubic = g.node("Mul", [x, g.node("Mul", [x, x], path)], path)
        c = g.constant(f"{path}/c", np.array(0.044715, np.float32))
        inner = g.node("Add", [x, g.node("Mul", [cubic, c], path)], path)
        k = g.constant(f"{path}/k", np.array(math.sqrt(2 / math.pi), np.float32))
        phi = g.node("Tanh", [g.node("Mul", [inner, k], path)], path)
    else:
        # 0.5 x (1 + erf(x / sqrt 2)), as PyTorch writes it before opset 20
        root2 = g.constant(f"{path}/sqrt2", np.array(math.sqrt(2), np.float32))
        phi = g.node("Erf", [g.node("Div", [x, root2], path)], path)
    y = g.node("Mul", [x, g.node("Add", [phi, one], path)], path)
    return g.node("Mul", [y, half], path)


def batch_norm(g: Graph, m: nn.BatchNorm2d, x: str, path: str, prefix: str) -> str:
    C = m.num_features
    weight = np.ones(C) if m.weight is None else m.weight.data
    bias = np.zeros(C) if m.bias is None else m.bias.data
    inputs = [
        x,
        g.constant(prefix + "weight", weight),
        g.constant(prefix + "bias", bias),
        g.constant(prefix + "running_mean", m.running_mean),
        g.constant(prefix + "running_var", m.running_var),
    ]
    return g.node("BatchNormalization", inputs, path, epsilon=m.eps)


def flatten(g: Graph, m: nn.Flatten, x: str, path: str, shape: tuple[int, ...]) -> str:
    ndim = len(shape)
    start, end = m.start_dim % ndim, m.end_dim % ndim
    if (start, end) == (1, ndim - 1):
        return g.node("Flatten", [x], path, axis=1)
    # A batch axis left alone is copied (0); one merged with others is -1.
    target = [0, *shape[1:start]] if start > 0 else []
    target.append(-1 if start == 0 else math.prod(shape[start : end + 1]))
    target += list(shape[end + 1 :])
    return g.node(
        "Reshape", [x, g.constant(f"{path}/shape", np.array(target, np.int64))], path
    )


def unflatten(
    g: Graph,
    m: nn.Unflatten,
    x: str,
    path: str,
    shape: tuple[int, ...],
    out_shape: tuple[int, ...],
) -> str:
    """A Reshape to ``out_shape`` with the batch copied (0): any batch size."""
    if m.dim % len(shape) == 0:
        where = path.strip("/") or "the model"
        raise ValueError(
            f"cannot export {where}: Unflatten of the batch axis (dim={m.dim}) has "
            "no form with a dynamic batch"
        )
    target = [0, *out_shape[1:]]
    return g.node(
        "Reshape", [x, g.constant(f"{path}/shape", np.array(target, np.int64))], path
    )


ELEMENTWISE: dict[type, Callable[[nn.Module], tuple[str, dict[str, Any]]]] = {
    nn.ReLU: lambda m: ("Relu", {}),
    nn.Tanh: lambda m: ("Tanh", {}),
    nn.Sigmoid: lambda m: ("Sigmoid", {}),
    nn.LeakyReLU: lambda m: ("LeakyRelu", {"alpha": m.negative_slope}),
    nn.Softmax: lambda m: ("Softmax", {"axis": m.dim}),
    nn.LogSoftmax: lambda m: ("LogSoftmax", {"axis": m.dim}),
}
