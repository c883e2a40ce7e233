"""`Linear`, `Flatten`, `Unflatten` and `Identity`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from cnnumpy import functional as F
from cnnumpy.nn.init import default_uniform, resolve_rng
from cnnumpy.nn.module import Module, as_float_array
from cnnumpy.nn.parameter import Parameter
from cnnumpy.validation import (
    check_bool,
    check_dtype,
    check_grad,
    check_grad_dtype,
    check_int,
)

__all__ = ["Flatten", "Identity", "Linear", "Unflatten"]


class Linear(Module):
    """``y = x @ weight.T + bias`` over the last axis, as ``torch.nn.Linear``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    dtype : float32 (default) or float64
    rng : numpy.random.Generator, optional
        Source of the initial weights, ``U(-1/sqrt(in), 1/sqrt(in))`` as PyTorch.

    Shape
    -----
    Input (*, in_features), output (*, out_features).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: object = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features = check_int(in_features, "in_features", minimum=1)
        self.out_features = check_int(out_features, "out_features", minimum=1)
        check_bool(bias, "bias")
        self.dtype = check_dtype(dtype)
        rng = resolve_rng(rng)
        self.weight = Parameter(
            default_uniform((out_features, in_features), in_features, rng, self.dtype)
        )
        self.bias = (
            Parameter(default_uniform((out_features,), in_features, rng, self.dtype))
            if bias
            else None
        )
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float_array(x, self.dtype, "x")
        y = F.linear(x, self.weight.data, None if self.bias is None else self.bias.data)
        self._x = x
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        x = self._cached("_x")
        dx, dweight, dbias = F.linear_backward(
            as_float_array(check_grad_dtype(dy), self.dtype, "dy"),
            x,
            self.weight.data,
            has_bias=self.bias is not None,
            input_grad=self.input_grad,
        )
        self.weight.accumulate_grad(dweight)
        if self.bias is not None:
            self.bias.accumulate_grad(dbias)
        return dx

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class _Reshape(Module):
    """A module whose output is its input reshaped; backward reshapes ``dy`` back."""

    def __init__(self) -> None:
        super().__init__()
        # (input shape, output shape) of the last forward pass
        self._shapes: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    def _reshaped(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        self._shapes = (x.shape, y.shape)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        in_shape, out_shape = self._cached("_shapes")
        # flatten_backward checks only the size: a transposed dy would pass.
        check_grad(dy, out_shape)
        return F.flatten_backward(dy, in_shape) if self.input_grad else None


class Flatten(_Reshape):
    """Merge dimensions ``start_dim..end_dim`` (default: all but the batch)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = check_int(start_dim, "start_dim")
        self.end_dim = check_int(end_dim, "end_dim")

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float_array(x, name="x")
        return self._reshaped(x, F.flatten(x, self.start_dim, self.end_dim))

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(_Reshape):
    """Split dimension ``dim`` into ``unflattened_size``, as ``torch.nn.Unflatten``.

    The inverse of :class:`Flatten`: ``Unflatten(1, (16, 4, 4))`` turns an
    (N, 256) batch, such as a Linear layer's output, into (N, 16, 4, 4) feature
    maps, where a decoder's convolutions start. One size may be -1: it is
    worked out from the others, as in ``torch.Tensor.unflatten``.

    Parameters
    ----------
    dim : int
        The dimension to split; negative counts from the end.
    unflattened_size : sequence of int
        The sizes it splits into, each at least 1, or one of them -1.
    """

    def __init__(self, dim: int, unflattened_size: Sequence[int]) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim")
        if not isinstance(unflattened_size, (tuple, list)):
            raise TypeError(
                "`unflattened_size` must be a tuple or list of ints, got "
                f"{type(unflattened_size).__name__} {unflattened_size!r:.80}"
            )
        sizes = tuple(check_int(v, "unflattened_size") for v in unflattened_size)
        if not sizes or any(v < 1 and v != -1 for v in sizes) or sizes.count(-1) > 1:
            raise ValueError(
                "`unflattened_size` must be sizes of at least 1, one of them "
                f"possibly -1, got {sizes}"
            )
        self.unflattened_size = sizes

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float_array(x, name="x")
        d = self.dim + x.ndim if self.dim < 0 else self.dim
        if not 0 <= d < x.ndim:
            raise ValueError(
                f"`dim` (={self.dim}) must be a dimension of the {x.ndim}-D input"
            )
        sizes = list(self.unflattened_size)
        known = math.prod(v for v in sizes if v != -1)
        if -1 in sizes and x.shape[d] % known == 0:
            sizes[sizes.index(-1)] = x.shape[d] // known
        if math.prod(sizes) != x.shape[d]:
            raise ValueError(
                f"`unflattened_size` {self.unflattened_size} does not split "
                f"dimension {self.dim} of size {x.shape[d]} (input shape {x.shape})"
            )
        return self._reshaped(x, x.reshape(*x.shape[:d], *sizes, *x.shape[d + 1 :]))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Identity(Module):
    """Returns its input unchanged, as ``torch.nn.Identity``; the gradient too.

    A placeholder where a layer is optional, such as the shortcut of a
    :class:`Residual` block whose shape does not change. The forward pass
    returns ``x`` itself, not a copy.
    """

    def __init__(self) -> None:
        super().__init__()
        self._shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float_array(x, name="x")
        self._shape = x.shape
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        check_grad(dy, self._cached("_shape"))
        return dy if self.input_grad else None
