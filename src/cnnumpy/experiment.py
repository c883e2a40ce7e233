"""A training run, start to finish: what ``cnnumpy train`` does, as a function.

`train_run` takes a frozen `TrainConfig`, loads and splits the data set,
normalizes it with statistics of the training part only, builds the model and
optimizer, trains with `cnnumpy.train.fit`, and fills the run folder::

    best.npz       checkpoint of the epoch with the best validation accuracy
    last.npz       checkpoint after the latest epoch (or the batch Ctrl-C hit)
    metrics.json   test accuracy and loss, timings, config, per-epoch history
    history.csv    the per-epoch history as a table
    history.png, confusion_matrix.png, misclassified.png, filters.png

Nothing here prints: progress reaches the caller through callbacks.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnnumpy import data as cdata
from cnnumpy import optim
from cnnumpy.checkpoint import (
    CheckpointError,
    atomic_write_bytes,
    load_checkpoint,
    save_checkpoint,
)
from cnnumpy.models import MODELS, create_model
from cnnumpy.nn._layer import IMPLS as ENGINES
from cnnumpy.nn.module import FLOAT_DTYPES
from cnnumpy.train import (
    BestCheckpoint,
    Callback,
    EarlyStopping,
    Evaluation,
    FitState,
    evaluate,
    fit,
)
from cnnumpy.trained import (
    build_model,
    restore_rngs,
    training_checkpoint,
)

__all__ = [
    "OPTIMIZERS",
    "RunResult",
    "TrainConfig",
    "resume_config",
    "split_validation",
    "train_run",
]

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "sgd")
DTYPES = tuple(dt.name for dt in FLOAT_DTYPES)  # ('float32', 'float64')
IMPLS = tuple(ENGINES)  # ('im2col', 'naive')
# Settings a resumed run may change: where files go and how it runs, not what
# it computes. Everything else comes from the checkpoint.
RESUMABLE = frozenset({"epochs", "out", "data_dir", "cache_dir", "plots", "download"})


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a training run; the defaults are ``cnnumpy train``'s.

    15 epochs rather than 5: LeNet-5 with Adam 1e-3 and batch 100 reaches
    92.4-93.4% on the MNIST sample's test digits after 5 epochs and 96.0-96.9%
    after 15 (seeds 0-3), in about 15 s on two cores.

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
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, int)
            or self.seed < 0
        ):
            raise ValueError(f"`seed` must be an integer >= 0, got {self.seed!r}")
        if self.lr_step is not None and (
            isinstance(self.lr_step, bool)
            or not isinstance(self.lr_step, int)
            or self.lr_step < 1
        ):
            raise ValueError(
                f"`lr_step` must be a positive integer or None, got {self.lr_step!r}"
            )
        if not isinstance(self.lr_gamma, (int, float)) or not 0 < self.lr_gamma <= 1:
            raise ValueError(f"`lr_gamma` must be in (0, 1], got {self.lr_gamma!r}")
        if self.patience is not None and (
            not isinstance(self.patience, int) or self.patience < 1
        ):
            raise ValueError(
                f"`patience` must be a positive integer, got {self.patience!r}"
            )
        if not isinstance(self.lr, (int, float)) or not 0 < self.lr < float("inf"):
            raise ValueError(f"`lr` must be a positive number, got {self.lr!r}")
        if not isinstance(self.momentum, (int, float)) or not 0 <= self.momentum < 1:
            raise ValueError(f"`momentum` must be in [0, 1), got {self.momentum!r}")
        if not isinstance(self.val_fraction, (int, float)) or not (
            0 <= self.val_fraction < 1
        ):
            raise ValueError(
                f"`val_fraction` must be in [0, 1), got {self.val_fraction!r}"
            )
        for name, allowed in (
            ("model", tuple(MODELS)),
            ("dataset", cdata.DATASETS),
            ("optimizer", OPTIMIZERS),
            ("dtype", DTYPES),
            ("impl", IMPLS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"`{name}` must be one of {', '.join(allowed)}, got "
                    f"{getattr(self, name)!r}"
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


@dataclass
class RunResult:
    """What `train_run` did: the folder, the state reached, the test results."""

    out: Path
    config: TrainConfig
    state: FitState
    interrupted: bool
    test: Evaluation | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def split_validation(
    dataset: cdata.Dataset, fraction: float, seed: int
) -> tuple[cdata.Dataset, cdata.Dataset | None]:
    """(train, validation) parts of ``dataset``; the same for the same seed.

    The validation part is ``round(fraction * len)`` images drawn at random
    with ``default_rng(seed)``; both parts keep the original order.
    """
    if not isinstance(dataset, cdata.Dataset):
        raise TypeError(
            f"`dataset` must be a cnnumpy.data.Dataset, got {type(dataset).__name__}"
        )
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, (int, float))
        or not (0 <= fraction < 1)
    ):
        raise ValueError(f"`val_fraction` must be in [0, 1), got {fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"`seed` must be an integer >= 0, got {seed!r}")
    n_val = round(fraction * len(dataset))
    if n_val == 0:
        return dataset, None
    if n_val >= len(dataset):
        raise ValueError(
            f"`val_fraction` (={fraction}) leaves no training images of {len(dataset)}"
        )
    chosen = np.random.default_rng(seed).permutation(len(dataset))[:n_val]
    is_val = np.zeros(len(dataset), dtype=bool)
    is_val[chosen] = True
    return dataset.subset(np.flatnonzero(~is_val)), dataset.subset(
        np.flatnonzero(is_val)
    )


def _fresh_out(config: TrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{stamp}-{config.model}-{config.dataset}"
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def _saved_config(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the run settings stored in a checkpoint, the whole checkpoint tree)."""
    tree = load_checkpoint(path)
    saved = tree.get("config")
    if not isinstance(saved, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} has no run config")
    unknown = set(saved) - {f.name for f in fields(TrainConfig)}
    if unknown:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has unknown settings {sorted(unknown)}"
        )
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
    known = {f.name for f in fields(TrainConfig)} - {"resume"}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise TypeError(
            f"resume_config() got unknown settings {unknown}; known: {sorted(known)}"
        )
    saved, _ = _saved_config(Path(path))
    return replace(TrainConfig(**saved), **changes, resume=str(path))


