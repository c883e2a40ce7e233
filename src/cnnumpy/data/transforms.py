"""Random augmentation of image batches, with torchvision's names and semantics.

torchvision's transforms take one image and draw from torch's global generator;
these take a whole batch ``(N, C, H, W)`` and a `numpy.random.Generator`, and
draw once per image, so that each image of a batch gets its own crop offset or
coin flip, as it would through torchvision's per-item pipeline. No loop runs
over the images: a crop is a fancy index into a window view of the padded batch.

A transform is any callable ``transform(images, rng) -> images``; `Compose`
chains them. `cnnumpy.data.DataLoader` applies one to each batch it yields,
with a generator fixed by its seed, the epoch and the batch's index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnumpy.validation import (
    check_bool,
    check_callable,
    check_choice,
    check_images,
    check_instance,
    check_int,
    check_pair,
    check_real,
)

__all__ = ["Compose", "RandomCrop", "RandomHorizontalFlip"]

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]
PADDING_MODES = ("constant", "edge", "reflect", "symmetric")
_RNG = "a numpy.random.Generator"


def _check_rng(rng: Any) -> np.random.Generator:
    return check_instance(rng, "rng", np.random.Generator, _RNG)


def _padding(value: Any) -> tuple[int, int, int, int]:
    """torchvision's padding, as (left, top, right, bottom)."""
    if isinstance(value, (list, tuple)) and len(value) in (1, 2, 4):
        sides = [check_int(v, f"padding[{i}]", minimum=0) for i, v in enumerate(value)]
    elif isinstance(value, (list, tuple)):
        raise ValueError(
            f"`padding` must have 1, 2 or 4 entries (all sides; left/right and "
            f"top/bottom; left, top, right, bottom), got {len(value)}"
        )
    else:
        sides = [check_int(value, "padding", minimum=0)]
    if len(sides) == 1:
        sides *= 4
    elif len(sides) == 2:
        sides *= 2
    left, top, right, bottom = sides
    return left, top, right, bottom


