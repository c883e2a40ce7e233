"""Cross-entropy loss on logits, fused with log-softmax for stability and speed."""

from __future__ import annotations

import numpy as np

from cnnumpy.validation import check_array

__all__ = ["cross_entropy", "cross_entropy_backward", "cross_entropy_forward"]


def _check_target(logits: np.ndarray, target: object) -> np.ndarray:
    check_array(logits, "input", 2, "(N, num_classes) logits")
    if not isinstance(target, np.ndarray):
        raise TypeError(
            f"`target` must be a numpy.ndarray, got {type(target).__name__}"
        )
    if not np.issubdtype(target.dtype, np.integer):
        raise TypeError(
            f"`target` must hold integer class indices, got dtype {target.dtype}"
        )
    N, K = logits.shape
    if target.shape != (N,):
        raise ValueError(
            f"`target` must have shape ({N},) to match `input`, got {target.shape}"
        )
    if N == 0:
        raise ValueError("`input` must hold at least one sample, got N=0")
    if target.size and (target.min() < 0 or target.max() >= K):
        bad = target[(target < 0) | (target >= K)][0]
        raise ValueError(f"`target` values must be in [0, {K - 1}], got {bad}")
    return target


def cross_entropy_forward(
    logits: np.ndarray, target: np.ndarray
) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood of ``target`` under ``softmax(logits)``.

    Parameters
    ----------
    logits : ndarray, shape (N, K)
        Unnormalised scores, any floating dtype.
    target : ndarray of int, shape (N,)
        Class indices in ``[0, K)``.

    Returns
    -------
    loss : float
        ``-mean(log_softmax(logits)[n, target[n]])``, computed in the logits' dtype.
    probs : ndarray, shape (N, K)
        ``softmax(logits)``, which is all :func:`cross_entropy_backward` needs.

    Raises
    ------
    TypeError, ValueError
        Non-2-D or non-float logits, non-integer targets, a target shape not
        matching the batch, a class index out of range.
    """
    target = _check_target(logits, target)
    N = logits.shape[0]
    # log-sum-exp shifted by the row max: finite for logits of any magnitude.
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    sums = probs.sum(axis=1, keepdims=True)
    logp_target = shifted[np.arange(N), target] - np.log(sums[:, 0])
    probs /= sums
    return float(-logp_target.mean()), probs


def cross_entropy_backward(probs: np.ndarray, target: np.ndarray) -> np.ndarray:
    """d loss / d logits ``= (softmax(logits) - one_hot(target)) / N``."""
    target = _check_target(probs, target)
    N = probs.shape[0]
    grad = probs.copy()
    grad[np.arange(N), target] -= 1
    grad /= N
    return grad


def cross_entropy(logits: np.ndarray, target: np.ndarray) -> float:
    """Cross-entropy as ``torch.nn.functional.cross_entropy`` (mean reduction)."""
    return cross_entropy_forward(logits, target)[0]
