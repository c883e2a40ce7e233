"""`load`: an ONNX graph of CNN operators as a cnnumpy module.

The graph is walked from its input. A tensor read by one node goes through
that node's converter (`cnnumpy.onnx.convert`). A tensor read by several nodes
opens a region that ends where the branches meet again: a region of
element-wise arithmetic is an activation written as a formula (SiLU as
``x * Sigmoid(x)``, GELU as its erf or tanh formula) and is recognised by its
values on a grid of points; a region that ends in an ``Add`` of its two
branches is an `nn.Residual`. The shape arithmetic PyTorch writes before a
``Reshape`` (``Shape``, ``Gather``, ``Unsqueeze``, ``Concat``) is evaluated on
the shapes the walk knows, with a symbol for the batch axis.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from cnnumpy import nn
from cnnumpy.onnx.arithmetic import FORMULAS, GRID, apply, shape_op
from cnnumpy.onnx.convert import CONVERTERS, Node, Shape, linear
from cnnumpy.onnx.read import Graph, ONNXError, read_graph
from cnnumpy.onnx.reshape import reshape_module
from cnnumpy.training import TrainedModel
from cnnumpy.validation import check_path

__all__ = ["load", "load_trained"]

_SHAPE_OPS = {"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast"}
_FORMULA_OPS = {"Add", "Sub", "Mul", "Div", "Pow", "Erf", "Tanh", "Sigmoid"}


class _Walk:
    """The state of one walk over a checked graph."""

    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.producer = {out: n for n in graph.nodes for out in n.output}
        self.position = {id(n): i for i, n in enumerate(graph.nodes)}
        self.users: dict[str, list[Any]] = defaultdict(list)
        self.shape_nodes: set[int] = set()
        for n in graph.nodes:  # shape arithmetic: fed by Shape, not by data
            data = [i for i in n.input if i and i not in graph.constants]
            if n.op_type == "Shape" or (
                n.op_type in _SHAPE_OPS | {"Mul", "Div"}
                and data
                and all(id(self.producer.get(i)) in self.shape_nodes for i in data)
            ):
                self.shape_nodes.add(id(n))
        for n in graph.nodes:
            if id(n) in self.shape_nodes:
                continue
            for name in dict.fromkeys(n.input):
                if name and name not in graph.constants:
                    self.users[name].append(n)
        self.shapes: dict[str, Shape] = {}

    # --- chains -----------------------------------------------------------------
    def chain(self, t: str, stop: str, allowed: set[int] | None = None) -> list:
        """Modules from tensor ``t`` to tensor ``stop`` (through ``allowed`` nodes)."""
        modules: list[nn.Module] = []
        while t != stop:
            users = [u for u in self.users[t] if allowed is None or id(u) in allowed]
            if not users:
                raise ONNXError(f"tensor {t!r} leads nowhere: {stop!r} is not reached")
            if len(users) == 1:
                module, t = self.convert(users[0], t)
            else:
                module, t = self.fork(t, allowed)
            if module is not None:
                modules.append(module)
        return modules

    def convert(self, node: Any, t: str) -> tuple[nn.Module | None, str]:
        n = Node(node, self.g.constants)
        if node.input[0] != t:
            raise n.error(f"reads {t!r} where cnnumpy expects the layer's input first")
        shape = self.shapes[t]
        out = node.output[0]
        try:
            module, new, out = self._convert(n, shape, out)
        except ONNXError:
            raise
        except (TypeError, ValueError, IndexError, KeyError, OverflowError) as err:
            # Fields of unexpected types or sizes that no check above foresaw.
            raise n.error(f"malformed ({type(err).__name__}: {err})") from None
        self.shapes[out] = new
        return module, out

    def _convert(self, n: Node, shape: Shape, out: str) -> tuple[Any, Shape, str]:
        node = n.node
        if n.op == "Identity":
            module, new = None, shape
        elif n.op == "Reshape":
            module, new = reshape_module(n, shape, self.shape_value(node.input[1], n))
        elif n.op == "MatMul":
            module, new, out = self.matmul(n, shape)
        elif n.op in CONVERTERS:
            module, new = CONVERTERS[n.op](n, shape)
        else:
            raise n.error(f"{n.op} is read only as part of a known pattern here")
        return module, new, out

    def matmul(self, n: Node, shape: Shape) -> tuple[nn.Module, Shape, str]:
        """MatMul by a constant (in, out) matrix, and an Add of a bias after it."""
        w = n.const(1, "weight")
        if w.ndim != 2:
            raise n.error(f"weight of shape {w.shape} is not a matrix")
        out = n.node.output[0]
        after = self.users[out]
        bias = None
        if len(after) == 1 and after[0].op_type == "Add":
            add = after[0]
            other = [i for i in add.input if i != out]
            if len(other) == 1 and other[0] in self.g.constants:
                bias, out = self.g.constants[other[0]], add.output[0]
        module, new = linear(n, shape, w.T, bias)
        return module, new, out

    # --- forks --------------------------------------------------------------------
    def fork(self, t: str, allowed: set[int] | None) -> tuple[nn.Module, str]:
        """The region from ``t`` to where its branches meet, as one module."""
        region, join = self.region(t, allowed)
        last = self.producer[join]
        if all(n.op_type in _FORMULA_OPS for n in region):
            return self.formula(t, region, join)
        data = [i for i in last.input if i and i not in self.g.constants]
        if last.op_type != "Add" or len(data) != 2:
            raise ONNXError(
                f"tensor {t!r} branches and the branches meet at node "
                f"{last.name!r} ({last.op_type}): cnnumpy reads only residual "
                f"Adds and activation formulas"
            )
        inside = {id(n) for n in region if n is not last}
        branches = []
        for end in data:
            nodes = self.ancestors(end, t, inside)
            branches.append((len(nodes), end, self.chain(t, end, nodes)))
        # The longer branch is the body; the sum is the same either way.
        branches.sort(key=lambda b: -b[0])
        (_, a, body), (_, b, shortcut) = branches
        if self.shapes[a] != self.shapes[b]:
            raise ONNXError(
                f"node {last.name!r} adds tensors of shapes {self.shapes[a]} and "
                f"{self.shapes[b]}"
            )
        self.shapes[join] = self.shapes[a]
        short = nn.Sequential(*shortcut) if shortcut else None
        return nn.Residual(nn.Sequential(*body), short), join

    def region(self, t: str, allowed: set[int] | None) -> tuple[list[Any], str]:
        """The nodes after ``t`` up to the first tensor all of its paths reach."""
        start = min(self.position[id(u)] for u in self.users[t])
        live = {t: sum(allowed is None or id(u) in allowed for u in self.users[t])}
        reached, region = {t}, []
        for node in self.g.nodes[start:]:
            if allowed is not None and id(node) not in allowed:
                continue
            ins = [i for i in dict.fromkeys(node.input) if i in reached]
            if not ins or id(node) in self.shape_nodes:
                continue
            region.append(node)
            for i in ins:
                live[i] -= 1
                if not live[i]:
                    del live[i]
            out = node.output[0]
            reached.add(out)
            live[out] = len(self.users[out]) or 1  # the graph's output stays live
            if len(live) == 1 and out in live:
                return region, out
        raise ONNXError(f"the branches from tensor {t!r} never meet again")

    def ancestors(self, end: str, t: str, inside: set[int]) -> set[int]:
        found: set[int] = set()
        todo = [end]
        while todo:
            name = todo.pop()
            node = self.producer.get(name)
            if name == t or node is None or id(node) not in inside or id(node) in found:
                continue
            found.add(id(node))
            todo.extend(i for i in node.input if i)
        return found

    def formula(self, t: str, region: list[Any], join: str) -> tuple[nn.Module, str]:
        """The activation a region of arithmetic computes, told by its values.

        The region may go on past the join by steps with scalar constants
        (PyTorch's GELU ends with a ``Mul`` by 0.5).
        """
        values = {t: GRID}
        region = list(region)
        for _ in range(4):
            with np.errstate(all="ignore"):
                for node in region:
                    if node.output[0] not in values:
                        values[node.output[0]] = self._apply(node, values)
            for f, make in FORMULAS.values():
                if np.allclose(values[join], f(GRID), rtol=1e-6, atol=1e-6):
                    self.shapes[join] = self.shapes[t]
                    return make(), join
            users = self.users[join]
            if len(users) != 1 or users[0].op_type not in _FORMULA_OPS:
                break
            region.append(users[0])
            join = users[0].output[0]
        raise ONNXError(
            f"the arithmetic from tensor {t!r} to {join!r} is none of the "
            f"activations cnnumpy reads ({', '.join(FORMULAS)})"
        )

    def _apply(self, node: Any, values: dict[str, np.ndarray]) -> np.ndarray:
        args = []
        for name in node.input:
            if name in values:
                args.append(values[name])
                continue
            value = self.g.constants.get(name)
            if value is None or value.size != 1:
                raise Node(node, self.g.constants).error(
                    "arithmetic on a tensor that is not a scalar constant"
                )
            args.append(float(value.reshape(())))
        return apply(node.op_type, args)

    # --- shape arithmetic ---------------------------------------------------------
    def shape_value(self, name: str, n: Node) -> list[int | None]:
        if name in self.g.constants:
            return [int(v) for v in np.asarray(self.g.constants[name]).reshape(-1)]
        value = self.symbolic(name, n)
        return value if isinstance(value, list) else [value]

    def symbolic(self, name: str, n: Node) -> Any:
        """A shape tensor as a list of ints (None for the batch) or one item."""
        if name in self.g.constants:
            a = np.asarray(self.g.constants[name])
            return int(a) if a.ndim == 0 else [int(v) for v in a.reshape(-1)]
        node = self.producer.get(name)
        if node is None or id(node) not in self.shape_nodes:
            raise n.error(f"its shape {name!r} is not computed from shapes")
        s = Node(node, self.g.constants)
        args = [self.symbolic(i, n) for i in node.input[1:] if i]
        if s.op == "Shape":
            if node.input[0] not in self.shapes:
                raise s.error("the shape of its input is not known here")
            dims = list(self.shapes[node.input[0]])
            return dims[s.attrs.get("start", 0) : s.attrs.get("end", len(dims))]
        x = self.symbolic(node.input[0], n)
        try:
            return shape_op(s, x, args)
        except (TypeError, IndexError, ValueError) as err:
            raise s.error(f"cannot evaluate it on shapes ({err})") from None


def _normalization(walk: _Walk) -> tuple[str, float | None, float | None]:
    """Skip the uint8 -> (x/255 - mean)/std nodes `export` writes; their values."""
    g = walk.g
    if g.input_dtype == 1:  # float input: no normalisation in the graph
        return g.input, None, None
    expected = [("Cast", None), ("Div", 255.0), ("Sub", None), ("Div", None)]
    t, found = g.input, []
    for op, value in expected:
        users = walk.users[t]
        node = users[0] if len(users) == 1 else None
        const = None
        if node is not None and op != "Cast":
            const = g.constants.get(node.input[1]) if len(node.input) == 2 else None
        if (
            node is None
            or node.op_type != op
            or (op == "Cast" and Node(node, g.constants).attrs.get("to") != 1)
            or (op != "Cast" and (const is None or const.size != 1))
            or (value is not None and float(const.reshape(())) != value)
        ):
            raise ONNXError(
                f"input {g.input!r} has element type {g.input_dtype}: cnnumpy reads "
                f"float input, or uint8 pixels normalised as cnnumpy.onnx.export "
                f"writes them"
            )
        found.append(None if const is None else float(const.reshape(())))
        t = node.output[0]
    return t, found[2], found[3]


def _walk(path: str | os.PathLike) -> tuple[Graph, nn.Sequential, Any, Any, Shape]:
    check_path(path, "path")
    graph = read_graph(path)
    try:
        walk = _Walk(graph)
        start, mean, std = _normalization(walk)
        walk.shapes[start] = (None, *graph.input_shape[1:])
        model = nn.Sequential(*walk.chain(start, graph.output))
    except ONNXError:
        raise
    except (TypeError, ValueError, IndexError, KeyError, OverflowError) as err:
        # What the node-level checks did not foresee still ends as one line.
        raise ONNXError(f"malformed graph ({type(err).__name__}: {err})") from None
    return graph, model.eval(), mean, std, walk.shapes[graph.output]


def load(path: str | Path) -> nn.Sequential:
    """Build the cnnumpy module an ONNX file describes.

    The graph may hold the operators `cnnumpy.onnx.export` writes and the
    forms PyTorch's exporter gives them: ``Conv``, ``ConvTranspose``, ``Gemm``
    (or ``MatMul`` and ``Add``), ``MaxPool``, ``AveragePool``,
    ``GlobalAveragePool``, ``BatchNormalization``, ``Relu``, ``LeakyRelu``,
    ``Tanh``, ``Sigmoid``, ``Gelu`` (or its formula), SiLU as ``x *
    Sigmoid(x)``, ``Softmax``, ``LogSoftmax``, ``Dropout``, ``Flatten``,
    ``Reshape`` (a flatten, or an unflatten of one axis, with its shape
    arithmetic and the integer constants it folds), ``Identity``,
    ``Constant`` and the residual ``Add``; weights are initializers.

    Parameters
    ----------
    path : path
        The ``.onnx`` file. It is read by its bytes: no external data is
        followed and nothing in it runs.

    Returns
    -------
    nn.Sequential
        In evaluation mode, float32, weights as ordinary Parameters (ready for
        `cnnumpy.training.predict_proba` or for `fit`). It takes the graph's
        float input; for a graph exported from a trained model (uint8
        ``pixels``), the normalisation nodes are left out and the module takes
        normalised input, as every cnnumpy model: `load_trained` keeps them.

    Raises
    ------
    TypeError
        ``path`` is not a path.
    FileNotFoundError
        No such file.
    ONNXError
        The file is not ONNX, is too large, or holds an operator, attribute,
        wiring or tensor cnnumpy does not read (named in the message).
    """
    return _walk(path)[1]


def load_trained(path: str | Path) -> TrainedModel:
    """An ONNX classifier as a `TrainedModel`, for ``cnnumpy predict``.

    The normalisation comes from the graph's first nodes when
    `cnnumpy.onnx.export` wrote them, and the class names from its metadata;
    a graph with a float input takes pixels scaled to [0, 1] (mean 0, std 1)
    and its classes are named by their index.

    Raises
    ------
    TypeError, FileNotFoundError, ONNXError
        As `load`; ONNXError also for an input that is not (N, C, H, W) or an
        output that is not (N, classes).
    """
    graph, model, mean, std, out = _walk(path)
    if len(graph.input_shape) != 4 or len(out) != 2:
        raise ONNXError(
            f"a classifier takes (N, C, H, W) images and gives (N, classes) scores; "
            f"this graph maps {graph.input_shape} to {out}"
        )
    names = _metadata(graph, "class_names")
    if not (
        isinstance(names, list)
        and len(names) == out[1]
        and all(isinstance(s, str) for s in names)
    ):
        names = [str(i) for i in range(out[1])]
    dataset = _metadata(graph, "dataset")
    C, H, W = graph.input_shape[1:]
    return TrainedModel(
        model=model,
        class_names=tuple(names),
        mean=0.0 if mean is None else mean,
        std=1.0 if std is None else std,
        input_shape=(C, H, W),
        dataset=dataset if isinstance(dataset, str) else "unknown",
        checkpoint={},
    )


def _metadata(graph: Graph, key: str) -> Any:
    text = graph.metadata.get(key)
    if text is None or len(text) > 2**20:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None