def _fill(value: Any) -> tuple[float, ...]:
    """A number, or one number per channel."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError("`fill` must hold one number per channel, got none")
        return tuple(check_real(v, f"fill[{i}]") for i, v in enumerate(value))
    return (check_real(value, "fill"),)


class RandomCrop:
    """Crop each image at a random place, after padding, as torchvision's.

    Each image is padded (``padding``, then, with ``pad_if_needed``, up to
    ``size``), and the ``size`` window is cut at an offset drawn uniformly from
    all places it fits, independently per image: ``top = rng.integers(0,
    H' - h + 1)``, ``left = rng.integers(0, W' - w + 1)``, for the padded
    height ``H'`` and width ``W'``.

    Parameters
    ----------
    size : int or (int, int)
        Height and width of the crop (one int: a square).
    padding : int or sequence of int, optional
        Added to the borders first: one int for all four; two for left/right
        and top/bottom; four for left, top, right, bottom. None adds nothing.
    pad_if_needed : bool, default False
        Pad an image smaller than ``size`` on both sides of the short axis by
        the difference (torchvision's rule) instead of refusing it.
    fill : float or sequence of float, default 0
        The value of padded pixels with ``padding_mode='constant'``; a sequence
        gives one per channel. The value is taken as it is in the batch: on
        normalised images, the normalised value of the colour wanted (see
        `cnnumpy.training.train_run`, which pads with normalised black).
    padding_mode : {'constant', 'edge', 'reflect', 'symmetric'}
        How the border is filled (NumPy's ``np.pad`` modes, torchvision's names).

    Raises
    ------
    TypeError, ValueError
        For a bad argument; when called, for a batch that is not (N, C, H, W),
        a crop larger than the padded image, or a ``fill`` of another length
        than the channels.

    Examples
    --------
    >>> crop = RandomCrop(2, padding=1)
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> crop(x, np.random.default_rng(0)).shape
    (1, 1, 2, 2)
    """

    def __init__(
        self,
        size: int | tuple[int, int],
        padding: int | Sequence[int] | None = None,
        pad_if_needed: bool = False,
        fill: float | Sequence[float] = 0,
        padding_mode: str = "constant",
    ) -> None:
        self.size = check_pair(size, "size", minimum=1)
        self.padding = None if padding is None else _padding(padding)
        self.pad_if_needed = check_bool(pad_if_needed, "pad_if_needed")
        self.fill = _fill(fill)
        self.padding_mode = check_choice(padding_mode, "padding_mode", PADDING_MODES)

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The batch ``images`` (N, C, H, W), each cropped at its own offset.

        Returns a new array (N, C, h, w) of the same dtype; draws ``2 N``
        integers from ``rng`` (the tops, then the lefts).
        """
        images = check_images(images, "images")
        rng = _check_rng(rng)
        padded = self._pad(images)
        N, _, H, W = padded.shape
        h, w = self.size
        if h > H or w > W:
            raise ValueError(
                f"the crop `size` {self.size} is larger than the "
                f"{'padded ' if self.padding else ''}images ({H}, {W})"
            )
        tops = rng.integers(0, H - h + 1, size=N)
        lefts = rng.integers(0, W - w + 1, size=N)
        # (N, C, H - h + 1, W - w + 1, h, w), a view
        windows = sliding_window_view(padded, (h, w), axis=(2, 3))
        return windows[np.arange(N), :, tops, lefts]  # (N, C, h, w), a copy

    def _pad(self, images: np.ndarray) -> np.ndarray:
        left, top, right, bottom = self.padding or (0, 0, 0, 0)
        N, C, H, W = images.shape
        if self.pad_if_needed:
            h, w = self.size
            grow_w = max(w - (W + left + right), 0)
            grow_h = max(h - (H + top + bottom), 0)
            left, right = left + grow_w, right + grow_w
            top, bottom = top + grow_h, bottom + grow_h
        if not (left or top or right or bottom):
            return images
        if self.padding_mode != "constant":
            limit = H if self.padding_mode == "symmetric" else H - 1
            limit_w = W if self.padding_mode == "symmetric" else W - 1
            if max(top, bottom) > limit or max(left, right) > limit_w:
                raise ValueError(
                    f"`padding` {(left, top, right, bottom)} is too large for "
                    f"{self.padding_mode!r} padding of ({H}, {W}) images"
                )
            width = ((0, 0), (0, 0), (top, bottom), (left, right))
            return np.pad(images, width, mode=self.padding_mode)
        if len(self.fill) not in (1, C):
            raise ValueError(
                f"`fill` has {len(self.fill)} values for images of {C} channels"
            )
        out = np.empty((N, C, top + H + bottom, left + W + right), images.dtype)
        out[...] = np.asarray(self.fill).astype(images.dtype)[:, None, None]
        out[:, :, top : top + H, left : left + W] = images
        return out

    def __repr__(self) -> str:
        fill = self.fill[0] if len(self.fill) == 1 else self.fill
        return (
            f"RandomCrop(size={self.size}, padding={self.padding}, "
            f"pad_if_needed={self.pad_if_needed}, fill={fill}, "
            f"padding_mode={self.padding_mode!r})"
        )


class RandomHorizontalFlip:
    """Mirror each image left to right with probability ``p``, as torchvision's.

    An image is flipped when its draw ``rng.random() < p``: never for
    ``p=0``, always for ``p=1``. Do not flip digits or letters: a mirrored 2
    is not a 2.

    Parameters
    ----------
    p : float in [0, 1], default 0.5
        The probability of flipping each image.

    Examples
    --------
    >>> x = np.arange(3.0).reshape(1, 1, 1, 3)
    >>> RandomHorizontalFlip(p=1.0)(x, np.random.default_rng(0))
    array([[[[2., 1., 0.]]]])
    """

    def __init__(self, p: float = 0.5) -> None:
        self.p = check_real(p, "p", minimum=0, maximum=1)

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The batch ``images`` (N, C, H, W) with some images mirrored.

        Returns a new array of the same shape and dtype; draws ``N`` floats
        from ``rng``.
        """
        images = check_images(images, "images")
        rng = _check_rng(rng)
        flip = rng.random(len(images)) < self.p
        return np.where(flip[:, None, None, None], images[..., ::-1], images)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Compose:
    """Apply transforms one after the other, each with the same generator.

    Parameters
    ----------
    transforms : sequence of callable
        Each ``transform(images, rng) -> images``.

    Examples
    --------
    >>> augment = Compose([RandomCrop(28, padding=2), RandomHorizontalFlip()])
    >>> augment(np.zeros((4, 1, 28, 28)), np.random.default_rng(0)).shape
    (4, 1, 28, 28)
    """

    def __init__(self, transforms: Sequence[Transform]) -> None:
        check_instance(transforms, "transforms", (list, tuple), "a list of transforms")
        self.transforms = [
            check_callable(t, f"transforms[{i}]") for i, t in enumerate(transforms)
        ]

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``images`` through every transform in turn."""
        images = check_images(images, "images")
        rng = _check_rng(rng)
        for transform in self.transforms:
            images = transform(images, rng)
        return images

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])" if inner else "Compose([])"
