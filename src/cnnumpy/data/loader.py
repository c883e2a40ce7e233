"""`DataLoader`: mini-batches of a `Dataset`, in an order fixed by seed and epoch,
augmented by an optional transform whose draws are fixed the same way."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from cnnumpy.data.dataset import Dataset
from cnnumpy.validation import (
    check_bool,
    check_callable,
    check_images,
    check_instance,
    check_int,
)

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate over a `Dataset` in ``(images, labels)`` batches, as ``torch``'s.

    The order of epoch ``e`` is ``np.random.default_rng((seed, e)).permutation(N)``
    when shuffling, so a run resumed at epoch ``e`` (`set_epoch`) sees the same
    batches as an uninterrupted one, with no generator state to save.

    A ``transform`` draws, for batch ``b`` of epoch ``e``, from the generator
    `batch_rng` ``(e, b)`` returns: the ``b``-th child of the epoch's seed
    sequence ``SeedSequence((seed, e))``, a stream of its own that depends
    only on ``(seed, e, b)``. So the same seed gives the same augmented
    batches, a run resumed in the middle of an epoch augments the batches
    still to come as an uninterrupted run does, and skipping batches costs no
    draws.

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
    transform : callable, optional
        ``transform(images, rng) -> images`` applied to each batch (see
        `cnnumpy.data.transforms`), such as random crops; meant for training
        batches, never for evaluation.

    Attributes
    ----------
    epoch : int
        The epoch the next pass uses: 0 at first, incremented after each
        completed pass (a pass left early does not count).
    start : int
        The batch the next pass starts at (`set_epoch`); 0 again once it has.

    Yields
    ------
    images : numpy.ndarray
        (B, C, H, W) in the dataset's dtype, a copy (or what ``transform``
        returns for it).
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
        transform: Callable[[np.ndarray, np.random.Generator], np.ndarray]
        | None = None,
    ) -> None:
        self.dataset = check_instance(dataset, "dataset", Dataset, "a Dataset")
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.shuffle = check_bool(shuffle, "shuffle")
        self.seed = check_int(seed, "seed", minimum=0)
        self.drop_last = check_bool(drop_last, "drop_last")
        self.transform = (
            None if transform is None else check_callable(transform, "transform")
        )
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Make the next pass the one of ``epoch``, from its batch ``start`` on.

        ``start`` (default 0) skips the batches before it, for a run resumed
        in the middle of an epoch: the pass yields batches ``start`` to the
        last, each the same as in a full pass. It applies to the next pass only.
        """
        self.epoch = check_int(epoch, "epoch", minimum=0)
        self.start = check_int(start, "start", minimum=0, maximum=len(self))

    def batch_rng(self, epoch: int, batch: int) -> np.random.Generator:
        """The generator ``transform`` draws from for batch ``batch`` of ``epoch``."""
        epoch = check_int(epoch, "epoch", minimum=0)
        batch = check_int(batch, "batch", minimum=0)
        sequence = np.random.SeedSequence((self.seed, epoch), spawn_key=(batch,))
        return np.random.default_rng(sequence)

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
        epoch, first = self.epoch, self.start
        self.start = 0
        order = self.order(epoch)
        images, labels = self.dataset.images, self.dataset.labels
        for batch in range(first, len(self)):
            start = batch * self.batch_size
            idx = order[start : start + self.batch_size]
            x = images[idx]
            if self.transform is not None:
                x = self.transform(x, self.batch_rng(epoch, batch))
                check_images(x, "the transform's result")
            yield x, labels[idx]
        self.epoch = epoch + 1

    def __repr__(self) -> str:
        return (
            f"DataLoader({self.dataset.name!r}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last}, "
            f"transform={self.transform!r}, epoch={self.epoch})"
        )
