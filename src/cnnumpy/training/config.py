"""The settings of a training run (`TrainConfig`) and how a resumed run gets them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from cnnumpy.data import DATASETS
from cnnumpy.models import MODELS
from cnnumpy.nn import IMPLS
from cnnumpy.training.checkpoint import CheckpointError, load_checkpoint
from cnnumpy.training.schema import check_tree
from cnnumpy.validation import (
    FLOAT_DTYPES,
    check_bool,
    check_choice,
    check_int,
    check_path,
    check_real,
)

__all__ = [
    "AUGMENTS",
    "DTYPES",
    "OPTIMIZERS",
    "RESUMABLE",
    "SCHEDULES",
    "TrainConfig",
    "resume_config",
]

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "step", "cosine", "onecycle")
# Schedules whose shape spans the run's epochs: a resumed run keeps them.
SPANS_EPOCHS = ("cosine", "onecycle")
AUGMENTS = ("none", "crop", "flip", "crop-flip")
DTYPES = tuple(dt.name for dt in FLOAT_DTYPES)  # ('float32', 'float64')
# Settings a resumed run may change: where files go and how it runs, not what
# it computes. Everything else comes from the checkpoint.
# The checkpoint entries a resumed run is built from, checked before it is.
RESUMED_PARTS = ("model", "data", "config", "optimizer", "progress", "rng")
RESUMABLE = frozenset({"epochs", "out", "data_dir", "cache_dir", "plots", "download"})


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a training run; the defaults are ``cnnumpy train``'s.

    15 epochs rather than 5: on the MNIST sample's 4,000 training digits,
    LeNet-5 with Adam 1e-3 and batch 100 is still learning after 5 epochs and
    levels off around 15, which still takes only seconds (figures in
    benchmarks/results-lenet.md, "Accuracy behind the defaults").

    ``epochs`` counts all epochs of the run: resuming a checkpoint taken after
    epoch 1 with ``epochs=2`` trains one more. ``out=None`` picks a fresh
    folder ``runs/<time>-<model>-<dataset>``; with ``resume`` the
    checkpoint's folder.

    The training recipe (`cnnumpy.training.recipe` builds it):

    - ``optimizer``: ``adam``, ``adamw`` (decoupled decay) or ``sgd`` (with
      ``momentum`` and ``nesterov``). ``weight_decay`` applies to the weights
      of convolutions and linear layers, never to biases and batch-norm
      parameters (`cnnumpy.optim.param_groups_without_decay`).
    - ``schedule``: ``constant``; ``step`` (StepLR every ``lr_step`` epochs by
      ``lr_gamma``); ``cosine`` (CosineAnnealingLR to 0 over the epochs after
      the warm-up), both stepped per epoch, after a linear warm-up of
      ``warmup_epochs`` from 1% of ``lr`` when asked; ``onecycle`` (OneCycleLR
      with ``max_lr=lr``, stepped per batch, rising for ``warmup_epochs`` or
      30% of the run, cycling momentum or Adam's beta1 between 0.85 and 0.95,
      torch's defaults). The default, None, is ``step`` when ``lr_step`` is
      given and ``constant`` otherwise.
    - ``label_smoothing`` of the training loss.
    - ``augment``: random crops after zero padding of ``crop_padding`` pixels
      (default 2 for images under 32 pixels, 4 from 32 on: 28x28 and 32x32),
      horizontal flips (never for digits), both or none. See
      `cnnumpy.training.recipe.make_transform` for what the padding holds.
    """

    model: str = "lenet5"
    dataset: str = "mnist-sample"
    data_dir: str | None = None
    cache_dir: str | None = None
    download: bool = True
    epochs: int = 15
    batch_size: int = 100
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str | None = None
    lr_step: int | None = None
    lr_gamma: float = 0.1
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    augment: str = "none"
    crop_padding: int | None = None
    seed: int = 0
    val_fraction: float = 0.1
    patience: int | None = None
    dtype: str = "float32"
    impl: str = "im2col"
    out: str | None = None
    resume: str | None = None
    plots: bool = True

    def __post_init__(self) -> None:
        check_int(self.epochs, "epochs", minimum=1)
        check_int(self.batch_size, "batch_size", minimum=1)
        check_real(self.lr, "lr", above=0)
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        check_real(self.momentum, "momentum", minimum=0, below=1)
        if self.lr_step is not None:
            check_int(self.lr_step, "lr_step", minimum=1)
        check_real(self.lr_gamma, "lr_gamma", above=0, maximum=1)
        self._check_recipe()
        check_int(self.seed, "seed", minimum=0)
        check_real(self.val_fraction, "val_fraction", minimum=0, below=1)
        if self.patience is not None:
            check_int(self.patience, "patience", minimum=1)
        check_choice(self.model, "model", tuple(MODELS))
        check_choice(self.dataset, "dataset", DATASETS)
        check_choice(self.dtype, "dtype", DTYPES)
        check_choice(self.impl, "impl", IMPLS)
        for name in ("data_dir", "cache_dir", "out", "resume"):
            value = getattr(self, name)
            if value is not None:
                check_path(value, name)
        check_bool(self.download, "download")
        check_bool(self.plots, "plots")

    @property
    def lr_schedule(self) -> str:
        """``schedule``, with None resolved (``step`` if ``lr_step`` is set)."""
        if self.schedule is not None:
            return self.schedule
        return "constant" if self.lr_step is None else "step"

    def _check_recipe(self) -> None:
        check_bool(self.nesterov, "nesterov")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise ValueError(
                f"`nesterov` needs optimizer 'sgd' with `momentum` > 0, got "
                f"{self.optimizer!r} with momentum {self.momentum}"
            )
        check_real(self.weight_decay, "weight_decay", minimum=0)
        if self.schedule is not None:
            check_choice(self.schedule, "schedule", SCHEDULES)
        if self.lr_schedule == "step" and self.lr_step is None:
            raise ValueError("`schedule` 'step' needs `lr_step` (epochs per step)")
        if self.lr_step is not None and self.lr_schedule != "step":
            raise ValueError(
                f"`lr_step` (={self.lr_step}) applies to schedule 'step', "
                f"not {self.lr_schedule!r}"
            )
        check_int(self.warmup_epochs, "warmup_epochs", minimum=0)
        if self.warmup_epochs >= self.epochs:
            raise ValueError(
                f"`warmup_epochs` (={self.warmup_epochs}) must be fewer than "
                f"`epochs` (={self.epochs})"
            )
        check_real(self.label_smoothing, "label_smoothing", minimum=0, maximum=1)
        check_choice(self.augment, "augment", AUGMENTS)
        if self.crop_padding is not None:
            check_int(self.crop_padding, "crop_padding", minimum=0)
            if "crop" not in self.augment:
                raise ValueError(
                    f"`crop_padding` (={self.crop_padding}) applies to augment "
                    f"'crop' or 'crop-flip', not {self.augment!r}"
                )

    def saved(self) -> dict[str, Any]:
        """The settings a checkpoint keeps (not where files go).

        ``data_dir`` is kept as an absolute path, so ``--resume`` finds the
        same data from any working folder.
        """
        skip = {"out", "resume", "cache_dir", "download", "plots"}
        saved = {k: v for k, v in asdict(self).items() if k not in skip}
        if self.data_dir is not None:
            saved["data_dir"] = str(Path(self.data_dir).resolve())
        return saved


