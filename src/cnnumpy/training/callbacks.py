"""What `cnnumpy.training.fit` tells its callbacks, and the callbacks that ship.

`FitState` is where a run is (epoch, batch, running sums, history); a callback
reads it and may set ``stop``. `EarlyStopping` and `BestCheckpoint` watch one
entry of the history and replay it when a run resumes, so a resumed run makes
the same decisions as one that never stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cnnumpy.validation import (
    check_callable,
    check_choice,
    check_instance,
    check_int,
    check_real,
    check_str,
)

__all__ = ["BestCheckpoint", "Callback", "EarlyStopping", "FitState"]

log = logging.getLogger(__name__)


@dataclass
class FitState:
    """Where a `fit` run is; everything a checkpoint needs besides the weights.

    Attributes
    ----------
    epoch : int
        Epochs completed.
    batch : int
        Batches done in the epoch in progress (0 between epochs).
    running : dict
        Sums over the batches done in the epoch in progress: ``loss`` (sum of
        batch loss times batch size), ``correct``, ``seen``, ``seconds``.
    history : list of dict
        One entry per completed epoch (see `fit`).
    stop : bool
        Set by a callback to end `fit`: after the current batch when set in
        ``on_batch_end``, after the epoch when set in ``on_epoch_end``.
    interrupted : bool
        Set together with ``stop`` by a callback that stops the run from
        outside (Ctrl-C): the run is unfinished and meant to be resumed.
    batches : int
        Batches per epoch, set by `fit` (for progress bars; not saved).
    epochs : int
        Epochs `fit` was asked to reach, set by `fit` (not saved).
    """

    epoch: int = 0
    batch: int = 0
    running: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    stop: bool = False
    interrupted: bool = False
    batches: int = 0
    epochs: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The state as plain JSON values (for a checkpoint)."""
        return {
            "epoch": self.epoch,
            "batch": self.batch,
            "running": dict(self.running),
            "history": [dict(h) for h in self.history],
        }

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> FitState:
        """Rebuild a state written by `to_dict`; raises ValueError if malformed."""
        try:
            epoch, batch = saved["epoch"], saved["batch"]
            running, history = dict(saved["running"]), list(saved["history"])
        except (KeyError, TypeError) as err:
            raise ValueError(f"malformed training state: missing {err}") from None
        for name, value in (("epoch", epoch), ("batch", batch)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(
                    f"training state `{name}` must be an int >= 0, got {value!r}"
                )
        if len(history) != epoch or not all(isinstance(h, dict) for h in history):
            raise ValueError(
                f"training state has {len(history)} history entries for {epoch} epochs"
            )
        return cls(epoch, batch, running, history)


class Callback:
    """Hooks called by `fit`; subclass and override the ones you need."""

    def on_fit_begin(self, state: FitState) -> None:
        """Before the first batch (also when resuming: the history is there)."""

    def on_batch_end(self, state: FitState, logs: dict[str, float]) -> None:
        """After each optimizer step; ``logs`` has the batch's ``loss``,
        ``accuracy``, ``size`` and learning rate ``lr`` (of the first param
        group, as the step used it), and the epoch's running ``epoch_loss``,
        ``epoch_accuracy`` and ``images_per_second``."""

    def on_epoch_end(self, state: FitState, logs: dict[str, Any]) -> None:
        """After each epoch and its validation; ``logs`` is the history entry."""

    def on_fit_end(self, state: FitState) -> None:
        """When `fit` returns, also after a stop."""


def check_callbacks(callbacks: object) -> list[Callback]:
    """``callbacks`` as a list, each a `Callback`."""
    if isinstance(callbacks, (str, bytes)) or not isinstance(callbacks, Iterable):
        raise TypeError(
            "`callbacks` must be an iterable of Callback, got "
            f"{type(callbacks).__name__} {callbacks!r}"
        )
    callbacks = list(callbacks)
    for i, cb in enumerate(callbacks):
        check_instance(cb, f"callbacks[{i}]", Callback, "a Callback")
    return callbacks


def _check_mode(monitor: str, mode: str) -> str:
    check_choice(mode, "mode", ("auto", "min", "max"))
    if mode == "auto":
        return "max" if "accuracy" in monitor else "min"
    return mode


class _Monitor(Callback):
    """Tracks the best value of one history entry; replays history on resume."""

    def __init__(self, monitor: str, mode: str, min_delta: float) -> None:
        self.monitor = check_str(monitor, "monitor")
        self.mode = _check_mode(monitor, mode)
        self.min_delta = check_real(min_delta, "min_delta", minimum=0)
        self.best: float | None = None
        self.best_epoch = 0
        self.wait = 0

    def _value(self, logs: dict[str, Any]) -> float:
        if self.monitor not in logs:
            raise ValueError(
                f"`monitor` {self.monitor!r} is not in the epoch logs {sorted(logs)}"
                " (validation metrics need validation data)"
            )
        return float(logs[self.monitor])

    def _improved(self, logs: dict[str, Any]) -> bool:
        value = self._value(logs)
        better = self.best is None or (
            value < self.best - self.min_delta
            if self.mode == "min"
            else value > self.best + self.min_delta
        )
        if better:
            self.best, self.best_epoch, self.wait = value, int(logs["epoch"]), 0
        else:
            self.wait += 1
        return better

    def on_fit_begin(self, state: FitState) -> None:
        self.best, self.best_epoch, self.wait = None, 0, 0
        for logs in state.history:
            self._improved(logs)


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    Parameters
    ----------
    monitor : str
        A history entry: ``'val_loss'`` (default), ``'val_accuracy'``,
        ``'train_loss'``, ...
    patience : int
        Epochs without improvement to tolerate.
    min_delta : float
        Smallest change that counts as an improvement.
    mode : {'auto', 'min', 'max'}
        ``'auto'``: maximise accuracies, minimise the rest.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 3,
        min_delta: float = 0.0,
        mode: str = "auto",
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        self.patience = check_int(patience, "patience", minimum=1)

    def on_epoch_end(self, state: FitState, logs: dict[str, Any]) -> None:
        if not self._improved(logs) and self.wait >= self.patience:
            log.info(
                "early stopping after epoch %d: %s has not improved for %d epochs",
                state.epoch,
                self.monitor,
                self.wait,
            )
            state.stop = True


class BestCheckpoint(_Monitor):
    """Call ``save(state)`` after each epoch that improves ``monitor``.

    The caller's ``save`` writes whatever a checkpoint holds (see
    ``cnnumpy.run``); this callback only decides when.
    """

    def __init__(
        self,
        save: Any,
        monitor: str = "val_accuracy",
        mode: str = "auto",
        min_delta: float = 0.0,
    ) -> None:
        check_callable(save, "save")
        super().__init__(monitor, mode, min_delta)
        self.save = save

    def on_epoch_end(self, state: FitState, logs: dict[str, Any]) -> None:
        if self._improved(logs):
            self.save(state)
