"""Text helpers of the explanations: numbers, matrices, size formulas, checks."""

from __future__ import annotations

import math

import numpy as np

from cnnumpy.functional.geometry import Geometry

# Larger matrices print their shape and first rows only.
MAX_NUMBERS = 2000
# The most elements an explanation computes in one array (its input, kernels or
# column matrix): the text shows a few rows, memory holds them all.
MAX_ELEMENTS = 2**22
CONV_FORMULA = (
    "out = floor((size + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1"
)
POOL_FORMULA = "out = floor((size + 2*padding - kernel) / stride) + 1"

Shape4 = tuple[int, int, int, int]


def number(v: float) -> str:
    """A number as short text: integers without a decimal point."""
    v = float(v)
    if math.isnan(v) or math.isinf(v):
        return str(v)
    return str(int(v)) if v.is_integer() else f"{v:.6g}"


def matrix(title: str, a: np.ndarray, name: str = "") -> list[str]:
    """``title, shape (...):`` then one row per line; 4-D arrays as (n, c) grids.

    At most about ``MAX_NUMBERS`` numbers are printed; a note says what was left.
    """
    lines = [f"{title}, shape {a.shape}:"]
    if a.ndim == 4:
        budget = MAX_NUMBERS
        blocks = [(n, c) for n in range(a.shape[0]) for c in range(a.shape[1])]
        for k, (n, c) in enumerate(blocks):
            if k and budget < a[n, c].size:
                lines.append(f"... ({len(blocks) - k} more grids not shown)")
                break
            lines.append(f"{name}[{n}, {c}]:")
            lines += rows(a[n, c])
            budget -= a[n, c].size
        return lines
    return lines + rows(np.atleast_2d(a))


def rows(a: np.ndarray) -> list[str]:
    """The rows of a 2-D array as lines, capped at ``MAX_NUMBERS`` numbers."""
    R, K = a.shape
    keep = max(1, min(R, MAX_NUMBERS // max(K, 1)))
    out = []
    for row in a[:keep]:
        cells = [number(v) for v in row[:MAX_NUMBERS]]
        out.append(" ".join(cells) + (" ..." if K > MAX_NUMBERS else ""))
    if keep < R:
        out.append(f"... ({R - keep} more rows not shown, {a.size} numbers in all)")
    return out


def size_lines(hw: tuple[int, int], geom: Geometry, *, pool: bool = False) -> list[str]:
    """The output-size formula with this geometry's numbers filled in per axis."""
    lines = ["Output size per axis: " + (POOL_FORMULA if pool else CONV_FORMULA)]
    per_axis = zip(geom.kernel, geom.stride, geom.padding, geom.dilation, geom.out)
    for name, size, (k, s, p, d, out) in zip(("out_h", "out_w"), hw, per_axis):
        inner = (
            f"{size} + 2*{p} - {k}" if pool else f"{size} + 2*{p} - {d}*({k} - 1) - 1"
        )
        lines.append(f"  {name} = floor(({inner}) / {s}) + 1 = {out}")
    return lines


def check(what: str, pairs: list[tuple[str, np.ndarray, np.ndarray]]) -> str:
    """The closing line: every ``(name, got, expected)`` agrees, or RuntimeError."""
    for name, got, expected in pairs:
        if got.shape != expected.shape or not np.allclose(
            got, expected, rtol=1e-12, atol=0
        ):
            raise RuntimeError(f"{name} differs from {what}: a bug in cnnumpy")
    names = ", ".join(name for name, _, _ in pairs)
    return f"Check: {names} against {what}: equal: True"


def arange(shape: tuple[int, ...]) -> np.ndarray:
    """0, 1, 2, ... in ``shape``, as float64 (the ops take floats)."""
    return np.arange(math.prod(shape), dtype=np.float64).reshape(shape)
