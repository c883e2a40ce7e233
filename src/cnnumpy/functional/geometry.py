"""Window geometry of convolution and pooling: sizes, padding, output length.

The fast ops, the reference ops and the explanations all size their windows
here, so they agree on every shape. The output length per axis is::

    out = floor((size + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from cnnumpy.validation import (
    Pair,
    check_array,
    check_int,
    check_output_size,
    check_pair,
)

__all__ = [
    "Geometry",
    "adaptive_output_size",
    "adaptive_windows",
    "conv_geometry",
    "conv_transpose_geometry",
    "pool_geometry",
    "window_geometry",
]


class Geometry(NamedTuple):
    """Window geometry of a convolution or pooling, every field an (h, w) pair."""

    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    out: Pair
    extra: Pair = (0, 0)
    """Extra padding after the input (bottom, right): only 'same' with an odd total."""


def check_padding(padding: object, stride: Pair) -> Pair | str:
    """Validate a convolution padding: a non-negative int or pair, 'valid' or 'same'."""
    if not isinstance(padding, str):
        return check_pair(padding, "padding", minimum=0)
    if padding not in ("valid", "same"):
        raise ValueError(
            f"`padding` must be an int, a pair, 'valid' or 'same', got {padding!r}"
        )
    if padding == "same" and stride != (1, 1):
        raise ValueError(f"`padding`='same' requires `stride`=1, got stride={stride}")
    return padding


def resolve_padding(
    padding: object, stride: Pair, kernel: Pair, dilation: Pair
) -> tuple[Pair, Pair]:
    """Padding before each axis, and the extra padding after it ('same', odd total).

    PyTorch pads 'same' by ``total = dilation * (kernel - 1)`` split as
    ``total // 2`` before and the rest after.
    """
    padding = check_padding(padding, stride)
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        total = [d * (k - 1) for d, k in zip(dilation, kernel)]
        return (total[0] // 2, total[1] // 2), (total[0] % 2, total[1] % 2)
    return padding, (0, 0)


def check_groups(in_channels: int, out_channels: int, groups: object) -> int:
    """Validate ``groups`` against both channel counts."""
    groups = check_int(groups, "groups", minimum=1)
    for name, count in (("in_channels", in_channels), ("out_channels", out_channels)):
        if count % groups:
            raise ValueError(
                f"`{name}` (={count}) must be divisible by `groups` (={groups})"
            )
    return groups


def pool_args(
    kernel_size: object, stride: object, padding: object
) -> tuple[Pair, Pair, Pair]:
    """Validate pooling arguments; ``stride=None`` means the kernel size.

    PyTorch caps the padding at half the kernel, so every window holds at least
    one real pixel.
    """
    kernel = check_pair(kernel_size, "kernel_size", minimum=1)
    stride_ = kernel if stride is None else check_pair(stride, "stride", minimum=1)
    padding_ = check_pair(padding, "padding", minimum=0)
    for k, p in zip(kernel, padding_):
        if p > k // 2:
            raise ValueError(
                f"`padding` (={padding!r}) must be at most half of `kernel_size` "
                f"(={kernel_size!r})"
            )
    return kernel, stride_, padding_


# Geometries already worked out, by their arguments (see _memo_key). A layer
# asks for the same one at every call; working it out again costs more than
# a small layer's arithmetic at batch 1.
_MEMO: dict[tuple, Geometry] = {}
_MEMO_SIZE = 1024


def _memo_key(*args: object) -> tuple | None:
    """A key for _MEMO: each argument with its type (for a tuple, its items'
    types), so that equal values of other types (True == 1, 1.0 == 1) are
    other keys and still reach the checks, which refuse some of them. None
    for an argument that cannot be a key (a list, a tuple of tuples)."""
    key = []
    for a in args:
        if type(a) is tuple:
            types = tuple(map(type, a))
            if tuple in types:
                return None
            key.append((types, a))
        else:
            key.append((type(a), a))
    key_ = tuple(key)
    try:
        hash(key_)
    except TypeError:
        return None
    return key_


def window_geometry(
    in_hw: tuple[int, int],
    kernel_size: object,
    stride: object,
    padding: object,
    dilation: object,
    *,
    kernel_name: str = "kernel_size",
) -> Geometry:
    """Validate window arguments against an input of spatial size ``in_hw``.

    ``padding`` may be an int, a pair, ``'valid'`` (no padding) or ``'same'``
    (output size equals input size; stride 1 only, as in PyTorch). When 'same'
    needs an odd total padding, the extra row or column goes at the bottom/right,
    as PyTorch does; ``Geometry.extra`` records it. Valid arguments of plain
    types are remembered, so a layer's later calls skip the checks; invalid
    ones raise every time.
    """
    key = _memo_key(tuple(in_hw), kernel_size, stride, padding, dilation, kernel_name)
    return _remembered(
        key,
        lambda: _window_geometry(
            in_hw, kernel_size, stride, padding, dilation, kernel_name
        ),
    )


def _remembered(key: tuple | None, work_out: Callable[[], Geometry]) -> Geometry:
    """The geometry remembered under ``key``, else ``work_out()`` (remembered)."""
    geom = None if key is None else _MEMO.get(key)
    if geom is None:
        geom = work_out()  # raises on invalid arguments: nothing remembered
        if key is not None:
            if len(_MEMO) >= _MEMO_SIZE:
                _MEMO.clear()
            _MEMO[key] = geom
    return geom


def _window_geometry(
    in_hw: tuple[int, int],
    kernel_size: object,
    stride: object,
    padding: object,
    dilation: object,
    kernel_name: str,
) -> Geometry:
    """:func:`window_geometry`, worked out."""
    kernel = check_pair(kernel_size, kernel_name, minimum=1)
    stride_ = check_pair(stride, "stride", minimum=1)
    dilation_ = check_pair(dilation, "dilation", minimum=1)
    padding_, extra = resolve_padding(padding, stride_, kernel, dilation_)
    for axis, size, k, p, e, d in zip("hw", in_hw, kernel, padding_, extra, dilation_):
        extent = d * (k - 1) + 1
        if extent > size + 2 * p + e:
            raise ValueError(
                f"`{kernel_name}` (={kernel_size!r}, dilated extent {extent}) is "
                f"larger than the padded input along {axis} "
                f"({size} + 2*{p} = {size + 2 * p})"
            )
    # Output length per axis: floor((size + 2p - d(k-1) - 1) / s) + 1.
    out = tuple(
        (size + 2 * p + e - d * (k - 1) - 1) // s + 1
        for size, k, s, p, e, d in zip(
            in_hw, kernel, stride_, padding_, extra, dilation_
        )
    )
    return Geometry(kernel, stride_, padding_, dilation_, out, extra)


def _check_channels(a: np.ndarray, name: str, what: str) -> None:
    """Axis 1 holds channels: none at all is an error, not an empty result."""
    if a.shape[1] == 0:
        raise ValueError(
            f"`{name}` must have at least 1 channel (axis 1 of {what}), "
            f"got shape {a.shape}"
        )


def conv_geometry(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: object,
    padding: object,
    dilation: object,
    groups: object,
) -> Geometry:
    """Validate the arguments of a 2-D convolution and return its geometry."""
    check_array(x, "x", 4, "(N, C, H, W)")
    check_array(weight, "weight", 4, "(out_channels, in_channels/groups, kH, kW)")
    if weight.dtype != x.dtype:
        raise TypeError(
            f"`weight` dtype must match `x` dtype ({x.dtype}), got {weight.dtype}"
        )
    C = x.shape[1]
    F, Cg = weight.shape[:2]
    _check_channels(x, "x", "(N, C, H, W)")
    _check_channels(weight, "weight", "(out_channels, in_channels/groups, kH, kW)")
    if F == 0:
        raise ValueError(
            f"`weight` must have at least 1 output channel, got shape {weight.shape}"
        )
    groups = check_groups(C, F, groups)
    if Cg * groups != C:
        raise ValueError(
            f"`x` has {C} channels but `weight` expects {Cg * groups} "
            f"(weight.shape[1]={Cg} x groups={groups})"
        )
    if bias is not None:
        check_array(bias, "bias", 1, "(out_channels,)")
        if bias.dtype != x.dtype:
            raise TypeError(
                f"`bias` dtype must match `x` dtype ({x.dtype}), got {bias.dtype}"
            )
        if bias.shape[0] != F:
            raise ValueError(
                f"`bias` must have shape ({F},) to match `weight`, got {bias.shape}"
            )
    return window_geometry(
        x.shape[2:], weight.shape[2:], stride, padding, dilation, kernel_name="weight"
    )


def pool_geometry(
    x: np.ndarray, kernel_size: object, stride: object, padding: object
) -> Geometry:
    """Validate pooling arguments; ``stride=None`` means the kernel size."""
    check_array(x, "x", 4, "(N, C, H, W)")
    _check_channels(x, "x", "(N, C, H, W)")
    key = _memo_key("pool", x.shape[2:], kernel_size, stride, padding)

    def work_out() -> Geometry:
        kernel, stride_, padding_ = pool_args(kernel_size, stride, padding)
        return window_geometry(x.shape[2:], kernel, stride_, padding_, 1)

    return _remembered(key, work_out)


def adaptive_windows(size: int, out_size: int) -> list[tuple[int, int]]:
    """``(start, end)`` of each of the ``out_size`` windows over ``size`` inputs."""
    # -((-a) // b) is ceil(a / b) in integers.
    return [
        (i * size // out_size, -(-(i + 1) * size // out_size)) for i in range(out_size)
    ]


def adaptive_output_size(x: np.ndarray, output_size: object) -> tuple[int, int]:
    """Validate adaptive pooling arguments; ``(out_h, out_w)``, None keeping the
    input's size."""
    check_array(x, "x", 4, "(N, C, H, W)")
    _check_channels(x, "x", "(N, C, H, W)")
    if min(x.shape[2:]) == 0:
        raise ValueError(f"`x` must have H, W >= 1, got shape {x.shape}")
    out = check_output_size(output_size)
    return tuple(  # type: ignore[return-value]
        x.shape[2 + i] if v is None else v for i, v in enumerate(out)
    )


