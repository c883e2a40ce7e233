"""cnnumpy.data.DataLoader: batches, order by seed and epoch, resuming."""

from __future__ import annotations

import numpy as np
import pytest

from cnnumpy.data import DataLoader, Dataset


def toy(n: int = 10, dtype=np.uint8, classes: int = 3) -> Dataset:
    images = (np.arange(n * 4) % 256).astype(dtype).reshape(n, 1, 2, 2)
    labels = np.arange(n) % classes
    return Dataset(images, labels, tuple(str(i) for i in range(classes)), "toy")


def epoch_labels(loader: DataLoader) -> list[int]:
    return [int(v) for _, labels in loader for v in labels]


def test_loader_visits_every_item_once_per_epoch():
    data = toy(n=23, classes=23)  # label == index
    loader = DataLoader(data, batch_size=5, shuffle=True, seed=3)
    assert len(loader) == 5
    orders = []
    for epoch in range(3):
        assert loader.epoch == epoch
        batches = list(loader)
        assert [len(labels) for _, labels in batches] == [5, 5, 5, 5, 3]
        for images, labels in batches:
            assert images.dtype == np.uint8 and labels.dtype == np.int64
            np.testing.assert_array_equal(images, data.images[labels])
        order = [int(v) for _, labels in batches for v in labels]
        assert sorted(order) == list(range(23))
        expected = np.random.default_rng((3, epoch)).permutation(23)
        assert order == expected.tolist()
        orders.append(order)
    assert loader.epoch == 3
    assert orders[0] != orders[1] != orders[2]


def test_loader_is_reproducible_and_resumable():
    data = toy(n=50, classes=50)
    first = DataLoader(data, batch_size=8, shuffle=True, seed=7)
    epochs = [epoch_labels(first) for _ in range(3)]
    again = DataLoader(data, batch_size=8, shuffle=True, seed=7)
    again.set_epoch(2)
    assert epoch_labels(again) == epochs[2]
    assert again.epoch == 3
    other_seed = DataLoader(data, batch_size=8, shuffle=True, seed=8)
    assert epoch_labels(other_seed) != epochs[0]


def test_loader_without_shuffle_keeps_order_and_counts_epochs():
    loader = DataLoader(toy(n=7, classes=7), batch_size=3)
    assert epoch_labels(loader) == list(range(7))
    assert epoch_labels(loader) == list(range(7))
    assert loader.epoch == 2


def test_loader_drop_last():
    data = toy(n=10, classes=10)
    loader = DataLoader(data, batch_size=4, shuffle=True, drop_last=True)
    assert len(loader) == 2
    batches = list(loader)
    assert [len(labels) for _, labels in batches] == [4, 4]
    assert len(DataLoader(data, batch_size=5, drop_last=True)) == 2
    assert len(DataLoader(data, batch_size=11, drop_last=True)) == 0
    assert len(DataLoader(data, batch_size=11)) == 1


def test_loader_pass_left_early_does_not_count():
    loader = DataLoader(toy(), batch_size=2, shuffle=True)
    for _ in loader:
        break
    assert loader.epoch == 0


def test_loader_batches_are_copies():
    data = toy()
    images, _ = next(iter(DataLoader(data, batch_size=4)))
    images[...] = 0
    assert data.images.any()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"batch_size": 0}, ValueError, "`batch_size` must be >= 1, got 0"),
        ({"batch_size": 2.0}, TypeError, "`batch_size` must be an int, got float"),
        ({"batch_size": True}, TypeError, "`batch_size` must be an int, got bool"),
        ({"shuffle": 1}, TypeError, "`shuffle` must be a bool, got int"),
        ({"drop_last": "no"}, TypeError, "`drop_last` must be a bool, got str"),
        ({"seed": -1}, ValueError, "`seed` must be >= 0, got -1"),
        ({"seed": None}, TypeError, "`seed` must be an int, got NoneType"),
    ],
)
def test_loader_validates_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        DataLoader(toy(), **kwargs)


def test_loader_rejects_non_datasets_and_bad_epochs():
    with pytest.raises(TypeError, match="`dataset` must be a Dataset, got tuple"):
        DataLoader((np.zeros((2, 1, 2, 2)), np.zeros(2)))
    loader = DataLoader(toy())
    with pytest.raises(ValueError, match="`epoch` must be >= 0, got -1"):
        loader.set_epoch(-1)
