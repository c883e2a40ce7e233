"""`DataLoader`: mini-batches of a `Dataset`, in an order fixed by seed and epoch."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from cnnumpy.data.dataset import Dataset
from cnnumpy.validation import check_bool, check_instance, check_int

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate over a `Dataset` in ``(images, labels)`` batches, as ``torch``'s.

    The order of epoch ``e`` is ``np.random.default_rng((seed, e)).permutation(N)``
    when shuffling, so a run resumed at epoch ``e`` (`set_epoch`) sees the same
    batches as an uninterrupted one, with no generator state to save.

    Parameters
    ----------
    dataset : Dataset
        The items to batch.
    batch_size : int
        Items per batch (the last one may be smaller, unless ``drop_last``).
    shuffle : bool
        Whether each epoch visits the items in a new order.
    seed : int
        Non-negative seed of the shuffling.
    drop_last : bool
        Whether to skip the last batch when it is smaller than ``batch_size``.

    Attributes
    ----------
    epoch : int
        The epoch the next pass uses: 0 at first, incremented after each
        completed pass (a pass left early does not count).

    Yields
    ------
    images : numpy.ndarray
        (B, C, H, W) in the dataset's dtype, a copy.
    labels : numpy.ndarray
        (B,) int64.

    Examples
    --------
    >>> data = Dataset(np.zeros((5, 1, 2, 2), np.uint8), np.arange(5), tuple("01234"),
    ...                "toy")
    >>> loader = DataLoader(data, batch_size=2)
    >>> len(loader), [labels.tolist() for _, labels in loader], loader.epoch
    (3, [[0, 1], [2, 3], [4]], 1)
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        self.dataset = check_instance(dataset, "dataset", Dataset, "a Dataset")
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.shuffle = check_bool(shuffle, "shuffle")
        self.seed = check_int(seed, "seed", minimum=0)
        self.drop_last = check_bool(drop_last, "drop_last")
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass the one of ``epoch`` (a non-negative int)."""
        self.epoch = check_int(epoch, "epoch", minimum=0)

    def order(self, epoch: int | None = None) -> np.ndarray:
        """The item indices of ``epoch`` (default: the next pass's), in visit order."""
        epoch = self.epoch if epoch is None else check_int(epoch, "epoch", minimum=0)
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng((self.seed, epoch)).permutation(n)

    def __len__(self) -> int:
        n, b = len(self.dataset), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        epoch = self.epoch
        order = self.order(epoch)
        images, labels = self.dataset.images, self.dataset.labels
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = order[start : start + self.batch_size]
            yield images[idx], labels[idx]
        self.epoch = epoch + 1

    def __repr__(self) -> str:
        return (
            f"DataLoader({self.dataset.name!r}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last}, "
            f"epoch={self.epoch})"
        )