def _resumed_config(config: TrainConfig) -> tuple[TrainConfig, dict[str, Any]]:
    """``config`` checked against its checkpoint, and the checkpoint tree."""
    path = Path(config.resume)  # type: ignore[arg-type]
    saved, tree = _saved_config(path)
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


def _make_scheduler(
    config: TrainConfig, optimizer: optim.Optimizer
) -> optim.StepLR | None:
    if config.lr_step is None:
        return None
    return optim.StepLR(optimizer, step_size=config.lr_step, gamma=config.lr_gamma)


def _make_optimizer(config: TrainConfig, params: Iterable[Any]) -> optim.Optimizer:
    if config.optimizer == "adam":
        return optim.Adam(params, lr=config.lr)
    return optim.SGD(params, lr=config.lr, momentum=config.momentum)


class _StepScheduler(Callback):
    """Step a learning-rate scheduler after every epoch.

    It must run before the checkpoint callbacks, so a checkpoint holds the
    learning rate of the next epoch, as a run that never stopped has it.
    """

    def __init__(self, scheduler: optim.StepLR) -> None:
        self.scheduler = scheduler

    def on_epoch_end(self, state: FitState, logs: dict[str, Any]) -> None:
        self.scheduler.step()


class _SaveEvery(Callback):
    """Write last.npz after every epoch."""

    def __init__(self, save: Callable[[FitState], None]) -> None:
        self.save = save

    def on_epoch_end(self, state: FitState, logs: dict[str, Any]) -> None:
        self.save(state)


