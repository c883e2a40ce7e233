"""Models by name, for the command line and for checkpoints.

A checkpoint stores a model's name and config (``{'num_classes': 10, ...}``);
`create_model` rebuilds the same architecture from them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

from cnnumpy import nn
from cnnumpy.models import lenet
from cnnumpy.models.lenet import lenet5, lenet5_modern
from cnnumpy.models.resnet import resnet8, resnet20, resnet_parameter_shapes
from cnnumpy.models.vgg import vgg_bn, vgg_bn_parameter_shapes
from cnnumpy.validation import check_choice

__all__ = ["MAX_PARAMETERS", "MODELS", "SHAPES", "create_model"]

MODELS: dict[str, Callable[..., nn.Sequential]] = {
    "lenet5": lenet5,
    "lenet5-modern": lenet5_modern,
    "resnet8": resnet8,
    "resnet20": resnet20,
    "vgg-bn": vgg_bn,
}
# The most parameters a model may have: computed from the config before any is
# allocated (LeNet-5 has 61,706; `input_size` makes its first linear layer grow
# with the square of the image side).
MAX_PARAMETERS = 2**26
_SIZE_KEYS = ("num_classes", "in_channels", "input_size")
# The state_dict shapes of each model for its config (buffers included),
# computed without building it (checkpoints are checked against them before
# anything is allocated).
SHAPES: dict[str, Callable[..., dict[str, tuple[int, ...]]]] = {
    "lenet5": lenet.parameter_shapes,
    "lenet5-modern": lenet.parameter_shapes,
    "resnet8": partial(resnet_parameter_shapes, 1),
    "resnet20": partial(resnet_parameter_shapes, 3),
    "vgg-bn": vgg_bn_parameter_shapes,
}


def create_model(name: str, **config: Any) -> nn.Sequential:
    """Build the model registered as ``name`` with keyword arguments ``config``.

    Parameters
    ----------
    name : str
        One of ``MODELS``: ``'lenet5'`` (tanh, average pooling, as in the seed),
        ``'lenet5-modern'`` (ReLU, max pooling), ``'resnet8'``, ``'resnet20'``
        (He et al.'s CIFAR ResNets) or ``'vgg-bn'`` (VGG-style, batch norm).
    **config
        Passed to the model function: ``num_classes``, ``in_channels``,
        ``input_size``, ``rng``, ``dtype``, ``impl``.

    Raises
    ------
    ValueError
        If ``name`` is not registered, a config value is out of range, or the
        model would have more than `MAX_PARAMETERS` parameters (checked before
        any is allocated).
    TypeError
        If a config key is unknown or a value has the wrong type.

    Examples
    --------
    >>> import numpy as np
    >>> create_model("lenet5", num_classes=26, rng=np.random.default_rng(0)).fc3
    Linear(in_features=84, out_features=26, bias=True)
    """
    check_choice(name, "name", tuple(MODELS))
    sizes = {k: v for k, v in config.items() if k in _SIZE_KEYS}
    try:
        shapes = SHAPES[name](**sizes)
        count = sum(math.prod(shape) for shape in shapes.values())
        if count > MAX_PARAMETERS:
            given = ", ".join(f"{k}={v}" for k, v in sizes.items())
            raise ValueError(
                f"model {name!r} with {given or 'its defaults'} would have "
                f"{count:,} parameters, more than the {MAX_PARAMETERS:,} allowed"
            )
        return MODELS[name](**config)
    except TypeError as err:
        if "unexpected keyword" in str(err):
            raise TypeError(f"model {name!r}: {err}") from None
        raise
