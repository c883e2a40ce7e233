"""Element-wise activations and softmax, each forward with its backward below it.

The backward functions take the upstream gradient ``dy`` and what the derivative
is cheapest to express in: the output ``y`` where the derivative is a function of
the output (tanh, sigmoid, relu, softmax), the input ``x`` otherwise.
"""

from __future__ import annotations

import math

import numpy as np

from cnnumpy.functional import _engine
from cnnumpy.validation import check_choice, check_grad

__all__ = [
    "GELU_APPROXIMATIONS",
    "gelu",
    "gelu_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "log_softmax",
    "log_softmax_backward",
    "relu",
    "relu_backward",
    "sigmoid",
    "sigmoid_backward",
    "silu",
    "silu_backward",
    "softmax",
    "softmax_backward",
    "tanh",
    "tanh_backward",
]


def _check_float(x: object, name: str = "x") -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"`{name}` must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"`{name}` must have a floating dtype, got {x.dtype}")
    return x


def _check_dim(x: np.ndarray, dim: int) -> int:
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"`dim` must be an int, got {dim!r}")
    if not -x.ndim <= dim < max(x.ndim, 1):
        raise ValueError(
            f"`dim` must be in [{-x.ndim}, {x.ndim - 1}] for a {x.ndim}-D input, "
            f"got {dim}"
        )
    return int(dim)


def _check_out(out: object, x: np.ndarray) -> np.ndarray:
    """``out`` (x itself, for in place) or a new array of ``x``'s memory order."""
    if out is None:
        return np.empty_like(x)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"`out` must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != x.shape or out.dtype != x.dtype:
        raise ValueError(
            f"`out` must have the shape and dtype of `x` ({x.shape}, {x.dtype}), "
            f"got {out.shape}, {out.dtype}"
        )
    if not out.flags.writeable:
        raise ValueError("`out` must be writeable, got a read-only array")
    return out


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``max(x, 0)``; NaN stays NaN. ``out=x`` works in place."""
    out = _check_out(out, _check_float(x))
    return _engine.elementwise(lambda o, i: np.maximum(i, 0, out=o), out, x)


def relu_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``dy`` where the output is positive, else 0 (derivative at 0 taken as 0)."""
    check_grad(dy, _check_float(y, "y").shape)
    if dy.dtype != y.dtype or y.dtype.itemsize not in _SAME_SIZE_INT:
        return np.where(y > 0, dy, 0).astype(dy.dtype, copy=False)
    return _engine.elementwise(_relu_grad, np.empty_like(y), y, dy, cost=3)


def _relu_grad(out: np.ndarray, y: np.ndarray, dy: np.ndarray) -> None:
    # np.where(y > 0, dy, 0) as a bit mask: all ones where y > 0, else zero,
    # ANDed with dy's bits. The same result (+0.0 where masked, NaN and inf
    # in dy kept or dropped as np.where does), in a fraction of np.where's time.
    bits = out.view(_SAME_SIZE_INT[out.dtype.itemsize])
    np.greater(y, 0, out=bits)  # 1 or 0
    np.negative(bits, out=bits)  # all ones or 0
    np.bitwise_and(bits, dy.view(bits.dtype), out=bits)


_SAME_SIZE_INT = {2: np.int16, 4: np.int32, 8: np.int64}


