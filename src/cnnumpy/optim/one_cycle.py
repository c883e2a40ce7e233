"""The 1cycle policy, as torch.optim.lr_scheduler.OneCycleLR (learning rate only)."""

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


class OneCycleLR(LRScheduler):
    """Smith's 1cycle policy: warm up to ``max_lr``, then anneal far below.

    The rate starts at ``max_lr / div_factor``, rises to ``max_lr`` over the
    first ``pct_start`` of the steps, then falls to ``max_lr / div_factor /
    final_div_factor`` at the last step (with ``three_phase``, it first falls
    back to the start, symmetrically, then to the minimum). Step it once per
    batch, ``total_steps`` times at most. The group keys ``'initial_lr'``,
    ``'max_lr'`` and ``'min_lr'`` are set as in PyTorch.

    PyTorch's momentum cycling (``cycle_momentum``, ``base_momentum``,
    ``max_momentum``) is left out: the momentum and betas stay as set; compare
    with PyTorch's ``cycle_momentum=False``.

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
        are given, a value is out of range, ``max_lr`` has not one entry per
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

    _hyperparameters = ("total_steps", "_anneal_func_type", "_schedule_phases")
    _ignored_keys = LRScheduler._ignored_keys | {"cycle_momentum", "use_beta1"}

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | list[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
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
        groups = optimizer.param_groups
        if isinstance(max_lr, (list, tuple)):
            if len(max_lr) != len(groups):
                raise ValueError(
                    f"`max_lr` must have {len(groups)} entries (one per param "
                    f"group), got {len(max_lr)}"
                )
            max_lrs = [check_real(v, f"max_lr[{i}]") for i, v in enumerate(max_lr)]
        else:
            max_lrs = [check_real(max_lr, "max_lr")] * len(groups)
        self.total_steps = total_steps
        self._anneal_func_type = anneal_strategy
        self._schedule_phases = _phases(total_steps, pct_start, three_phase)
        if check_int(last_epoch, "last_epoch", minimum=-1) == -1:
            for group, peak in zip(groups, max_lrs, strict=True):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
        super().__init__(optimizer, last_epoch)

    def _validate(
        self, total_steps: Any, anneal_func_type: Any, schedule_phases: Any
    ) -> None:
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
                    break
                start_step = phase["end_step"]
        return lrs
