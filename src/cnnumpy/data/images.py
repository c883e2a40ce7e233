"""Load images to classify: PNG or JPEG files, or IDX files of images."""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnumpy.data.idx import (
    GZIP_MAGIC,
    IDXError,
    is_idx_header,
    parse_idx,
    read_bytes,
)
from cnnumpy.validation import check_choice, check_elements, check_pair

__all__ = ["load_images"]

PathLike = str | os.PathLike[str]


def load_images(
    paths: PathLike | Sequence[PathLike],
    size: int | tuple[int, int] = (28, 28),
    channels: int = 1,
) -> np.ndarray:
    """Read images for prediction: MNIST-like grey digits, or colour pictures.

    Each file is told by its first bytes, not its name:

    - the magic bytes of an image format (PNG, JPEG, GIF, BMP, TIFF, ICO, WebP
      ...) send it to Pillow, even when they start with zero bytes like IDX;
    - an IDX file (gzip or raw) contributes all its images: 2-D (one image)
      or 3-D (N, H, W) uint8, each exactly ``size``;
    - anything else is opened with Pillow: transparency is laid over white,
      the image converted to grayscale ('L') or, with ``channels=3``, to RGB,
      and resized to ``size`` with Lanczos filtering (antialiased; the aspect
      ratio is not kept). 16-bit images are scaled from 0..65535, 32-bit
      integer and float ones from their range (see `_value_range`), never
      clipped. A grey image is inverted if the mean of its border pixels is
      bright (> 127), so that a dark digit drawn on white becomes light on
      dark like MNIST; a colour one is taken as it is.

    Images of the other kind are converted, as torchvision's ``Grayscale``
    and Pillow's ``convert('RGB')`` do: a colour picture read with
    ``channels=1`` becomes its luma (ITU-R 601-2: 0.299 R + 0.587 G +
    0.114 B), a grey picture or IDX file read with ``channels=3`` repeats its
    one channel three times.

    An image of more than `MAX_IMAGE_PIXELS` pixels, or one Pillow takes for a
    decompression bomb, is refused before it is decoded.

    Parameters
    ----------
    paths : path or sequence of paths
        The files, read in order.
    size : int or (int, int)
        (height, width) of the result's images, at most `MAX_IMAGE_PIXELS`
        pixels.
    channels : {1, 3}
        1 for grey images (a model's ``in_channels`` of 1), 3 for RGB.

    Returns
    -------
    numpy.ndarray
        uint8 (N, channels, height, width), N the total number of images.

    Raises
    ------
    ValueError
        If a file is not an image, is too large, holds NaN, is a malformed IDX
        file (`IDXError`), or holds IDX images of another size or type; the
        message names the file.
    ImportError
        If a file needs Pillow and it is not installed.
    OSError
        If a file cannot be read.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not isinstance(paths, Sequence) or not all(
        isinstance(p, (str, os.PathLike)) for p in paths
    ):
        raise TypeError(f"`paths` must be a path or a sequence of paths, got {paths!r}")
    if not paths:
        raise ValueError(f"`paths` must not be empty, got {paths!r}")
    height, width = check_pair(size, "size", minimum=1)
    check_elements(height * width, "size", MAX_IMAGE_PIXELS)
    check_choice(channels, "channels", (1, 3))
    batches = [_load_one(Path(p), (height, width), channels) for p in paths]
    return np.concatenate(batches)  # (N, channels, H, W)


# Magic bytes of the formats Pillow reads, tried before the IDX reader: an ICO
# (00 00 01 00) or a TGA (00 00 02 00) starts with two zero bytes, like IDX.
IMAGE_MAGICS = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",  # JPEG
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\0",  # TIFF, little-endian
    b"MM\0*",  # TIFF, big-endian
    b"\0\0\1\0",  # ICO
    b"\0\0\2\0",  # CUR, or an uncompressed TGA
    b"RIFF",  # WebP
    b"qoif",
)

# The largest image decoded, in pixels (Pillow's own default bomb limit is about
# 89 million; a larger file is refused before it is decoded).
MAX_IMAGE_PIXELS = 89_478_485
# The largest image file read (an uncompressed RGBA TIFF of MAX_IMAGE_PIXELS).
MAX_IMAGE_FILE_BYTES = 4 * MAX_IMAGE_PIXELS
# Pillow modes of more than 8 bits per pixel, scaled from their range to 0..255.
_WIDE_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")


class _Refused(ValueError):
    """An image refused by this module's own checks (not a decoder's error)."""


def _load_one(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(IMAGE_MAGICS):
        return _load_picture(path, size, channels)
    if head.startswith(GZIP_MAGIC):
        return _repeat(_load_idx(path, size), channels)
    if is_idx_header(head):
        try:
            return _repeat(_load_idx(path, size), channels)
        except IDXError:
            # Formats without magic bytes (TGA ...) may look like IDX: the IDX
            # error stands only if Pillow cannot read the file either.
            try:
                return _load_picture(path, size, channels)
            except (ValueError, ImportError):
                pass
            raise
    return _load_picture(path, size, channels)


def _repeat(grey: np.ndarray, channels: int) -> np.ndarray:
    """Grey images (N, 1, H, W) as (N, channels, H, W), like convert('RGB')."""
    return grey if channels == 1 else np.repeat(grey, channels, axis=1)


def _load_idx(path: Path, size: tuple[int, int]) -> np.ndarray:
    try:
        images = parse_idx(read_bytes(path), path)
    except IDXError as err:
        if "not an IDX file" in str(err) or "unknown IDX type" in str(err):
            raise IDXError(f"{path}: neither an IDX file nor an image") from None
        raise
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise IDXError(
            f"{path}: expected IDX images of 2 or 3 dimensions, got shape "
            f"{images.shape}"
        )
    if images.dtype != np.uint8:
        raise IDXError(f"{path}: expected IDX images of ubyte, got {images.dtype}")
    if images.shape[1:] != size:
        raise IDXError(
            f"{path}: holds images of {images.shape[1]}x{images.shape[2]}, "
            f"expected {size[0]}x{size[1]} (`size`)"
        )
    return images[:, None]  # (N, 1, H, W)


def _load_picture(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as err:
        raise ImportError(
            f"reading {path} needs Pillow: pip install 'cnnumpy[cli]'"
        ) from err
    height, width = size
    file_size = path.stat().st_size
    if file_size > MAX_IMAGE_FILE_BYTES:
        raise ValueError(
            f"{path}: {file_size:,} bytes, more than the {MAX_IMAGE_FILE_BYTES:,} "
            f"allowed for an image file"
        )
    # From memory: Pillow's plugins read chunks of the size a header declares,
    # and a file object allocates that size before reading; BytesIO does not.
    source = io.BytesIO(path.read_bytes())
    try:
        with warnings.catch_warnings():
            # A bomb warning is an error here: the file is refused, not decoded.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                w, h = img.size
                if w * h > MAX_IMAGE_PIXELS:
                    raise _Refused(
                        f"{path}: image of {w}x{h} pixels, more than the "
                        f"{MAX_IMAGE_PIXELS:,} allowed"
                    )
                picture = _convert(img, path, channels)
                if picture.size != (width, height):
                    picture = picture.resize((width, height), Image.Resampling.LANCZOS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ValueError(f"{path}: refused as a decompression bomb ({err})") from None
    except UnidentifiedImageError as err:
        raise ValueError(f"{path}: not an image Pillow can read") from err
    except (_Refused, MemoryError):
        raise
    except (OSError, SyntaxError, EOFError) as err:
        # Pillow reports truncated or corrupt files as OSError (or SyntaxError).
        raise ValueError(f"{path}: unreadable image ({err})") from err
    except Exception as err:
        # A decoder meeting hostile bytes may raise anything (TypeError from a
        # TIFF tag of the wrong type ...): the file is unreadable all the same.
        raise ValueError(
            f"{path}: unreadable image ({type(err).__name__}: {err})"
        ) from err
    pixels = np.asarray(picture, dtype=np.float32)  # (H, W) or (H, W, 3)
    pixels = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    if channels == 3:
        if pixels.ndim == 2:  # a wide grey mode, kept grey through the resize
            return _repeat(pixels[None, None], channels)
        return pixels.transpose(2, 0, 1)[None]  # (1, 3, H, W)
    border = np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])
    if border.mean() > 127:
        pixels = 255 - pixels
    return pixels[None, None]  # (1, 1, H, W)


def _convert(img: Any, path: Path, channels: int) -> Any:
    """``img`` in mode 'L' (one channel) or 'RGB', or 'F' in [0, 255] for wide
    modes, which stay grey until after the resize (see `_load_picture`)."""
    from PIL import Image

    if img.mode in _WIDE_MODES:
        values = np.asarray(img, dtype=np.float64)  # (H, W)
        if not np.isfinite(values).all():
            raise _Refused(f"{path}: image holds NaN or infinite values")
        low, high = _value_range(img.mode, values)
        scaled = (values - low) * (255.0 / (high - low)) if high > low else values * 0
        return Image.fromarray(np.clip(scaled, 0, 255).astype(np.float32), mode="F")
    mode = "L" if channels == 1 else "RGB"
    if "A" in img.getbands() or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, "white")
        return Image.alpha_composite(white, rgba).convert(mode)
    return img.convert(mode)


def _value_range(mode: str, values: np.ndarray) -> tuple[float, float]:
    """The range mapped to 0..255: the samples' type's, else the values' own.

    16-bit modes span 0..65535. 32-bit integers and floats have no useful type
    range: 0..255, 0..65535 (integers) or 0..1 (floats) when the values fit in
    it, else their own minimum and maximum.
    """
    low, high = float(values.min(initial=0)), float(values.max(initial=0))
    if mode.startswith("I;16"):
        return 0.0, 65535.0
    spans = ((0.0, 1.0), (0.0, 255.0)) if mode == "F" else ((0.0, 255.0), (0, 65535.0))
    for start, stop in spans:
        if start <= low and high <= stop:
            return start, stop
    return low, high
