"""Argument checks: one module, one rule, one message format.

Every public entry point of cnnumpy validates its arguments through these
functions, so that one rule has one message: the argument's name, what was
expected and what was got, as in `` `stride` must be >= 1, got 0 ``.

The rule for the exception:

- ``TypeError`` when the value has the wrong type: a str where a number is
  expected, a float where an int is expected. Booleans are never numbers:
  ``True`` is refused wherever an int or a real number is expected, although
  Python's ``bool`` is a subclass of ``int``.
- ``ValueError`` when the type is right and the value is not: out of range,
  not one of the choices, a wrong shape.

Each ``check_*`` returns the value in its canonical form (a Python ``int`` for
a NumPy integer, a tuple for a pair), so callers store what it returns.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "FLOAT_DTYPES",
    "Pair",
    "check_array",
    "check_bool",
    "check_callable",
    "check_choice",
    "check_ctx",
    "check_dtype",
    "check_elements",
    "check_grad",
    "check_grad_dtype",
    "check_images",
    "check_instance",
    "check_int",
    "check_output_size",
    "check_pair",
    "check_path",
    "check_real",
    "check_reals",
    "check_shape",
    "check_str",
]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
Pair = tuple[int, int]


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_int(
    value: object,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """``value`` as an int in ``[minimum, maximum]`` (either bound optional).

    Raises
    ------
    TypeError
        If ``value`` is not an int (NumPy integers count; bools do not).
    ValueError
        If it lies outside the bounds.
    """
    if not _is_int(value):
        raise TypeError(f"`{name}` must be an int, got {_got(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"`{name}` must be <= {maximum}, got {value}")
    return int(value)


def check_real(
    value: object,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    below: float | None = None,
) -> float:
    """``value`` as a finite float within the bounds given.

    ``minimum``/``maximum`` are inclusive bounds, ``above``/``below`` exclusive.

    Raises
    ------
    TypeError
        If ``value`` is not a real number (ints and NumPy floats count; bools
        do not).
    ValueError
        If it is NaN or infinite, or lies outside the bounds.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {_got(value)}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"`{name}` must be a finite number, got {value!r}")
    low = minimum if above is None else above
    high = maximum if below is None else below
    if (
        (minimum is not None and v < minimum)
        or (above is not None and v <= above)
        or (maximum is not None and v > maximum)
        or (below is not None and v >= below)
    ):
        if low is not None and high is not None:
            left, right = "[" if above is None else "(", "]" if below is None else ")"
            expected = f"in {left}{low:g}, {high:g}{right}"
        elif low is not None:
            expected = f"{'>=' if above is None else '>'} {low:g}"
        else:
            expected = f"{'<=' if below is None else '<'} {high:g}"
        raise ValueError(f"`{name}` must be {expected}, got {value!r}")
    return v


def check_reals(
    value: object, name: str, *, above: float | None = None
) -> float | tuple[float, ...]:
    """A real number, or a non-empty sequence of them, each as `check_real` says.

    Returns a float for a number, a tuple of floats for a list, tuple or 1-D
    array (per-channel statistics); an element's error names it ``name[i]``.
    """
    if isinstance(value, (list, tuple, np.ndarray)):
        if np.ndim(value) != 1 or len(value) == 0:
            raise ValueError(
                f"`{name}` must be a number or a non-empty 1-D sequence of them, "
                f"got {_got(value)}"
            )
        return tuple(
            check_real(v, f"{name}[{i}]", above=above) for i, v in enumerate(value)
        )
    return check_real(value, name, above=above)


def check_bool(value: object, name: str) -> bool:
    """``value`` as a bool (NumPy's bool too, as state dicts may hold it)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be a bool, got {_got(value)}")
    return bool(value)


def check_choice(value: object, name: str, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices`` (compared with ``==``).

    Raises
    ------
    TypeError
        If ``value`` has none of the choices' types.
    ValueError
        If it has the right type but is not one of them.
    """
    options = tuple(choices)
    if not any(type(value) is type(c) for c in options):
        raise TypeError(
            f"`{name}` must be one of {_options(options)}, got {_got(value)}"
        )
    if value not in options:
        raise ValueError(f"`{name}` must be one of {_options(options)}, got {value!r}")
    return value


def check_dtype(dtype: object, name: str = "dtype") -> np.dtype:
    """A compute dtype: float32 or float64, given as a dtype, a type or its name.

    Only the two names and the NumPy types themselves are accepted: NumPy would
    read ``'float'``, ``float`` or ``'d'`` as float64, a silent upcast.
    """
    if isinstance(dtype, np.dtype):
        dt: np.dtype | None = dtype
    elif isinstance(dtype, type) and dtype in (np.float32, np.float64):
        dt = np.dtype(dtype)
    elif isinstance(dtype, str) and dtype in ("float32", "float64"):
        dt = np.dtype(dtype)
    else:
        dt = None
    if dt is None or dt not in FLOAT_DTYPES:  # np.dtype(...) == None holds
        raise TypeError(f"`{name}` must be float32 or float64, got {dtype!r}")
    return dt


def check_str(value: object, name: str) -> str:
    """``value`` if it is a str."""
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be a str, got {_got(value)}")
    return value


