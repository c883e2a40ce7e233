"""The training loop, `fit`: batches, steps, epochs, callbacks.

The callbacks and `FitState` live in `cnnumpy.training.callbacks`;
`evaluate` and `predict_proba` in `cnnumpy.training.evaluation`.

No argument parsing and no printing here: `fit` reports through callbacks and
the ``cnnumpy.training`` loggers. The command line (``cnnumpy train``) adds the
progress bar, the checkpoints and the run folder on top.

Resuming is exact. The shuffled order of epoch ``e`` and the augmentation of
its batch ``b`` depend only on ``(seed, e)`` and ``(seed, e, b)`` (see
`cnnumpy.data.DataLoader`), and `FitState` holds everything
else that changes while training (the epoch and batch reached, the running
sums of the epoch in progress, the history), so a run stopped after any batch
and continued from a checkpoint of the model, the optimizer and the state ends
with the same weights, bit for bit, as a run that never stopped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from cnnumpy import nn
from cnnumpy.data import DataLoader, Dataset
from cnnumpy.distributed import Communicator, GradientAllreduce, check_weights_agree
from cnnumpy.optim import Optimizer
from cnnumpy.training.callbacks import (
    Callback,
    FitState,
    check_callbacks,
)
from cnnumpy.training.divergence import check_finite, check_finite_weights
from cnnumpy.training.evaluation import _check_dataset, _check_model, evaluate
from cnnumpy.validation import check_instance, check_int

__all__ = ["fit"]

log = logging.getLogger(__name__)

_COMM = "a cnnumpy.distributed.Communicator or None"


def fit(
    model: nn.Module,
    optimizer: Optimizer,
    train: Dataset,
    *,
    epochs: int,
    batch_size: int = 100,
    val: Dataset | None = None,
    seed: int = 0,
    callbacks: Iterable[Callback] = (),
    state: FitState | None = None,
    comm: Communicator | None = None,
    transform: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
    label_smoothing: float = 0.0,
) -> FitState:
    """Train ``model`` with softmax cross-entropy until ``epochs`` epochs are done.

    Each epoch shuffles ``train`` (order fixed by ``seed`` and the epoch
    number), takes one optimizer step per batch, then evaluates on ``val``.

    Parameters
    ----------
    model : nn.Module
        Maps images (N, C, H, W) to logits (N, K).
    optimizer : Optimizer
        Holding ``model``'s parameters.
    train, val : Dataset
        Normalized float images and int labels; ``val`` is optional.
    epochs : int
        Total number of epochs, counting those ``state`` already has.
    batch_size : int
        Images per step; the last batch of an epoch may be smaller.
    seed : int
        Seed of the shuffling.
    callbacks : iterable of Callback
    state : FitState, optional
        Continue from here (``--resume``); a fresh state by default.
    comm : cnnumpy.distributed.Communicator, optional
        Train one model on all its ranks: each runs forward and backward on
        its part of every batch, the gradients are summed over the ranks
        (see `cnnumpy.distributed`), and every rank takes the same step, so
        the result is one process's with the same ``batch_size``, to
        rounding. The losses, accuracies and ``stop`` the callbacks see are
        the whole batch's, the same on every rank; the ranks' weights are
        checked to agree after each epoch. Every rank calls `fit` with the
        same arguments. A layer that computes across the batch (batch norm)
        sees each rank's part alone, as in PyTorch's DDP.
    transform : callable, optional
        ``transform(images, rng) -> images`` applied to each training batch
        (`cnnumpy.data.transforms`: random crops, flips), with draws fixed by
        ``seed``, the epoch and the batch (see `cnnumpy.data.DataLoader`);
        never to ``val``. Every rank augments the whole batch alike.
    label_smoothing : float in [0, 1]
        Of the training loss (`nn.CrossEntropyLoss`); the validation loss is
        plain cross-entropy, comparable across runs.

    Returns
    -------
    FitState
        ``history`` holds one dict per epoch: ``epoch`` (1-based),
        ``train_loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy``
        (with ``val``), ``lr``, ``seconds``, ``images_per_second``.
        ``state.batch > 0`` means a callback stopped it inside an epoch.
    """
    _check_model(model)
    check_instance(optimizer, "optimizer", Optimizer, "a cnnumpy.optim.Optimizer")
    train = _check_dataset(train, "train")
    if val is not None:
        val = _check_dataset(val, "val")
    epochs = check_int(epochs, "epochs", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    loader = DataLoader(
        train, batch_size=batch_size, shuffle=True, seed=seed, transform=transform
    )
    criterion = nn.CrossEntropyLoss(label_smoothing)
    callbacks = check_callbacks(callbacks)
    state = FitState() if state is None else state
    check_instance(state, "state", FitState, "a FitState")
    if state.batch >= len(loader):
        raise ValueError(
            f"`state.batch` (={state.batch}) must be below the {len(loader)} "
            f"batches of an epoch"
        )
    if comm is not None:
        check_instance(comm, "comm", Communicator, _COMM)
    if comm is not None and not comm.same(
        len(train), batch_size, epochs, state.epoch, state.batch
    ):
        raise ValueError(
            f"the {comm.size} ranks must call fit alike: rank {comm.rank} has "
            f"{len(train)} training images, batch_size {batch_size}, epochs "
            f"{epochs}, and is at epoch {state.epoch}, batch {state.batch}, "
            "which another rank has not (the same data and flags on every host?)"
        )
    state.stop = state.interrupted = False
    state.batches, state.epochs = len(loader), epochs
    for cb in callbacks:
        cb.on_fit_begin(state)
    # The input is data: nobody needs its gradient, so the first layer skips
    # computing it (for LeNet-5, conv1's largest product and its col2im).
    input_grad, model.input_grad = model.input_grad, False
    try:
        _fit_epochs(model, optimizer, criterion, loader, state, callbacks, val, comm)
    finally:
        model.input_grad = input_grad
    for cb in callbacks:
        cb.on_fit_end(state)
    return state


def _fit_epochs(
    model: nn.Module,
    optimizer: Optimizer,
    criterion: nn.CrossEntropyLoss,
    loader: DataLoader,
    state: FitState,
    callbacks: Sequence[Callback],
    val: Dataset | None,
    comm: Communicator | None,
) -> None:
    batch_size = loader.batch_size
    epochs = state.epochs
    allreduce = None if comm is None else GradientAllreduce(model.parameters(), comm)
    while state.epoch < epochs and not state.stop:
        loader.set_epoch(state.epoch, start=state.batch)
        _train_epoch(model, optimizer, criterion, loader, state, callbacks, allreduce)
        if state.stop and state.batch < state.batches:  # stopped inside the epoch
            break
        if comm is not None:
            check_weights_agree(
                model.parameters(), comm, f"after epoch {state.epoch + 1}"
            )
        logs = _epoch_logs(model, optimizer, state, val, batch_size, comm)
        where = f"epoch {state.epoch + 1}, batch {state.batch} (its last)"
        check_finite_weights(model, where)
        if "val_loss" in logs:
            check_finite(logs["val_loss"], "validation loss", where)
        state.history.append(logs)
        state.epoch += 1
        state.batch = 0
        state.running = {}
        log.info(
            "epoch %d/%d: %s",
            state.epoch,
            epochs,
            ", ".join(f"{k} {v:.4g}" for k, v in logs.items() if k != "epoch"),
        )
        for cb in callbacks:
            cb.on_epoch_end(state, logs)


def _train_epoch(
    model: nn.Module,
    optimizer: Optimizer,
    criterion: nn.CrossEntropyLoss,
    loader: DataLoader,
    state: FitState,
    callbacks: Sequence[Callback],
    allreduce: GradientAllreduce | None,
) -> None:
    """Run the batches of one epoch from ``state.batch`` on, updating ``state``."""
    model.train()
    run = state.running
    for key in ("loss", "correct", "seen", "seconds"):
        run.setdefault(key, 0.0)
    # The loader starts after the batches done before the checkpoint resumed.
    for index, (x, y) in enumerate(loader, start=state.batch):
        start = time.perf_counter()
        where = f"epoch {state.epoch + 1}, batch {index + 1}"
        loss, correct = _step(model, optimizer, criterion, x, y, allreduce, where)
        seconds = time.perf_counter() - start
        run["loss"] += loss * len(y)
        run["correct"] += correct
        run["seen"] += len(y)
        run["seconds"] += seconds
        state.batch = index + 1
        logs = {
            "loss": loss,
            "accuracy": correct / len(y),
            "size": len(y),
            "epoch_loss": run["loss"] / run["seen"],
            "epoch_accuracy": run["correct"] / run["seen"],
            "images_per_second": run["seen"] / max(run["seconds"], 1e-9),
            "lr": float(optimizer.param_groups[0]["lr"]),  # the rate of this step
        }
        for cb in callbacks:
            cb.on_batch_end(state, logs)
        if allreduce is not None:  # one rank's Ctrl-C stops them all
            state.stop, state.interrupted = allreduce.comm.any(
                state.stop, state.interrupted
            )
        if state.stop:
            return


def _step(
    model: nn.Module,
    optimizer: Optimizer,
    criterion: nn.CrossEntropyLoss,
    x: np.ndarray,
    y: np.ndarray,
    allreduce: GradientAllreduce | None,
    where: str,
) -> tuple[float, int]:
    """One optimizer step on the batch ``(x, y)``: its mean loss and correct count.

    With ``allreduce``, this rank works on its part of the batch and the
    gradients, loss and count are summed over the ranks. The loss is checked
    before the step (``where`` says which batch), so a diverging model stays as
    it was, finite, on every rank.
    """
    optimizer.zero_grad()
    if allreduce is None:
        logits = model(x)
        loss = criterion(logits, y)
        check_finite(loss, "training loss", where)
        model.backward(criterion.backward())
        optimizer.step()
        return loss, int(np.count_nonzero(logits.argmax(axis=1) == y))
    part = allreduce.comm.part(len(y))
    xs, ys = x[part], y[part]
    share = len(ys) / len(y)
    loss, correct = 0.0, 0
    if len(ys):  # a batch smaller than the ranks leaves some without images
        logits = model(xs)
        loss = criterion(logits, ys)
        model.backward(criterion.backward())
        correct = int(np.count_nonzero(logits.argmax(axis=1) == ys))
    mean_loss, total_correct = allreduce(share, loss * share, correct)
    check_finite(float(mean_loss), "training loss", where)
    optimizer.step()
    return float(mean_loss), round(float(total_correct))


def _epoch_logs(
    model: nn.Module,
    optimizer: Optimizer,
    state: FitState,
    val: Dataset | None,
    batch_size: int,
    comm: Communicator | None,
) -> dict[str, Any]:
    run = state.running
    logs: dict[str, Any] = {
        "epoch": state.epoch + 1,
        "train_loss": run["loss"] / run["seen"],
        "train_accuracy": run["correct"] / run["seen"],
    }
    if val is not None:
        result = evaluate(model, val, batch_size=max(batch_size, 1000), comm=comm)
        logs["val_loss"] = result.loss
        logs["val_accuracy"] = result.accuracy
    logs["lr"] = float(optimizer.param_groups[0]["lr"])
    logs["seconds"] = run["seconds"]
    logs["images_per_second"] = run["seen"] / max(run["seconds"], 1e-9)
    return logs
