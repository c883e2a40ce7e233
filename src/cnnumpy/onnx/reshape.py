"""A Reshape read as a module: a Flatten of adjacent axes, or an Unflatten of one.

The batch axis (None in the shapes) is kept; any other reshape is refused.
"""

from __future__ import annotations

import math

from cnnumpy import nn
from cnnumpy.onnx.convert import Node, Shape

__all__ = ["reshape_module"]


def reshape_module(n: Node, shape: Shape, target: list[int | None]):
    """The module of a Reshape of ``shape`` to ``target`` (None: the batch):
    None where nothing changes, a Flatten or an Unflatten."""
    out: list[int | None] = []
    for i, t in enumerate(target):
        if t == 0 and not n.attrs.get("allowzero", 0) and i < len(shape):
            t = shape[i]
        out.append(t)
    rest = math.prod(s for s in shape[1:])
    if out and out[0] == -1 and -1 not in out[1:] and all(out[1:]):
        if math.prod(out[1:]) == rest:
            out[0] = None
    if out and out[0] is None and out.count(-1) == 1 and all(o != 0 for o in out[1:]):
        known = math.prod(o for o in out[1:] if o != -1)
        if known and rest % known == 0:
            out[out.index(-1)] = rest // known
    out_shape = tuple(out)
    if out_shape == shape:
        return None, shape
    for start in range(1, len(shape)):
        for end in range(start, len(shape)):
            merged = (
                *shape[:start],
                math.prod(shape[start : end + 1]),
                *shape[end + 1 :],
            )
            if merged == out_shape:
                return nn.Flatten(start, end), out_shape
    split = _unflatten(shape, out_shape)
    if split is not None:
        return nn.Unflatten(*split), out_shape
    raise n.error(
        f"reshape of {shape} to {target} is neither a flatten nor an unflatten "
        "of one axis (the batch kept)"
    )


def _unflatten(
    shape: Shape, out: tuple[int | None, ...]
) -> tuple[int, tuple[int, ...]] | None:
    """``(dim, sizes)`` if ``out`` is ``shape`` with one axis after the batch split."""
    extra = len(out) - len(shape)
    if extra < 1 or None in out[1:] or any(o is not None and o < 1 for o in out):
        return None
    for dim in range(1, len(shape)):
        sizes = out[dim : dim + extra + 1]
        if (
            out[:dim] == shape[:dim]
            and out[dim + extra + 1 :] == shape[dim + 1 :]
            and math.prod(sizes) == shape[dim]
        ):
            return dim, tuple(sizes)
    return None
