"""Modules with PyTorch's names, argument order and defaults.

``y = m(x)`` runs the forward pass and caches what the backward pass needs;
``dx = m.backward(dy)`` returns the input gradient and accumulates parameter
gradients into ``param.grad``.
"""

from cnnumpy.nn.activation import (
    GELU,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
)
from cnnumpy.nn.conv import Conv2d
from cnnumpy.nn.conv_transpose import ConvTranspose2d
from cnnumpy.nn.dropout import Dropout
from cnnumpy.nn.impl import IMPLS
from cnnumpy.nn.linear import Flatten, Identity, Linear, Unflatten
from cnnumpy.nn.loss import CrossEntropyLoss
from cnnumpy.nn.module import BackwardBeforeForwardError, Module, Sequential
from cnnumpy.nn.normalization import BatchNorm1d, BatchNorm2d
from cnnumpy.nn.parameter import Parameter
from cnnumpy.nn.pool import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from cnnumpy.nn.residual import Residual

__all__ = [
    "GELU",
    "IMPLS",
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BackwardBeforeForwardError",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "Identity",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MaxPool2d",
    "Module",
    "Parameter",
    "ReLU",
    "Residual",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "Unflatten",
]
