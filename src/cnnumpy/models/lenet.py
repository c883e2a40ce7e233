"""LeNet-5 as in the seed of this project, and a modern variant.

Both keep LeNet-5's shape: two 5x5 convolutions (6 and 16 filters), each
followed by a nonlinearity and 2x2 pooling, then three linear layers
(400-120-84-10 on 28x28 input). The classic one uses tanh and average pooling;
the modern one ReLU and max pooling, which train faster from the same start.

Layers are named as a PyTorch user would write them (``conv1``, ``pool1``,
``fc1`` ...), so state_dict keys read ``conv1.weight``, ``fc3.bias``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from cnnumpy import nn
from cnnumpy.nn.impl import check_impl
from cnnumpy.nn.init import resolve_rng
from cnnumpy.validation import check_dtype, check_int

__all__ = ["flat_features", "lenet5", "lenet5_modern", "parameter_shapes"]


def flat_features(input_size: int) -> int:
    """Number of features after LeNet-5's second pooling, for square input.

    conv1 (padding 2) keeps the size, each 2x2 pool halves it (floor), conv2
    (5x5, no padding) takes 4 away: ``16 * (((s // 2) - 4) // 2) ** 2``.

    >>> flat_features(28)
    400
    """
    side = (input_size // 2 - 4) // 2
    if side < 1:
        raise ValueError(
            f"`input_size` must be at least 12 pixels for LeNet-5, got {input_size}"
        )
    return 16 * side * side


def parameter_shapes(
    num_classes: int = 10, in_channels: int = 1, input_size: int = 28
) -> dict[str, tuple[int, ...]]:
    """The state_dict shapes of LeNet-5 (either variant), computed, not built.

    A checkpoint's weights are checked against them before a model is built,
    so that a config asking for a huge model allocates nothing.
    """
    num_classes = check_int(num_classes, "num_classes", minimum=1)
    in_channels = check_int(in_channels, "in_channels", minimum=1)
    features = flat_features(check_int(input_size, "input_size", minimum=1))
    return {
        "conv1.weight": (6, in_channels, 5, 5),
        "conv1.bias": (6,),
        "conv2.weight": (16, 6, 5, 5),
        "conv2.bias": (16,),
        "fc1.weight": (120, features),
        "fc1.bias": (120,),
        "fc2.weight": (84, 120),
        "fc2.bias": (84,),
        "fc3.weight": (num_classes, 84),
        "fc3.bias": (num_classes,),
    }


def _lenet(
    activation: Callable[[], nn.Module],
    pool: Callable[..., nn.Module],
    num_classes: int,
    in_channels: int,
    input_size: int,
    rng: np.random.Generator | None,
    dtype: object,
    impl: str,
) -> nn.Sequential:
    num_classes = check_int(num_classes, "num_classes", minimum=1)
    in_channels = check_int(in_channels, "in_channels", minimum=1)
    features = flat_features(check_int(input_size, "input_size", minimum=1))
    check_impl(impl)
    dtype = check_dtype(dtype)
    rng = resolve_rng(rng)
    # Every activation follows a Conv2d or Linear, which keep their input, not
    # their output: it may overwrite that output in place, saving a new array
    # per layer and the page faults of filling it.
    layers = OrderedDict(
        conv1=nn.Conv2d(in_channels, 6, 5, padding=2, rng=rng, dtype=dtype, impl=impl),
        act1=activation(inplace=True),
        pool1=pool(2, impl=impl),
        conv2=nn.Conv2d(6, 16, 5, rng=rng, dtype=dtype, impl=impl),
        act2=activation(inplace=True),
        pool2=pool(2, impl=impl),
        flatten=nn.Flatten(),
        fc1=nn.Linear(features, 120, rng=rng, dtype=dtype),
        act3=activation(inplace=True),
        fc2=nn.Linear(120, 84, rng=rng, dtype=dtype),
        act4=activation(inplace=True),
        fc3=nn.Linear(84, num_classes, rng=rng, dtype=dtype),
    )
    return nn.Sequential(layers)


def lenet5(
    num_classes: int = 10,
    in_channels: int = 1,
    input_size: int = 28,
    *,
    rng: np.random.Generator | None = None,
    dtype: object = np.float32,
    impl: str = "im2col",
) -> nn.Sequential:
    """LeNet-5 as in the seed: tanh and average pooling.

    conv 6@5x5 (padding 2) - tanh - avgpool 2 - conv 16@5x5 - tanh - avgpool 2 -
    flatten - linear 400-120 - tanh - linear 120-84 - tanh - linear 84-10.

    Parameters
    ----------
    num_classes : int
        Outputs of the last layer (logits).
    in_channels : int
        Channels of the input images (1 for MNIST).
    input_size : int
        Height and width of the (square) input images.
    rng : numpy.random.Generator, optional
        Source of the initial weights (PyTorch's init); pass one for
        reproducible models.
    dtype : float32 or float64
    impl : {'im2col', 'naive'}
        Engine of the convolutions and pools: the fast im2col one or the
        nested-loop reference (same results, much slower).

    Returns
    -------
    nn.Sequential
        With children ``conv1, act1, pool1, conv2, act2, pool2, flatten, fc1,
        act3, fc2, act4, fc3``.

    Examples
    --------
    >>> model = lenet5(rng=np.random.default_rng(0))
    >>> model(np.zeros((2, 1, 28, 28), np.float32)).shape
    (2, 10)
    >>> sum(p.data.size for p in model.parameters())
    61706
    """
    return _lenet(
        nn.Tanh, nn.AvgPool2d, num_classes, in_channels, input_size, rng, dtype, impl
    )


def lenet5_modern(
    num_classes: int = 10,
    in_channels: int = 1,
    input_size: int = 28,
    *,
    rng: np.random.Generator | None = None,
    dtype: object = np.float32,
    impl: str = "im2col",
) -> nn.Sequential:
    """LeNet-5 with ReLU and max pooling; same layers and sizes as `lenet5`.

    Parameters are those of `lenet5`.

    Examples
    --------
    >>> model = lenet5_modern(rng=np.random.default_rng(0))
    >>> [type(m).__name__ for m in model][:3]
    ['Conv2d', 'ReLU', 'MaxPool2d']
    """
    return _lenet(
        nn.ReLU, nn.MaxPool2d, num_classes, in_channels, input_size, rng, dtype, impl
    )
