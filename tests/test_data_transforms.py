"""cnnumpy.data.transforms against torchvision's semantics, and the DataLoader's
per-batch augmentation: fixed by seed, epoch and batch, so resumes are exact.

torchvision cannot be installed beside the pinned torch, so its rules are
written out here: pad, then cut the window at an offset drawn uniformly from
every place it fits; flip when a uniform draw is below ``p``.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnumpy.data import DataLoader, Dataset
from cnnumpy.data.transforms import Compose, RandomCrop, RandomHorizontalFlip


def arange_batch(n: int = 5, c: int = 2, h: int = 4, w: int = 6) -> np.ndarray:
    return np.arange(n * c * h * w, dtype=np.float64).reshape(n, c, h, w) + 1


def padded_by_hand(x, left, top, right, bottom, fill):
    n, c, h, w = x.shape
    out = np.empty((n, c, top + h + bottom, left + w + right), x.dtype)
    out[...] = np.asarray(fill, x.dtype).reshape(-1, 1, 1)
    out[:, :, top : top + h, left : left + w] = x
    return out


@pytest.mark.parametrize(
    ("size", "padding", "sides"),
    [
        (4, 2, (2, 2, 2, 2)),
        ((3, 5), None, (0, 0, 0, 0)),
        ((5, 4), (1, 3), (1, 3, 1, 3)),
        ((6, 6), [0, 1, 2, 3], (0, 1, 2, 3)),
        ((8, 10), 2, (2, 2, 2, 2)),  # the crop is the whole padded image
    ],
)
def test_crop_is_the_slice_of_the_padded_image_at_the_drawn_offset(
    size, padding, sides
):
    x = arange_batch()
    crop = RandomCrop(size, padding=padding, fill=-7.0)
    out = crop(x, np.random.default_rng(3))
    h, w = (size, size) if isinstance(size, int) else size
    padded = padded_by_hand(x, *sides, fill=-7.0)
    # The draws, in the documented order: the tops of all images, then the lefts.
    rng = np.random.default_rng(3)
    tops = rng.integers(0, padded.shape[2] - h + 1, size=len(x))
    lefts = rng.integers(0, padded.shape[3] - w + 1, size=len(x))
    assert out.shape == (len(x), x.shape[1], h, w) and out.dtype == x.dtype
    for i in range(len(x)):
        t, left = tops[i], lefts[i]
        np.testing.assert_array_equal(out[i], padded[i, :, t : t + h, left : left + w])


def test_crop_offsets_cover_every_place_uniformly():
    # Pixel values name their place, so crop[p, p] = x[top, left] tells the offset.
    n, size, pad = 25000, 6, 2
    x = np.broadcast_to(
        np.arange(float(size * size)).reshape(1, 1, size, size), (n, 1, size, size)
    )
    out = RandomCrop(size, padding=pad, fill=-1.0)(x, np.random.default_rng(0))
    value = out[:, 0, pad, pad].astype(int)
    counts = np.zeros((2 * pad + 1, 2 * pad + 1))
    np.add.at(counts, (value // size, value % size), 1)
    expected = n / counts.size
    assert (counts > 0).all()  # every one of the 25 offsets occurs...
    assert np.abs(counts - expected).max() < 5 * np.sqrt(expected)  # ...as often


def test_crop_pads_each_channel_with_its_fill_and_keeps_the_dtype():
    x = np.ones((3, 2, 2, 2), np.float32)
    out = RandomCrop(6, padding=2, fill=(-1.5, 7.0))(x, np.random.default_rng(0))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[:, 0, 0, 0], -1.5)  # a corner is padding
    np.testing.assert_array_equal(out[:, 1, 5, 5], 7.0)
    uint = RandomCrop(3, padding=1)(
        np.full((2, 1, 2, 2), 9, np.uint8), np.random.default_rng(1)
    )
    assert uint.dtype == np.uint8 and set(np.unique(uint)) <= {0, 9}


@pytest.mark.parametrize("mode", ["edge", "reflect", "symmetric"])
def test_other_padding_modes_are_numpys(mode):
    x = arange_batch(n=3)
    out = RandomCrop((8, 10), padding=2, padding_mode=mode)(x, np.random.default_rng(0))
    expected = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), mode=mode)
    np.testing.assert_array_equal(out, expected)  # one place only: no draw matters


def test_pad_if_needed_pads_both_sides_by_the_shortfall():
    x = arange_batch(n=2, h=3, w=4)  # torchvision pads (size - W) on left and right
    out = RandomCrop((5, 6), pad_if_needed=True, fill=0)(x, np.random.default_rng(0))
    assert out.shape == (2, 2, 5, 6)
    padded = padded_by_hand(x, 2, 2, 2, 2, 0.0)
    rng = np.random.default_rng(0)
    tops, lefts = rng.integers(0, 3, size=2), rng.integers(0, 3, size=2)
    for i in range(2):
        t, left = tops[i], lefts[i]
        np.testing.assert_array_equal(out[i], padded[i, :, t : t + 5, left : left + 6])


def test_crop_larger_than_the_image_and_bad_batches_are_refused():
    x = arange_batch()
    with pytest.raises(ValueError, match=r"crop `size` \(9, 9\) is larger than"):
        RandomCrop(9, padding=1)(x, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"`images` must be 4-D images"):
        RandomCrop(2)(x[0], np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"`images` must hold integers or floats"):
        RandomCrop(2)(x.astype(bool), np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"`rng` must be a numpy.random.Generator"):
        RandomCrop(2)(x, 0)
    with pytest.raises(ValueError, match=r"`fill` has 3 values for images of 2"):
        RandomCrop(4, padding=1, fill=(0, 0, 0))(x, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"too large for 'reflect' padding"):
        RandomCrop(4, padding=4, padding_mode="reflect")(x, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"`padding` must have 1, 2 or 4 entries"):
        RandomCrop(4, padding=(1, 2, 3))


def test_flip_never_at_p0_always_at_p1_and_per_image_otherwise():
    x = arange_batch(n=400)
    np.testing.assert_array_equal(
        RandomHorizontalFlip(0.0)(x, np.random.default_rng(0)), x
    )
    np.testing.assert_array_equal(
        RandomHorizontalFlip(1.0)(x, np.random.default_rng(0)), x[..., ::-1]
    )
    out = RandomHorizontalFlip(0.3)(x, np.random.default_rng(5))
    flipped = rng_flips = np.random.default_rng(5).random(len(x)) < 0.3
    for i in range(len(x)):
        np.testing.assert_array_equal(out[i], x[i, :, :, ::-1] if flipped[i] else x[i])
    assert 80 < rng_flips.sum() < 160
    assert not np.shares_memory(out, x)


def test_compose_chains_with_one_generator():
    x = arange_batch()
    both = Compose([RandomCrop(4, padding=1), RandomHorizontalFlip()])
    rng = np.random.default_rng(2)
    expected = RandomHorizontalFlip()(RandomCrop(4, padding=1)(x, rng), rng)
    np.testing.assert_array_equal(both(x, np.random.default_rng(2)), expected)
    np.testing.assert_array_equal(Compose([])(x, np.random.default_rng(0)), x)
    assert "RandomCrop(size=(4, 4), padding=(1, 1, 1, 1)" in repr(both)
    with pytest.raises(TypeError, match=r"`transforms\[1\]` must be callable"):
        Compose([RandomHorizontalFlip(), 3])


# ------------------------------------------------------------- the DataLoader


def dataset(n: int = 23) -> Dataset:
    images = np.arange(n * 36, dtype=np.float32).reshape(n, 1, 6, 6)
    return Dataset(images, np.arange(n) % 3, ("a", "b", "c"), "toy")


def batches(loader, epoch, start=0):
    loader.set_epoch(epoch, start=start)
    return [(x.copy(), y.copy()) for x, y in loader]


AUGMENT = Compose([RandomCrop(6, padding=2), RandomHorizontalFlip()])


def test_same_seed_same_augmented_batches_and_other_epochs_differ():
    a = DataLoader(dataset(), 5, shuffle=True, seed=4, transform=AUGMENT)
    b = DataLoader(dataset(), 5, shuffle=True, seed=4, transform=AUGMENT)
    first, again = batches(a, 0), batches(b, 0)
    for (xa, ya), (xb, yb) in zip(first, again, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    other = batches(a, 1)
    assert not all(np.array_equal(p[0], q[0]) for p, q in zip(first, other))
    reseeded = batches(DataLoader(dataset(), 5, True, seed=5, transform=AUGMENT), 0)
    assert not all(np.array_equal(p[0], q[0]) for p, q in zip(first, reseeded))


def test_each_batch_draws_from_its_own_generator():
    loader = DataLoader(dataset(), 5, shuffle=True, seed=4, transform=AUGMENT)
    order = loader.order(2)
    for index, (x, y) in enumerate(batches(loader, 2)):
        idx = order[index * 5 : index * 5 + 5]
        expected = AUGMENT(dataset().images[idx], loader.batch_rng(2, index))
        np.testing.assert_array_equal(x, expected)
        np.testing.assert_array_equal(y, dataset().labels[idx])
    child = np.random.SeedSequence((4, 2)).spawn(3)[2]
    assert loader.batch_rng(2, 2).random() == np.random.default_rng(child).random()


def test_the_order_is_unchanged_by_a_transform_and_starting_later_skips_batches():
    plain = DataLoader(dataset(), 5, shuffle=True, seed=4)
    augmented = DataLoader(dataset(), 5, shuffle=True, seed=4, transform=AUGMENT)
    full = batches(augmented, 3)
    assert [y.tolist() for _, y in batches(plain, 3)] == [y.tolist() for _, y in full]
    later = batches(augmented, 3, start=2)
    assert len(later) == len(full) - 2 and augmented.epoch == 4
    for (x, _), (x_full, _) in zip(later, full[2:], strict=True):
        np.testing.assert_array_equal(x, x_full)
    assert len(batches(augmented, 3)) == len(full)  # `start` was for one pass
    with pytest.raises(ValueError, match=r"`start` must be <= 5, got 6"):
        augmented.set_epoch(0, start=6)


def test_a_transform_must_return_a_batch():
    loader = DataLoader(dataset(), 5, transform=lambda x, rng: x[0])
    with pytest.raises(ValueError, match="the transform's result` must be 4-D"):
        next(iter(loader))
