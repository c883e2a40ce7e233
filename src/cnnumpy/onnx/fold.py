"""Constants worked out on loading: nodes whose every input is a constant.

An Identity or Transpose of a weight (a shared or transposed weight), and the
small integer arithmetic PyTorch writes to work out a shape. Nothing else is
evaluated, and never on more than `INDEX_SIZE` integers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnumpy.onnx.errors import ONNXError
from cnnumpy.onnx.errors import node_name as _name

__all__ = ["INDEX_SIZE", "fold", "foldable"]

# Integer arithmetic on constants that PyTorch writes to work out a shape
# (an Unflatten's dimension: Mod, Add, Reshape), evaluated on loading when
# every input is a small integer constant.
_INDEX_OPS = ("Mod", "Add", "Sub", "Mul", "Reshape")
INDEX_SIZE = 64


def foldable(node: Any, constants: dict[str, np.ndarray]) -> bool:
    """An Identity or Transpose of a constant (a shared or transposed weight), or
    integer arithmetic on small integer constants (shape and index values)."""
    if node.op_type in ("Identity", "Transpose"):
        return len(node.input) == 1 and node.input[0] in constants
    return (
        node.op_type in _INDEX_OPS
        and len(node.input) == 2
        and all(
            i in constants
            and constants[i].dtype.kind == "i"
            and constants[i].size <= INDEX_SIZE
            for i in node.input
        )
    )


def _fold_index(node: Any, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mod, Add, Sub, Mul or Reshape of two small integer constants."""
    if node.op_type == "Reshape":
        target = [int(v) for v in b.reshape(-1)]
        if not any(a_.i for a_ in node.attribute if a_.name == "allowzero"):
            target = [  # 0 copies the input's size there, as ONNX says
                a.shape[i] if t == 0 and i < a.ndim else t for i, t in enumerate(target)
            ]
        try:
            return a.reshape(target)
        except ValueError:
            raise ONNXError(
                f"node {_name(node)}: cannot reshape {a.shape} to {target}"
            ) from None
    if node.op_type == "Mod":
        fmod = [a_.i for a_ in node.attribute if a_.name == "fmod"]
        if any(fmod) or not np.all(b):
            raise ONNXError(
                f"node {_name(node)}: only an integer Mod by non-zero is read"
            )
        return np.mod(a, b)
    op = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[node.op_type]
    try:
        return op(a, b)
    except ValueError:
        raise ONNXError(f"node {_name(node)}: shapes {a.shape} and {b.shape}") from None


def fold(node: Any, constants: dict[str, np.ndarray]) -> np.ndarray:
    value = constants[node.input[0]]
    if node.op_type in _INDEX_OPS:
        return _fold_index(node, value, constants[node.input[1]])
    if node.op_type == "Identity":
        return value
    perm = [list(a.ints) for a in node.attribute if a.name == "perm"]
    perm = perm[0] if perm else list(reversed(range(value.ndim)))
    if sorted(perm) != list(range(value.ndim)):
        raise ONNXError(
            f"node {_name(node)}: perm={perm} is no permutation of {value.ndim} axes"
        )
    return np.ascontiguousarray(value.transpose(perm))
