"""Reading an ONNX file that may be hostile: sizes first, then structure.

The file's size is checked before it is read, and protobuf parses it without
running anything (no external data is followed, no custom operator loaded).
Then, before any array is made: the opset, each node's operator and
attributes (against the supported set), each tensor's declared size (against
`MAX_TENSOR_ELEMENTS`, and against the bytes it holds), and the graph's
wiring (every input produced, no cycle). Each refusal is an `ONNXError` of one
line naming the node or the tensor.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnumpy.onnx.errors import ONNXError
from cnnumpy.onnx.errors import node_name as _name
from cnnumpy.onnx.fold import fold, foldable

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "MAX_TENSOR_ELEMENTS",
    "Graph",
    "ONNXError",
    "import_onnx",
    "read_graph",
]

MAX_FILE_BYTES = 2**30
MAX_NODES = 4096
# cnnumpy.models.registry.MAX_PARAMETERS: the largest model cnnumpy builds.
MAX_TENSOR_ELEMENTS = 2**26
MIN_OPSET = 13  # Softmax along one axis, Unsqueeze's axes as an input

# Operator -> the attributes it may carry (values are checked on conversion).
OPERATORS: dict[str, frozenset[str]] = {
    op: frozenset(attrs.split())
    for op, attrs in {
        "Conv": "auto_pad dilations group kernel_shape pads strides",
        "ConvTranspose": "auto_pad dilations group kernel_shape output_padding "
        "output_shape pads strides",
        "Gemm": "alpha beta transA transB",
        "MatMul": "",
        "Add": "",
        "Sub": "",
        "Mul": "",
        "Div": "",
        "Pow": "",
        "Mod": "fmod",
        "Erf": "",
        "Cast": "to saturate",
        "MaxPool": "auto_pad ceil_mode dilations kernel_shape pads storage_order "
        "strides",
        "AveragePool": "auto_pad ceil_mode count_include_pad dilations "
        "kernel_shape pads strides",
        "GlobalAveragePool": "",
        "ReduceMean": "axes keepdims noop_with_empty_axes",
        "Relu": "",
        "LeakyRelu": "alpha",
        "Tanh": "",
        "Sigmoid": "",
        "Gelu": "approximate",
        "Softmax": "axis",
        "LogSoftmax": "axis",
        "BatchNormalization": "epsilon momentum training_mode spatial",
        "Dropout": "seed",
        "Identity": "",
        "Flatten": "axis",
        "Reshape": "allowzero",
        "Constant": "value value_float value_floats value_int value_ints",
        "Shape": "start end",
        "Gather": "axis",
        "Unsqueeze": "",
        "Squeeze": "",
        "Concat": "axis",
        "Slice": "",
        "Transpose": "perm",
    }.items()
}
# TensorProto data types read, as NumPy little-endian dtypes.
_DTYPES = {1: "<f4", 2: "u1", 6: "<i4", 7: "<i8", 11: "<f8"}
_FIELDS = {
    1: "float_data",
    2: "int32_data",
    6: "int32_data",
    7: "int64_data",
    11: "double_data",
}


@dataclass
class Graph:
    """A checked graph: nodes in an order where inputs come first.

    Attributes
    ----------
    nodes : list of onnx.NodeProto, topologically sorted
    constants : dict of name -> ndarray
        The initializers and the outputs of ``Constant`` nodes.
    input, output : str
        The graph's one data input and one output.
    input_dtype : int
        The input's TensorProto element type.
    input_shape : tuple
        Its sizes, None where symbolic (the batch axis).
    metadata : dict of str -> str
        The model's ``metadata_props``.
    opset : int
    """

    nodes: list[Any]
    constants: dict[str, np.ndarray]
    input: str
    output: str
    input_dtype: int
    input_shape: tuple[int | None, ...]
    metadata: dict[str, str]
    opset: int


def import_onnx() -> Any:
    """The onnx package, or an ImportError that says how to install it."""
    try:
        import onnx
    except ImportError as err:
        raise ImportError("ONNX files need onnx: pip install 'cnnumpy[onnx]'") from err
    return onnx


def _parse(path: str | os.PathLike) -> Any:
    import_onnx()
    from google.protobuf.message import DecodeError
    from onnx import ModelProto

    where = f"{str(path)!r}"
    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        raise ONNXError(
            f"{where} holds {size:,} bytes, more than the {MAX_FILE_BYTES:,} allowed"
        )
    model = ModelProto()
    try:
        # ParseFromString reads fields only: no external data, no code.
        model.ParseFromString(Path(path).read_bytes())
    except (DecodeError, RecursionError) as err:
        raise ONNXError(f"{where} is not an ONNX model ({err})") from None
    if not model.HasField("graph") or not model.opset_import:
        raise ONNXError(f"{where} is not an ONNX model (no graph or no opset)")
    return model


def tensor_array(t: Any, what: str) -> np.ndarray:
    """A TensorProto as an array, its declared size checked against its data."""
    label = f"{what} {t.name!r}" if t.name else what
    if t.data_location == 1 or len(t.external_data):
        raise ONNXError(f"{label} refers to external data: not read")
    if t.HasField("segment"):
        raise ONNXError(f"{label} is segmented: not supported")
    if t.data_type not in _DTYPES:
        raise ONNXError(f"{label} has element type {t.data_type}, not supported")
    dims = tuple(t.dims)
    if any(d < 0 for d in dims):
        raise ONNXError(f"{label} declares a negative size: {dims}")
    count = math.prod(dims)
    if count > MAX_TENSOR_ELEMENTS:
        raise ONNXError(
            f"{label} declares {count:,} elements {dims}, more than the "
            f"{MAX_TENSOR_ELEMENTS:,} allowed"
        )
    dtype = np.dtype(_DTYPES[t.data_type])
    if t.raw_data:
        if len(t.raw_data) != count * dtype.itemsize:
            raise ONNXError(
                f"{label} declares shape {dims} ({count * dtype.itemsize:,} bytes) "
                f"but holds {len(t.raw_data):,} bytes"
            )
        return (
            np.frombuffer(t.raw_data, dtype)
            .reshape(dims)
            .astype(dtype.newbyteorder("="))
        )
    values = getattr(t, _FIELDS[t.data_type])
    if len(values) != count:
        raise ONNXError(
            f"{label} declares shape {dims} ({count:,} values) but holds "
            f"{len(values):,}"
        )
    return np.array(values, dtype).reshape(dims)


def _constant(node: Any) -> np.ndarray:
    if len(node.attribute) != 1:
        raise ONNXError(f"node {_name(node)}: a Constant needs exactly one value")
    a = node.attribute[0]
    if a.name == "value":
        return tensor_array(a.t, f"node {_name(node)}: tensor")
    scalar = {"value_float": a.f, "value_int": a.i}
    if a.name in scalar:
        return np.array(
            scalar[a.name], np.float32 if a.name == "value_float" else np.int64
        )
    return np.array(a.floats if a.name == "value_floats" else a.ints)


def _check_node(node: Any) -> None:
    if node.domain not in ("", "ai.onnx"):
        op = f"{node.domain}.{node.op_type}"
        raise ONNXError(f"node {_name(node)}: operator {op} is not supported")
    allowed = OPERATORS.get(node.op_type)
    if allowed is None:
        raise ONNXError(
            f"node {_name(node)}: operator {node.op_type!r} is not supported "
            f"(cnnumpy reads {', '.join(sorted(OPERATORS))})"
        )
    for a in node.attribute:
        if a.name not in allowed:
            raise ONNXError(
                f"node {_name(node)}: attribute {a.name!r} of {node.op_type} is "
                f"not supported"
            )
        if a.type in (5, 9, 10, 11, 12, 13, 14):  # graphs, tensor lists, types
            raise ONNXError(
                f"node {_name(node)}: attribute {a.name!r} is not supported"
            )


def _sorted(nodes: list[Any], available: set[str]) -> list[Any]:
    """``nodes`` ordered so that each comes after the producers of its inputs."""
    producer: dict[str, Any] = {}
    for node in nodes:
        for out in node.output:
            if out in producer or out in available:
                raise ONNXError(f"node {_name(node)}: tensor {out!r} is produced twice")
            producer[out] = node
    for node in nodes:
        for name in node.input:
            if name and name not in producer and name not in available:
                raise ONNXError(
                    f"node {_name(node)} reads {name!r}, which no node, "
                    f"initializer or input produces"
                )
    order, done, state = [], set(available), {}
    for root in nodes:
        stack = [(root, False)]
        while stack:  # depth-first, without Python recursion
            node, expanded = stack.pop()
            if expanded:
                state[id(node)] = 2
                order.append(node)
                done.update(node.output)
                continue
            if state.get(id(node)) == 2:
                continue
            if state.get(id(node)) == 1:
                raise ONNXError(f"the graph has a cycle through node {_name(node)}")
            state[id(node)] = 1
            stack.append((node, True))
            for name in node.input:
                if name and name not in done:
                    dep = producer[name]
                    if state.get(id(dep)) == 1:
                        raise ONNXError(
                            f"the graph has a cycle through node {_name(dep)}"
                        )
                    if state.get(id(dep)) != 2:
                        stack.append((dep, False))
    return order


def read_graph(path: str | os.PathLike) -> Graph:
    """Parse and check an ONNX file (see the module's docstring)."""
    model = _parse(path)
    opsets = {o.domain: o.version for o in model.opset_import}
    opset = opsets.get("", opsets.get("ai.onnx"))
    from onnx.defs import onnx_opset_version

    if opset is None or not MIN_OPSET <= opset <= onnx_opset_version():
        raise ONNXError(
            f"{str(path)!r} uses opset {opset} of the ONNX operators; cnnumpy "
            f"reads {MIN_OPSET} to {onnx_opset_version()}"
        )
    g = model.graph
    if len(g.node) > MAX_NODES:
        raise ONNXError(f"the graph has {len(g.node):,} nodes, more than {MAX_NODES:,}")
    if len(g.sparse_initializer):
        raise ONNXError(
            f"tensor {g.sparse_initializer[0].values.name!r} is sparse: not supported"
        )
    for node in g.node:
        _check_node(node)
    constants = {t.name: tensor_array(t, "tensor") for t in g.initializer}
    if sum(a.size for a in constants.values()) > MAX_TENSOR_ELEMENTS:
        raise ONNXError(
            f"the initializers hold more than {MAX_TENSOR_ELEMENTS:,} values"
        )
    inputs = [v for v in g.input if v.name not in constants]
    if len(inputs) != 1 or len(g.output) != 1:
        raise ONNXError(
            f"the graph must have one input and one output, got "
            f"{[v.name for v in inputs]} and {[v.name for v in g.output]}"
        )
    nodes = _sorted(list(g.node), {inputs[0].name, *constants})
    kept = []
    for node in nodes:
        if node.op_type == "Constant":
            constants[node.output[0]] = _constant(node)
        elif foldable(node, constants):
            constants[node.output[0]] = fold(node, constants)
        else:
            kept.append(node)
    produced = {out for node in nodes for out in node.output}
    if g.output[0].name not in produced | {inputs[0].name}:
        raise ONNXError(f"the graph's output {g.output[0].name!r} is never produced")
    return Graph(
        nodes=kept,
        constants=constants,
        input=inputs[0].name,
        output=g.output[0].name,
        input_dtype=inputs[0].type.tensor_type.elem_type,
        input_shape=_input_shape(inputs[0]),
        metadata={p.key: p.value for p in model.metadata_props},
        opset=opset,
    )


def _input_shape(value: Any) -> tuple[int | None, ...]:
    dims = value.type.tensor_type.shape.dim
    shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
    if not 2 <= len(shape) <= 4 or any(s is None or s < 1 for s in shape[1:]):
        raise ONNXError(
            f"input {value.name!r} must have a batch axis and fixed sizes after it "
            f"(N, C, H, W), got {tuple('?' if s is None else s for s in shape)}"
        )
    if math.prod(shape[1:]) > MAX_TENSOR_ELEMENTS:
        raise ONNXError(f"input {value.name!r} declares {shape}: too large")
    return shape
