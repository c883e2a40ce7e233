"""Optimizers and learning-rate schedulers with torch.optim's semantics."""

from cnnumpy.optim.adam import Adam, AdamW
from cnnumpy.optim.lr_scheduler import CosineAnnealingLR, StepLR
from cnnumpy.optim.optimizer import Optimizer
from cnnumpy.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "CosineAnnealingLR", "Optimizer", "StepLR"]
