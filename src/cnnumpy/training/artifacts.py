"""What a finished run leaves in its folder besides checkpoints.

``metrics.json`` (test results, timings, the config and the per-epoch
history), ``history.csv`` and the pictures: history, confusion matrix, the
misclassified test images and the first layer's filters.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from cnnumpy.data import Dataset
from cnnumpy.training.callbacks import FitState
from cnnumpy.training.checkpoint import atomic_write_bytes
from cnnumpy.training.evaluation import Evaluation

__all__ = ["write_metrics", "write_plots"]

log = logging.getLogger(__name__)


def write_metrics(out: Path, metrics: dict[str, Any], state: FitState) -> list[Path]:
    """Write ``metrics.json`` and ``history.csv`` (each atomically).

    ``metrics.json`` is always valid JSON: a NaN or infinite value in
    ``metrics`` raises ValueError and nothing is written.
    """
    try:
        text = json.dumps(metrics, indent=2, allow_nan=False)
    except ValueError as err:
        raise ValueError(
            f"metrics.json would hold a NaN or infinite value ({err})"
        ) from None
    atomic_write_bytes(out / "metrics.json", text.encode("utf-8"))
    atomic_write_bytes(out / "history.csv", _history_csv(state.history))
    return [out / "metrics.json", out / "history.csv"]


def metrics(
    config: dict[str, Any],
    state: FitState,
    test: Evaluation,
    data_info: dict[str, Any],
    monitor: str,
) -> dict[str, Any]:
    seconds = sum(h["seconds"] for h in state.history)
    images = sum(h["images_per_second"] * h["seconds"] for h in state.history)
    values = [h[monitor] for h in state.history]
    best = int(np.argmax(values) if "accuracy" in monitor else np.argmin(values))
    return {
        "test_accuracy": test.accuracy,
        "test_loss": test.loss,
        "epochs": state.epoch,
        "best_epoch": best + 1,
        "train_seconds": seconds,
        "images_per_second": images / max(seconds, 1e-9),
        "per_class_accuracy": test.to_dict()["per_class_accuracy"],
        "confusion_matrix": test.to_dict()["confusion_matrix"],
        "data": data_info,
        "config": config,
        "history": state.history,
    }


def _history_csv(history: list[dict[str, Any]]) -> bytes:
    text = io.StringIO()
    columns = list(history[0]) if history else ["epoch"]
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return text.getvalue().encode("utf-8")


def write_plots(
    out: Path, state: FitState, test: Evaluation, test_raw: Dataset, model: Any
) -> list[Path]:
    """Draw the run's pictures; without matplotlib, log why and draw none."""
    from cnnumpy.training import plots

    try:
        plots.plot_history(out / "history.png", state.history)
    except ImportError as err:
        log.warning("no plots: %s", err)
        return []
    names = list(test_raw.class_names)
    plots.plot_confusion_matrix(
        out / "confusion_matrix.png", test.confusion_matrix, names
    )
    wrong = np.flatnonzero(test.predictions != test_raw.labels)
    # Most confident mistakes first: the grid shows the ones most worth a look.
    confidence = test.probabilities[wrong, test.predictions[wrong]]
    wrong = wrong[np.argsort(-confidence, kind="stable")]
    plots.plot_misclassified(
        out / "misclassified.png",
        test_raw.images[wrong],
        test_raw.labels[wrong],
        test.predictions[wrong],
        names,
    )
    first_conv = next(
        m for m in model if hasattr(m, "weight") and m.weight.data.ndim == 4
    )
    plots.plot_filters(out / "filters.png", first_conv.weight.data)
    return [
        out / n
        for n in (
            "history.png",
            "confusion_matrix.png",
            "misclassified.png",
            "filters.png",
        )
    ]
