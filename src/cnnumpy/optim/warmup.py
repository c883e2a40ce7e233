"""Warm-up and chaining, as torch.optim.lr_scheduler: LinearLR, SequentialLR."""

from __future__ import annotations

from bisect import bisect_right
from itertools import pairwise
from typing import Any

from cnnumpy.optim.lr_scheduler import LRScheduler
from cnnumpy.optim.optimizer import Optimizer
from cnnumpy.validation import check_instance, check_int, check_real


class LinearLR(LRScheduler):
    """Scale the learning rates by a factor that moves linearly, for warm-up.

    The rate of epoch ``e`` is ``base_lr * (start_factor + (end_factor -
    start_factor) * min(e, total_iters) / total_iters)``, computed as PyTorch
    does, by multiplying the group's current ``'lr'``.

    Parameters
    ----------
    optimizer : Optimizer
        The optimizer to schedule.
    start_factor : float, default 1/3
        The factor of the first epoch, in (0, 1].
    end_factor : float, default 1.0
        The factor from ``total_iters`` on, in [0, 1].
    total_iters : int, default 5
        Number of epochs from ``start_factor`` to ``end_factor``, >= 1.
    last_epoch : int, default -1
        See `LRScheduler`.

    Raises
    ------
    TypeError
        If a factor is not a number or ``total_iters`` not an int, or see
        `LRScheduler`.
    ValueError
        If a factor is out of its range or ``total_iters`` < 1, or see
        `LRScheduler`.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnumpy.nn.parameter import Parameter
    >>> from cnnumpy.optim import SGD
    >>> opt = SGD([Parameter(np.zeros(1))], lr=1.0)
    >>> sched = LinearLR(opt, start_factor=0.25, total_iters=3)
    >>> rates = [sched.get_last_lr()[0]]
    >>> for _ in range(4):
    ...     opt.step()
    ...     sched.step()
    ...     rates.append(sched.get_last_lr()[0])
    >>> rates
    [0.25, 0.5, 0.75, 1.0, 1.0]
    """

    _hyperparameters = ("start_factor", "end_factor", "total_iters")

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        self._validate(start_factor, end_factor, total_iters)
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def _validate(self, start_factor: Any, end_factor: Any, total_iters: Any) -> None:
        check_real(start_factor, "start_factor", above=0.0, maximum=1.0)
        check_real(end_factor, "end_factor", minimum=0.0, maximum=1.0)
        check_int(total_iters, "total_iters", minimum=1)

    def get_lr(self) -> list[float]:
        """The rates for ``last_epoch``, from the groups' current rates."""
        groups = self.optimizer.param_groups
        if self.last_epoch == 0:
            return [group["lr"] * self.start_factor for group in groups]
        if self._is_initial or self.last_epoch > self.total_iters:
            return [group["lr"] for group in groups]
        start, end = self.start_factor, self.end_factor
        return [
            group["lr"]
            * (
                1.0
                + (end - start)
                / (self.total_iters * start + (self.last_epoch - 1) * (end - start))
            )
            for group in groups
        ]

    def _get_closed_form_lr(self) -> list[float]:
        start, end = self.start_factor, self.end_factor
        return [
            base_lr
            * (
                start
                + (end - start)
                * min(self.total_iters, self.last_epoch)
                / self.total_iters
            )
            for base_lr in self.base_lrs
        ]


