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

__all__ = ["DTYPES", "OPTIMIZERS", "RESUMABLE", "TrainConfig", "resume_config"]

OPTIMIZERS = ("adam", "sgd")
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
    lr_step: int | None = None
    lr_gamma: float = 0.1
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
