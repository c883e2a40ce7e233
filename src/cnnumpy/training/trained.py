"""A trained model with what it needs to be used: classes, normalization, config.

`training_checkpoint` gathers a training run into a checkpoint tree and
`load_trained` turns a checkpoint file back into a `TrainedModel`, ready for
``cnnumpy evaluate`` and ``cnnumpy predict``.

Layout of the tree (arrays stored in the ``.npz``, the rest in its JSON)::

    config     the run's settings (model, dataset, seed, epochs, lr, ...)
    model      name, config (num_classes, in_channels, input_size), dtype, state
    data       dataset, class_names, input_shape, normalization {mean, std}
               (numbers, or lists of one per channel for colour data)
    optimizer  name and state_dict (PyTorch's layout)
    scheduler  the learning-rate scheduler's state_dict, when there is one
    progress   epoch, batch, running sums and history (`cnnumpy.training.FitState`)
    rng        bit-generator states of modules that draw random numbers
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnumpy import nn
from cnnumpy.data import Dataset
from cnnumpy.data.dataset import normalize
from cnnumpy.models import create_model
from cnnumpy.nn.impl import check_impl
from cnnumpy.optim import Optimizer
from cnnumpy.training.callbacks import FitState
from cnnumpy.training.checkpoint import CheckpointError, read_checkpoint
from cnnumpy.training.divergence import check_finite_weights
from cnnumpy.training.evaluation import Evaluation, evaluate, predict_proba
from cnnumpy.training.schema import check_tree
from cnnumpy.validation import check_instance, check_int, check_path

__all__ = ["TrainedModel", "load_trained", "restore_rngs", "rng_states"]


def rng_states(model: nn.Module) -> dict[str, Any]:
    """The generator state of each module holding one (``Dropout.rng``)."""
    states = {}
    for name, module in _named_modules(model):
        rng = getattr(module, "rng", None)
        if isinstance(rng, np.random.Generator):
            states[name] = rng.bit_generator.state
    return states


def restore_rngs(model: nn.Module, states: dict[str, Any]) -> None:
    """Put back generator states saved by `rng_states`."""
    modules = dict(_named_modules(model))
    for name, state in states.items():
        rng = getattr(modules.get(name), "rng", None)
        if not isinstance(rng, np.random.Generator):
            raise ValueError(
                f"checkpoint has a generator state for unknown module {name!r}"
            )
        current = rng.bit_generator.state
        if not _same_layout(state, current):
            raise ValueError(
                f"checkpoint's generator state for {name!r} does not have the "
                f"layout of a {current['bit_generator']} state"
            )
        rng.bit_generator.state = state


def _same_layout(saved: Any, current: Any) -> bool:
    """Whether ``saved`` has the keys, types and shapes of ``current``."""
    if isinstance(current, dict):
        return (
            isinstance(saved, dict)
            and set(saved) == set(current)
            and all(_same_layout(saved[k], v) for k, v in current.items())
        )
    if isinstance(current, np.ndarray):
        return isinstance(saved, np.ndarray) and saved.shape == current.shape
    if isinstance(current, str):
        return saved == current
    return isinstance(saved, int) and not isinstance(saved, bool)


def _named_modules(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    out = [(prefix or "model", model)]
    for name, child in model.named_children():
        out += _named_modules(child, f"{prefix}.{name}" if prefix else name)
    return out


def training_checkpoint(
    *,
    config: dict[str, Any],
    model: nn.Module,
    model_info: dict[str, Any],
    data_info: dict[str, Any],
    optimizer: Optimizer,
    optimizer_name: str,
    state: FitState,
    scheduler: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The checkpoint tree of a training run at ``state`` (see the module doc).

    Raises `DivergenceError` if a weight is NaN or infinite: such a model is
    never saved, so ``last.npz`` stays the last finite one.
    """
    check_finite_weights(model, f"epoch {state.epoch + 1}, batch {state.batch}")
    extra = {} if scheduler is None else {"scheduler": scheduler}
    return {
        **extra,
        "config": config,
        "model": {**model_info, "state": model.state_dict()},
        "data": data_info,
        "optimizer": {"name": optimizer_name, "state": optimizer.state_dict()},
        "progress": state.to_dict(),
        "rng": rng_states(model),
    }


def _require(tree: dict[str, Any], where: str, *path: str) -> Any:
    node: Any = tree
    for i, key in enumerate(path):
        if not isinstance(node, dict) or key not in node:
            raise CheckpointError(
                f"{where} lacks the entry {'/'.join(path[: i + 1])!r}"
            )
        node = node[key]
    return node


