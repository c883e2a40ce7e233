"""The `Parameter`: a trainable array and the gradient accumulated for it."""

from __future__ import annotations

import numpy as np

from cnnumpy.validation import check_instance


class Parameter:
    """A trainable array with its accumulated gradient.

    Parameters
    ----------
    data : numpy.ndarray
        The values. Stored as given (no copy); modules create it in their dtype.

    Attributes
    ----------
    data : numpy.ndarray
        The values, updated in place by the optimizers.
    grad : numpy.ndarray or None
        The gradient of the loss w.r.t. ``data``, summed over every ``backward``
        since the last ``zero_grad()``; ``None`` before the first backward, as in
        PyTorch.
    """

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray) -> None:
        check_instance(data, "data", np.ndarray, "a numpy.ndarray")
        if not np.issubdtype(data.dtype, np.floating):
            raise TypeError(f"`data` must have a floating dtype, got {data.dtype}")
        self.data = data
        self.grad: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def accumulate_grad(self, grad: np.ndarray) -> None:
        """Add ``grad`` into ``self.grad`` (allocated on first use)."""
        if self.grad is None:
            self.grad = grad.astype(self.data.dtype, copy=True)
        else:
            self.grad += grad

    def zero_grad(self) -> None:
        """Reset the gradient to ``None`` (PyTorch's ``set_to_none=True``)."""
        self.grad = None

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"
