"""Learning-rate schedulers, as torch.optim.lr_scheduler: StepLR, CosineAnnealingLR."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from cnnumpy.optim.optimizer import Optimizer
from cnnumpy.validation import check_instance, check_int, check_real


class LRScheduler:
    """Base class of the schedulers, with ``torch.optim.lr_scheduler`` semantics.

    On construction with ``last_epoch=-1`` each group gets ``'initial_lr'``
    (its current ``'lr'``, unless already set) and ``base_lrs`` is read from
    there; then one `step` moves ``last_epoch`` to 0. Call `step` once per
    epoch, after the optimizer's ``step``.

    Parameters
    ----------
    optimizer : Optimizer
        The optimizer whose ``param_groups[i]['lr']`` are scheduled.
    last_epoch : int, default -1
        The index of the last epoch; -1 starts afresh. To resume, prefer
        `load_state_dict`.

    Raises
    ------
    TypeError
        If ``optimizer`` is not an Optimizer or ``last_epoch`` not an int.
    ValueError
        If ``last_epoch`` < -1, or >= 0 while a group has no ``'initial_lr'``.
    """

    # Hyperparameters saved by state_dict besides the common progress entries.
    _hyperparameters: ClassVar[tuple[str, ...]] = ()
    # Entries of PyTorch's state dict that cnnumpy has no use for: accepted by
    # load_state_dict and ignored.
    _ignored_keys: ClassVar[frozenset[str]] = frozenset(
        {"_is_initial", "_get_lr_called_within_step"}
    )

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        check_instance(optimizer, "optimizer", Optimizer, "an Optimizer")
        last_epoch = check_int(last_epoch, "last_epoch", minimum=-1)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise ValueError(
                        f"`last_epoch` (={last_epoch}) >= 0 resumes a schedule and "
                        "needs 'initial_lr' in every param group, got none in "
                        f"`optimizer.param_groups[{i}]`"
                    )
        self.base_lrs: list[float] = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = int(last_epoch)
        self._initial_step()

    def _initial_step(self) -> None:
        """The first step, taken by the constructor (and by `SequentialLR`)."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def _undo_initial_step(self) -> None:
        """Take back the constructor's step (`SequentialLR` restarts it)."""
        self.last_epoch -= 1

    def get_lr(self) -> list[float]:
        """The learning rates for ``last_epoch``, one per group (for `step`)."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and write the new rates into the optimizer."""
        self._step_count += 1
        self._update_lr()

    def _update_lr(self, epoch: int | None = None) -> None:
        """Move to the next epoch, or jump to ``epoch`` (PyTorch's closed form)."""
        if epoch is None:
            self.last_epoch += 1
            lrs = self.get_lr()
        else:
            self.last_epoch = epoch
            lrs = self._get_closed_form_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self) -> list[float]:
        """The rates of ``last_epoch`` from ``base_lrs``; `get_lr` if none."""
        return self.get_lr()

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the last `step`, one per group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Hyperparameters and progress, with PyTorch's keys (JSON friendly).

        Returns
        -------
        dict
            The hyperparameters, ``'base_lrs'``, ``'last_epoch'``,
            ``'_step_count'`` and ``'_last_lr'``.
        """
        sd = {name: getattr(self, name) for name in self._hyperparameters}
        sd["base_lrs"] = list(self.base_lrs)
        sd["last_epoch"] = self.last_epoch
        sd["_step_count"] = self._step_count
        sd["_last_lr"] = list(self._last_lr)
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what `state_dict` returned.

        PyTorch's private flags ``'_is_initial'`` and
        ``'_get_lr_called_within_step'`` (and the entries a scheduler lists in
        ``_ignored_keys``) are accepted and ignored.

        Raises
        ------
        ValueError
            If a key is missing or unknown, or the lists of rates do not have
            one entry per param group.
        """
        expected = {*self._hyperparameters, "base_lrs", "last_epoch"}
        expected |= {"_step_count", "_last_lr"}
        ignored = self._ignored_keys
        missing = expected - state_dict.keys()
        unknown = state_dict.keys() - expected - ignored
        if missing or unknown:
            raise ValueError(
                f"`state_dict` must have the keys {sorted(expected)}, got missing "
                f"{sorted(missing)} and unknown {sorted(unknown)}"
            )
        n_groups = len(self.optimizer.param_groups)
        for key in ("base_lrs", "_last_lr"):
            if len(state_dict[key]) != n_groups:
                raise ValueError(
                    f"`state_dict['{key}']` must have {n_groups} entries (one per "
                    f"param group), got {len(state_dict[key])}"
                )
        self._validate(*(state_dict[name] for name in self._hyperparameters))
        for name in self._hyperparameters:
            setattr(self, name, state_dict[name])
        self.base_lrs = list(state_dict["base_lrs"])
        self.last_epoch = int(state_dict["last_epoch"])
        self._step_count = int(state_dict["_step_count"])
        self._last_lr = list(state_dict["_last_lr"])

    def _validate(self, *hyperparameters: Any) -> None:
        """Raise on invalid hyperparameters, given in `_hyperparameters` order."""


