"""Adam and AdamW, as torch.optim.Adam and torch.optim.AdamW."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import numpy as np

from cnnumpy.nn.parameter import Parameter
from cnnumpy.optim.optimizer import Optimizer
from cnnumpy.validation import check_bool, check_instance, check_real


class Adam(Optimizer):
    """Adam, with optional AMSGrad and L2 or decoupled weight decay.

    The update of ``torch.optim.Adam``, at step ``t`` with ``g`` the gradient
    (negated when ``maximize``)::

        p = p * (1 - lr * weight_decay)          (decoupled weight decay)
        g = g + weight_decay * p                 (otherwise)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        v_max = max(v_max, v)                    (amsgrad; v_max replaces v)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Parameters
    ----------
    params : iterable of Parameter or iterable of dict
        Parameters or parameter groups, see `Optimizer`.
    lr : float, default 1e-3
        Learning rate, >= 0.
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the first and second moment averages, each in [0, 1).
    eps : float, default 1e-8
        Added to the denominator, >= 0.
    weight_decay : float, default 0
        Weight decay, >= 0.
    amsgrad : bool, default False
        Normalize by the running maximum of the second moment.
    maximize : bool, default False
        Ascend the objective instead of descending it. Keyword only.
    decoupled_weight_decay : bool, default False
        Shrink the weights directly (AdamW) instead of adding an L2 term to
        the gradient. Keyword only.

    Raises
    ------
    TypeError
        If a hyperparameter has the wrong type, or see `Optimizer`.
    ValueError
        If ``lr``, ``eps`` or ``weight_decay`` is negative, ``betas`` is not
        a pair, or a beta is outside [0, 1).

    Notes
    -----
    The state of a parameter is ``'step'`` (a float, as PyTorch keeps it),
    ``'exp_avg'``, ``'exp_avg_sq'`` and, with amsgrad, ``'max_exp_avg_sq'``.
    Everything is computed in place in the parameter's dtype.
    """

    _scalar_state_keys: ClassVar[frozenset[str]] = frozenset({"step"})

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Sequence[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        betas = check_instance(
            group["betas"], "betas", (tuple, list), "a pair of floats"
        )
        if len(betas) != 2:
            raise ValueError(f"`betas` must be a pair, got {len(betas)} values")
        group["betas"] = tuple(betas)
        for i, beta in enumerate(betas):
            check_real(beta, f"betas[{i}]", minimum=0, below=1)
        check_real(group["eps"], "eps", minimum=0)
        check_real(group["weight_decay"], "weight_decay", minimum=0)
        check_bool(group["amsgrad"], "amsgrad")
        check_bool(group["maximize"], "maximize")
        check_bool(group["decoupled_weight_decay"], "decoupled_weight_decay")

    def _update(
        self,
        p: Parameter,
        grad: np.ndarray,
        state: dict[str, Any],
        group: dict[str, Any],
    ) -> None:
        """One Adam step of ``p``, following torch's single-tensor kernel."""
        # Python floats: NumPy scalars would promote float32 arrays.
        lr = float(group["lr"])
        beta1, beta2 = (float(b) for b in group["betas"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        amsgrad = group["amsgrad"]
        data = p.data

        if not state:
            state["step"] = 0.0
            state["exp_avg"] = np.zeros_like(data)
            state["exp_avg_sq"] = np.zeros_like(data)
        if amsgrad and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = np.zeros_like(data)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        state["step"] += 1
        step = state["step"]

        g = grad
        decoupled = group["decoupled_weight_decay"]
        if weight_decay != 0 and decoupled:
            data *= 1 - lr * weight_decay
        # maximize negates the gradient in both kinds of weight decay.
        if weight_decay != 0 and not decoupled:
            # weight_decay * p - grad is bit for bit -grad + weight_decay * p
            g = np.multiply(data, weight_decay, out=self._scratch(data, 1))
            if group["maximize"]:
                g -= grad
            else:
                g += grad
        elif group["maximize"]:
            g = np.negative(grad, out=self._scratch(data, 1))

        tmp = self._scratch(data, 0)
        # exp_avg.lerp_(g, 1 - beta1), with torch's two branches for accuracy.
        weight = 1 - beta1
        np.subtract(g, exp_avg, out=tmp)
        if weight < 0.5:
            tmp *= weight
            exp_avg += tmp
        else:
            tmp *= 1 - weight
            np.subtract(g, tmp, out=exp_avg)
        exp_avg_sq *= beta2
        np.multiply(g, 1 - beta2, out=tmp)
        tmp *= g
        exp_avg_sq += tmp

        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        step_size = lr / bias_correction1

        if amsgrad:
            np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            second_moment = state["max_exp_avg_sq"]
        else:
            second_moment = exp_avg_sq
        denom = np.sqrt(second_moment, out=tmp)
        denom /= bias_correction2_sqrt
        denom += eps
        # addcdiv_(exp_avg, denom, value=-step_size) rounds (value * exp_avg) / denom;
        # the grad in scratch slot 1 is no longer needed.
        update = np.multiply(exp_avg, -step_size, out=self._scratch(data, 1))
        update /= denom
        data += update


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    Exactly `Adam` with ``decoupled_weight_decay=True``: each step first
    shrinks the weights, ``p *= 1 - lr * weight_decay``, instead of adding
    ``weight_decay * p`` to the gradient.

    Parameters
    ----------
    params : iterable of Parameter or iterable of dict
        Parameters or parameter groups, see `Optimizer`.
    lr : float, default 1e-3
        Learning rate, >= 0.
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the moment averages, each in [0, 1).
    eps : float, default 1e-8
        Added to the denominator, >= 0.
    weight_decay : float, default 1e-2
        Decoupled weight decay, >= 0.
    amsgrad : bool, default False
        Normalize by the running maximum of the second moment.
    maximize : bool, default False
        Ascend the objective instead of descending it. Keyword only.

    Raises
    ------
    TypeError, ValueError
        As `Adam`.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Sequence[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )

    def _validate_group(self, group: dict[str, Any]) -> None:
        # AdamW stays decoupled whatever a loaded state dict says, as in torch.
        group["decoupled_weight_decay"] = True
        super()._validate_group(group)
