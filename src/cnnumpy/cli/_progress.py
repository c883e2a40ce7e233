"""Progress bars (tqdm, the ``cli`` extra) and Ctrl-C handling for ``train``.

With NumPy alone (``pip install cnnumpy``), ``train`` runs all the same: a
plain line per epoch instead of bars, and no plots (`plots_missing` says so once).
"""

from __future__ import annotations

import importlib.util
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from cnnumpy.distributed import Communicator
from cnnumpy.training.callbacks import Callback, FitState


def _tqdm() -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def plots_missing() -> str | None:
    """Why ``train`` will draw no plots (matplotlib is not installed), or None."""
    if importlib.util.find_spec("matplotlib") is not None:
        return None
    return (
        "no plots: they need matplotlib; pip install 'cnnumpy[cli]' adds plots "
        "and progress bars"
    )


def _rate(images_per_second: float) -> str:
    """1.6 for the naive loops, 4,870 for im2col: digits that say something."""
    return (
        f"{images_per_second:,.1f}"
        if images_per_second < 10
        else (f"{images_per_second:,.0f}")
    )


class EpochBar(Callback):
    """One tqdm bar per epoch with loss, accuracy and images/s; a line per epoch.

    Without tqdm installed, only the line per epoch is printed.
    """

    def __init__(self) -> None:
        self.tqdm = _tqdm()
        self.bar: Any = None

    def on_batch_end(self, state: FitState, logs: dict[str, float]) -> None:
        if self.tqdm is None:
            return
        if self.bar is None:
            self.bar = self.tqdm(
                total=state.batches,
                initial=state.batch - 1,
                desc=f"epoch {state.epoch + 1}/{state.epochs}",
                unit="batch",
                leave=False,
                dynamic_ncols=True,
                file=sys.stderr,
            )
        self.bar.set_postfix(
            loss=f"{logs['epoch_loss']:.4f}",
            acc=f"{logs['epoch_accuracy']:.2%}",
            img_s=_rate(logs["images_per_second"]),
            refresh=False,
        )
        self.bar.update(1)

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_epoch_end(self, state: FitState, logs: dict[str, Any]) -> None:
        self._close()
        parts = [
            f"epoch {logs['epoch']}/{state.epochs}",
            f"loss {logs['train_loss']:.4f}",
            f"acc {logs['train_accuracy']:.2%}",
        ]
        if "val_loss" in logs:
            parts += [
                f"val_loss {logs['val_loss']:.4f}",
                f"val_acc {logs['val_accuracy']:.2%}",
            ]
        parts.append(f"{_rate(logs['images_per_second'])} img/s")
        parts.append(f"{logs['seconds']:.1f} s")
        print(" - ".join(parts), flush=True)

    def on_fit_end(self, state: FitState) -> None:
        self._close()


class StopOnInterrupt(Callback):
    """Ask `fit` to stop after the current batch once Ctrl-C (or SIGTERM) came.

    With ``comm``, the ranks agree after every batch (a one-number
    ``Allreduce``): a signal on any rank stops them all after the same batch,
    and all know which signal it was (``signum``, for the exit status).
    """

    def __init__(self, comm: Communicator | None = None) -> None:
        self.requested = False
        self.signum = int(signal.SIGINT)
        self.comm = comm

    def on_batch_end(self, state: FitState, logs: dict[str, float]) -> None:
        code = self.signum if self.requested else 0
        if self.comm is not None:
            code = int(self.comm.allreduce(np.array([code]), "max")[0])
        if code:
            self.requested, self.signum = True, code
            state.stop = state.interrupted = True


STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}
if hasattr(signal, "SIGHUP"):  # the terminal went away (not on Windows)
    STOP_SIGNALS[signal.SIGHUP] = "SIGHUP"


@contextmanager
def catch_interrupt(stopper: StopOnInterrupt, announce: bool = True) -> Iterator[None]:
    """While inside, a first Ctrl-C, SIGTERM or SIGHUP sets ``stopper.requested``; a
    second one acts at once (checkpoints are written atomically either way).
    ``announce``: say so on stderr (rank 0 only, under mpiexec)."""

    def handler(signum: int, frame: Any) -> None:
        stopper.requested, stopper.signum = True, signum
        for sig, before in previous.items():
            signal.signal(sig, before)
        if announce:
            print(
                f"\n{STOP_SIGNALS[signal.Signals(signum)]}: stopping after this batch "
                "to save last.npz (press Ctrl-C again to abort now)",
                file=sys.stderr,
                flush=True,
            )

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)


def download_bar() -> Callable[[int, int | None], None] | None:
    """A ``progress(done, total)`` callback drawing a byte bar, or None."""
    tqdm = _tqdm()
    if tqdm is None:
        return None
    bars: dict[str, Any] = {}

    def progress(done: int, total: int | None) -> None:
        bar = bars.get("bar")
        if bar is None or done < bar.n:  # a new file starts
            if bar is not None:
                bar.close()
            bar = bars["bar"] = tqdm(
                total=total, unit="B", unit_scale=True, desc="download", file=sys.stderr
            )
        bar.update(done - bar.n)
        if total is not None and done >= total:
            bar.close()
            bars.pop("bar")

    return progress
