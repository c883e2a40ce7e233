"""Evaluation: `evaluate` (loss, accuracy, per-class accuracy, confusion matrix)
and `predict_proba`, in batches, on one process or shared among MPI ranks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnumpy import functional as F
from cnnumpy import nn
from cnnumpy.data import Dataset
from cnnumpy.distributed import Communicator
from cnnumpy.validation import check_instance, check_int

__all__ = ["Evaluation", "evaluate", "predict_proba"]

_COMM = "a cnnumpy.distributed.Communicator or None"


def _check_dataset(data: object, name: str) -> Dataset:
    check_instance(data, name, Dataset, "a cnnumpy.data.Dataset")
    if len(data) == 0:
        raise ValueError(f"`{name}` must hold at least one image, got 0")
    if data.images.dtype.kind != "f":
        raise TypeError(
            f"`{name}` images must be floats (normalized, e.g. with "
            f"Dataset.normalized), got {data.images.dtype}"
        )
    return data


def _check_model(model: object) -> nn.Module:
    return check_instance(model, "model", nn.Module, "an nn.Module")


@dataclass(frozen=True)
class Evaluation:
    """What `evaluate` measures on a data set.

    Attributes
    ----------
    loss : float
        Mean softmax cross-entropy.
    accuracy : float
    per_class_accuracy : ndarray (K,)
        Recall of each class; NaN for a class with no images.
    confusion_matrix : ndarray (K, K) of int64
        Rows are true classes, columns predicted ones.
    predictions : ndarray (N,) of int64
    probabilities : ndarray (N, K)
        Softmax of the logits.
    """

    loss: float
    accuracy: float
    per_class_accuracy: np.ndarray
    confusion_matrix: np.ndarray
    predictions: np.ndarray
    probabilities: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """Loss, accuracy, per-class accuracy and confusion matrix as JSON values."""
        return {
            "loss": self.loss,
            "accuracy": self.accuracy,
            "per_class_accuracy": [
                None if math.isnan(a) else float(a) for a in self.per_class_accuracy
            ],
            "confusion_matrix": self.confusion_matrix.tolist(),
        }

    def report(self, class_names: Sequence[str]) -> str:
        """Accuracy, loss, per-class accuracy and the confusion matrix as text."""
        k = len(self.confusion_matrix)
        if len(class_names) != k:
            raise ValueError(
                f"`class_names` must have {k} names, got {len(class_names)}"
            )
        total = int(self.confusion_matrix.sum())
        right = int(np.trace(self.confusion_matrix))
        width = max(5, *(len(n) for n in class_names))
        lines = [
            f"accuracy {self.accuracy:.2%} ({right:,}/{total:,}), loss {self.loss:.4f}",
            "",
            f"{'class':<{width}}  accuracy  images",
        ]
        for name, acc, n in zip(
            class_names, self.per_class_accuracy, self.confusion_matrix.sum(axis=1)
        ):
            shown = "-" if math.isnan(acc) else f"{acc:.1%}"
            lines.append(f"{name:<{width}}  {shown:>8}  {n:>6,}")
        cell = max(4, len(str(int(self.confusion_matrix.max()))) + 1)
        labels = [str(i) for i in range(k)]
        lines += [
            "",
            "confusion matrix (rows: true class, columns: predicted; classes by index)",
            " " * 4 + "".join(f"{c:>{cell}}" for c in labels),
        ]
        for label, row in zip(labels, self.confusion_matrix):
            lines.append(f"{label:>4}" + "".join(f"{v:>{cell}}" for v in row))
        return "\n".join(lines)


def predict_proba(
    model: nn.Module, images: np.ndarray, batch_size: int = 1000
) -> np.ndarray:
    """Class probabilities (softmax of the logits) of normalized ``images``.

    Runs in evaluation mode and restores the model's mode afterwards.
    Returns an (N, K) array in the model's dtype.
    """
    _check_model(model)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    check_instance(images, "images", np.ndarray, "a numpy.ndarray")
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(
            f"`images` must be a non-empty (N, C, H, W) array, got shape {images.shape}"
        )
    was_training = model.training
    model.eval()
    try:
        chunks = []
        for start in range(0, len(images), batch_size):
            chunks.append(F.softmax(model(images[start : start + batch_size]), dim=1))
    finally:
        model.train(was_training)
    return np.concatenate(chunks)


def _shared_proba(
    model: nn.Module, images: np.ndarray, batch_size: int, comm: Communicator
) -> np.ndarray:
    """`predict_proba` of ``images``, each rank computing its part."""
    part = comm.part(len(images))
    if part.stop > part.start:
        mine = predict_proba(model, images[part], batch_size)
    else:  # fewer images than ranks: an empty part of the right shape and dtype
        mine = predict_proba(model, images[:1], batch_size)[:0]
    return comm.allgather_rows(mine, len(images))


def evaluate(
    model: nn.Module,
    data: Dataset,
    batch_size: int = 1000,
    comm: Communicator | None = None,
) -> Evaluation:
    """Loss, accuracy, per-class accuracy and confusion matrix on ``data``.

    Parameters
    ----------
    model : nn.Module
    data : Dataset
        Normalized float images, as given to `fit`.
    batch_size : int
        Images per forward pass (memory only: results do not depend on it).
    comm : cnnumpy.distributed.Communicator, optional
        Share the images among its ranks; each gets the whole result.
    """
    _check_model(model)
    data = _check_dataset(data, "data")
    if comm is None:
        probs = predict_proba(model, data.images, batch_size)
    else:
        check_instance(comm, "comm", Communicator, _COMM)
        probs = _shared_proba(model, data.images, batch_size, comm)
    k = probs.shape[1]
    if len(data.class_names) > k:
        raise ValueError(
            f"`data` has {len(data.class_names)} classes but the model outputs {k}"
        )
    labels = data.labels
    picked = probs[np.arange(len(labels)), labels].astype(np.float64)
    tiny = np.finfo(probs.dtype).tiny
    loss = float(-np.log(np.maximum(picked, tiny)).mean())
    predictions = probs.argmax(axis=1).astype(np.int64)
    confusion = np.bincount(labels * k + predictions, minlength=k * k).reshape(k, k)
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(confusion) / totals
    return Evaluation(
        loss=loss,
        accuracy=float(np.mean(predictions == labels)),
        per_class_accuracy=per_class,
        confusion_matrix=confusion,
        predictions=predictions,
        probabilities=probs,
    )