def saved_config(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the run settings stored in a checkpoint, the whole checkpoint tree)."""
    tree = load_checkpoint(path)
    check_tree(tree, f"checkpoint {str(path)!r}", RESUMED_PARTS)
    saved = tree.get("config")
    if not isinstance(saved, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} has no run config")
    unknown = set(saved) - {f.name for f in fields(TrainConfig)}
    if unknown:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has unknown settings {sorted(unknown)}"
        )
    try:  # the saved settings pass TrainConfig's own checks
        TrainConfig(**saved)
    except (TypeError, ValueError) as err:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has a malformed run config: {err}"
        ) from None
    return saved, tree


def resume_config(path: str | Path, **changes: Any) -> TrainConfig:
    """The settings of the run that wrote checkpoint ``path``, to continue it.

    Parameters
    ----------
    path : str or Path
        A ``last.npz`` (or ``best.npz``) written by `train_run`.
    **changes
        Settings to change: ``epochs`` (the new total), ``out``, ``data_dir``,
        ``cache_dir``, ``download``, ``plots``. Others may be given only with
        the value the checkpoint has.
    """
    check_path(path, "path")
    known = {f.name for f in fields(TrainConfig)} - {"resume"}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise TypeError(
            f"resume_config() got unknown settings {unknown}; known: {sorted(known)}"
        )
    saved, _ = saved_config(Path(path))
    return replace(TrainConfig(**saved), **changes, resume=str(path))


def resumed_config(config: TrainConfig) -> tuple[TrainConfig, dict[str, Any]]:
    """``config`` checked against its checkpoint, and the checkpoint tree."""
    path = Path(config.resume)  # type: ignore[arg-type]
    saved, tree = saved_config(path)
    if config.epochs != saved.get("epochs") and config.lr_schedule in SPANS_EPOCHS:
        raise ValueError(
            f"`epochs` (={config.epochs}) differs from the checkpoint's "
            f"{saved.get('epochs')!r}: its {config.lr_schedule!r} schedule spans "
            "the run's epochs, so a resumed run keeps them"
        )
    for name, value in saved.items():
        if name not in RESUMABLE and getattr(config, name) != value:
            raise ValueError(
                f"`{name}` (={getattr(config, name)!r}) differs from the "
                f"checkpoint's {value!r}: a resumed run keeps its settings "
                f"(only {', '.join(sorted(RESUMABLE))} may change)"
            )
    if config.data_dir is None and saved.get("data_dir") is not None:
        config = replace(config, data_dir=saved["data_dir"])
    if config.out is None:
        config = replace(config, out=str(path.parent))
    return config, tree
