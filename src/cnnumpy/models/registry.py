"""Models by name, for the command line and for checkpoints.

A checkpoint stores a model's name and config (``{'num_classes': 10, ...}``);
`create_model` rebuilds the same architecture from them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cnnumpy import nn
from cnnumpy.models import lenet
from cnnumpy.models.lenet import lenet5, lenet5_modern
from cnnumpy.validation import check_choice

__all__ = ["MODELS", "SHAPES", "create_model"]

MODELS: dict[str, Callable[..., nn.Sequential]] = {
    "lenet5": lenet5,
    "lenet5-modern": lenet5_modern,
}
# The state_dict shapes of each model for its config, computed without building
# it (checkpoints are checked against them before anything is allocated).
SHAPES: dict[str, Callable[..., dict[str, tuple[int, ...]]]] = {
    "lenet5": lenet.parameter_shapes,
    "lenet5-modern": lenet.parameter_shapes,
}


def create_model(name: str, **config: Any) -> nn.Sequential:
    """Build the model registered as ``name`` with keyword arguments ``config``.

    Parameters
    ----------
    name : str
        One of ``MODELS``: ``'lenet5'`` (tanh, average pooling, as in the seed)
        or ``'lenet5-modern'`` (ReLU, max pooling).
    **config
        Passed to the model function: ``num_classes``, ``in_channels``,
        ``input_size``, ``rng``, ``dtype``, ``impl``.

    Raises
    ------
    ValueError
        If ``name`` is not registered, or a config value is out of range.
    TypeError
        If a config key is unknown or a value has the wrong type.

    Examples
    --------
    >>> import numpy as np
    >>> create_model("lenet5", num_classes=26, rng=np.random.default_rng(0)).fc3
    Linear(in_features=84, out_features=26, bias=True)
    """
    check_choice(name, "name", tuple(MODELS))
    try:
        return MODELS[name](**config)
    except TypeError as err:
        if "unexpected keyword" in str(err):
            raise TypeError(f"model {name!r}: {err}") from None
        raise
