"""A training run, start to finish: what ``cnnumpy train`` does, as a function.

`train_run` takes a frozen `TrainConfig`, loads and splits the data set,
normalizes it with statistics of the training part only, builds the model and
optimizer, trains with `cnnumpy.training.fit`, and fills the run folder::

    best.npz       checkpoint of the epoch with the best validation accuracy
    last.npz       checkpoint after the latest epoch (or the batch Ctrl-C hit)
    metrics.json   test accuracy and loss, timings, config, per-epoch history
    history.csv    the per-epoch history as a table
    history.png, confusion_matrix.png, misclassified.png, filters.png

Nothing here prints: progress reaches the caller through callbacks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnumpy import optim
from cnnumpy.distributed import Communicator
from cnnumpy.models import create_model
from cnnumpy.optim.lr_scheduler import LRScheduler
from cnnumpy.training import artifacts
from cnnumpy.training.callbacks import (
    BestCheckpoint,
    Callback,
    EarlyStopping,
    FitState,
    check_callbacks,
)
from cnnumpy.training.checkpoint import CheckpointError, save_checkpoint
from cnnumpy.training.config import TrainConfig, resumed_config
from cnnumpy.training.divergence import check_finite
from cnnumpy.training.evaluation import Evaluation, evaluate
from cnnumpy.training.lock import remove_stale_temporaries, run_lock
from cnnumpy.training.loop import fit
from cnnumpy.training.recipe import (
    PER_BATCH,
    ScheduleStepper,
    make_optimizer,
    make_scheduler,
    make_transform,
)
from cnnumpy.training.splits import RunData, prepare_data
from cnnumpy.training.trained import build_model, restore_rngs, training_checkpoint
from cnnumpy.validation import check_callable, check_instance

__all__ = ["RunResult", "train_run"]

log = logging.getLogger(__name__)


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


def _fresh_out(config: TrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{stamp}-{config.model}-{config.dataset}"
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


class _SaveEvery(Callback):
    """Write last.npz after every epoch."""

    def __init__(self, save: Callable[[FitState], None]) -> None:
        self.save = save

    def on_epoch_end(self, state: FitState, logs: dict[str, Any]) -> None:
        self.save(state)


@dataclass
class _Training:
    """What changes while training: the model, its optimizer and the fit state."""

    model: Any
    optimizer: optim.Optimizer
    scheduler: LRScheduler | None
    state: FitState


def _out_folder(config: TrainConfig, resuming: bool) -> Path:
    out = Path(config.out) if config.out is not None else _fresh_out(config)
    if not resuming and (out / "last.npz").exists():
        raise FileExistsError(
            f"`out` folder {str(out)!r} already holds a run (last.npz): pass "
            f"--resume {out / 'last.npz'} to continue it, or another --out"
        )
    return out


def _new_training(config: TrainConfig, data: RunData) -> _Training:
    model = create_model(
        config.model,
        **data.model_config,
        rng=np.random.default_rng(config.seed),
        dtype=config.dtype,
        impl=config.impl,
    )
    optimizer = make_optimizer(config, model)
    scheduler = make_scheduler(config, optimizer, data.batches(config.batch_size))
    return _Training(model, optimizer, scheduler, FitState())


def _restored_training(
    config: TrainConfig, data: RunData, tree: dict[str, Any]
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
    optimizer = make_optimizer(config, model)
    try:
        # As in torch: build the scheduler, then load the optimizer's state
        # (the rates and momenta a scheduler's constructor resets), then the
        # scheduler's.
        scheduler = make_scheduler(config, optimizer, data.batches(config.batch_size))
        optimizer.load_state_dict(tree["optimizer"]["state"])
        if scheduler is not None:
            scheduler.load_state_dict(tree["scheduler"])
        state = FitState.from_dict(tree["progress"])
        restore_rngs(model, tree.get("rng", {}))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
        raise CheckpointError(f"{where}: cannot restore training: {err}") from None
    if state.epoch >= config.epochs:
        raise ValueError(
            f"`epochs` (={config.epochs}) must exceed the {state.epoch} epochs "
            f"the checkpoint has done"
        )
    return _Training(model, optimizer, scheduler, state)


def _saver(
    path: Path, config: TrainConfig, data: RunData, run: _Training, comm: Communicator
) -> Callable[[FitState], None]:
    """A function that writes the checkpoint of ``run`` at a state to ``path``.

    Rank 0 alone writes: every rank holds the same weights and state.
    """

    def write(state: FitState) -> None:
        if not comm.is_root:
            return
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
    comm: Communicator | None = None,
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
    comm : cnnumpy.distributed.Communicator, optional
        Train on all its ranks (see `fit`); every rank calls `train_run` with
        the same ``config``, rank 0 alone writes the run folder, and
        ``metrics.json`` says how many ranks trained (``world_size``). Every
        rank reads the data and, with ``resume``, the checkpoint: on several
        machines, keep them where each finds them (a shared file system).

    Returns
    -------
    RunResult

    Raises
    ------
    RunLockedError
        If another process is running in the run folder (``out/.lock``).
    DivergenceError
        If a loss or a weight becomes NaN or infinite; ``last.npz`` is then
        the last finite epoch's.
    """
    check_instance(config, "config", TrainConfig, "a TrainConfig")
    callbacks = check_callbacks(callbacks)
    if progress is not None:
        check_callable(progress, "progress")
    if comm is not None:
        what = "a cnnumpy.distributed.Communicator"
        check_instance(comm, "comm", Communicator, what)
    ranks = Communicator() if comm is None else comm
    tree = None
    if config.resume is not None:
        config, tree = resumed_config(config)
    # Rank 0 names the folder (a fresh one is named after the time).
    out = _out_folder(config, resuming=tree is not None) if ranks.is_root else None
    out = Path(ranks.broadcast_text(None if out is None else str(out)))
    # Rank 0 loads first, so a download happens once, and the others (on its
    # machine, or a shared file system) find the files.
    if not ranks.is_root:
        ranks.barrier()
    data = prepare_data(config, progress)
    if ranks.is_root:
        ranks.barrier()
    run = (
        _new_training(config, data)
        if tree is None
        else (_restored_training(config, data, tree))
    )
    if not ranks.is_root:  # rank 0 alone writes, and holds, the run folder
        return _fit_and_write(out, config, data, run, callbacks, comm, ranks)
    out.mkdir(parents=True, exist_ok=True)
    with run_lock(out):
        _out_folder(config, resuming=tree is not None)  # again, now that it is ours
        remove_stale_temporaries(out)
        return _fit_and_write(out, config, data, run, callbacks, comm, ranks)


