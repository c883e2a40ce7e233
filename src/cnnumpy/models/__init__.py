"""Ready architectures: LeNet-5 (classic and modern), a registry, a summary table."""

from cnnumpy.models.lenet import lenet5, lenet5_modern
from cnnumpy.models.registry import MODELS, create_model
from cnnumpy.models.summary import count_parameters, summary

__all__ = [
    "MODELS",
    "count_parameters",
    "create_model",
    "lenet5",
    "lenet5_modern",
    "summary",
]
