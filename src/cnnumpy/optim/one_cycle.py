"""The 1cycle policy, as torch.optim.lr_scheduler.OneCycleLR."""

from __future__ import annotations

import math
from typing import Any

from cnnumpy.optim.lr_scheduler import LRScheduler
from cnnumpy.optim.optimizer import Optimizer
from cnnumpy.validation import (
    check_bool,
    check_choice,
    check_instance,
    check_int,
    check_real,
)


def _phases(total_steps: int, pct_start: float, three_phase: bool) -> list[dict]:
    """PyTorch's schedule phases: where each ends and the group keys it joins.

    The momentum keys are kept so that the state dict is PyTorch's, although
    the momentum is not cycled here.
    """

    def phase(end_step: float, lr: tuple[str, str], momentum: tuple[str, str]):
        return {
            "end_step": end_step,
            "start_lr": lr[0],
            "end_lr": lr[1],
            "start_momentum": momentum[0],
            "end_momentum": momentum[1],
        }

    up = phase(
        float(pct_start * total_steps) - 1,
        ("initial_lr", "max_lr"),
        ("max_momentum", "base_momentum"),
    )
    if three_phase:
        return [
            up,
            phase(
                float(2 * pct_start * total_steps) - 2,
                ("max_lr", "initial_lr"),
                ("base_momentum", "max_momentum"),
            ),
            phase(
                total_steps - 1,
                ("initial_lr", "min_lr"),
                ("max_momentum", "max_momentum"),
            ),
        ]
    down = phase(
        total_steps - 1, ("max_lr", "min_lr"), ("base_momentum", "max_momentum")
    )
    return [up, down]


def _per_group(value: Any, name: str, n_groups: int) -> list[float]:
    """A number for each param group, from one number or a list of them."""
    if isinstance(value, (list, tuple)):
        if len(value) != n_groups:
            raise ValueError(
                f"`{name}` must have {n_groups} entries (one per param group), "
                f"got {len(value)}"
            )
        return [check_real(v, f"{name}[{i}]") for i, v in enumerate(value)]
    return [check_real(value, name)] * n_groups


