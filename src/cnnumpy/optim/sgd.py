"""Stochastic gradient descent, with momentum and Nesterov, as torch.optim.SGD."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from cnnumpy.nn.parameter import Parameter
from cnnumpy.optim.optimizer import Optimizer
from cnnumpy.validation import check_bool, check_real


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    The update of ``torch.optim.SGD``, with ``g`` the gradient (negated when
    ``maximize``)::

        g = g + weight_decay * p
        b = g                                  (first step)
        b = momentum * b + (1 - dampening) * g (later steps)
        g = g + momentum * b if nesterov else b
        p = p - lr * g

    Parameters
    ----------
    params : iterable of Parameter or iterable of dict
        Parameters or parameter groups, see `Optimizer`.
    lr : float, default 1e-3
        Learning rate, >= 0.
    momentum : float, default 0
        Momentum factor, >= 0.
    dampening : float, default 0
        Dampening of the momentum, applied from the second step on.
    weight_decay : float, default 0
        L2 penalty added to the gradient, >= 0.
    nesterov : bool, default False
        Use Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``.
    maximize : bool, default False
        Ascend the objective instead of descending it. Keyword only.

    Raises
    ------
    TypeError
        If a hyperparameter has the wrong type, or see `Optimizer`.
    ValueError
        If ``lr``, ``momentum`` or ``weight_decay`` is negative, or
        ``nesterov`` is set without momentum or with dampening.

    Notes
    -----
    The state of a parameter is ``{'momentum_buffer': ndarray}``, and exists
    only when ``momentum != 0``. Parameters whose ``grad`` is None are skipped.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnumpy.nn.parameter import Parameter
    >>> p = Parameter(np.ones(2))
    >>> opt = SGD([p], lr=0.1, momentum=0.9)
    >>> p.grad = np.array([1.0, -1.0])
    >>> opt.step()
    >>> p.data
    array([0.9, 1.1])
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        check_real(group["momentum"], "momentum", minimum=0)
        check_real(group["dampening"], "dampening")
        check_real(group["weight_decay"], "weight_decay", minimum=0)
        check_bool(group["nesterov"], "nesterov")
        check_bool(group["maximize"], "maximize")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "`nesterov=True` requires `momentum` > 0 and `dampening` == 0, got "
                f"momentum={group['momentum']}, dampening={group['dampening']}"
            )

    def _update(
        self,
        p: Parameter,
        grad: np.ndarray,
        state: dict[str, Any],
        group: dict[str, Any],
    ) -> None:
        """One SGD step of ``p``, following torch's single-tensor kernel."""
        # Python floats: NumPy scalars would promote float32 arrays.
        lr = float(group["lr"])
        momentum = float(group["momentum"])
        dampening = float(group["dampening"])
        weight_decay = float(group["weight_decay"])
        maximize = group["maximize"]
        g = grad
        if weight_decay != 0:
            # weight_decay * p - grad is bit for bit -grad + weight_decay * p
            g = np.multiply(p.data, weight_decay, out=self._scratch(p.data, 1))
            if maximize:
                g -= grad
            else:
                g += grad
        elif maximize:
            g = np.negative(grad, out=self._scratch(p.data, 1))

        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(
                    g, dtype=p.data.dtype, copy=True
                )
            else:
                buf *= momentum
                if dampening == 0:
                    buf += g
                else:
                    tmp = self._scratch(p.data, 0)
                    buf += np.multiply(g, 1 - dampening, out=tmp)
            if group["nesterov"]:
                g_new = np.multiply(buf, momentum, out=self._scratch(p.data, 0))
                g_new += g
                g = g_new
            else:
                g = buf

        p.data += np.multiply(g, -lr, out=self._scratch(p.data, 0))