class StepLR(LRScheduler):
    """Multiply the learning rates by ``gamma`` every ``step_size`` epochs.

    The rate of epoch ``e`` is ``base_lr * gamma ** (e // step_size)``, computed
    as PyTorch does, by multiplying the group's current ``'lr'``.

    Parameters
    ----------
    optimizer : Optimizer
        The optimizer to schedule.
    step_size : int
        Period of the decay, in epochs, >= 1.
    gamma : float, default 0.1
        Multiplicative factor of the decay.
    last_epoch : int, default -1
        See `LRScheduler`.

    Raises
    ------
    TypeError
        If ``step_size`` is not an int or ``gamma`` not a number, or see
        `LRScheduler`.
    ValueError
        If ``step_size`` < 1, or see `LRScheduler`.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnumpy.nn.parameter import Parameter
    >>> from cnnumpy.optim import SGD
    >>> opt = SGD([Parameter(np.zeros(1))], lr=1.0)
    >>> sched = StepLR(opt, step_size=2, gamma=0.5)
    >>> for _ in range(4):
    ...     opt.step()
    ...     sched.step()
    >>> sched.get_last_lr()
    [0.25]
    """

    _hyperparameters = ("step_size", "gamma")

    def __init__(
        self,
        optimizer: Optimizer,
        step_size: int,
        gamma: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        self._validate(step_size, gamma)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _validate(self, step_size: Any, gamma: Any) -> None:
        check_int(step_size, "step_size", minimum=1)
        check_real(gamma, "gamma")

    def get_lr(self) -> list[float]:
        """The rates for ``last_epoch``, from the groups' current rates."""
        groups = self.optimizer.param_groups
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [group["lr"] for group in groups]
        return [group["lr"] * self.gamma for group in groups]

    def _get_closed_form_lr(self) -> list[float]:
        return [
            base_lr * self.gamma ** (self.last_epoch // self.step_size)
            for base_lr in self.base_lrs
        ]


class CosineAnnealingLR(LRScheduler):
    """Anneal the learning rates along a cosine, from base_lr to ``eta_min``.

    The rate of epoch ``e`` is::

        eta_min + (base_lr - eta_min) * (1 + cos(pi * e / T_max)) / 2

    which reaches ``eta_min`` at ``T_max`` and then climbs back (period
    ``2 * T_max``). As in PyTorch it is computed recursively from the groups'
    current rates, so a rate changed by hand is annealed from where it is.

    Parameters
    ----------
    optimizer : Optimizer
        The optimizer to schedule.
    T_max : int
        Number of epochs of a half period, >= 1.
    eta_min : float, default 0.0
        The minimum learning rate.
    last_epoch : int, default -1
        See `LRScheduler`.

    Raises
    ------
    TypeError
        If ``T_max`` is not an int or ``eta_min`` not a number, or see
        `LRScheduler`.
    ValueError
        If ``T_max`` < 1, or see `LRScheduler`.
    """

    _hyperparameters = ("T_max", "eta_min")

    def __init__(
        self,
        optimizer: Optimizer,
        T_max: int,
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        self._validate(T_max, eta_min)
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def _validate(self, T_max: Any, eta_min: Any) -> None:
        check_int(T_max, "T_max", minimum=1)
        check_real(eta_min, "eta_min")

    def get_lr(self) -> list[float]:
        """The rates for ``last_epoch``, from the groups' current rates."""
        groups = self.optimizer.param_groups
        epoch, T_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return [group["lr"] for group in groups]
        if (epoch - 1 - T_max) % (2 * T_max) == 0:
            # The previous rate was eta_min, where the ratio below is 0 / 0.
            return [
                group["lr"] + (base_lr - eta_min) * (1 - math.cos(math.pi / T_max)) / 2
                for base_lr, group in zip(self.base_lrs, groups, strict=True)
            ]
        return [
            (1 + math.cos(math.pi * epoch / T_max))
            / (1 + math.cos(math.pi * (epoch - 1) / T_max))
            * (group["lr"] - eta_min)
            + eta_min
            for group in groups
        ]

    def _get_closed_form_lr(self) -> list[float]:
        epoch, T_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        return [
            eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * epoch / T_max)) / 2
            for base_lr in self.base_lrs
        ]