def conv_transpose_geometry(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: object,
    padding: object,
    output_padding: object,
    groups: object,
    dilation: object,
) -> tuple[Geometry, tuple[int, int]]:
    """Validate a transposed convolution; its output (h, w) and the geometry of
    the convolution it is the adjoint of (whose input is that output).

    ``out = (size - 1)*stride - 2*padding + dilation*(kernel - 1)
    + output_padding + 1``; ``output_padding`` must be smaller than the stride
    or the dilation (PyTorch's rule).
    """
    what = "(in_channels, out_channels/groups, kH, kW)"
    check_array(x, "x", 4, "(N, C, H, W)")
    check_array(weight, "weight", 4, what)
    if weight.dtype != x.dtype:
        raise TypeError(
            f"`weight` dtype must match `x` dtype ({x.dtype}), got {weight.dtype}"
        )
    _check_channels(x, "x", "(N, C, H, W)")
    _check_channels(weight, "weight", what)
    C = x.shape[1]
    if weight.shape[0] != C:
        raise ValueError(
            f"`x` has {C} channels but `weight` expects {weight.shape[0]} "
            f"(weight.shape[0])"
        )
    groups = check_int(groups, "groups", minimum=1)
    check_groups(C, weight.shape[1] * groups, groups)
    out_channels = weight.shape[1] * groups
    if bias is not None:
        check_array(bias, "bias", 1, "(out_channels,)")
        if bias.dtype != x.dtype:
            raise TypeError(
                f"`bias` dtype must match `x` dtype ({x.dtype}), got {bias.dtype}"
            )
        if bias.shape[0] != out_channels:
            raise ValueError(
                f"`bias` must have shape ({out_channels},) to match `weight`, got "
                f"{bias.shape}"
            )
    stride_ = check_pair(stride, "stride", minimum=1)
    padding_ = check_pair(padding, "padding", minimum=0)
    dilation_ = check_pair(dilation, "dilation", minimum=1)
    output_padding_ = check_pair(output_padding, "output_padding", minimum=0)
    if any(op >= max(s, d) for op, s, d in zip(output_padding_, stride_, dilation_)):
        raise ValueError(
            f"`output_padding` (={output_padding!r}) must be smaller than `stride` "
            f"(={stride!r}) or `dilation` (={dilation!r})"
        )
    out_hw = tuple(
        (size - 1) * s - 2 * p + d * (k - 1) + op + 1
        for size, s, p, d, k, op in zip(
            x.shape[2:], stride_, padding_, dilation_, weight.shape[2:], output_padding_
        )
    )
    if min(out_hw) < 1:
        raise ValueError(
            f"the output of the transposed convolution would be {out_hw} for input "
            f"{x.shape}: `padding` (={padding!r}) is too large"
        )
    geom = window_geometry(
        out_hw, weight.shape[2:], stride_, padding_, dilation_, kernel_name="weight"
    )
    return geom, out_hw  # type: ignore[return-value]
