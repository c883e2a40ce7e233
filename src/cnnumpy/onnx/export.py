"""`export`: a cnnumpy model as an ONNX graph of standard operators.

Each module becomes the ONNX nodes that compute what its ``forward`` computes in
evaluation mode: ``Conv2d`` a ``Conv``, ``Linear`` a ``Gemm`` (``transB=1``, the
weight kept in PyTorch's (out, in) layout), ``BatchNorm2d`` a
``BatchNormalization`` with the running statistics, ``Dropout`` nothing, a
``Residual`` its two branches and an ``Add``. Parameters become initializers
named by their ``state_dict`` keys (``conv1.weight``), nodes by their module's
path (``/conv1/Conv``), as PyTorch's exporter names them.

The shapes the graph declares come from one forward pass of a zero batch of
one image, in evaluation mode (the model's modes are restored afterwards).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cnnumpy import nn
from cnnumpy.functional.geometry import resolve_padding
from cnnumpy.training import TrainedModel
from cnnumpy.training.checkpoint import atomic_write_bytes
from cnnumpy.validation import (
    check_choice,
    check_instance,
    check_int,
    check_path,
)

__all__ = ["OPSET", "OPSETS", "export"]

# The opsets `export` writes; onnxruntime 1.18 and later run all of them.
OPSETS = (17, 18, 19, 20, 21)
OPSET = 18
# From this opset on GELU is one operator; before it, erf or tanh arithmetic.
GELU_OPSET = 20


class _Graph:
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


def _pads(before: tuple[int, int], after: tuple[int, int]) -> list[int]:
    """ONNX's pads: (top, left, bottom, right)."""
    return [before[0], before[1], after[0], after[1]]


def _conv(g: _Graph, m: nn.Conv2d, x: str, path: str, prefix: str) -> str:
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
        pads=_pads(before, after),
        dilations=list(m.dilation),
        group=m.groups,
    )


def _conv_transpose(
    g: _Graph, m: nn.ConvTranspose2d, x: str, path: str, prefix: str
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
        pads=_pads(m.padding, m.padding),
        output_padding=list(m.output_padding),
        dilations=list(m.dilation),
        group=m.groups,
    )


def _linear(g: _Graph, m: nn.Linear, x: str, path: str, prefix: str, ndim: int) -> str:
    weight = g.constant(prefix + "weight", m.weight.data)
    bias = None if m.bias is None else g.constant(prefix + "bias", m.bias.data)
    if ndim == 2:
        inputs = [x, weight] if bias is None else [x, weight, bias]
        return g.node("Gemm", inputs, path, alpha=1.0, beta=1.0, transB=1)
    # Gemm takes matrices only: (*, in) @ (in, out), then the bias.
    weight_t = g.node("Transpose", [weight], path, perm=[1, 0])
    y = g.node("MatMul", [x, weight_t], path)
    return y if bias is None else g.node("Add", [y, bias], path)


def _pool(g: _Graph, m: nn.MaxPool2d | nn.AvgPool2d, x: str, path: str) -> str:
    attrs: dict[str, Any] = {
        "kernel_shape": list(m.kernel_size),
        "strides": list(m.stride),
        "pads": _pads(m.padding, m.padding),
        "ceil_mode": 0,
    }
    if isinstance(m, nn.AvgPool2d):
        # cnnumpy's average counts the padded zeros, as PyTorch's default.
        return g.node("AveragePool", [x], path, count_include_pad=1, **attrs)
    return g.node("MaxPool", [x], path, **attrs)


