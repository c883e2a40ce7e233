"""Optimizers and learning-rate schedulers with torch.optim's semantics."""

from cnnumpy.optim.adam import Adam, AdamW
from cnnumpy.optim.lr_scheduler import CosineAnnealingLR, StepLR
from cnnumpy.optim.one_cycle import OneCycleLR
from cnnumpy.optim.optimizer import Optimizer
from cnnumpy.optim.param_groups import param_groups_without_decay
from cnnumpy.optim.sgd import SGD
from cnnumpy.optim.warmup import LinearLR, SequentialLR

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "LinearLR",
    "OneCycleLR",
    "Optimizer",
    "SequentialLR",
    "StepLR",
    "param_groups_without_decay",
]