def _fit_and_write(
    out: Path,
    config: TrainConfig,
    data: RunData,
    run: _Training,
    callbacks: list[Callback],
    comm: Communicator | None,
    ranks: Communicator,
) -> RunResult:
    """Train, then write the run folder (whose lock rank 0 holds)."""
    # The scheduler steps first, so checkpoints hold the next epoch's rate.
    monitor = "val_accuracy" if data.val is not None else "train_loss"
    steps: list[Callback] = []
    if run.scheduler is not None:
        per_batch = config.lr_schedule in PER_BATCH
        steps.append(ScheduleStepper(run.scheduler, per_batch))
    steps += [
        BestCheckpoint(
            _saver(out / "best.npz", config, data, run, ranks), monitor=monitor
        ),
        _SaveEvery(_saver(out / "last.npz", config, data, run, ranks)),
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
        comm=comm,
        transform=make_transform(
            config,
            data.info["input_shape"],
            **data.info["normalization"],
        ),
        label_smoothing=config.label_smoothing,
    )
    result = RunResult(
        out=out, config=config, state=state, interrupted=state.interrupted
    )
    if result.interrupted:
        _saver(out / "last.npz", config, data, run, ranks)(state)
        result.files.append(out / "last.npz")
        return result

    result.test = evaluate(run.model, data.test, comm=comm)
    check_finite(result.test.loss, "test loss", f"the end (epoch {state.epoch})")
    result.metrics = artifacts.metrics(
        config.saved(), state, result.test, data.info, monitor
    )
    result.metrics["world_size"] = ranks.size
    result.files += [out / "best.npz", out / "last.npz"]
    if not ranks.is_root:
        return result
    result.files += artifacts.write_metrics(out, result.metrics, state)
    if config.plots:
        result.files += artifacts.write_plots(
            out, state, result.test, data.test_raw, run.model
        )
    return result
