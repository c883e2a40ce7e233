"""`CrossEntropyLoss`."""

from __future__ import annotations

import numpy as np

from cnnumpy import functional as F
from cnnumpy.nn.module import Module, as_float_array
from cnnumpy.validation import check_real

__all__ = ["CrossEntropyLoss"]


class CrossEntropyLoss(Module):
    """Softmax cross-entropy on logits, batch mean, as ``torch.nn.CrossEntropyLoss``.

    ``loss = criterion(logits, target)`` returns a Python float;
    ``criterion.backward()`` then returns d loss / d logits, shape (N, K).

    The softmax is computed once, in the forward pass, and reused by the
    backward pass: ``(softmax - target) / N``.

    Parameters
    ----------
    label_smoothing : float in [0, 1]
        The target is ``(1 - label_smoothing) * one_hot + label_smoothing / K``
        over the K classes, as PyTorch's (0: the one-hot target). PyTorch's
        other arguments (``weight``, ``ignore_index``, ``reduction``) are not
        implemented.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = check_real(
            label_smoothing, "label_smoothing", minimum=0, maximum=1
        )
        self._ctx: tuple[np.ndarray, np.ndarray] | None = None

    def forward(self, input: np.ndarray, target: np.ndarray) -> float:
        logits = as_float_array(input, name="input")
        target = np.asarray(target)
        loss, probs = F.cross_entropy_forward(logits, target, self.label_smoothing)
        self._ctx = (probs, target)
        return loss

    def backward(self, grad: float = 1.0) -> np.ndarray:  # type: ignore[override]
        """d (grad * loss) / d logits; ``grad`` scales it (1 for the loss itself)."""
        probs, target = self._cached()
        dlogits = F.cross_entropy_backward(probs, target, self.label_smoothing)
        if grad != 1.0:
            dlogits *= grad
        return dlogits