@dataclass
class _Data:
    """The splits of a run, normalized, and their description for checkpoints."""

    train: cdata.Dataset
    val: cdata.Dataset | None
    test: cdata.Dataset
    test_raw: cdata.Dataset  # uint8, for the picture of misclassified digits
    model_config: dict[str, int]
    info: dict[str, Any]


@dataclass
class _Training:
    """What changes while training: the model, its optimizer and the fit state."""

    model: Any
    optimizer: optim.Optimizer
    scheduler: optim.StepLR | None
    state: FitState


def _out_folder(config: TrainConfig, resuming: bool) -> Path:
    out = Path(config.out) if config.out is not None else _fresh_out(config)
    if not resuming and (out / "last.npz").exists():
        raise FileExistsError(
            f"`out` folder {str(out)!r} already holds a run (last.npz): pass "
            f"--resume {out / 'last.npz'} to continue it, or another --out"
        )
    return out


def _prepare_data(
    config: TrainConfig, progress: Callable[[int, int | None], None] | None
) -> _Data:
    """Load, split off validation, normalize with the training part's statistics."""
    train_full, test = cdata.load_dataset(
        config.dataset,
        data_dir=config.data_dir,
        cache_dir=config.cache_dir,
        download=config.download,
        progress=progress,
    )
    train_raw, val_raw = split_validation(train_full, config.val_fraction, config.seed)
    mean, std = cdata.normalization_stats(train_raw)
    dtype = np.dtype(config.dtype)
    train = train_raw.normalized(mean, std, dtype)
    val = None if val_raw is None else val_raw.normalized(mean, std, dtype)
    C, H, W = (int(n) for n in train.images.shape[1:])
    if H != W:
        raise ValueError(f"models take square images, the data set has {H}x{W}")
    return _Data(
        train=train,
        val=val,
        test=test.normalized(mean, std, dtype),
        test_raw=test,
        model_config={
            "num_classes": len(train.class_names),
            "in_channels": C,
            "input_size": H,
        },
        info={
            "dataset": config.dataset,
            "class_names": list(train.class_names),
            "input_shape": [C, H, W],
            "normalization": {"mean": mean, "std": std},
            "sizes": {
                "train": len(train),
                "val": 0 if val is None else len(val),
                "test": len(test),
            },
        },
    )


def _new_training(config: TrainConfig, data: _Data) -> _Training:
    model = create_model(
        config.model,
        **data.model_config,
        rng=np.random.default_rng(config.seed),
        dtype=config.dtype,
        impl=config.impl,
    )
    optimizer = _make_optimizer(config, model.parameters())
    return _Training(model, optimizer, _make_scheduler(config, optimizer), FitState())


def _restored_training(
    config: TrainConfig, data: _Data, tree: dict[str, Any]
) -> _Training:
    """The training state of checkpoint ``tree``, checked against today's data."""
    where = f"checkpoint {config.resume!r}"
    saved = tree.get("data", {}).get("normalization")
    if saved != data.info["normalization"]:
        raise CheckpointError(
            f"{where} was trained on other data: its normalization {saved} "
            f"differs from {data.info['normalization']} computed now"
        )
    model = build_model(tree, where, config.impl)
    optimizer = _make_optimizer(config, model.parameters())
    try:
        optimizer.load_state_dict(tree["optimizer"]["state"])
        scheduler = _make_scheduler(config, optimizer)
        if scheduler is not None:
            scheduler.load_state_dict(tree["scheduler"])
        state = FitState.from_dict(tree["progress"])
        restore_rngs(model, tree.get("rng", {}))
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{where}: cannot restore training: {err}") from None
    if state.epoch >= config.epochs:
        raise ValueError(
            f"`epochs` (={config.epochs}) must exceed the {state.epoch} epochs "
            f"the checkpoint has done"
        )
    return _Training(model, optimizer, scheduler, state)


