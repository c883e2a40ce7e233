"""Activation modules. They keep the input's float dtype."""

from __future__ import annotations

import numpy as np

from cnnumpy import functional as F
from cnnumpy.nn.module import Module, as_float_array
from cnnumpy.validation import check_bool, check_choice, check_int, check_real

__all__ = [
    "GELU",
    "LeakyReLU",
    "LogSoftmax",
    "ReLU",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
]


class _OutputActivation(Module):
    """An activation whose derivative is a function of its output ``y``."""

    _fn = staticmethod(F.relu)
    _grad = staticmethod(F.relu_backward)

    inplace = False

    def __init__(self) -> None:
        super().__init__()
        self._y: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float_array(x, name="x")
        self._y = self._fn(x, out=x) if self.inplace else self._fn(x)
        return self._y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        y = self._cached("_y")
        return self._grad(dy, y) if self.input_grad else None


class _InplaceActivation(_OutputActivation):
    """An activation that can overwrite its input with its output."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = check_bool(inplace, "inplace")

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(_InplaceActivation):
    """``max(x, 0)``.

    ``inplace=True`` writes the output into the input array, as PyTorch's
    ``nn.ReLU(inplace=True)``: no new array, but the input is gone. Safe after
    a layer that does not keep its own output (``Conv2d``, ``Linear``,
    ``AvgPool2d``); not after ``MaxPool2d``, whose backward pass needs it.
    """


class Tanh(_InplaceActivation):
    """Hyperbolic tangent.

    ``inplace=True`` overwrites the input, as for :class:`ReLU` (PyTorch has
    ``torch.tanh_`` for this): the backward pass needs only the output.
    """

    _fn = staticmethod(F.tanh)
    _grad = staticmethod(F.tanh_backward)


class Sigmoid(_OutputActivation):
    """Logistic sigmoid."""

    _fn = staticmethod(F.sigmoid)
    _grad = staticmethod(F.sigmoid_backward)


class LeakyReLU(Module):
    """``x`` if ``x > 0`` else ``negative_slope * x``."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = check_real(negative_slope, "negative_slope")
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = as_float_array(x, name="x")
        return F.leaky_relu(self._x, self.negative_slope)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        x = self._cached("_x")
        return (
            F.leaky_relu_backward(dy, x, self.negative_slope)
            if self.input_grad
            else None
        )

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class _InputActivation(Module):
    """An activation whose derivative is a function of its input ``x``."""

    def __init__(self) -> None:
        super().__init__()
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = as_float_array(x, name="x")
        return self._fn(self._x)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        x = self._cached("_x")
        return self._grad(dy, x) if self.input_grad else None

    def _fn(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _grad(self, dy: np.ndarray, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class SiLU(_InputActivation):
    """SiLU (swish), ``x * sigmoid(x)``, as ``torch.nn.SiLU``.

    PyTorch's ``inplace`` is left out: the backward pass needs the input.
    """

    def _fn(self, x: np.ndarray) -> np.ndarray:
        return F.silu(x)

    def _grad(self, dy: np.ndarray, x: np.ndarray) -> np.ndarray:
        return F.silu_backward(dy, x)


class GELU(_InputActivation):
    """GELU, ``x * Phi(x)`` with ``Phi`` the standard normal CDF, as ``torch.nn.GELU``.

    Parameters
    ----------
    approximate : {'none', 'tanh'}
        ``'none'`` computes ``Phi`` exactly with erf (``math.erf``, one Python
        call per element, as NumPy has no erf); ``'tanh'`` uses PyTorch's tanh
        approximation, in NumPy alone.
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = check_choice(
            approximate, "approximate", F.GELU_APPROXIMATIONS
        )

    def _fn(self, x: np.ndarray) -> np.ndarray:
        return F.gelu(x, self.approximate)

    def _grad(self, dy: np.ndarray, x: np.ndarray) -> np.ndarray:
        return F.gelu_backward(dy, x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class _DimActivation(Module):
    _fn = staticmethod(F.softmax)
    _grad = staticmethod(F.softmax_backward)

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim")
        self._y: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = self._fn(as_float_array(x, name="x"), self.dim)
        return self._y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        y = self._cached("_y")
        return self._grad(dy, y, self.dim) if self.input_grad else None

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_DimActivation):
    """Softmax along ``dim`` (default the last axis)."""


class LogSoftmax(_DimActivation):
    """Log-softmax along ``dim`` (default the last axis)."""

    _fn = staticmethod(F.log_softmax)
    _grad = staticmethod(F.log_softmax_backward)
