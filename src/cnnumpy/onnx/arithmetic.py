"""The arithmetic `load` evaluates: activation formulas and shape tensors.

An activation written as a formula (SiLU as ``x * Sigmoid(x)``, GELU with erf
or tanh) is told by its values on a grid of points (`FORMULAS`); the shape
arithmetic PyTorch writes before a ``Reshape`` is evaluated on shapes whose
batch axis is None (`shape_op`). Only these operators on these values are
evaluated: nothing from the file runs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cnnumpy import nn
from cnnumpy.onnx.convert import Node

__all__ = ["FORMULAS", "GRID", "apply", "shape_op"]

GRID = np.linspace(-6.0, 6.0, 481)
FORMULAS = {
    "SiLU": (lambda x: x / (1 + np.exp(-x)), nn.SiLU),
    "GELU": (lambda x: x * 0.5 * (1 + _erf(x / math.sqrt(2))), lambda: nn.GELU()),
    "GELU (tanh)": (
        lambda x: (
            0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
        ),
        lambda: nn.GELU("tanh"),
    ),
}
_erf = np.vectorize(math.erf, otypes=[np.float64])


def shape_op(s: Node, x: Any, args: list[Any]) -> Any:
    if s.op == "Cast":
        return x
    if s.op == "Gather":
        if s.attrs.get("axis", 0) != 0:
            raise ValueError("axis must be 0")
        return [x[i] for i in args[0]] if isinstance(args[0], list) else x[args[0]]
    if s.op == "Unsqueeze":
        if isinstance(x, list):
            raise ValueError("only a scalar is unsqueezed")
        return [x]
    if s.op == "Squeeze":
        return x[0] if isinstance(x, list) and len(x) == 1 else x
    if s.op == "Concat":
        return [
            v
            for part in (x, *args)
            for v in (part if isinstance(part, list) else [part])
        ]
    if s.op == "Slice":
        starts, ends = args[0][0], args[1][0]
        step = args[3][0] if len(args) > 3 else 1
        return x[starts:ends:step]
    if s.op in ("Mul", "Div") and None not in (x, args[0]):
        a, b = x, args[0]
        return a * b if s.op == "Mul" else a // b
    raise ValueError(f"{s.op} of {x} and {args}")


def apply(op: str, a: list[Any]) -> Any:
    if op == "Erf":
        return _erf(a[0])
    if op == "Tanh":
        return np.tanh(a[0])
    if op == "Sigmoid":
        return 1 / (1 + np.exp(-a[0]))
    ops = {
        "Add": np.add,
        "Sub": np.subtract,
        "Mul": np.multiply,
        "Div": np.divide,
        "Pow": np.power,
    }
    return ops[op](a[0], a[1])
