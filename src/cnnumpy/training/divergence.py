"""Divergence: a NaN or infinite loss or weight stops training where it appears.

`fit` checks the batch's loss before each step (cheap: one number), the weights
and the validation loss at the end of each epoch; `train_run` the test loss;
`training_checkpoint` the weights before anything is saved. So a diverging run
stops with a `DivergenceError` naming the epoch and batch, and the checkpoints
on disk stay those of the last finite epoch.
"""

from __future__ import annotations

import math

import numpy as np

from cnnumpy import nn

__all__ = ["DivergenceError", "check_finite", "check_finite_weights"]


class DivergenceError(FloatingPointError):
    """A loss or a weight became NaN or infinite: the run diverged.

    Raised where it appears (the batch's loss each step, the validation loss
    and the weights at the end of each epoch), before anything is saved from
    it, so the checkpoints on disk stay those of the last finite epoch.
    """


def check_finite(value: float, what: str, where: str) -> None:
    """Raise `DivergenceError` if ``value`` (``what``, at ``where``) is not finite."""
    if not math.isfinite(value):
        raise DivergenceError(
            f"the {what} became {value} at {where}: the run diverged; "
            f"lower the learning rate"
        )


def check_finite_weights(model: nn.Module, where: str) -> None:
    """Raise `DivergenceError` if a parameter of ``model`` holds NaN or infinity."""
    for name, param in model.named_parameters():
        if not np.isfinite(param.data).all():
            raise DivergenceError(
                f"weight {name!r} became NaN or infinite at {where}: the run "
                f"diverged; lower the learning rate"
            )
