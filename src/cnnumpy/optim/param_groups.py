"""Parameter groups that keep weight decay off batch-norm and bias parameters."""

from __future__ import annotations

from typing import Any

from cnnumpy.nn.module import Module
from cnnumpy.validation import check_instance, check_real


def param_groups_without_decay(
    model: Module, weight_decay: float
) -> list[dict[str, Any]]:
    """Two parameter groups: weights with ``weight_decay``, the rest without.

    Decay pulls the weights of convolutions and linear layers towards zero; on
    a bias or a batch-norm scale or shift (the parameters with fewer than two
    dimensions) it only fights the normalisation, so the usual recipe (as in
    timm and torchvision's references) leaves them out. Pass the result to any
    optimizer in place of ``model.parameters()``.

    Parameters
    ----------
    model : Module
        The model whose parameters are split, in ``named_parameters`` order.
    weight_decay : float
        The decay of the first group, >= 0; the second group gets 0.0.

    Returns
    -------
    list of dict
        ``[{'params': [...], 'weight_decay': weight_decay}, {'params': [...],
        'weight_decay': 0.0}]``; a group with no parameters is left out.

    Raises
    ------
    TypeError
        If ``model`` is not a Module or ``weight_decay`` not a number.
    ValueError
        If ``weight_decay`` < 0.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnumpy import nn, optim
    >>> model = nn.Sequential(nn.Linear(3, 2, rng=np.random.default_rng(0)))
    >>> groups = param_groups_without_decay(model, 5e-4)
    >>> [(len(g["params"]), g["weight_decay"]) for g in groups]
    [(1, 0.0005), (1, 0.0)]
    >>> opt = optim.SGD(groups, lr=0.1, momentum=0.9)
    """
    check_instance(model, "model", Module, "a Module")
    weight_decay = check_real(weight_decay, "weight_decay", minimum=0.0)
    decay, no_decay = [], []
    for _, param in model.named_parameters():
        (decay if param.data.ndim >= 2 else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]
