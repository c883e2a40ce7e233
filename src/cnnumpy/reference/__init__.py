"""Naive nested-loop ops with the fast ops' signatures: the oracle and the lesson."""

from cnnumpy.reference.adaptive_pool import (
    AdaptiveAvgPool2dContext,
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_avg_pool2d_forward,
)
from cnnumpy.reference.conv import (
    Conv2dContext,
    conv2d,
    conv2d_backward,
    conv2d_forward,
)
from cnnumpy.reference.conv_transpose import (
    ConvTranspose2dContext,
    conv_transpose2d,
    conv_transpose2d_backward,
    conv_transpose2d_forward,
)
from cnnumpy.reference.pool import (
    AvgPool2dContext,
    MaxPool2dContext,
    avg_pool2d,
    avg_pool2d_backward,
    avg_pool2d_forward,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_forward,
)

__all__ = [
    "AdaptiveAvgPool2dContext",
    "AvgPool2dContext",
    "Conv2dContext",
    "ConvTranspose2dContext",
    "MaxPool2dContext",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_avg_pool2d_forward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "conv2d",
    "conv2d_backward",
    "conv2d_forward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "conv_transpose2d_forward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_forward",
]
