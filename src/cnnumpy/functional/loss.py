"""Cross-entropy loss on logits, fused with log-softmax for stability and speed."""

from __future__ import annotations

import numpy as np

from cnnumpy.validation import check_array, check_real

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


def _check_smoothing(label_smoothing: object) -> float:
    return check_real(label_smoothing, "label_smoothing", minimum=0, maximum=1)


def cross_entropy_forward(
    logits: np.ndarray, target: np.ndarray, label_smoothing: float = 0.0
) -> tuple[float, np.ndarray]:
    """Mean negative log-likelihood of ``target`` under ``softmax(logits)``.

    With ``label_smoothing`` ``e`` the target is the mixture ``(1 - e)`` of the
    one-hot vector and ``e`` of the uniform distribution over the K classes, as
    PyTorch has it: ``loss_n = (1 - e) * -log p[target] + e * mean_k(-log p_k)``.

    Parameters
    ----------
    logits : ndarray, shape (N, K)
        Unnormalised scores, any floating dtype.
    target : ndarray of int, shape (N,)
        Class indices in ``[0, K)``.
    label_smoothing : float in [0, 1]
        Weight of the uniform distribution in the target.

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
        matching the batch, a class index out of range, ``label_smoothing``
        not a real number in [0, 1].
    """
    target = _check_target(logits, target)
    e = _check_smoothing(label_smoothing)
    N, K = logits.shape
    # log-sum-exp shifted by the row max: finite for logits of any magnitude.
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    sums = probs.sum(axis=1, keepdims=True)
    log_sums = np.log(sums[:, 0])
    nll = log_sums - shifted[np.arange(N), target]  # -log p[target], (N,)
    probs /= sums
    if e == 0:
        return float(nll.mean()), probs
    uniform = log_sums - shifted.mean(axis=1)  # mean_k(-log p_k), (N,)
    return float(((1 - e) * nll + e * uniform).mean()), probs


def cross_entropy_backward(
    probs: np.ndarray, target: np.ndarray, label_smoothing: float = 0.0
) -> np.ndarray:
    """d loss / d logits ``= (softmax(logits) - smoothed_target) / N``.

    ``smoothed_target = (1 - e) * one_hot(target) + e / K``; with ``e = 0`` it is
    the one-hot vector.
    """
    target = _check_target(probs, target)
    e = _check_smoothing(label_smoothing)
    N, K = probs.shape
    grad = probs.copy()
    if e:
        grad -= e / K
    grad[np.arange(N), target] -= 1 - e
    grad /= N
    return grad


def cross_entropy(
    logits: np.ndarray, target: np.ndarray, label_smoothing: float = 0.0
) -> float:
    """Cross-entropy as ``torch.nn.functional.cross_entropy`` (mean reduction)."""
    return cross_entropy_forward(logits, target, label_smoothing)[0]
