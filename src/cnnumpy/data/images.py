"""Load images to classify: PNG or JPEG files, or IDX files of images."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cnnumpy.data.idx import GZIP_MAGIC, is_idx_header, parse_idx, read_bytes
from cnnumpy.validation import check_pair

__all__ = ["load_images"]

PathLike = str | os.PathLike[str]


def load_images(
    paths: PathLike | Sequence[PathLike], size: int | tuple[int, int] = (28, 28)
) -> np.ndarray:
    """Read images as MNIST-like uint8 digits, light on dark, for prediction.

    Each file is told by its first bytes, not its name:

    - an IDX file (gzip or raw) contributes all its images: 2-D (one image)
      or 3-D (N, H, W) uint8, each exactly ``size``;
    - anything else is opened with Pillow (PNG, JPEG ...): transparency is laid
      over white, the image converted to grayscale ('L') and resized to
      ``size`` with Lanczos filtering (antialiased; the aspect ratio is not
      kept). If the mean of its border pixels is bright (> 127) it is inverted,
      so that a dark digit drawn on white becomes light on dark like MNIST.

    Parameters
    ----------
    paths : path or sequence of paths
        The files, read in order.
    size : int or (int, int)
        (height, width) of the result's images.

    Returns
    -------
    numpy.ndarray
        uint8 (N, 1, height, width), N the total number of images.

    Raises
    ------
    ValueError
        If a file is not an image, is a malformed IDX file, or holds IDX images
        of another size or type; the message names the file.
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
    batches = [_load_one(Path(p), (height, width)) for p in paths]
    return np.concatenate(batches)  # (N, 1, H, W)


def _load_one(path: Path, size: tuple[int, int]) -> np.ndarray:
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(GZIP_MAGIC) or head[:2] == b"\0\0":
        return _load_idx(path, size)
    return _load_picture(path, size)


def _load_idx(path: Path, size: tuple[int, int]) -> np.ndarray:
    data = read_bytes(path)
    if not is_idx_header(data):
        raise ValueError(f"{path}: neither an IDX file nor an image")
    images = parse_idx(data, path)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise ValueError(
            f"{path}: expected IDX images of 2 or 3 dimensions, got shape "
            f"{images.shape}"
        )
    if images.dtype != np.uint8:
        raise ValueError(f"{path}: expected IDX images of ubyte, got {images.dtype}")
    if images.shape[1:] != size:
        raise ValueError(
            f"{path}: holds images of {images.shape[1]}x{images.shape[2]}, "
            f"expected {size[0]}x{size[1]} (`size`)"
        )
    return images[:, None]  # (N, 1, H, W)


def _load_picture(path: Path, size: tuple[int, int]) -> np.ndarray:
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as err:
        raise ImportError(
            f"reading {path} needs Pillow: pip install 'cnnumpy[cli]'"
        ) from err
    try:
        with Image.open(path) as img:
            if "A" in img.getbands() or "transparency" in img.info:
                rgba = img.convert("RGBA")
                white = Image.new("RGBA", rgba.size, "white")
                gray = Image.alpha_composite(white, rgba).convert("L")
            else:
                gray = img.convert("L")
    except UnidentifiedImageError as err:
        raise ValueError(f"{path}: not an image Pillow can read") from err
    except (OSError, SyntaxError) as err:
        # Pillow reports truncated or corrupt files as OSError (or SyntaxError).
        raise ValueError(f"{path}: unreadable image ({err})") from err
    height, width = size
    if gray.size != (width, height):
        gray = gray.resize((width, height), Image.Resampling.LANCZOS)
    pixels = np.asarray(gray, dtype=np.uint8)  # (H, W)
    border = np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])
    if border.mean() > 127:
        pixels = 255 - pixels
    return pixels[None, None]  # (1, 1, H, W)