def _saver(
    path: Path, config: TrainConfig, data: _Data, run: _Training
) -> Callable[[FitState], None]:
    """A function that writes the checkpoint of ``run`` at a state to ``path``."""

    def write(state: FitState) -> None:
        save_checkpoint(
            path,
            training_checkpoint(
                config=config.saved(),
                model=run.model,
                model_info={
                    "name": config.model,
                    "config": data.model_config,
                    "dtype": config.dtype,
                },
                data_info=data.info,
                optimizer=run.optimizer,
                optimizer_name=config.optimizer,
                state=state,
                scheduler=None if run.scheduler is None else run.scheduler.state_dict(),
            ),
        )

    return write


def train_run(
    config: TrainConfig,
    *,
    callbacks: Iterable[Callback] = (),
    progress: Callable[[int, int | None], None] | None = None,
) -> RunResult:
    """Train as ``config`` says and fill the run folder.

    Parameters
    ----------
    config : TrainConfig
    callbacks : iterable of Callback
        Extra callbacks (a progress bar; one that sets ``state.stop`` on
        Ctrl-C: the run then saves ``last.npz`` where it stopped and returns
        with ``interrupted=True``).
    progress : callable, optional
        ``progress(done_bytes, total_bytes)`` while a data set downloads.

    Returns
    -------
    RunResult
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"`config` must be a TrainConfig, got {type(config).__name__}")
    tree = None
    if config.resume is not None:
        config, tree = _resumed_config(config)
    out = _out_folder(config, resuming=tree is not None)
    data = _prepare_data(config, progress)
    run = (
        _new_training(config, data)
        if tree is None
        else (_restored_training(config, data, tree))
    )
    out.mkdir(parents=True, exist_ok=True)

    # The scheduler steps first, so checkpoints hold the next epoch's rate.
    monitor = "val_accuracy" if data.val is not None else "train_loss"
    steps: list[Callback] = (
        [] if run.scheduler is None else [_StepScheduler(run.scheduler)]
    )
    steps += [
        BestCheckpoint(_saver(out / "best.npz", config, data, run), monitor=monitor),
        _SaveEvery(_saver(out / "last.npz", config, data, run)),
    ]
    if config.patience is not None:
        loss = "val_loss" if data.val is not None else "train_loss"
        steps.append(EarlyStopping(loss, config.patience))
    log.info("training %s on %s, run folder %s", config.model, config.dataset, out)
    state = fit(
        run.model,
        run.optimizer,
        data.train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        val=data.val,
        seed=config.seed,
        callbacks=[*steps, *callbacks],
        state=run.state,
    )
    result = RunResult(
        out=out, config=config, state=state, interrupted=state.interrupted
    )
    if result.interrupted:
        _saver(out / "last.npz", config, data, run)(state)
        result.files.append(out / "last.npz")
        return result

    result.test = evaluate(run.model, data.test)
    result.metrics = _metrics(config, state, result.test, data.info, monitor)
    atomic_write_bytes(
        out / "metrics.json", json.dumps(result.metrics, indent=2).encode("utf-8")
    )
    atomic_write_bytes(out / "history.csv", _history_csv(state.history))
    result.files += [
        out / n for n in ("best.npz", "last.npz", "metrics.json", "history.csv")
    ]
    if config.plots:
        result.files += _plots(out, state, result.test, data.test_raw, run.model)
    return result


def _metrics(
    config: TrainConfig,
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
        "config": config.saved(),
        "history": state.history,
    }


def _history_csv(history: list[dict[str, Any]]) -> bytes:
    text = io.StringIO()
    columns = list(history[0]) if history else ["epoch"]
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return text.getvalue().encode("utf-8")


def _plots(
    out: Path, state: FitState, test: Evaluation, test_raw: cdata.Dataset, model: Any
) -> list[Path]:
    """Draw the run's pictures; without matplotlib, log why and draw none."""
    from cnnumpy import training_plots as plots

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