def leaky_relu(x: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    """``x`` where ``x > 0``, else ``negative_slope * x``."""
    _check_float(x)
    return np.where(x > 0, x, x * negative_slope).astype(x.dtype, copy=False)


def leaky_relu_backward(
    dy: np.ndarray, x: np.ndarray, negative_slope: float = 0.01
) -> np.ndarray:
    """``dy`` where the input is positive, else ``negative_slope * dy``."""
    check_grad(dy, _check_float(x).shape)
    return np.where(x > 0, dy, dy * negative_slope).astype(dy.dtype, copy=False)


def tanh(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Hyperbolic tangent. ``out=x`` works in place."""
    out = _check_out(out, _check_float(x))
    return _engine.elementwise(lambda o, i: np.tanh(i, out=o), out, x, cost=4)


def tanh_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``dy * (1 - y**2)`` with ``y = tanh(x)``."""
    check_grad(dy, _check_float(y, "y").shape)
    return _engine.elementwise(_tanh_grad, np.empty_like(y), y, dy, cost=3)


def _tanh_grad(out: np.ndarray, y: np.ndarray, dy: np.ndarray) -> None:
    np.multiply(y, y, out=out)
    np.subtract(1, out, out=out)
    out *= dy


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function ``1 / (1 + exp(-x))``, without overflow for large ``|x|``."""
    _check_float(x)
    # exp(-|x|) <= 1 never overflows; the two branches are the same function.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def sigmoid_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``dy * y * (1 - y)`` with ``y = sigmoid(x)``."""
    check_grad(dy, _check_float(y, "y").shape)
    return dy * y * (1 - y)


def softmax(x: np.ndarray, dim: int = -1) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` along ``dim``, shifted by the max for stability."""
    dim = _check_dim(_check_float(x), dim)
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    e /= e.sum(axis=dim, keepdims=True)
    return e


def softmax_backward(dy: np.ndarray, y: np.ndarray, dim: int = -1) -> np.ndarray:
    """Jacobian-vector product of softmax: ``y * (dy - sum(dy * y))`` along ``dim``."""
    check_grad(dy, _check_float(y, "y").shape)
    dim = _check_dim(y, dim)
    return y * (dy - (dy * y).sum(axis=dim, keepdims=True))


def log_softmax(x: np.ndarray, dim: int = -1) -> np.ndarray:
    """``x - logsumexp(x)`` along ``dim``; exact for logits of any magnitude."""
    dim = _check_dim(_check_float(x), dim)
    shifted = x - x.max(axis=dim, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=dim, keepdims=True))
    return shifted


def log_softmax_backward(dy: np.ndarray, y: np.ndarray, dim: int = -1) -> np.ndarray:
    """``dy - softmax * sum(dy)`` along ``dim``, with ``y = log_softmax(x)``."""
    check_grad(dy, _check_float(y, "y").shape)
    dim = _check_dim(y, dim)
    return dy - np.exp(y) * dy.sum(axis=dim, keepdims=True)


def silu(x: np.ndarray) -> np.ndarray:
    """SiLU (swish): ``x * sigmoid(x)``."""
    return x * sigmoid(x)


def silu_backward(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``dy * s * (1 + x * (1 - s))`` with ``s = sigmoid(x)``."""
    check_grad(dy, _check_float(x).shape)
    s = sigmoid(x)
    return dy * s * (1 + x * (1 - s))


GELU_APPROXIMATIONS = ("none", "tanh")

# NumPy has no erf; math.erf is accurate to within an ulp or so, which the
# float64 comparison with PyTorch needs. It costs one Python call per element,
# where approximate='tanh' is NumPy alone.
_erf = np.frompyfunc(math.erf, 1, 1)
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_TANH_CUBIC = 0.044715


def _gelu_phi(x: np.ndarray) -> np.ndarray:
    """The standard normal CDF of ``x``, in float64."""
    return 0.5 * (1 + _erf(x.astype(np.float64) / math.sqrt(2)).astype(np.float64))


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(_SQRT_2_OVER_PI * (x + _TANH_CUBIC * x**3))


def gelu(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """GELU, ``x * Phi(x)``, as ``torch.nn.functional.gelu``.

    ``approximate='none'`` uses the normal CDF ``Phi(x) = (1 + erf(x / sqrt 2)) / 2``;
    ``'tanh'`` uses ``(1 + tanh(sqrt(2 / pi) * (x + 0.044715 x**3))) / 2``.
    """
    _check_float(x)
    approximate = check_choice(approximate, "approximate", GELU_APPROXIMATIONS)
    if approximate == "tanh":
        return 0.5 * x * (1 + _gelu_tanh(x))
    return (x * _gelu_phi(x)).astype(x.dtype, copy=False)


def gelu_backward(
    dy: np.ndarray, x: np.ndarray, approximate: str = "none"
) -> np.ndarray:
    """``dy * (Phi(x) + x * Phi'(x))`` for the ``Phi`` of ``approximate``."""
    check_grad(dy, _check_float(x).shape)
    approximate = check_choice(approximate, "approximate", GELU_APPROXIMATIONS)
    if approximate == "tanh":
        t = _gelu_tanh(x)
        inner = _SQRT_2_OVER_PI * (1 + 3 * _TANH_CUBIC * x * x)
        return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * inner)
    x64 = x.astype(np.float64)
    pdf = np.exp(-0.5 * x64 * x64) / math.sqrt(2 * math.pi)
    return (dy * (_gelu_phi(x) + x64 * pdf)).astype(dy.dtype, copy=False)
