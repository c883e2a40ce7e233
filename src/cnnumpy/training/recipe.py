"""The recipe of a training run: optimizer, learning-rate schedule, augmentation.

`train_run` builds these from a `TrainConfig`: `make_optimizer`,
`make_scheduler` (with `ScheduleStepper`, the callback that steps it per epoch
or per batch) and `make_transform`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnumpy import nn, optim
from cnnumpy.data import transforms
from cnnumpy.data.dataset import normalize
from cnnumpy.optim.lr_scheduler import LRScheduler
from cnnumpy.training.callbacks import Callback, FitState
from cnnumpy.training.config import TrainConfig

__all__ = [
    "ScheduleStepper",
    "crop_padding",
    "make_optimizer",
    "make_scheduler",
    "make_transform",
]

# The learning rate a warm-up starts from, as a fraction of ``lr``
# (torchvision's reference recipes: --lr-warmup-decay 0.01).
WARMUP_START = 0.01
# Per-batch schedules; the others step after each epoch.
PER_BATCH = ("onecycle",)


def make_optimizer(config: TrainConfig, model: nn.Module) -> optim.Optimizer:
    """The optimizer ``config`` names, over ``model``'s parameters.

    With ``weight_decay`` the parameters come in two groups: the weights of
    convolutions and linear layers decay, biases and batch-norm parameters do
    not (`cnnumpy.optim.param_groups_without_decay`). Without, one group in
    ``parameters()`` order, as runs have always had.
    """
    params: Any = (
        model.parameters()
        if config.weight_decay == 0
        else optim.param_groups_without_decay(model, config.weight_decay)
    )
    if config.optimizer == "adam":
        return optim.Adam(params, lr=config.lr)
    if config.optimizer == "adamw":
        # Each group carries its decay; AdamW's own default (0.01) never applies.
        return optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    return optim.SGD(
        params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov
    )


def make_scheduler(
    config: TrainConfig, optimizer: optim.Optimizer, batches: int
) -> LRScheduler | None:
    """The learning-rate scheduler of ``config``, or None for a constant rate.

    ``batches`` is the number of batches per epoch (what a per-batch schedule
    counts in). See `TrainConfig` for the schedules.
    """
    schedule, warmup = config.lr_schedule, config.warmup_epochs
    if schedule == "onecycle":
        return optim.OneCycleLR(
            optimizer,
            max_lr=config.lr,
            total_steps=config.epochs * batches,
            pct_start=warmup / config.epochs if warmup else 0.3,
        )
    main: LRScheduler | None = None
    if schedule == "step":
        assert config.lr_step is not None  # TrainConfig checks it
        main = optim.StepLR(optimizer, step_size=config.lr_step, gamma=config.lr_gamma)
    elif schedule == "cosine":
        main = optim.CosineAnnealingLR(optimizer, T_max=config.epochs - warmup)
    if not warmup:
        return main
    ramp = optim.LinearLR(optimizer, start_factor=WARMUP_START, total_iters=warmup)
    if main is None:
        return ramp
    return optim.SequentialLR(optimizer, [ramp, main], milestones=[warmup])


class ScheduleStepper(Callback):
    """Step a learning-rate scheduler after every batch or every epoch.

    It must run before the checkpoint callbacks, so a checkpoint holds the
    rate of the next step, as a run that never stopped has it.
    """

    def __init__(self, scheduler: LRScheduler, per_batch: bool) -> None:
        self.scheduler = scheduler
        self.per_batch = per_batch

    def on_batch_end(self, state: FitState, logs: dict[str, Any]) -> None:
        if self.per_batch:
            self.scheduler.step()

    def on_epoch_end(self, state: FitState, logs: dict[str, Any]) -> None:
        if not self.per_batch:
            self.scheduler.step()


def crop_padding(config: TrainConfig, input_size: int) -> int:
    """The padding of random crops: ``crop_padding``, or 2 below 32 pixels, else 4.

    Four pixels on 32x32 images is He et al.'s CIFAR recipe; two keeps the
    same share of a 28x28 digit or garment in view.
    """
    if config.crop_padding is not None:
        return config.crop_padding
    return 2 if input_size < 32 else 4


def make_transform(
    config: TrainConfig,
    input_shape: tuple[int, int, int],
    mean: float | list[float],
    std: float | list[float],
) -> transforms.Compose | None:
    """The augmentation of ``config`` for normalised images, or None.

    ``mean`` and ``std`` are the run's normalisation: one number, or one per
    channel for colour data.

    The run normalises the whole data set before batching, so the crops see
    normalised images. torchvision's recipe (``RandomCrop(32, padding=4)``
    before ``ToTensor`` and ``Normalize``) pads the raw image with black, 0;
    padding here with the normalised value of black, ``(0 - mean) / std`` in
    the run's dtype, gives the same batches, bit for bit: normalising is done
    pixel by pixel, so it commutes with moving pixels. (Padding a normalised
    image with 0 would pad with the mean grey instead.)
    """
    if config.augment == "none":
        return None
    C, H, W = input_shape
    steps: list[Any] = []
    if "crop" in config.augment:
        black = normalize(np.zeros((1, C, 1, 1), np.uint8), mean, std, config.dtype)
        steps.append(
            transforms.RandomCrop(
                (H, W),
                padding=crop_padding(config, H),
                fill=[float(v) for v in black.reshape(C)],
            )
        )
    if "flip" in config.augment:
        steps.append(transforms.RandomHorizontalFlip())
    return transforms.Compose(steps)
