"""Pictures of a training run, drawn with matplotlib (the ``plot`` extra).

The images of the ``cnnumpy train`` run folder: the loss and accuracy history,
the confusion matrix, the misclassified images and the first layer's filters.
As in :mod:`cnnumpy.explain.plots`, matplotlib is imported inside the functions and the
figures are drawn on the Agg canvas directly, without pyplot.

Every function validates its arguments before drawing, writes exactly one image
file (the format follows the suffix of ``path``) and writes it atomically: the
figure goes to a temporary file in the same folder, renamed over ``path`` only
once complete, so a crash never leaves a half-written image behind. Each returns
the number of panels it drew.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from cnnumpy.extras import MAX_LABELS
from cnnumpy.pictures import figure, grid_shape, save
from cnnumpy.training._plot_inputs import (
    check_class_names,
    check_history,
    check_labels,
    real_array,
)
from cnnumpy.validation import check_int

__all__ = [
    "plot_confusion_matrix",
    "plot_filters",
    "plot_history",
    "plot_misclassified",
]

# A curve with at most this many points gets a marker on each: one epoch is a dot.
MAX_MARKERS = 50


def _curve(ax, history: list[Mapping], key: str, label: str) -> None:
    """Plot ``key`` against the epoch over the epochs that have it."""
    points = [(row["epoch"], row[key]) for row in history if row.get(key) is not None]
    if points:
        epochs, values = zip(*points)
        marker = "o" if len(points) <= MAX_MARKERS else None
        ax.plot(epochs, values, marker=marker, markersize=4, label=label)


def plot_history(path: str | Path, history: Sequence[Mapping[str, float]]) -> int:
    """Draw the loss and accuracy curves of a training run, side by side.

    Parameters
    ----------
    path : str or Path
        Image file to write; the format follows the suffix (``.png``).
    history : list of dict
        One dict per epoch, in order, with the keys ``epoch`` (int, 1-based,
        increasing), ``train_loss`` and ``train_accuracy``, and optionally
        ``val_loss`` and ``val_accuracy`` (a missing or ``None`` value is not
        drawn). Accuracies are fractions in [0, 1]. Losses may be NaN or
        infinite (a diverged run): the curve has a gap and the title says where.

    Returns
    -------
    int
        The number of panels drawn: 2.

    Raises
    ------
    ImportError
        If matplotlib is not installed (``pip install 'cnnumpy[plot]'``).
    TypeError, ValueError
        If ``history`` is empty, misses a key or holds a bad value, or if
        ``path`` has no image suffix.

    Examples
    --------
    >>> import tempfile
    >>> history = [
    ...     {"epoch": 1, "train_loss": 0.9, "train_accuracy": 0.71, "val_loss": 0.6},
    ...     {"epoch": 2, "train_loss": 0.4, "train_accuracy": 0.88, "val_loss": 0.5},
    ... ]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     plot_history(Path(folder) / "history.png", history)
    2
    """
    history = check_history(history)
    fig, path = figure(path, (10.0, 4.0))
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    first, last = history[0]["epoch"], history[-1]["epoch"]
    axes = fig.subplots(1, 2)
    for ax, what in zip(axes, ("loss", "accuracy")):
        _curve(ax, history, f"train_{what}", "train")
        _curve(ax, history, f"val_{what}", "validation")
        ax.set_title(what)
        ax.set_xlabel("epoch")
        # Half an epoch of margin: a lone epoch keeps an integer tick under it.
        ax.set_xlim(first - 0.5, last + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        ax.legend()
    axes[1].yaxis.set_major_formatter(PercentFormatter(xmax=1))
    # A diverged run has NaN or infinite losses, which leave gaps: say where.
    diverged = [
        row["epoch"]
        for row in history
        if not all(
            math.isfinite(row.get(key) or 0) for key in ("train_loss", "val_loss")
        )
    ]
    if diverged:
        where = ", ".join(map(str, diverged[:5])) + (", ..." if diverged[5:] else "")
        axes[0].set_title(f"loss (not finite at epoch {where})")
    plural = "" if len(history) == 1 else "s"
    fig.suptitle(f"training history, {len(history)} epoch{plural}")
    save(fig, path)
    return 2


def plot_confusion_matrix(
    path: str | Path, matrix: np.ndarray, class_names: Sequence[str]
) -> int:
    """Draw a confusion matrix with its counts, titled with the overall accuracy.

    Parameters
    ----------
    path : str or Path
        Image file to write; the format follows the suffix (``.png``).
    matrix : array_like of int, shape (K, K)
        ``matrix[t, p]`` counts the samples of true class ``t`` predicted as ``p``.
    class_names : sequence of str
        The K class names, in class-index order.

    Returns
    -------
    int
        The number of panels drawn: 1.

    Raises
    ------
    ImportError
        If matplotlib is not installed (``pip install 'cnnumpy[plot]'``).
    TypeError, ValueError
        If ``matrix`` is not a square array of non-negative integers, if
        ``class_names`` does not hold K str, or if ``path`` has no image suffix.

    Notes
    -----
    The accuracy is ``trace(matrix) / sum(matrix)``. Counts are written in the
    cells when there are at most 400 cells (K <= 20).
    """
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(
            f"`matrix` must be a square 2-D array (K, K), K >= 1, got {m.shape}"
        )
    if not np.issubdtype(m.dtype, np.integer):
        raise TypeError(f"`matrix` must hold integer counts, got dtype {m.dtype}")
    if m.min() < 0:
        raise ValueError(f"`matrix` must hold counts >= 0, got {m.min()}")
    K = len(m)
    names = check_class_names(class_names, K)
    total, correct = int(m.sum()), int(np.trace(m))
    accuracy = f"{correct / total:.2%}" if total else "n/a"

    side = min(4.0 + 0.45 * K, 20.0)
    fig, path = figure(path, (side + 1.0, side))
    ax = fig.subplots()
    vmax = max(int(m.max()), 1)
    image = ax.imshow(m, cmap="Blues", vmin=0, vmax=vmax)
    fig.colorbar(image, ax=ax, shrink=0.8)
    if m.size <= MAX_LABELS:
        fontsize = 9 if K <= 10 else 7
        for (t, p), count in np.ndenumerate(m):
            # White on the dark half of the colormap, black on the light half.
            color = "white" if count > vmax / 2 else "black"
            ax.text(
                p, t, str(count), ha="center", va="center", color=color, size=fontsize
            )
    ticks = np.arange(K)
    ax.set_xticks(ticks, names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(ticks, names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"confusion matrix: accuracy {accuracy} ({correct}/{total})")
    save(fig, path)
    return 1


def plot_misclassified(
    path: str | Path,
    images: np.ndarray,
    true_labels: np.ndarray,
    predicted_labels: np.ndarray,
    class_names: Sequence[str],
    max_images: int = 25,
) -> int:
    """Draw a grid of (already chosen) misclassified images with both labels.

    Parameters
    ----------
    path : str or Path
        Image file to write; the format follows the suffix (``.png``).
    images : array_like, shape (N, H, W), (N, 1, H, W) or (N, 3, H, W)
        The images, grey or RGB, of any real dtype and range: each is scaled to
        its own min..max for display.
    true_labels, predicted_labels : array_like of int, shape (N,)
        Class indices into ``class_names``.
    class_names : sequence of str
        The class names, in class-index order.
    max_images : int, default 25
        Draw at most this many images, the first ones.

    Returns
    -------
    int
        The number of images drawn, ``min(N, max_images)``. With N == 0 the figure
        says "no misclassified images" and 0 is returned.

    Raises
    ------
    ImportError
        If matplotlib is not installed (``pip install 'cnnumpy[plot]'``).
    TypeError, ValueError
        On a bad shape, dtype or non-finite value in ``images``, labels that are
        not one class index per image, a bad ``max_images``, or a ``path`` with
        no image suffix.

    Examples
    --------
    Choose the misclassified images with a mask, then draw them:

    >>> import tempfile
    >>> rng = np.random.default_rng(0)
    >>> x = rng.integers(0, 256, size=(6, 1, 28, 28), dtype=np.uint8)
    >>> y = np.array([0, 1, 2, 0, 1, 2])
    >>> pred = np.array([0, 2, 2, 1, 1, 0])
    >>> wrong = pred != y
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "wrong.png"
    ...     plot_misclassified(path, x[wrong], y[wrong], pred[wrong], ["a", "b", "c"])
    3
    """
    x = real_array(images, "images")
    if not (x.ndim == 3 or (x.ndim == 4 and x.shape[1] in (1, 3))):
        raise ValueError(
            "`images` must have shape (N, H, W), (N, 1, H, W) or (N, 3, H, W), "
            f"got {x.shape}"
        )
    if x.ndim == 4:
        x = x[:, 0] if x.shape[1] == 1 else x.transpose(0, 2, 3, 1)  # (N, H, W[, 3])
    names = check_class_names(class_names)
    truth = check_labels(true_labels, "true_labels", len(x), len(names))
    predicted = check_labels(predicted_labels, "predicted_labels", len(x), len(names))
    max_images = check_int(max_images, "max_images", minimum=1)

    n = min(len(x), max_images)
    if n == 0:
        fig, path = figure(path, (4.0, 2.0))
        fig.text(0.5, 0.5, "no misclassified images", ha="center", va="center")
        save(fig, path)
        return 0
    rows, cols = grid_shape(n)
    fig, path = figure(path, (1.9 * cols, 2.0 * rows + 0.4))
    for k, ax in enumerate(fig.subplots(rows, cols, squeeze=False).flat):
        ax.set_axis_off()
        if k >= n:
            continue
        image = x[k].astype(np.float64)
        low, high = image.min(), image.max()
        scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
        ax.imshow(scaled, cmap="gray", vmin=0.0, vmax=1.0)  # RGB ignores cmap
        ax.set_title(f"true {names[truth[k]]} / pred {names[predicted[k]]}", fontsize=8)
    fig.suptitle(f"misclassified: {n} of {len(x)} shown")
    save(fig, path)
    return n


def plot_filters(path: str | Path, weight: np.ndarray) -> int:
    """Draw the filters of a conv layer on a diverging scale centred on zero.

    Parameters
    ----------
    path : str or Path
        Image file to write; the format follows the suffix (``.png``).
    weight : array_like, shape (F, C, kH, kW)
        A conv weight, e.g. ``model.conv1.weight.data``. With one input channel
        each filter is drawn as is; with C > 1 the mean over the input channels
        is drawn, and the title says so.

    Returns
    -------
    int
        The number of panels drawn: F, one per filter, on a near-square grid.

    Raises
    ------
    ImportError
        If matplotlib is not installed (``pip install 'cnnumpy[plot]'``).
    TypeError, ValueError
        If ``weight`` is not a 4-D array of finite real numbers with no empty
        axis, or if ``path`` has no image suffix.

    Notes
    -----
    All panels share one colour scale, ``[-m, m]`` with ``m`` the largest
    absolute value drawn, so that filters compare with one another and white
    means zero.
    """
    w = real_array(weight, "weight")
    if w.ndim != 4 or w.size == 0:
        raise ValueError(
            f"`weight` must be a non-empty 4-D array (F, C, kH, kW), got {w.shape}"
        )
    F, C, kH, kW = w.shape
    shown = w[:, 0] if C == 1 else w.mean(axis=1)  # (F, kH, kW)
    vmax = float(np.abs(shown).max()) or 1.0

    rows, cols = grid_shape(F)
    fig, path = figure(path, (1.3 * cols + 1.2, 1.3 * rows + 0.6))
    axes = fig.subplots(rows, cols, squeeze=False)
    for f, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if f < F:
            image = ax.imshow(shown[f], cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            ax.set_title(str(f), fontsize=8)
    fig.colorbar(image, ax=axes, shrink=0.8)
    what = "" if C == 1 else f", mean over the {C} input channels"
    fig.suptitle(f"{F} filters {kH}x{kW}{what}")
    save(fig, path)
    return F
