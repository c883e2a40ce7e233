"""cnnumpy.data.load_images: PNG, JPEG and IDX files for prediction."""

from __future__ import annotations

import gzip
import re
import sys

import numpy as np
import pytest

from cnnumpy.data import load_images, write_idx


def in_message(path) -> str:
    """A pytest ``match`` pattern: the file's path appears in the message."""
    return re.escape(str(path))


def digit_picture(background: int, ink: int, size: int = 56):
    """A bar (the 'digit') of ``ink`` on ``background``, as a Pillow image."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (size, size), background)
    ImageDraw.Draw(img).rectangle(
        [size * 3 // 8, size // 6, size * 5 // 8, size * 5 // 6], fill=ink
    )
    return img


def assert_light_on_dark(image: np.ndarray) -> None:
    assert image.shape == (1, 28, 28) and image.dtype == np.uint8
    border = np.concatenate(
        [image[0, 0], image[0, -1], image[0, :, 0], image[0, :, -1]]
    )
    assert border.mean() < 30
    assert image[0, 14, 14] > 200


def test_load_images_inverts_dark_digit_on_white_png(tmp_path):
    pytest.importorskip("PIL")
    path = tmp_path / "digit.png"
    digit_picture(background=255, ink=0).save(path)
    images = load_images([path])
    assert images.shape == (1, 1, 28, 28)
    assert_light_on_dark(images[0])


def test_load_images_keeps_light_digit_on_dark_jpeg(tmp_path):
    pytest.importorskip("PIL")
    path = tmp_path / "digit.jpg"
    digit_picture(background=0, ink=255, size=28).convert("RGB").save(path, quality=95)
    assert_light_on_dark(load_images(str(path))[0])


def test_load_images_lays_transparency_over_white(tmp_path):
    from PIL import Image

    path = tmp_path / "drawn.png"
    ink = digit_picture(background=0, ink=255)
    # Black strokes on a fully transparent background, as drawing apps save them.
    rgba = Image.merge("RGBA", (*[Image.new("L", ink.size, 0)] * 3, ink))
    rgba.save(path)
    assert_light_on_dark(load_images([path])[0])


def test_load_images_reads_idx_files_and_mixes_sources(tmp_path, rng):
    pytest.importorskip("PIL")
    stack = rng.integers(0, 256, size=(3, 28, 28)).astype(np.uint8)
    write_idx(tmp_path / "three.idx3.gz", stack)
    write_idx(tmp_path / "one.idx2", stack[1])
    digit_picture(background=255, ink=0).save(tmp_path / "digit.png")
    images = load_images(
        [tmp_path / "three.idx3.gz", tmp_path / "digit.png", tmp_path / "one.idx2"]
    )
    assert images.shape == (5, 1, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[:3, 0], stack)
    np.testing.assert_array_equal(images[4, 0], stack[1])


def test_load_images_resizes_to_size(tmp_path):
    pytest.importorskip("PIL")
    path = tmp_path / "digit.png"
    digit_picture(background=255, ink=0, size=100).save(path)
    assert load_images([path], size=(32, 16)).shape == (1, 1, 32, 16)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (
            np.zeros((2, 20, 20), np.uint8),
            r"images of 20x20, expected 28x28 \(`size`\)",
        ),
        (
            np.zeros((2, 28, 28), np.float32),
            "expected IDX images of ubyte, got float32",
        ),
        (np.zeros(28, np.uint8), r"2 or 3 dimensions, got shape \(28,\)"),
    ],
)
def test_load_images_rejects_bad_idx_files(tmp_path, array, message):
    path = tmp_path / "images.idx"
    write_idx(path, array)
    with pytest.raises(ValueError, match=in_message(path) + ".*" + message):
        load_images([path])


def test_load_images_errors_name_the_file(tmp_path):
    pytest.importorskip("PIL")
    text = tmp_path / "notes.txt"
    text.write_text("not an image at all")
    with pytest.raises(ValueError, match=in_message(text) + ": not an image"):
        load_images([text])
    gz = tmp_path / "notes.gz"
    gz.write_bytes(gzip.compress(b"hello world"))
    with pytest.raises(ValueError, match=in_message(gz) + ": neither an IDX file"):
        load_images([gz])
    png = tmp_path / "cut.png"
    digit_picture(255, 0).save(png)
    png.write_bytes(png.read_bytes()[:60])
    with pytest.raises(ValueError, match=in_message(png)):
        load_images([png])
    with pytest.raises(FileNotFoundError, match=r"missing\.png"):
        load_images([tmp_path / "missing.png"])


def test_load_images_validates_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"`paths` must not be empty, got \[\]"):
        load_images([])
    with pytest.raises(ValueError, match="`size` must be >= 1"):
        load_images([tmp_path / "x"], size=(0, 28))


def test_load_images_without_pillow_says_how_to_install(tmp_path, monkeypatch):
    path = tmp_path / "digit.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"pip install 'cnnumpy\[cli\]'"):
        load_images([path])


# ---------------------------------------------------------------- colour images


def test_colour_png_is_read_as_rgb_as_it_is(tmp_path, rng):
    from PIL import Image

    pixels = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    pixels[:, :, 0] = 250  # a bright border would invert a grey image
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    images = load_images(tmp_path / "photo.png", size=32, channels=3)
    assert images.shape == (1, 3, 32, 32) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[0], pixels.transpose(2, 0, 1))


def test_colour_png_is_resized_like_pillow(tmp_path, rng):
    from PIL import Image

    picture = Image.fromarray(rng.integers(0, 256, (40, 50, 3)).astype(np.uint8))
    picture.save(tmp_path / "photo.png")
    images = load_images(tmp_path / "photo.png", size=32, channels=3)
    resized = np.asarray(picture.resize((32, 32), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(images[0], resized.transpose(2, 0, 1))


def test_grey_images_for_a_colour_model_repeat_their_channel(tmp_path, rng):
    from PIL import Image

    grey = rng.integers(0, 256, (32, 32)).astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "deep.png")
    write_idx(tmp_path / "grey.idx", grey[None])
    for name in ("grey.png", "deep.png", "grey.idx"):
        images = load_images(tmp_path / name, size=32, channels=3)
        assert images.shape == (1, 3, 32, 32), name
        np.testing.assert_array_equal(images[0], np.stack([grey] * 3), err_msg=name)


def test_colour_image_for_a_grey_model_becomes_its_luma(tmp_path, rng):
    from PIL import Image

    picture = Image.fromarray(rng.integers(0, 256, (28, 28, 3)).astype(np.uint8))
    picture.save(tmp_path / "photo.png")
    luma = np.asarray(picture.convert("L"))  # ITU-R 601-2, as torchvision's Grayscale
    images = load_images(tmp_path / "photo.png")
    expected = 255 - luma if _border_mean(luma) > 127 else luma
    np.testing.assert_array_equal(images[0, 0], expected)


def _border_mean(a: np.ndarray) -> float:
    return float(np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]]).mean())


def test_transparent_colour_image_lies_over_white(tmp_path):
    from PIL import Image

    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[:16, :, :] = (200, 10, 30, 255)  # opaque red-ish top half
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "half.png")
    images = load_images(tmp_path / "half.png", size=32, channels=3)
    np.testing.assert_array_equal(images[0, :, 0, 0], [200, 10, 30])
    np.testing.assert_array_equal(images[0, :, 31, 0], [255, 255, 255])


def test_channels_must_be_one_or_three(tmp_path):
    with pytest.raises(ValueError, match=r"`channels` must be one of 1, 3, got 4"):
        load_images(tmp_path / "x.png", channels=4)
    with pytest.raises(TypeError, match=r"`channels` must be one of 1, 3, got str"):
        load_images(tmp_path / "x.png", channels="3")