def build_model(
    tree: dict[str, Any], where: str, impl: str = "im2col"
) -> nn.Sequential:
    """The model of a checkpoint tree, weights loaded.

    The tree's model entry is checked first (`check_tree`): the weights'
    shapes must be those its config implies before the model is built, and
    they must be finite.
    """
    check_tree(tree, where, ("model",))
    name = _require(tree, where, "model", "name")
    config = _require(tree, where, "model", "config")
    dtype = _require(tree, where, "model", "dtype")
    state = _require(tree, where, "model", "state")
    for key, array in state.items():
        if not np.isfinite(array).all():
            raise CheckpointError(
                f"{where}: weight {key!r} holds NaN or infinite values (the run "
                f"diverged; train again with a lower learning rate)"
            )
    try:
        model = create_model(name, **config, dtype=dtype, impl=impl)
        model.load_state_dict(state)
    except (TypeError, ValueError) as err:
        raise CheckpointError(
            f"{where}: cannot rebuild model {name!r}: {err}"
        ) from None
    return model


@dataclass
class TrainedModel:
    """A model with its classes and the normalization it was trained with.

    Attributes
    ----------
    model : nn.Sequential
    class_names : tuple of str
    mean, std : float or tuple of float
        Pixels are scaled to [0, 1], then ``(x - mean) / std``: statistics of
        the training split, one per channel (tuples) for colour data.
    input_shape : (C, H, W)
    dataset : str
        Name of the data set it was trained on.
    checkpoint : dict
        The whole checkpoint tree (history, config, ...).
    """

    model: nn.Sequential
    class_names: tuple[str, ...]
    mean: float | tuple[float, ...]
    std: float | tuple[float, ...]
    input_shape: tuple[int, int, int]
    dataset: str
    checkpoint: dict[str, Any]

    @property
    def dtype(self) -> np.dtype:
        return next(iter(self.model.parameters())).data.dtype

    def normalize(self, images: np.ndarray) -> np.ndarray:
        """uint8 images (N, C, H, W) as the model's normalized float input."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1:] != self.input_shape:
            raise ValueError(
                f"`images` must have shape (N, {', '.join(map(str, self.input_shape))})"
                f" for this model, got {images.shape}"
            )
        return normalize(images, self.mean, self.std, self.dtype)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities (N, K) of uint8 images (N, C, H, W)."""
        return predict_proba(self.model, self.normalize(images))

    def top_classes(
        self, images: np.ndarray, k: int = 3
    ) -> list[list[tuple[str, float]]]:
        """The ``k`` most likely (class name, probability) of each uint8 image."""
        k = check_int(k, "k", minimum=1)
        probs = self.predict_proba(images)
        if not np.isfinite(probs).all():
            raise FloatingPointError(
                "the model's probabilities overflowed to NaN on these images"
            )
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        return [
            [(self.class_names[c], float(row[c])) for c in top]
            for row, top in zip(probs, order)
        ]

    def evaluate(self, dataset: Dataset) -> Evaluation:
        """`cnnumpy.training.evaluate` on a raw (uint8) data set, normalized here."""
        check_instance(dataset, "dataset", Dataset, "a cnnumpy.data.Dataset")
        k = len(self.class_names)
        if len(dataset.class_names) > k:
            raise ValueError(
                f"data set {dataset.name!r} has {len(dataset.class_names)} classes, "
                f"the model knows {k}"
            )
        if dataset.images.shape[1:] != self.input_shape:
            raise ValueError(
                f"data set {dataset.name!r} has images of shape "
                f"{dataset.images.shape[1:]}, the model takes {self.input_shape}"
            )
        return evaluate(self.model, dataset.normalized(self.mean, self.std, self.dtype))


def load_trained(path: str | Path, impl: str = "im2col") -> TrainedModel:
    """Load a checkpoint written by ``cnnumpy train`` (``best.npz``, ``last.npz``).

    Raises
    ------
    TypeError
        If ``path`` is not a path or ``impl`` not a str.
    ValueError
        If ``impl`` is not ``'im2col'`` or ``'naive'``.
    FileNotFoundError
        No such file.
    CheckpointError
        Not a checkpoint, one without a model and its data description, or
        one whose entries break the schema of `cnnumpy.training.schema`
        (class names for another number of outputs, weights of other shapes
        than the config implies, NaN or infinite weights ...).
    """
    check_path(path, "path")
    check_impl(impl)
    # The optimizer's arrays are not needed to predict: they are not read.
    tree = read_checkpoint(path, skip=("optimizer",))
    where = f"checkpoint {str(path)!r}"
    check_tree(tree, where, ("model", "data"))
    model = build_model(tree, where, impl)
    names = _require(tree, where, "data", "class_names")
    mean = _require(tree, where, "data", "normalization", "mean")
    std = _require(tree, where, "data", "normalization", "std")
    shape = _require(tree, where, "data", "input_shape")
    dataset = _require(tree, where, "data", "dataset")
    return TrainedModel(
        model=model,
        class_names=tuple(names),
        mean=_stat(mean),
        std=_stat(std),
        input_shape=(shape[0], shape[1], shape[2]),
        dataset=str(dataset),
        checkpoint=tree,
    )


def _stat(value: Any) -> float | tuple[float, ...]:
    """A checked normalization entry: a number, or a list of one per channel."""
    return tuple(map(float, value)) if isinstance(value, list) else float(value)
