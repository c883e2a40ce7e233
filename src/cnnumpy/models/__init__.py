"""Ready architectures: LeNet-5, CIFAR ResNets, a VGG; the registry, the summary."""

from cnnumpy.models.lenet import lenet5, lenet5_modern
from cnnumpy.models.registry import MODELS, create_model
from cnnumpy.models.resnet import resnet8, resnet20
from cnnumpy.models.summary import count_parameters, summary
from cnnumpy.models.vgg import vgg_bn

__all__ = [
    "MODELS",
    "count_parameters",
    "create_model",
    "lenet5",
    "lenet5_modern",
    "resnet8",
    "resnet20",
    "summary",
    "vgg_bn",
]
