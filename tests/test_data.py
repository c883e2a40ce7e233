"""cnnumpy.data: reading and writing IDX files, `Dataset` and its normalisation."""

from __future__ import annotations

import dataclasses
import gzip
import re
import struct

import numpy as np
import pytest

from cnnumpy.data import Dataset, normalization_stats, read_idx, write_idx
from conftest import MNIST_DIR

IDX_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def in_message(path) -> str:
    """A pytest ``match`` pattern: the file's path appears in the message."""
    return re.escape(str(path))


# ---------------------------------------------------------------- IDX files


@pytest.mark.parametrize("dtype", IDX_DTYPES)
@pytest.mark.parametrize("name", ["a-idx3", "a-idx3.gz"])
def test_idx_round_trip(tmp_path, rng, dtype, name):
    x = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
    path = tmp_path / name
    write_idx(path, x)
    y = read_idx(path)
    assert y.dtype == np.dtype(dtype) and y.dtype.isnative
    assert y.flags.writeable
    np.testing.assert_array_equal(y, x)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left


def test_idx_header_is_big_endian(tmp_path):
    path = tmp_path / "x"
    write_idx(path, np.array([[1, 256]], dtype=np.int16))
    assert path.read_bytes() == bytes.fromhex("0000 0B02 00000001 00000002 0001 0100")


def test_idx_compression_is_detected_by_magic_not_suffix(tmp_path):
    x = np.arange(6, dtype=np.uint8).reshape(2, 3)
    write_idx(tmp_path / "a.gz", x)
    write_idx(tmp_path / "b", x)
    (tmp_path / "a.gz").rename(tmp_path / "gzip-without-suffix")
    (tmp_path / "b").rename(tmp_path / "raw-with-suffix.gz")
    for name in ("gzip-without-suffix", "raw-with-suffix.gz"):
        np.testing.assert_array_equal(read_idx(tmp_path / name), x)


def test_real_mnist_test_digits():
    images = read_idx(MNIST_DIR / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (1000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (1000,) and labels.dtype == np.uint8
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # MNIST's first
    assert sorted(np.unique(labels)) == list(range(10))
    assert images.max() == 255


def idx_bytes(type_code: int, dims: tuple[int, ...], body: bytes) -> bytes:
    return struct.pack(f">HBB{len(dims)}I", 0, type_code, len(dims), *dims) + body


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x01\x02\x08\x01" + bytes(8), "two zero bytes, got 0x0102"),
        (idx_bytes(0x0A, (2,), bytes(2)), "unknown IDX type code 0x0a"),
        (idx_bytes(0x08, (2, 3), bytes(5)), "truncated.*needs 6 bytes.*got 5"),
        (idx_bytes(0x0B, (2,), bytes(5)), "trailing bytes.*needs 4 bytes.*got 5"),
        (b"\0\0", "shorter than the 4-byte magic"),
        (b"\0\0\x08\x02\0\0\0\x01", "truncated IDX header"),
        (b"\0\0\x08\x00", "declares 0 dimensions"),
    ],
)
@pytest.mark.parametrize("compress", [False, True])
def test_idx_errors_name_the_file(tmp_path, data, message, compress):
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(ValueError, match=in_message(path)) as info:
        read_idx(path)
    assert re.search(message, str(info.value)), str(info.value)


def test_idx_corrupt_gzip_names_the_file(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(idx_bytes(0x08, (4,), bytes(4)))[:-6])
    with pytest.raises(ValueError, match=in_message(path) + ".*corrupt gzip"):
        read_idx(path)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_idx(tmp_path / "nowhere")


def test_write_idx_rejects_bad_arrays(tmp_path):
    with pytest.raises(TypeError, match=r"`array` dtype must be one of .* got int64"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="`array` must have 1 to 255 dimensions"):
        write_idx(tmp_path / "x", np.array(3, dtype=np.uint8))
    with pytest.raises(TypeError, match=r"`array` must be a numpy.ndarray, got list"):
        write_idx(tmp_path / "x", [1, 2])
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- Dataset


def toy(n: int = 10, dtype=np.uint8, classes: int = 3) -> Dataset:
    images = (np.arange(n * 4) % 256).astype(dtype).reshape(n, 1, 2, 2)
    labels = np.arange(n) % classes
    return Dataset(images, labels, tuple(str(i) for i in range(classes)), "toy")


def test_dataset_fields():
    data = Dataset(
        np.zeros((4, 1, 3, 3), np.float32),
        np.array([0, 1, 2, 1], np.uint8),
        ["a", "b", "c"],
        "abc",
    )
    assert len(data) == 4
    assert data.labels.dtype == np.int64
    assert data.class_names == ("a", "b", "c")
    assert "N=4" in repr(data)
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.name = "other"


@pytest.mark.parametrize(
    ("images", "labels", "names", "error", "message"),
    [
        (np.zeros((2, 3, 3)), [0, 1], ("a", "b"), ValueError, r"`images` must be 4-D"),
        (
            np.zeros((2, 1, 3, 3), np.int32),
            [0, 1],
            ("a", "b"),
            TypeError,
            "uint8 or floating, got int32",
        ),
        ([[[[0]]]], [0], ("a",), TypeError, "`images` must be a numpy.ndarray"),
        (
            np.zeros((2, 1, 3, 3)),
            [[0, 1]],
            ("a", "b"),
            ValueError,
            r"`labels` must be 1-D \(N,\), got shape \(1, 2\)",
        ),
        (
            np.zeros((2, 1, 3, 3)),
            [0.0, 1.0],
            ("a", "b"),
            TypeError,
            r"`labels` must hold integers, got float64",
        ),
        (
            np.zeros((2, 1, 3, 3)),
            [0, 1, 1],
            ("a", "b"),
            ValueError,
            r"one label per image \(2\), got 3",
        ),
        (
            np.zeros((2, 1, 3, 3)),
            [0, 2],
            ("a", "b"),
            ValueError,
            r"in \[0, 2\) .* got 0..2",
        ),
        (np.zeros((2, 1, 3, 3)), [-1, 0], ("a", "b"), ValueError, r"got -1..0"),
        (
            np.zeros((2, 1, 3, 3)),
            [0, 1],
            (),
            ValueError,
            r"`class_names` must be non-empty, got \(\)",
        ),
        (np.zeros((2, 1, 3, 3)), [0, 1], (0, 1), TypeError, "`class_names` must be"),
    ],
)
def test_dataset_validates(images, labels, names, error, message):
    with pytest.raises(error, match=message):
        Dataset(images, np.asarray(labels), names, "bad")