def _adaptive(
    g: _Graph, m: nn.AdaptiveAvgPool2d, x: str, path: str, shape: tuple[int, ...]
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
        raise ValueError(
            f"cannot export {path or 'the model'}: AdaptiveAvgPool2d from {H}x{W} "
            f"to {out_h}x{out_w} has windows of different sizes, which no ONNX "
            f"pooling computes (export with an input size divisible by the output)"
        )
    # PyTorch's windows are then uniform: size and stride H / out_h.
    kernel = [H // out_h, W // out_w]
    return g.node("AveragePool", [x], path, kernel_shape=kernel, strides=kernel)


def _gelu(g: _Graph, approximate: str, x: str, path: str) -> str:
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


def _batch_norm(g: _Graph, m: nn.BatchNorm2d, x: str, path: str, prefix: str) -> str:
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


def _flatten(
    g: _Graph, m: nn.Flatten, x: str, path: str, shape: tuple[int, ...]
) -> str:
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


_ELEMENTWISE: dict[type, Callable[[nn.Module], tuple[str, dict[str, Any]]]] = {
    nn.ReLU: lambda m: ("Relu", {}),
    nn.Tanh: lambda m: ("Tanh", {}),
    nn.Sigmoid: lambda m: ("Sigmoid", {}),
    nn.LeakyReLU: lambda m: ("LeakyRelu", {"alpha": m.negative_slope}),
    nn.Softmax: lambda m: ("Softmax", {"axis": m.dim}),
    nn.LogSoftmax: lambda m: ("LogSoftmax", {"axis": m.dim}),
}


_EXPORTABLE = (
    nn.Identity,
    nn.Dropout,
    nn.Conv2d,
    nn.ConvTranspose2d,
    nn.Linear,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.Flatten,
    nn.SiLU,
    nn.GELU,
    *_ELEMENTWISE,
)


def _module(
    g: _Graph, m: nn.Module, x: str, value: np.ndarray, path: str
) -> tuple[str, np.ndarray]:
    """The nodes of ``m`` applied to tensor ``x``; its output name and value.

    ``value`` is the module's input on the probe batch: its shape decides the
    forms that depend on it (Gemm or MatMul, the pooling windows).
    """
    prefix = path.strip("/").replace("/", ".") + "." if path else ""
    if isinstance(m, nn.Sequential):
        for name, child in m.named_children():
            x, value = _module(g, child, x, value, f"{path}/{name}")
        return x, value
    if isinstance(m, nn.Residual):
        a, a_value = _module(g, m.body, x, value, f"{path}/body")
        b, b_value = _module(g, m.shortcut, x, value, f"{path}/shortcut")
        return g.node("Add", [a, b], path), a_value + b_value
    if not isinstance(m, _EXPORTABLE):
        raise TypeError(
            f"cannot export {path.strip('/') or 'the model'}: {type(m).__name__} has "
            f"no ONNX form here (see cnnumpy.onnx for the modules that do)"
        )
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and not m.track_running_stats:
        raise ValueError(
            f"cannot export {path.strip('/') or 'the model'}: a batch norm without "
            f"running statistics normalises with each batch's own statistics even "
            f"in evaluation, which no ONNX inference operator does"
        )
    y = m(value)
    if isinstance(m, (nn.Identity, nn.Dropout)):
        return x, y
    if isinstance(m, nn.Conv2d):
        return _conv(g, m, x, path, prefix), y
    if isinstance(m, nn.ConvTranspose2d):
        return _conv_transpose(g, m, x, path, prefix), y
    if isinstance(m, nn.Linear):
        return _linear(g, m, x, path, prefix, value.ndim), y
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        return _pool(g, m, x, path), y
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return _adaptive(g, m, x, path, value.shape), y
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return _batch_norm(g, m, x, path, prefix), y
    if isinstance(m, nn.Flatten):
        return _flatten(g, m, x, path, value.shape), y
    if isinstance(m, nn.SiLU):  # x * sigmoid(x), as PyTorch writes it
        return g.node("Mul", [x, g.node("Sigmoid", [x], path)], path), y
    if isinstance(m, nn.GELU):
        return _gelu(g, m.approximate, x, path), y
    form = next(f for cls, f in _ELEMENTWISE.items() if isinstance(m, cls))
    op, attrs = form(m)
    return g.node(op, [x], path, **attrs), y


def _normalization(g: _Graph, pixels: str, mean: float, std: float) -> str:
    """Cast, /255, -mean, /std: `cnnumpy.data.normalize` on uint8 pixels."""
    x = g.node("Cast", [pixels], "/normalize", to=g.helper.TensorProto.FLOAT)
    x = g.node(
        "Div", [x, g.constant("pixel_scale", np.array(255, np.float32))], "/normalize"
    )
    x = g.node("Sub", [x, g.constant("mean", np.array(mean, np.float32))], "/normalize")
    return g.node(
        "Div", [x, g.constant("std", np.array(std, np.float32))], "/normalize"
    )


def export(
    model: nn.Module | TrainedModel,
    path: str | Path,
    input_shape: tuple[int, ...] | None = None,
    *,
    opset: int = OPSET,
) -> Path:
    """Write ``model`` as an ONNX file that onnxruntime and others can run.

    Parameters
    ----------
    model : nn.Module or TrainedModel
        A network of `cnnumpy.nn` modules, exported as in evaluation mode
        (batch norm with its running statistics, dropout as the identity); its
        graph takes the normalised float32 input the module takes, ``input``,
        and gives ``output``. A `TrainedModel` (``cnnumpy.training.load_trained``)
        is exported with its normalisation as the graph's first nodes: the
        graph then takes ``pixels``, uint8 images (N, C, H, W) as
        ``cnnumpy predict`` reads them, and gives ``logits`` (a softmax of them
        is ``predict_proba``); its class names, normalisation and data set are
        in the model's ``metadata_props`` (JSON values).
    path : path
        Where to write, conventionally ``*.onnx``.
    input_shape : tuple of int, optional
        The shape of one input without the batch axis, such as (1, 28, 28);
        the batch axis is dynamic (``N``). A `TrainedModel` has its own.
    opset : int
        The ONNX opset to write, one of `OPSETS`. From 20 on, GELU is one
        ``Gelu`` node; before, its erf or tanh formula.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    TypeError
        A wrong argument type, or a module with no ONNX form (``CrossEntropyLoss``
        ...).
    ValueError
        A bad ``input_shape`` or ``opset``; a batch norm without running
        statistics; an ``AdaptiveAvgPool2d`` whose windows are not uniform for
        this input size.
    ImportError
        If onnx is not installed (``pip install 'cnnumpy[onnx]'``).
    """
    trained = model if isinstance(model, TrainedModel) else None
    if trained is None:
        check_instance(model, "model", nn.Module, "an nn.Module or a TrainedModel")
    check_path(path, "path")
    opset = check_choice(check_int(opset, "opset"), "opset", OPSETS)
    if trained is not None and input_shape is None:
        input_shape = trained.input_shape
    shape = _check_shape(input_shape)
    if trained is not None and shape != trained.input_shape:
        raise ValueError(
            f"`input_shape` must be the trained model's {trained.input_shape}, "
            f"got {shape}"
        )
    onnx = _import_onnx()
    g = _Graph(opset)
    net = model.model if trained is not None else model
    dtype = next(iter(net.parameters()), None)
    dtype = np.float32 if dtype is None else dtype.data.dtype
    was_training = [m.training for m in net.modules()]
    net.eval()
    try:
        if trained is None:
            x = in_name = "input"
            g.name(x)
            elem = onnx.TensorProto.FLOAT
        else:
            in_name = g.name("pixels")
            x = _normalization(g, in_name, trained.mean, trained.std)
            elem = onnx.TensorProto.UINT8
        y, value = _module(g, net, x, np.zeros((1, *shape), dtype), "")
    finally:
        for m, mode in zip(net.modules(), was_training):
            m.training = mode
    out_name = "logits" if trained is not None else "output"
    g.nodes.append(g.helper.make_node("Identity", [y], [out_name], name="/output"))
    h = g.helper
    graph = h.make_graph(
        g.nodes,
        "cnnumpy",
        [h.make_tensor_value_info(in_name, elem, ["N", *shape])],
        [
            h.make_tensor_value_info(
                out_name, onnx.TensorProto.FLOAT, ["N", *value.shape[1:]]
            )
        ],
        g.initializers,
    )
    opsets = [h.make_opsetid("", opset)]
    proto = h.make_model(
        graph,
        opset_imports=opsets,
        ir_version=h.find_min_ir_version_for(opsets),
        producer_name="cnnumpy",
    )
    if trained is not None:
        meta = {
            "class_names": list(trained.class_names),
            "normalization": {"mean": trained.mean, "std": trained.std},
            "dataset": trained.dataset,
        }
        h.set_model_props(proto, {k: json.dumps(v) for k, v in meta.items()})
        proto.doc_string = (
            "Input 'pixels': uint8 images (N, C, H, W), light on dark; the graph "
            "scales them to [0, 1] and normalises them. Output 'logits': one "
            "score per class (softmax for probabilities)."
        )
    onnx.checker.check_model(proto)
    return atomic_write_bytes(path, proto.SerializeToString())


def _check_shape(input_shape: object) -> tuple[int, ...]:
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(
            f"`input_shape` must be a tuple of ints such as (1, 28, 28), got "
            f"{input_shape!r}"
        )
    if not 1 <= len(input_shape) <= 3:
        raise ValueError(
            f"`input_shape` must be (C, H, W), (C, L) or (F,) without the batch "
            f"axis, got {tuple(input_shape)!r}"
        )
    return tuple(
        check_int(s, f"input_shape[{i}]", minimum=1) for i, s in enumerate(input_shape)
    )


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError as err:
        raise ImportError(
            "ONNX export needs onnx: pip install 'cnnumpy[onnx]'"
        ) from err
    return onnx