class OneCycleLR(LRScheduler):
    """Smith's 1cycle policy: warm up to ``max_lr``, then anneal far below.

    The rate starts at ``max_lr / div_factor``, rises to ``max_lr`` over the
    first ``pct_start`` of the steps, then falls to ``max_lr / div_factor /
    final_div_factor`` at the last step (with ``three_phase``, it first falls
    back to the start, symmetrically, then to the minimum). Step it once per
    batch, ``total_steps`` times at most. The group keys ``'initial_lr'``,
    ``'max_lr'`` and ``'min_lr'`` are set as in PyTorch.

    With ``cycle_momentum`` the momentum moves the other way, from
    ``max_momentum`` down to ``base_momentum`` while the rate rises, and back:
    SGD's ``'momentum'`` or Adam's first beta (so a plain SGD gets momentum,
    0.95 at the start, as in PyTorch).

    Parameters
    ----------
    optimizer : Optimizer
        The optimizer to schedule.
    max_lr : float or list of float
        The peak rate, or one per param group.
    total_steps : int, optional
        Steps in the cycle; if None, ``epochs * steps_per_epoch``.
    epochs, steps_per_epoch : int, optional
        Used when ``total_steps`` is None; both needed then.
    pct_start : float, default 0.3
        Fraction of the steps spent rising, in [0, 1].
    anneal_strategy : {'cos', 'linear'}, default 'cos'
    cycle_momentum : bool, default True
        Cycle the momentum (SGD) or the first beta (Adam, AdamW).
    base_momentum, max_momentum : float or list of float, default 0.85, 0.95
        The momentum's low and high ends, or one per param group.
    div_factor : float, default 25.0
        ``initial_lr = max_lr / div_factor``, > 0.
    final_div_factor : float, default 1e4
        ``min_lr = initial_lr / final_div_factor``, > 0.
    three_phase : bool, default False
    last_epoch : int, default -1
        The number of steps taken; see `LRScheduler`.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If neither ``total_steps`` nor both ``epochs`` and ``steps_per_epoch``
        are given, a value is out of range, a list has not one entry per
        group, or on a step past ``total_steps``.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnumpy.nn.parameter import Parameter
    >>> from cnnumpy.optim import SGD
    >>> opt = SGD([Parameter(np.zeros(1))], lr=0.1)
    >>> sched = OneCycleLR(opt, max_lr=1.0, total_steps=10, anneal_strategy="linear")
    >>> sched.get_last_lr()
    [0.04]
    """

    _hyperparameters = (
        "total_steps",
        "_anneal_func_type",
        "_schedule_phases",
        "cycle_momentum",
    )
    # Which of momentum and betas is cycled follows from the optimizer.
    _ignored_keys = LRScheduler._ignored_keys | {"use_beta1"}

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | list[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.85,
        max_momentum: float | list[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        check_instance(optimizer, "optimizer", Optimizer, "an Optimizer")
        if total_steps is not None:
            total_steps = check_int(total_steps, "total_steps", minimum=1)
        if epochs is not None:
            epochs = check_int(epochs, "epochs", minimum=1)
        if steps_per_epoch is not None:
            steps_per_epoch = check_int(steps_per_epoch, "steps_per_epoch", minimum=1)
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError(
                    "`total_steps` or both `epochs` and `steps_per_epoch` must be "
                    f"given, got epochs={epochs} and steps_per_epoch={steps_per_epoch}"
                )
            total_steps = epochs * steps_per_epoch
        pct_start = check_real(pct_start, "pct_start", minimum=0.0, maximum=1.0)
        check_choice(anneal_strategy, "anneal_strategy", ("cos", "linear"))
        div_factor = check_real(div_factor, "div_factor", above=0.0)
        final_div_factor = check_real(final_div_factor, "final_div_factor", above=0.0)
        three_phase = check_bool(three_phase, "three_phase")
        cycle_momentum = check_bool(cycle_momentum, "cycle_momentum")
        groups = optimizer.param_groups
        max_lrs = _per_group(max_lr, "max_lr", len(groups))
        base_momentums = _per_group(base_momentum, "base_momentum", len(groups))
        max_momentums = _per_group(max_momentum, "max_momentum", len(groups))
        self.use_beta1 = "betas" in optimizer.defaults
        if (
            cycle_momentum
            and not self.use_beta1
            and "momentum" not in optimizer.defaults
        ):
            raise ValueError(
                "`cycle_momentum` needs an optimizer with momentum or betas, got "
                f"{type(optimizer).__name__}"
            )
        self.total_steps = total_steps
        self._anneal_func_type = anneal_strategy
        self._schedule_phases = _phases(total_steps, pct_start, three_phase)
        self.cycle_momentum = cycle_momentum
        if check_int(last_epoch, "last_epoch", minimum=-1) == -1:
            for i, group in enumerate(groups):
                group["initial_lr"] = max_lrs[i] / div_factor
                group["max_lr"] = max_lrs[i]
                group["min_lr"] = group["initial_lr"] / final_div_factor
                if cycle_momentum:
                    self._set_momentum(group, max_momentums[i])
                    group["max_momentum"] = max_momentums[i]
                    group["base_momentum"] = base_momentums[i]
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group: dict[str, Any], momentum: float) -> None:
        if self.use_beta1:
            group["betas"] = (momentum, *group["betas"][1:])
        else:
            group["momentum"] = momentum

    def _validate(
        self,
        total_steps: Any,
        anneal_func_type: Any,
        schedule_phases: Any,
        cycle_momentum: Any,
    ) -> None:
        check_bool(cycle_momentum, "cycle_momentum")
        check_int(total_steps, "total_steps", minimum=1)
        check_choice(anneal_func_type, "anneal_strategy", ("cos", "linear"))
        if not isinstance(schedule_phases, list) or not all(
            isinstance(p, dict) and {"end_step", "start_lr", "end_lr"} <= p.keys()
            for p in schedule_phases
        ):
            raise ValueError(
                "`_schedule_phases` must be a list of dicts with 'end_step', "
                f"'start_lr' and 'end_lr', got {schedule_phases!r}"
            )

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        """The rates for ``last_epoch``, from the groups' ends of each phase."""
        step_num = self.last_epoch
        if step_num > self.total_steps:
            raise ValueError(
                f"OneCycleLR was stepped {step_num} times, more than its "
                f"`total_steps` (={self.total_steps})"
            )
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            last = len(self._schedule_phases) - 1
            for i, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step_num <= end_step or i == last:
                    pct = (step_num - start_step) / (end_step - start_step)
                    lrs.append(
                        self._anneal(
                            group[phase["start_lr"]], group[phase["end_lr"]], pct
                        )
                    )
                    if self.cycle_momentum:
                        start, end = phase["start_momentum"], phase["end_momentum"]
                        momentum = self._anneal(group[start], group[end], pct)
                        self._set_momentum(group, momentum)
                    break
                start_step = phase["end_step"]
        return lrs
