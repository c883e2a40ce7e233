"""Fully connected layer and flatten."""

from __future__ import annotations

import numpy as np

from cnnumpy.functional import _engine
from cnnumpy.validation import check_grad, check_grad_dtype

__all__ = ["flatten", "flatten_backward", "linear", "linear_backward"]


def _check_linear(x: object, weight: object, bias: object) -> None:
    for name, arr in (("x", x), ("weight", weight)):
        if not isinstance(arr, np.ndarray):
            raise TypeError(
                f"`{name}` must be a numpy.ndarray, got {type(arr).__name__}"
            )
        if arr.dtype.kind != "f":
            raise TypeError(f"`{name}` must have a floating dtype, got {arr.dtype}")
    if weight.ndim != 2:
        raise ValueError(
            "`weight` must be 2-D (out_features, in_features), "
            f"got shape {weight.shape}"
        )
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"`x` must have shape (*, {weight.shape[1]}) to match `weight`, "
            f"got {x.shape}"
        )
    if weight.dtype != x.dtype:
        raise TypeError(
            f"`weight` dtype must match `x` dtype ({x.dtype}), got {weight.dtype}"
        )
    if bias is not None and (
        not isinstance(bias, np.ndarray) or bias.shape != (weight.shape[0],)
    ):
        got = bias.shape if isinstance(bias, np.ndarray) else type(bias).__name__
        raise ValueError(f"`bias` must have shape ({weight.shape[0]},), got {got}")
    if bias is not None and bias.dtype != x.dtype:
        raise TypeError(
            f"`bias` dtype must match `x` dtype ({x.dtype}), got {bias.dtype}"
        )


def linear(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None
) -> np.ndarray:
    """``y = x @ weight.T + bias`` as ``torch.nn.functional.linear``.

    Parameters
    ----------
    x : ndarray, shape (*, in_features)
    weight : ndarray, shape (out_features, in_features)
    bias : ndarray, shape (out_features,), optional

    Returns
    -------
    ndarray, shape (*, out_features)
    """
    _check_linear(x, weight, bias)
    x2 = x.reshape(-1, weight.shape[1])  # (M, in): leading dimensions merged
    # BLAS reads the transpose in place: no copy.
    y = _engine.matmul(x2, weight.T).reshape(*x.shape[:-1], weight.shape[0])
    if bias is not None:
        y += bias
    return y


def linear_backward(
    dy: np.ndarray,
    x: np.ndarray,
    weight: np.ndarray,
    has_bias: bool = True,
    input_grad: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`linear`: ``dx = dy @ W``, ``dW = dy.T @ x``, ``db = Σ dy``.

    Leading batch dimensions are summed over for ``dW`` and ``db``. ``dx`` is None
    when ``input_grad`` is False, ``db`` when ``has_bias`` is False. A 2-D
    ``x`` stored column-major (a flattened (C, H, W, N) activation is) gets a
    ``dx`` stored the same way, so the gradient flows back into the layers
    below in their own memory order.
    """
    _check_linear(x, weight, None)
    check_grad(dy, (*x.shape[:-1], weight.shape[0]))
    dy2 = dy.reshape(-1, weight.shape[0])  # (M, out)
    x2 = x.reshape(-1, weight.shape[1])  # (M, in)
    dweight = _engine.matmul(dy2.T, x2)
    dbias = dy2.sum(axis=0) if has_bias else None
    if not input_grad:
        dx = None
    elif x.ndim == 2 and not x.flags.c_contiguous and x.flags.f_contiguous:
        dx = _engine.matmul(weight.T, dy2.T).T  # (W.T @ dy.T).T, column-major
    else:
        dx = _engine.matmul(dy2, weight).reshape(dy.shape[:-1] + weight.shape[1:])
    return dx, dweight, dbias


def flatten(x: np.ndarray, start_dim: int = 1, end_dim: int = -1) -> np.ndarray:
    """Merge dimensions ``start_dim..end_dim`` into one, as ``torch.flatten``."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"`x` must be a numpy.ndarray, got {type(x).__name__}")
    nd = max(x.ndim, 1)
    s = start_dim + nd if start_dim < 0 else start_dim
    e = end_dim + nd if end_dim < 0 else end_dim
    if not (0 <= s < nd and 0 <= e < nd) or s > e:
        raise ValueError(
            f"`start_dim`..`end_dim` (={start_dim}..{end_dim}) must be a valid range "
            f"of dimensions of a {x.ndim}-D input"
        )
    # The merged size spelled out: -1 is ambiguous for an empty batch.
    merged = int(np.prod(x.shape[s : e + 1]))
    return x.reshape(*x.shape[:s], merged, *x.shape[e + 1 :])


def flatten_backward(dy: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """Reshape the gradient back to the input's shape."""
    check_grad_dtype(dy)
    if dy.size != int(np.prod(input_shape)):
        raise ValueError(
            f"`dy` must have {int(np.prod(input_shape))} elements to match the input "
            f"shape {tuple(input_shape)}, got shape {dy.shape}"
        )
    return dy.reshape(input_shape)