def test_dataset_subset():
    data = toy()
    sub = data.subset([3, 0, 3])
    np.testing.assert_array_equal(sub.labels, [0, 0, 0])
    np.testing.assert_array_equal(sub.images, data.images[[3, 0, 3]])
    assert sub.class_names == data.class_names and sub.name == "toy"
    assert len(data.subset(np.array([], dtype=np.int64))) == 0
    with pytest.raises(ValueError, match=r"`indices` must be in \[0, 10\), got 0..10"):
        data.subset([0, 10])
    with pytest.raises(ValueError, match="`indices` must be 1-D integers"):
        data.subset([0.5])


def test_normalized_scales_uint8_to_unit_interval_first():
    data = toy()
    out = data.normalized(0.25, 0.5)
    assert out.images.dtype == np.float32
    expected = (data.images / 255 - 0.25) / 0.5
    np.testing.assert_allclose(out.images, expected, rtol=1e-6, atol=1e-6)
    out64 = data.normalized(np.float32(0.25), np.float64(0.5), dtype=np.float64)
    np.testing.assert_allclose(out64.images, expected, rtol=1e-12)
    assert out.labels is data.labels
    assert data.images.dtype == np.uint8  # the original is untouched


def test_normalized_takes_float_images_as_scaled():
    data = toy(dtype=np.float64)
    data = Dataset(data.images / 255, data.labels, data.class_names, data.name)
    out = data.normalized(0.1, 2.0, dtype=np.float64)
    np.testing.assert_allclose(out.images, (data.images - 0.1) / 2.0)


def test_normalized_rejects_bad_arguments():
    data = toy()
    with pytest.raises(ValueError, match=r"`std` must be > 0, got 0"):
        data.normalized(0.5, 0)
    with pytest.raises(ValueError, match="`mean` must be a finite number, got nan"):
        data.normalized(float("nan"), 1.0)
    with pytest.raises(TypeError, match="`std` must be a real number, got str '1'"):
        data.normalized(0.5, "1")
    for dtype in (np.int32, np.float16, "float", "f8"):
        with pytest.raises(TypeError, match="`dtype` must be float32 or float64, got"):
            data.normalized(0.5, 0.5, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_normalization_stats(rng, dtype):
    pixels = rng.integers(0, 256, size=(20, 1, 5, 5))
    images = (
        pixels.astype(np.uint8) if dtype == np.uint8 else (pixels / 255).astype(dtype)
    )
    data = Dataset(images, np.zeros(20, np.int64), ("0",), "x")
    mean, std = normalization_stats(data)
    assert type(mean) is float and type(std) is float
    np.testing.assert_allclose(
        (mean, std), (np.mean(pixels / 255), np.std(pixels / 255)), rtol=1e-6
    )
    normalized = data.normalized(mean, std, dtype=np.float64).images
    np.testing.assert_allclose((normalized.mean(), normalized.std()), (0, 1), atol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_normalization_stats_per_channel(rng, dtype):
    pixels = rng.integers(0, 256, size=(6, 3, 4, 5))
    pixels[:, 1] //= 4  # the channels differ
    images = pixels.astype(np.uint8) if dtype == np.uint8 else pixels / 255
    data = Dataset(images, np.zeros(6, np.int64), ("0",), "rgb")
    mean, std = normalization_stats(data, per_channel=True)
    assert type(mean) is tuple and all(type(m) is float for m in mean + std)
    np.testing.assert_allclose(mean, (pixels / 255).mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(std, (pixels / 255).std(axis=(0, 2, 3)), rtol=1e-12)
    out = data.normalized(mean, std, dtype=np.float64).images
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, rtol=1e-12)
    # One channel: the same numbers as the scalar form, and the same pixels.
    grey = Dataset(images[:, :1], data.labels, ("0",), "grey")
    (m,), (s,) = normalization_stats(grey, per_channel=True)
    assert (m, s) == normalization_stats(grey)
    np.testing.assert_array_equal(
        grey.normalized([m], [s]).images, grey.normalized(m, s).images
    )


def test_normalized_per_channel_values_must_match_the_channels():
    data = toy()  # one channel
    with pytest.raises(ValueError, match=r"`mean` has 3 values, one per channel"):
        data.normalized((0.1, 0.2, 0.3), 0.5)
    with pytest.raises(ValueError, match=r"`std\[1\]` must be > 0, got 0"):
        data.normalized(0.5, [1.0, 0.0])
    with pytest.raises(ValueError, match="`mean` must be a number or a non-empty"):
        data.normalized([], 0.5)


def test_normalization_stats_rejects_empty_and_non_datasets():
    with pytest.raises(ValueError, match="'toy' has no pixels"):
        normalization_stats(toy().subset([]))
    with pytest.raises(TypeError, match="`dataset` must be a Dataset, got ndarray"):
        normalization_stats(np.zeros((1, 1, 2, 2)))
