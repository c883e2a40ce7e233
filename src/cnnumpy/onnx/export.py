"""`export`: a cnnumpy model as an ONNX graph of standard operators.

Each module becomes the ONNX nodes that compute what its ``forward`` computes in
evaluation mode: ``Conv2d`` a ``Conv``, ``Linear`` a ``Gemm`` (``transB=1``, the
weight kept in PyTorch's (out, in) layout), ``BatchNorm2d`` a
``BatchNormalization`` with the running statistics, ``Flatten`` and
``Unflatten`` a ``Reshape`` that keeps the batch, ``Dropout`` nothing, a
``Residual`` its two branches and an ``Add``. Parameters become initializers
named by their ``state_dict`` keys (``conv1.weight``), nodes by their module's
path (``/conv1/Conv``), as PyTorch's exporter names them.

The shapes the graph declares come from one forward pass of a zero batch of
one image, in evaluation mode (the model's modes are restored afterwards).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cnnumpy import nn
from cnnumpy.onnx import nodes
from cnnumpy.onnx.nodes import ELEMENTWISE, Graph
from cnnumpy.onnx.read import import_onnx
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
    nn.Unflatten,
    nn.SiLU,
    nn.GELU,
    *ELEMENTWISE,
)


def _module(
    g: Graph, m: nn.Module, x: str, value: np.ndarray, path: str
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
        return nodes.conv(g, m, x, path, prefix), y
    if isinstance(m, nn.ConvTranspose2d):
        return nodes.conv_transpose(g, m, x, path, prefix), y
    if isinstance(m, nn.Linear):
        return nodes.linear(g, m, x, path, prefix, value.ndim), y
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        return nodes.pool(g, m, x, path), y
    if isinstance(m, nn.AdaptiveAvgPool2d):
        return nodes.adaptive(g, m, x, path, value.shape), y
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return nodes.batch_norm(g, m, x, path, prefix), y
    if isinstance(m, nn.Flatten):
        return nodes.flatten(g, m, x, path, value.shape), y
    if isinstance(m, nn.Unflatten):
        return nodes.unflatten(g, m, x, path, value.shape, y.shape), y
    if isinstance(m, nn.SiLU):  # x * sigmoid(x), as PyTorch writes it
        return g.node("Mul", [x, g.node("Sigmoid", [x], path)], path), y
    if isinstance(m, nn.GELU):
        return nodes.gelu(g, m.approximate, x, path), y
    form = next(f for cls, f in ELEMENTWISE.items() if isinstance(m, cls))
    op, attrs = form(m)
    return g.node(op, [x], path, **attrs), y


def _normalization(g: Graph, pixels: str, mean: float, std: float) -> str:
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
    onnx = import_onnx()
    g = Graph(opset)
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
