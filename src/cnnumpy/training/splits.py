"""The data of a run: loaded, a validation part split off, normalized with the
statistics of the training part only, and described for its checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnumpy import data as cdata
from cnnumpy.training.config import TrainConfig
from cnnumpy.validation import check_instance, check_int, check_real

__all__ = ["RunData", "prepare_data", "split_validation"]


def split_validation(
    dataset: cdata.Dataset, fraction: float, seed: int
) -> tuple[cdata.Dataset, cdata.Dataset | None]:
    """(train, validation) parts of ``dataset``; the same for the same seed.

    The validation part is ``round(fraction * len)`` images drawn at random
    with ``default_rng(seed)``; both parts keep the original order.
    """
    check_instance(dataset, "dataset", cdata.Dataset, "a cnnumpy.data.Dataset")
    check_real(fraction, "fraction", minimum=0, below=1)
    check_int(seed, "seed", minimum=0)
    n_val = round(fraction * len(dataset))
    if n_val == 0:
        return dataset, None
    if n_val >= len(dataset):
        raise ValueError(
            f"`fraction` (={fraction}) leaves no training images of {len(dataset)}"
        )
    chosen = np.random.default_rng(seed).permutation(len(dataset))[:n_val]
    is_val = np.zeros(len(dataset), dtype=bool)
    is_val[chosen] = True
    return dataset.subset(np.flatnonzero(~is_val)), dataset.subset(
        np.flatnonzero(is_val)
    )


@dataclass
class RunData:
    """The splits of a run, normalized, and their description for checkpoints."""

    train: cdata.Dataset
    val: cdata.Dataset | None
    test: cdata.Dataset
    test_raw: cdata.Dataset  # uint8, for the picture of misclassified digits
    model_config: dict[str, int]
    info: dict[str, Any]

    def batches(self, batch_size: int) -> int:
        """Batches per training epoch (the last may be smaller)."""
        return -(-len(self.train) // batch_size)


def prepare_data(
    config: TrainConfig, progress: Callable[[int, int | None], None] | None
) -> RunData:
    """Load, split off validation, normalize with the training part's statistics.

    Grey images get one mean and std; colour images one per channel (stored as
    lists in the checkpoint), as is usual for CIFAR-10.
    """
    train_full, test = cdata.load_dataset(
        config.dataset,
        data_dir=config.data_dir,
        cache_dir=config.cache_dir,
        download=config.download,
        progress=progress,
    )
    train_raw, val_raw = split_validation(train_full, config.val_fraction, config.seed)
    per_channel = train_raw.images.shape[1] > 1
    mean, std = cdata.normalization_stats(train_raw, per_channel=per_channel)
    dtype = np.dtype(config.dtype)
    train = train_raw.normalized(mean, std, dtype)
    val = None if val_raw is None else val_raw.normalized(mean, std, dtype)
    C, H, W = (int(n) for n in train.images.shape[1:])
    if H != W:
        raise ValueError(f"models take square images, the data set has {H}x{W}")
    return RunData(
        train=train,
        val=val,
        test=test.normalized(mean, std, dtype),
        test_raw=test,
        model_config={
            "num_classes": len(train.class_names),
            "in_channels": C,
            "input_size": H,
        },
        info={
            "dataset": config.dataset,
            "class_names": list(train.class_names),
            "input_shape": [C, H, W],
            # Lists, as the checkpoint's JSON gives them back (see run.py's resume).
            "normalization": {"mean": _listed(mean), "std": _listed(std)},
            "sizes": {
                "train": len(train),
                "val": 0 if val is None else len(val),
                "test": len(test),
            },
        },
    )


def _listed(stat: float | tuple[float, ...]) -> float | list[float]:
    return list(stat) if isinstance(stat, tuple) else stat