def check_path(value: object, name: str) -> str | os.PathLike:
    """``value`` if it is a path: a str or an ``os.PathLike``."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(
            f"`{name}` must be a path (str or os.PathLike), got {_got(value)}"
        )
    return value


def check_callable(value: object, name: str) -> Any:
    """``value`` if it can be called."""
    if not callable(value):
        raise TypeError(f"`{name}` must be callable, got {_got(value)}")
    return value


def check_instance(value: object, name: str, cls: type, what: str) -> Any:
    """``value`` if it is an instance of ``cls``; ``what`` names the expected type."""
    if not isinstance(value, cls):
        raise TypeError(f"`{name}` must be {what}, got {_got(value)}")
    return value


# Longer representations (arrays, data sets) are cut in messages.
_MAX_REPR = 60


def _got(value: object) -> str:
    text = repr(value)
    if len(text) > _MAX_REPR:
        text = text[: _MAX_REPR - 3] + "..."
    return f"{type(value).__name__} {text}"


def _options(options: tuple) -> str:
    return ", ".join(repr(o) for o in options)


def check_pair(value: object, name: str, *, minimum: int) -> Pair:
    """Normalise an int or an (h, w) pair of ints, each ``>= minimum``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        out = (int(value), int(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value
        )
    ):
        out = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"`{name}` must be an int or a pair of ints, got {value!r}")
    if min(out) < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value!r}")
    return out


def check_output_size(value: object, name: str = "output_size") -> tuple:
    """An int, or an (h, w) pair of ints or None (keep that input size), each >= 1.

    Returns an (h, w) pair whose entries are ints or None.
    """

    def is_int(v: object) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if is_int(value):
        out = (int(value), int(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(v is None or is_int(v) for v in value)
    ):
        out = tuple(None if v is None else int(v) for v in value)
    else:
        raise TypeError(
            f"`{name}` must be an int or a pair of ints or None, got {_got(value)}"
        )
    if any(v is not None and v < 1 for v in out):
        raise ValueError(f"`{name}` must be >= 1, got {value!r}")
    return out


def check_array(x: object, name: str, ndim: int, what: str) -> np.ndarray:
    """Check that ``x`` is a float ndarray with ``ndim`` axes (``what`` names them)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"`{name}` must be a numpy.ndarray, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(
            f"`{name}` must be {ndim}-D {what}, got shape {x.shape} ({x.ndim}-D)"
        )
    if x.dtype.kind != "f":
        raise TypeError(f"`{name}` must have a floating dtype, got {x.dtype}")
    return x


def check_images(x: object, name: str) -> np.ndarray:
    """A batch of images: a real-valued ndarray (N, C, H, W), uint8 or float."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"`{name}` must be a numpy.ndarray, got {_got(x)}")
    if x.dtype.kind not in "uif":
        raise TypeError(f"`{name}` must hold integers or floats, got {x.dtype}")
    if x.ndim != 4:
        raise ValueError(
            f"`{name}` must be 4-D images (N, C, H, W), got shape {x.shape}"
        )
    return x


def check_shape(
    shape: object,
    name: str = "input_shape",
    what: str = "(N, C, H, W)",
    *,
    maximum: int | None = None,
) -> tuple[int, int, int, int]:
    """``shape`` as 4 positive ints, or a ValueError naming ``name``.

    ``maximum`` bounds the number of elements (the product), so that a shape
    typed on a command line cannot ask for more memory than the machine has.
    """
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) != 4
        or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0
            for v in shape
        )
    ):
        raise ValueError(f"`{name}` must be 4 positive ints {what}, got {shape!r}")
    a, b, c, d = (int(v) for v in shape)
    check_elements(a * b * c * d, name, maximum)
    return a, b, c, d


def check_elements(count: int, name: str, maximum: int | None) -> int:
    """``count`` (elements that ``name`` asks for) if it is at most ``maximum``."""
    if maximum is not None and count > maximum:
        raise ValueError(
            f"`{name}` asks for {count:,} elements, more than the {maximum:,} allowed"
        )
    return count


def check_ctx(ctx: object, cls: type, producer: str) -> None:
    """Check that ``ctx`` is the context object a forward function returned."""
    if not isinstance(ctx, cls):
        raise TypeError(
            f"`ctx` must be the {cls.__name__} returned by {producer}, "
            f"got {type(ctx).__name__}"
        )


def check_grad_dtype(dy: object, name: str = "dy") -> np.ndarray:
    """``dy`` if it is a float32 or float64 ndarray (a gradient's dtypes)."""
    if not isinstance(dy, np.ndarray):
        raise TypeError(f"`{name}` must be a numpy.ndarray, got {type(dy).__name__}")
    if dy.dtype not in FLOAT_DTYPES:
        raise TypeError(f"`{name}` must be float32 or float64, got {dy.dtype}")
    return dy


def check_grad(
    dy: object, expected_shape: tuple[int, ...], name: str = "dy"
) -> np.ndarray:
    """Check an upstream gradient against the shape of the output it belongs to.

    The gradient must be a float32 or float64 array, as the outputs are: an
    integer, boolean or float16 gradient is refused, never silently cast.
    """
    check_grad_dtype(dy, name)
    if dy.shape != tuple(expected_shape):
        raise ValueError(
            f"`{name}` must have the output's shape {tuple(expected_shape)}, "
            f"got {dy.shape}"
        )
    return dy
