"""One schema for the JSON of a checkpoint, checked before anything is built from it.

`check_tree` walks the entries of a checkpoint tree (see `cnnumpy.training.trained`
for the layout) and raises a `CheckpointError` naming the first entry that has
the wrong type, lies out of range, or disagrees with another: class names
against the model's outputs, the input shape against the model's config, the
weights' shapes against those the config implies (computed, not built), step
counts and epochs against their bounds, generator states against their shape.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cnnumpy.models.registry import MODELS, SHAPES
from cnnumpy.training.checkpoint import CheckpointError

__all__ = ["MAX_CLASSES", "MAX_INPUT_SIZE", "check_tree"]

# Bounds of a model's config read from a checkpoint: class indices as in
# cnnumpy.data (labels below 2**16), images up to 1024 pixels a side and channels.
MAX_CLASSES = 2**16
MAX_INPUT_SIZE = 1024
MAX_NAME = 1000  # characters of a class name
MAX_LINKS = 16  # schedulers chained in a SequentialLR


def _fail(where: str, key: str, expected: str, value: Any) -> None:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    raise CheckpointError(f"{where}: entry {key!r} must be {expected}, got {text}")


def _entry(tree: Any, where: str, key: str) -> Any:
    node = tree
    parts = key.split("/")
    for i, part in enumerate(parts):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            continue
        if not isinstance(node, dict) or part not in node:
            raise CheckpointError(
                f"{where} lacks the entry {'/'.join(parts[: i + 1])!r}"
            )
        node = node[part]
    return node


def _dict(tree: Any, where: str, key: str) -> dict[str, Any]:
    value = _entry(tree, where, key)
    if not isinstance(value, dict):
        _fail(where, key, "a dict", value)
    return value


def _int(tree: Any, where: str, key: str, low: int, high: int | None = None) -> int:
    value = _entry(tree, where, key)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f"an int >= {low}" if high is None else f"an int in [{low}, {high}]"
        _fail(where, key, bound, value)
    return value


def _real(value: Any, where: str, key: str, low: float | None = None) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or (low is not None and value < low)
    ):
        _fail(
            where,
            key,
            "a finite number" + (f" >= {low}" if low is not None else ""),
            value,
        )
    return float(value)


def _str(tree: Any, where: str, key: str, choices: Any = None) -> str:
    value = _entry(tree, where, key)
    if not isinstance(value, str) or (choices is not None and value not in choices):
        expected = "a str" if choices is None else f"one of {sorted(choices)}"
        _fail(where, key, expected, value)
    return value


def check_tree(tree: dict[str, Any], where: str, parts: tuple[str, ...]) -> None:
    """Check the entries ``parts`` of checkpoint ``tree`` (``where`` names it).

    ``'model'`` and ``'data'`` are what a trained model needs; a resumed run
    needs ``'config'``, ``'optimizer'``, ``'progress'`` and ``'rng'`` too;
    ``'scheduler'`` is checked whenever present.

    Raises
    ------
    CheckpointError
        Naming the first entry that is missing, of the wrong type or out of
        range, or that disagrees with another.
    """
    if "model" in parts:
        _check_model(tree, where)
    if "data" in parts:
        _check_data(tree, where)
    if "config" in parts:
        _dict(tree, where, "config")
    if "optimizer" in parts:
        _check_optimizer(tree, where)
    if "progress" in parts:
        _check_progress(tree, where)
    if "rng" in parts:
        _check_rng(tree, where)
    if "scheduler" in tree:
        _check_scheduler(tree, where)


def _check_model(tree: Any, where: str) -> None:
    name = _str(tree, where, "model/name", MODELS)
    _str(tree, where, "model/dtype", ("float32", "float64"))
    config = _dict(tree, where, "model/config")
    if set(config) != {"num_classes", "in_channels", "input_size"}:
        _fail(where, "model/config", "num_classes, in_channels, input_size", config)
    _int(tree, where, "model/config/num_classes", 1, MAX_CLASSES)
    _int(tree, where, "model/config/in_channels", 1, MAX_INPUT_SIZE)
    _int(tree, where, "model/config/input_size", 1, MAX_INPUT_SIZE)
    try:
        shapes = SHAPES[name](**config)
    except ValueError as err:
        raise CheckpointError(f"{where}: entry 'model/config': {err}") from None
    state = _dict(tree, where, "model/state")
    if set(state) != set(shapes):
        _fail(where, "model/state", f"the weights {sorted(shapes)}", sorted(state))
    for key, shape in shapes.items():
        array = state[key]
        if not isinstance(array, np.ndarray) or array.shape != shape:
            got = array.shape if isinstance(array, np.ndarray) else array
            _fail(where, f"model/state/{key}", f"an array of shape {shape}", got)
        # Batch norm counts its batches in an int64 buffer, as PyTorch does.
        if key.endswith("num_batches_tracked"):
            if array.dtype.kind not in "iu":
                _fail(where, f"model/state/{key}", "an integer", array.dtype)
        elif array.dtype.kind != "f":
            _fail(where, f"model/state/{key}", "an array of floats", array.dtype)


def _check_data(tree: Any, where: str) -> None:
    _str(tree, where, "data/dataset")
    names = _entry(tree, where, "data/class_names")
    if not isinstance(names, list) or not all(
        isinstance(n, str) and len(n) <= MAX_NAME for n in names
    ):
        _fail(where, "data/class_names", "a list of str", names)
    shape = _entry(tree, where, "data/input_shape")
    if (
        not isinstance(shape, list)
        or len(shape) != 3
        or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape
        )
    ):
        _fail(where, "data/input_shape", "3 positive ints [C, H, W]", shape)
    for stat in ("mean", "std"):
        _check_stat(tree, where, f"data/normalization/{stat}", shape[0])
    config = tree.get("model", {}).get("config") if isinstance(tree, dict) else None
    if isinstance(config, dict):
        if len(names) != config.get("num_classes"):
            raise CheckpointError(
                f"{where}: {len(names)} class names for a model of "
                f"{config.get('num_classes')} outputs"
            )
        size = config.get("input_size")
        if shape != [config.get("in_channels"), size, size]:
            raise CheckpointError(
                f"{where}: input shape {shape} differs from the model's config {config}"
            )


def _check_stat(tree: Any, where: str, key: str, channels: int) -> None:
    """One number, or a list of one per channel (colour data); a std is > 0."""
    value = _entry(tree, where, key)
    values = value if isinstance(value, list) else [value]
    if isinstance(value, list) and len(value) != channels:
        _fail(where, key, f"a number or a list of {channels} (one per channel)", value)
    for i, v in enumerate(values):
        name = f"{key}/{i}" if isinstance(value, list) else key
        if _real(v, where, name) <= 0 and key.endswith("std"):
            _fail(where, name, "> 0", v)


def _check_optimizer(tree: Any, where: str) -> None:
    _str(tree, where, "optimizer/name")
    per_param = _dict(tree, where, "optimizer/state/state")
    for index, entries in per_param.items():
        key = f"optimizer/state/state/{index}"
        if not index.isdigit() or not isinstance(entries, dict):
            _fail(where, key, "a dict under a parameter index", entries)
        for name, value in entries.items():
            if name == "step":
                step = _real(value, where, f"{key}/step", 0)
                if not step.is_integer():
                    _fail(where, f"{key}/step", "a whole number >= 0", value)
            elif not isinstance(value, np.ndarray):
                _real(value, where, f"{key}/{name}")
    groups = _entry(tree, where, "optimizer/state/param_groups")
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        _fail(where, "optimizer/state/param_groups", "a list of dicts", groups)
    for i, group in enumerate(groups):
        if "lr" in group:
            _real(group["lr"], where, f"optimizer/state/param_groups/{i}/lr", 0)


def _check_progress(tree: Any, where: str) -> None:
    epoch = _int(tree, where, "progress/epoch", 0)
    _int(tree, where, "progress/batch", 0)
    history = _entry(tree, where, "progress/history")
    if not isinstance(history, list) or len(history) != epoch:
        _fail(where, "progress/history", f"a list of {epoch} epochs", history)
    running = _dict(tree, where, "progress/running")
    for name, value in running.items():
        _real(value, where, f"progress/running/{name}", 0)


def _check_rng(tree: Any, where: str) -> None:
    for name, state in _dict(tree, where, "rng").items():
        key = f"rng/{name}"
        if not isinstance(state, dict) or not isinstance(
            state.get("bit_generator"), str
        ):
            _fail(where, key, "a generator state with 'bit_generator'", state)
        inner = state.get("state")
        if not isinstance(inner, dict) or not all(
            isinstance(v, (int, np.ndarray)) and not isinstance(v, bool)
            for v in inner.values()
        ):
            _fail(where, f"{key}/state", "a dict of ints or arrays", inner)


def _check_scheduler(tree: Any, where: str, key: str = "scheduler") -> None:
    """A scheduler's state; a chain's (SequentialLR) holds one per link."""
    state = _dict(tree, where, key)
    _int(tree, where, f"{key}/last_epoch", -1)
    if "_schedulers" not in state:
        _int(tree, where, f"{key}/_step_count", 0)
        return
    links = state["_schedulers"]
    if not isinstance(links, list) or not 1 <= len(links) <= MAX_LINKS:
        _fail(where, f"{key}/_schedulers", f"a list of 1 to {MAX_LINKS}", links)
    for i in range(len(links)):
        _check_scheduler(tree, where, f"{key}/_schedulers/{i}")
