"""The error every refusal of `cnnumpy.onnx.load` raises, and how it names a node."""

from __future__ import annotations

from typing import Any

__all__ = ["ONNXError", "node_name"]


class ONNXError(ValueError):
    """An ONNX file that cannot be read or holds what cnnumpy does not run."""


def node_name(node: Any) -> str:
    """A node's name for a message, or its operator and outputs."""
    return repr(node.name or f"{node.op_type} -> {', '.join(node.output)}")