class SequentialLR(LRScheduler):
    """Run schedulers one after the other, switching at the milestones.

    ``schedulers[i]`` runs from epoch ``milestones[i - 1]``, where it restarts
    from its epoch 0 (PyTorch's closed form), to ``milestones[i]``. The usual
    warm-up: ``SequentialLR(opt, [LinearLR(opt, 0.1, total_iters=5),
    CosineAnnealingLR(opt, 95)], milestones=[5])``.

    Parameters
    ----------
    optimizer : Optimizer
        The optimizer of every scheduler.
    schedulers : list of LRScheduler
        The schedulers, built on ``optimizer`` before this one; at least one.
    milestones : list of int
        Epochs at which the next scheduler takes over, one fewer than
        ``schedulers``, increasing.
    last_epoch : int, default -1
        The index of the last epoch (-1 starts afresh).

    Raises
    ------
    TypeError
        If ``schedulers`` or ``milestones`` is not a list or tuple, an entry is
        not a scheduler or an int, or ``last_epoch`` is not an int.
    ValueError
        If ``schedulers`` is empty, a scheduler has another optimizer, the
        milestones are not one fewer than the schedulers, or not increasing.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        schedulers: list[LRScheduler],
        milestones: list[int],
        last_epoch: int = -1,
    ) -> None:
        check_instance(optimizer, "optimizer", Optimizer, "an Optimizer")
        check_instance(schedulers, "schedulers", (list, tuple), "a list")
        check_instance(milestones, "milestones", (list, tuple), "a list")
        last_epoch = check_int(last_epoch, "last_epoch", minimum=-1)
        if not schedulers:
            raise ValueError("`schedulers` must hold at least one scheduler, got none")
        for i, scheduler in enumerate(schedulers):
            check_instance(scheduler, f"schedulers[{i}]", LRScheduler, "a scheduler")
            if scheduler.optimizer is not optimizer:
                raise ValueError(
                    f"`schedulers[{i}]` must schedule `optimizer`, got one with "
                    "another optimizer"
                )
        milestones = [
            check_int(m, f"milestones[{i}]") for i, m in enumerate(milestones)
        ]
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"`milestones` must have {len(schedulers) - 1} entries (one fewer "
                f"than `schedulers`), got {len(milestones)}"
            )
        if any(a >= b for a, b in pairwise(milestones)):
            raise ValueError(f"`milestones` must be increasing, got {milestones}")
        self.optimizer = optimizer
        self._schedulers = list(schedulers)
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        # Undo what the schedulers' constructors did, then start the first.
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for scheduler in self._schedulers:
            scheduler._undo_initial_step()
        idx = bisect_right(self._milestones, 0)
        self._schedulers[idx]._initial_step()
        self._last_lr = self._schedulers[idx].get_last_lr()

    def _undo_initial_step(self) -> None:
        for scheduler in self._schedulers:
            scheduler._undo_initial_step()

    def step(self) -> None:
        """Advance one epoch with the scheduler whose turn it is."""
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        """Progress and each scheduler's state dict, with PyTorch's keys.

        Returns
        -------
        dict
            ``'_milestones'``, ``'last_epoch'``, ``'_last_lr'`` and
            ``'_schedulers'`` (a list of the schedulers' state dicts).
        """
        return {
            "_milestones": list(self._milestones),
            "last_epoch": self.last_epoch,
            "_last_lr": list(self._last_lr),
            "_schedulers": [s.state_dict() for s in self._schedulers],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (PyTorch's extra keys are ignored).

        Raises
        ------
        ValueError
            If a key is missing, the milestones differ from this scheduler's, or
            the list of schedulers' states has another length.
        """
        expected = {"_milestones", "last_epoch", "_last_lr", "_schedulers"}
        missing = expected - state_dict.keys()
        if missing:
            raise ValueError(f"`state_dict` is missing the keys {sorted(missing)}")
        if list(state_dict["_milestones"]) != self._milestones:
            raise ValueError(
                f"`state_dict['_milestones']` must be {self._milestones}, got "
                f"{state_dict['_milestones']}"
            )
        states = state_dict["_schedulers"]
        if len(states) != len(self._schedulers):
            raise ValueError(
                f"`state_dict['_schedulers']` must have {len(self._schedulers)} "
                f"entries, got {len(states)}"
            )
        for scheduler, state in zip(self._schedulers, states, strict=True):
            scheduler.load_state_dict(state)
        self.last_epoch = int(state_dict["last_epoch"])
        self._last_lr = list(state_dict["_last_lr"])
