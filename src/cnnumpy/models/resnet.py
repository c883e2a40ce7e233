"""He et al. (2016)'s CIFAR ResNets, sized from the data: resnet8 and resnet20.

A 3x3 stem of 16 channels with batch norm and ReLU, three stages of 16, 32 and
64 channels with ``n`` basic blocks each (the 2nd and 3rd stages start with
stride 2), global average pooling and one linear layer: ``6 n + 2`` weighted
layers. A basic block is ``Residual(body, shortcut)`` then ReLU, the body being
conv3x3-BN-ReLU-conv3x3-BN; the shortcut is the identity, or a 1x1 convolution
of stride 2 with batch norm where the shape changes (the paper's option B).
Convolutions have no bias: the batch norm after each supplies it.

Names follow torchvision where the structure allows (``conv1``, ``bn1``,
``layer1``, ``fc``); a block's keys read ``layer2.0.residual.body.conv1.weight``
and ``layer2.0.residual.shortcut.0.weight``.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from cnnumpy import nn
from cnnumpy.nn.impl import check_impl
from cnnumpy.nn.init import resolve_rng
from cnnumpy.validation import check_dtype, check_int

__all__ = ["resnet8", "resnet20", "resnet_parameter_shapes"]

_WIDTHS = (16, 32, 64)
_BLOCKS = {"resnet8": 1, "resnet20": 3}


def _conv_bn_shapes(prefix: str, bn: str, cin: int, cout: int, k: int) -> dict:
    return {
        f"{prefix}.weight": (cout, cin, k, k),
        f"{bn}.weight": (cout,),
        f"{bn}.bias": (cout,),
        f"{bn}.running_mean": (cout,),
        f"{bn}.running_var": (cout,),
        f"{bn}.num_batches_tracked": (),
    }


def resnet_parameter_shapes(
    blocks: int, num_classes: int = 10, in_channels: int = 1, input_size: int = 28
) -> dict[str, tuple[int, ...]]:
    """The state_dict shapes (buffers included) of a CIFAR ResNet, not built.

    ``blocks`` is the number of basic blocks per stage (1 for resnet8, 3 for
    resnet20); the other arguments are those of `resnet20`.
    """
    blocks = check_int(blocks, "blocks", minimum=1)
    num_classes = check_int(num_classes, "num_classes", minimum=1)
    in_channels = check_int(in_channels, "in_channels", minimum=1)
    check_int(input_size, "input_size", minimum=1)
    shapes = _conv_bn_shapes("conv1", "bn1", in_channels, _WIDTHS[0], 3)
    cin = _WIDTHS[0]
    for stage, width in enumerate(_WIDTHS, start=1):
        for b in range(blocks):
            res = f"layer{stage}.{b}.residual"
            shapes |= _conv_bn_shapes(
                f"{res}.body.conv1", f"{res}.body.bn1", cin, width, 3
            )
            shapes |= _conv_bn_shapes(
                f"{res}.body.conv2", f"{res}.body.bn2", width, width, 3
            )
            if cin != width:
                shapes |= _conv_bn_shapes(
                    f"{res}.shortcut.0", f"{res}.shortcut.1", cin, width, 1
                )
            cin = width
    shapes["fc.weight"] = (num_classes, cin)
    shapes["fc.bias"] = (num_classes,)
    return shapes


def _basic_block(
    cin: int,
    cout: int,
    stride: int,
    rng: np.random.Generator,
    dtype: np.dtype,
    impl: str,
) -> nn.Sequential:
    def conv(c_in: int, k: int, s: int) -> nn.Conv2d:
        return nn.Conv2d(
            c_in,
            cout,
            k,
            s,
            padding=k // 2,
            bias=False,
            dtype=dtype,
            rng=rng,
            impl=impl,
        )

    body = nn.Sequential(
        OrderedDict(
            conv1=conv(cin, 3, stride),
            bn1=nn.BatchNorm2d(cout, dtype=dtype),
            relu=nn.ReLU(),
            conv2=conv(cout, 3, 1),
            bn2=nn.BatchNorm2d(cout, dtype=dtype),
        )
    )
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = nn.Sequential(
            conv(cin, 1, stride), nn.BatchNorm2d(cout, dtype=dtype)
        )
    # The sum is a new array, so the ReLU after it may work in place.
    return nn.Sequential(
        OrderedDict(residual=nn.Residual(body, shortcut), relu=nn.ReLU(inplace=True))
    )


def _resnet(
    blocks: int,
    num_classes: int,
    in_channels: int,
    input_size: int,
    rng: np.random.Generator | None,
    dtype: object,
    impl: str,
) -> nn.Sequential:
    shapes = resnet_parameter_shapes(blocks, num_classes, in_channels, input_size)
    check_impl(impl)
    dtype = check_dtype(dtype)
    rng = resolve_rng(rng)
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        conv1=nn.Conv2d(
            in_channels,
            _WIDTHS[0],
            3,
            padding=1,
            bias=False,
            dtype=dtype,
            rng=rng,
            impl=impl,
        ),
        bn1=nn.BatchNorm2d(_WIDTHS[0], dtype=dtype),
        relu=nn.ReLU(),
    )
    cin = _WIDTHS[0]
    for stage, width in enumerate(_WIDTHS, start=1):
        stack = []
        for b in range(blocks):
            stride = 2 if stage > 1 and b == 0 else 1
            stack.append(_basic_block(cin, width, stride, rng, dtype, impl))
            cin = width
        layers[f"layer{stage}"] = nn.Sequential(*stack)
    layers["avgpool"] = nn.AdaptiveAvgPool2d(1)
    layers["flatten"] = nn.Flatten()
    layers["fc"] = nn.Linear(cin, shapes["fc.weight"][0], rng=rng, dtype=dtype)
    return nn.Sequential(layers)


def resnet8(
    num_classes: int = 10,
    in_channels: int = 1,
    input_size: int = 28,
    *,
    rng: np.random.Generator | None = None,
    dtype: object = np.float32,
    impl: str = "im2col",
) -> nn.Sequential:
    """The CIFAR ResNet with one basic block per stage (8 weighted layers).

    Parameters are those of `resnet20`.

    Examples
    --------
    >>> model = resnet8(rng=np.random.default_rng(0))
    >>> model(np.zeros((2, 1, 28, 28), np.float32)).shape
    (2, 10)
    """
    return _resnet(1, num_classes, in_channels, input_size, rng, dtype, impl)


def resnet20(
    num_classes: int = 10,
    in_channels: int = 1,
    input_size: int = 28,
    *,
    rng: np.random.Generator | None = None,
    dtype: object = np.float32,
    impl: str = "im2col",
) -> nn.Sequential:
    """He et al. (2016)'s ResNet-20 for CIFAR: three basic blocks per stage.

    Parameters
    ----------
    num_classes : int
        Outputs of the last layer (logits).
    in_channels : int
        Channels of the input images (1 for MNIST, 3 for CIFAR-10).
    input_size : int
        Height and width of the (square) input images; any size >= 1 works,
        global average pooling making the head independent of it.
    rng : numpy.random.Generator, optional
        Source of the initial weights (PyTorch's init).
    dtype : float32 or float64
    impl : {'im2col', 'naive'}
        Engine of the convolutions.

    Returns
    -------
    nn.Sequential
        With children ``conv1, bn1, relu, layer1, layer2, layer3, avgpool,
        flatten, fc``; each ``layerK`` a Sequential of blocks, each block a
        Sequential ``(residual, relu)``.

    Shape
    -----
    Input (N, in_channels, S, S), output (N, num_classes); the stages see
    S, ceil(S / 2) and ceil(S / 4) pixels a side.

    Examples
    --------
    >>> model = resnet20(in_channels=3, input_size=32, rng=np.random.default_rng(0))
    >>> sum(p.data.size for p in model.parameters())
    272474
    """
    return _resnet(3, num_classes, in_channels, input_size, rng, dtype, impl)
