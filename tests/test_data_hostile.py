"""Hostile data files: sizes checked before allocating, images scaled, not clipped."""

from __future__ import annotations

import gzip
import struct
import zlib

import numpy as np
import pytest

from cnnumpy.data import IDXError, load_dataset, load_images, read_idx, write_idx
from cnnumpy.data.idx import MAX_IDX_BYTES


def idx_header(type_code: int, *dims: int) -> bytes:
    return struct.pack(f">HBB{len(dims)}I", 0, type_code, len(dims), *dims)


def write_mnist_like(folder, labels: np.ndarray, images: np.ndarray | None = None):
    """The four files of a tiny data set whose training labels are ``labels``."""
    n = len(labels)
    if images is None:
        images = np.zeros((n, 4, 4), np.uint8)
    write_idx(folder / "train-images-idx3-ubyte.gz", images)
    write_idx(folder / "train-labels-idx1-ubyte.gz", labels)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((2, 4, 4), np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([0, 1], np.uint8))


@pytest.mark.parametrize("compress", [False, True])
def test_idx_declaring_more_than_the_limit_is_refused_before_reading(
    tmp_path, compress
):
    side = int(np.sqrt(MAX_IDX_BYTES)) + 1
    data = idx_header(0x08, side, side) + bytes(100)
    path = tmp_path / "huge"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(IDXError, match=r"more than the .* this reader allows"):
        read_idx(path)


def test_gzip_idx_is_inflated_only_to_the_declared_size(tmp_path):
    # 64 MB of zeros compress to 64 KB; the header declares 10 bytes.
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(idx_header(0x08, 10) + bytes(64 << 20)))
    with pytest.raises(IDXError, match="trailing bytes"):
        read_idx(path)


def test_gzip_idx_truncated_or_corrupt_is_a_typed_error(tmp_path):
    path = tmp_path / "x.gz"
    write_idx(path, np.arange(1000, dtype=np.int32))
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(IDXError, match=r"corrupt gzip data|truncated"):
        read_idx(path)
    damaged = bytearray(good)
    damaged[len(good) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(IDXError):
        read_idx(path)
    assert issubclass(IDXError, ValueError)
    assert zlib  # corrupt data reaches the caller as IDXError, not zlib.error


def test_raw_idx_size_is_checked_against_the_file_before_reading(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(idx_header(0x0C, 1000, 1000) + bytes(8))
    with pytest.raises(IDXError, match="truncated"):
        read_idx(path)


@pytest.mark.parametrize("label", [2**31 - 1, 2**16])
def test_a_huge_label_is_refused_before_class_names_are_built(tmp_path, label):
    write_mnist_like(tmp_path, np.array([0, label, 1], np.int32))
    with pytest.raises(
        IDXError, match=r"labels must be below 65536.*got " + str(label)
    ):
        load_dataset("toy", data_dir=tmp_path)


def test_float_idx_images_must_be_finite(tmp_path):
    images = np.zeros((3, 4, 4), np.float32)
    images[1, 2, 2] = np.nan
    write_mnist_like(tmp_path, np.array([0, 1, 1], np.uint8), images)
    with pytest.raises(IDXError, match="NaN or infinite"):
        load_dataset("toy", data_dir=tmp_path)


# --------------------------------------------------------------- images


def dark_bordered(low: float, high: float) -> np.ndarray:
    """28x28 values: a border at ``low`` (so no inversion), inside low..high."""
    array = np.full((28, 28), low)
    array[1:-1, 1:-1] = np.linspace(low, high, 26 * 26).reshape(26, 26)
    return array


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    from PIL import Image

    ramp = (np.arange(28 * 28).reshape(28, 28) * 83).astype(np.uint16)  # 0..65072
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    with Image.open(path) as img:
        assert img.mode == "I;16"
    got = load_images([path])[0, 0].astype(np.float64)
    np.testing.assert_allclose(got, np.rint(ramp / 65535 * 255), atol=1)
    assert len(np.unique(got)) > 200  # a ramp, not black and white


@pytest.mark.parametrize(
    ("values", "scale"),
    [
        (dark_bordered(0, 1), 255),  # floats in [0, 1]
        (dark_bordered(0, 255), 1),  # floats in [0, 255]
        (dark_bordered(-3, 5), None),  # other floats: their own range
    ],
)
def test_float_tiff_is_scaled_by_its_range(tmp_path, values, scale):
    from PIL import Image

    path = tmp_path / "f.tiff"
    array = values.astype(np.float32)
    Image.fromarray(array).save(path)
    got = load_images([path])[0, 0].astype(np.float64)
    expected = (
        (array - array.min()) / (array.max() - array.min()) * 255
        if scale is None
        else array * scale
    )
    np.testing.assert_allclose(got, np.rint(expected), atol=1)


def test_32_bit_integer_tiff_is_scaled_by_its_range(tmp_path):
    from PIL import Image

    array = dark_bordered(-(2**30), 2**30).astype(np.int32)
    path = tmp_path / "i.tiff"
    Image.fromarray(array).save(path)
    got = load_images([path])[0, 0].astype(np.float64)
    expected = (array - float(array.min())) / (2.0**31) * 255
    np.testing.assert_allclose(got, np.rint(expected), atol=1)


def test_nan_in_a_float_image_is_refused(tmp_path):
    from PIL import Image

    array = np.zeros((28, 28), np.float32)
    array[3, 3] = np.nan
    path = tmp_path / "nan.tiff"
    Image.fromarray(array).save(path)
    with pytest.raises(ValueError, match="NaN or infinite"):
        load_images([path])


@pytest.mark.parametrize("fmt", ["ICO", "TGA"])
def test_formats_starting_with_zero_bytes_are_images(tmp_path, fmt):
    from PIL import Image

    path = tmp_path / f"digit.{fmt.lower()}"
    array = np.zeros((28, 28), np.uint8)
    array[5:20, 10:15] = 255
    Image.fromarray(array).convert("RGBA" if fmt == "ICO" else "L").save(path)
    assert path.read_bytes()[:2] == b"\0\0"
    got = load_images([path])[0, 0]
    assert got[10, 12] > 200 and got[0, 0] < 30


def test_decompression_bomb_is_a_value_error(tmp_path, monkeypatch):
    from PIL import Image

    path = tmp_path / "bomb.png"
    Image.new("L", (200, 200)).save(path)
    # Lower Pillow's limit so that a small file counts as a bomb.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.raises(ValueError, match="decompression bomb"):  # the warning zone
        load_images([path])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    with pytest.raises(ValueError, match="decompression bomb"):  # Pillow's error
        load_images([path])


def test_image_over_the_pixel_limit_is_refused(tmp_path, monkeypatch):
    from PIL import Image

    from cnnumpy.data import images

    path = tmp_path / "big.png"
    Image.new("L", (100, 100)).save(path)
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 9_999)
    with pytest.raises(ValueError, match=r"100x100 pixels, more than the 9,999"):
        load_images([path])


def test_a_huge_size_is_refused_before_reading(tmp_path):
    with pytest.raises(ValueError, match=r"`size` asks for 10,000,000,000 elements"):
        load_images([tmp_path / "never-read.png"], size=(100_000, 100_000))
