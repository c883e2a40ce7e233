"""A small VGG-style network with batch norm, for 28x28 and 32x32 images.

Three stages of two 3x3 convolutions (32, 64 and 128 channels), each
convolution followed by batch norm and ReLU, each stage by 2x2 max pooling;
then global average pooling and one linear layer. Convolutions have no bias:
the batch norm after each supplies it.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from cnnumpy import nn
from cnnumpy.nn.impl import check_impl
from cnnumpy.nn.init import resolve_rng
from cnnumpy.validation import check_dtype, check_int

__all__ = ["vgg_bn", "vgg_bn_parameter_shapes"]

_WIDTHS = (32, 32, 64, 64, 128, 128)
# features.<index> of each convolution; its BatchNorm2d is the next index.
_CONV_INDEX = (0, 3, 7, 10, 14, 17)


def _check_size(input_size: object) -> int:
    input_size = check_int(input_size, "input_size", minimum=1)
    if input_size < 8:
        raise ValueError(
            f"`input_size` must be at least 8 pixels for vgg_bn's three 2x2 "
            f"poolings, got {input_size}"
        )
    return input_size


def vgg_bn_parameter_shapes(
    num_classes: int = 10, in_channels: int = 1, input_size: int = 28
) -> dict[str, tuple[int, ...]]:
    """The state_dict shapes (buffers included) of `vgg_bn`, not built."""
    num_classes = check_int(num_classes, "num_classes", minimum=1)
    cin = check_int(in_channels, "in_channels", minimum=1)
    _check_size(input_size)
    shapes: dict[str, tuple[int, ...]] = {}
    for index, width in zip(_CONV_INDEX, _WIDTHS, strict=True):
        shapes[f"features.{index}.weight"] = (width, cin, 3, 3)
        bn = f"features.{index + 1}"
        for key in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{bn}.{key}"] = (width,)
        shapes[f"{bn}.num_batches_tracked"] = ()
        cin = width
    shapes["classifier.weight"] = (num_classes, cin)
    shapes["classifier.bias"] = (num_classes,)
    return shapes


def vgg_bn(
    num_classes: int = 10,
    in_channels: int = 1,
    input_size: int = 28,
    *,
    rng: np.random.Generator | None = None,
    dtype: object = np.float32,
    impl: str = "im2col",
) -> nn.Sequential:
    """A VGG-style network with batch norm: (2 conv-BN-ReLU, max pool) x 3.

    Parameters
    ----------
    num_classes : int
        Outputs of the last layer (logits).
    in_channels : int
        Channels of the input images (1 for MNIST, 3 for CIFAR-10).
    input_size : int
        Height and width of the (square) input images, >= 8.
    rng : numpy.random.Generator, optional
        Source of the initial weights (PyTorch's init).
    dtype : float32 or float64
    impl : {'im2col', 'naive'}
        Engine of the convolutions and pools.

    Returns
    -------
    nn.Sequential
        With children ``features`` (a Sequential of 21 layers), ``avgpool``,
        ``flatten``, ``classifier``.

    Shape
    -----
    Input (N, in_channels, S, S), output (N, num_classes); the stages see S,
    S // 2 and S // 4 pixels a side.

    Examples
    --------
    >>> model = vgg_bn(in_channels=3, input_size=32, rng=np.random.default_rng(0))
    >>> model(np.zeros((2, 3, 32, 32), np.float32)).shape
    (2, 10)
    """
    shapes = vgg_bn_parameter_shapes(num_classes, in_channels, input_size)
    check_impl(impl)
    dtype = check_dtype(dtype)
    rng = resolve_rng(rng)
    features: list[nn.Module] = []
    cin = in_channels
    for i, width in enumerate(_WIDTHS):
        features += [
            nn.Conv2d(
                cin, width, 3, padding=1, bias=False, dtype=dtype, rng=rng, impl=impl
            ),
            nn.BatchNorm2d(width, dtype=dtype),
            nn.ReLU(),
        ]
        if i % 2 == 1:
            features.append(nn.MaxPool2d(2, impl=impl))
        cin = width
    layers = OrderedDict(
        features=nn.Sequential(*features),
        avgpool=nn.AdaptiveAvgPool2d(1),
        flatten=nn.Flatten(),
        classifier=nn.Linear(cin, shapes["classifier.weight"][0], rng=rng, dtype=dtype),
    )
    return nn.Sequential(layers)
