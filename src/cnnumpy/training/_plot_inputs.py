"""The checks of what the training plots draw: histories, labels, class names.

What is specific to pictures stays here (a loss may be NaN in a history, labels
index the class names); plain arguments go through `cnnumpy.validation`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from cnnumpy.validation import check_int, check_real

__all__ = [
    "HISTORY_KEYS",
    "check_class_names",
    "check_history",
    "check_labels",
    "real_array",
]

HISTORY_KEYS = ("epoch", "train_loss", "train_accuracy")


def check_class_names(class_names: object, count: int | None = None) -> list[str]:
    """``class_names`` as a list of str, ``count`` long when given."""
    if isinstance(class_names, np.ndarray):
        class_names = class_names.tolist()
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise TypeError(
            f"`class_names` must be a sequence of str, got {type(class_names).__name__}"
        )
    for k, name in enumerate(class_names):
        if not isinstance(name, str):
            raise TypeError(
                f"`class_names[{k}]` must be a str, got {type(name).__name__}"
            )
    if not class_names:
        raise ValueError("`class_names` must not be empty, got []")
    if count is not None and len(class_names) != count:
        raise ValueError(
            f"`class_names` must have one name per class of `matrix` ({count}), "
            f"got {len(class_names)}"
        )
    return list(class_names)


def real_array(x: object, name: str) -> np.ndarray:
    """``x`` as an array of finite real numbers (integer or floating dtype)."""
    a = np.asarray(x)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise TypeError(
            f"`{name}` must be an array of real numbers, got {type(x).__name__} "
            f"of dtype {a.dtype}"
        )
    if not np.isfinite(a).all():
        raise ValueError(f"`{name}` must be finite, got NaN or infinite values")
    return a


def check_labels(labels: object, name: str, n: int, k: int) -> np.ndarray:
    """``labels`` as a 1-D int array of ``n`` class indices in ``[0, k)``."""
    a = np.asarray(labels)
    if a.size == 0 and a.ndim == 1:
        a = a.astype(np.int64)  # np.asarray([]) is float64; empty is still labels
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"`{name}` must hold integer class indices, got {a.dtype}")
    if a.shape != (n,):
        raise ValueError(
            f"`{name}` must have one label per image, shape ({n},), got {a.shape}"
        )
    if n and (a.min() < 0 or a.max() >= k):
        raise ValueError(
            f"`{name}` must lie in [0, {k}) (one per class name), "
            f"got values in [{a.min()}, {a.max()}]"
        )
    return a


def check_history(history: object) -> list[Mapping]:
    """Check the per-epoch dicts of :func:`plot_history`."""
    if not isinstance(history, (list, tuple)):
        raise TypeError(
            f"`history` must be a list of per-epoch dicts, got {type(history).__name__}"
        )
    if not history:
        raise ValueError("`history` must hold at least one epoch, got an empty list")
    previous = 0
    for e, row in enumerate(history):
        if not isinstance(row, Mapping):
            raise TypeError(f"`history[{e}]` must be a dict, got {type(row).__name__}")
        missing = [key for key in HISTORY_KEYS if key not in row]
        if missing:
            raise ValueError(
                f"`history[{e}]` must have the keys {HISTORY_KEYS}, "
                f"got {tuple(row)} (missing {', '.join(missing)})"
            )
        epoch = check_int(row["epoch"], f"history[{e}]['epoch']")
        if epoch <= previous:
            raise ValueError(
                f"`history[{e}]['epoch']` must be an int > {previous} "
                f"(1-based, increasing), got {epoch!r}"
            )
        previous = epoch
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            value = row.get(key)
            if value is None:
                continue
            where = f"history[{e}][{key!r}]"
            if key.endswith("accuracy"):
                check_real(value, where, minimum=0, maximum=1)
            elif isinstance(value, bool) or not isinstance(
                value, (int, float, np.integer, np.floating)
            ):
                # Not check_real: a diverged run's loss is NaN or infinite.
                raise TypeError(
                    f"`{where}` must be a real number, got "
                    f"{type(value).__name__} {value!r}"
                )
    return list(history)
