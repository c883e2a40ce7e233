"""`Dropout`."""

from __future__ import annotations

import numpy as np

from cnnumpy import functional as F
from cnnumpy.nn.init import resolve_rng
from cnnumpy.nn.module import Module, as_float_array
from cnnumpy.validation import check_grad, check_real

__all__ = ["Dropout"]


class Dropout(Module):
    """Inverted dropout in training, identity in evaluation, as ``torch.nn.Dropout``.

    Parameters
    ----------
    p : float in [0, 1]
        Probability of zeroing an element.
    rng : numpy.random.Generator, optional
        Source of the masks; pass one for reproducible runs.
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        self.p = check_real(p, "p", minimum=0, maximum=1)
        self.rng = resolve_rng(rng)
        # (scale, input shape): the scale is None when nothing was dropped (eval
        # or p == 0), and then only the shape can check dy.
        self._ctx: tuple[np.ndarray | None, tuple[int, ...]] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = as_float_array(x, name="x")
        y, scale = F.dropout_forward(x, self.p, self.training, self.rng)
        self._ctx = (scale, x.shape)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        scale, shape = self._cached()
        check_grad(dy, shape)
        return F.dropout_backward(dy, scale) if self.input_grad else None

    def extra_repr(self) -> str:
        return f"p={self.p}"
