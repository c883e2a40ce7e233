"""Pictures of feature maps, saliency and Grad-CAM (matplotlib, imported lazily).

Figures are drawn on the Agg canvas directly, without pyplot: no window, no
global backend switched behind the caller's back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnumpy.inspect.core import check_maps
from cnnumpy.pictures import figure, save
from cnnumpy.validation import check_int, check_str

__all__ = ["plot_feature_maps", "plot_grad_cam", "plot_saliency"]


def _real(a: object, name: str, ndims: tuple[int, ...], what: str) -> np.ndarray:
    """``a`` as a finite real array with one of ``ndims`` axes."""
    arr = np.asarray(a)
    if not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise TypeError(
            f"`{name}` must be an array of real numbers, got {type(a).__name__} "
            f"of dtype {arr.dtype}"
        )
    if arr.ndim not in ndims or arr.size == 0:
        raise ValueError(f"`{name}` must be a non-empty {what}, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"`{name}` must be finite, got NaN or infinite values")
    return arr


def _picture(image: object) -> np.ndarray:
    """An image (C, H, W) or (H, W) as something imshow draws: (H, W) or (H, W, 3)."""
    img = _real(image, "image", (2, 3), "image (C, H, W) or (H, W)")
    if img.ndim == 3:
        img = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)  # (H, W, C)
    if img.ndim == 3 and img.shape[2] != 3:
        img = img.mean(axis=2)  # a gray picture of other channel counts
    lo, hi = float(img.min()), float(img.max())
    return (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img, dtype=float)


def _show(ax, picture: np.ndarray, title: str, **kwargs) -> None:
    cmap = "gray" if picture.ndim == 2 else None
    ax.imshow(picture, cmap=kwargs.pop("cmap", cmap), **kwargs)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_feature_maps(
    path: str | Path, maps: dict[str, np.ndarray], max_channels: int = 16
) -> int:
    """Draw one image's feature maps: a row per layer, a panel per channel.

    Parameters
    ----------
    path : str or Path
        Image file to write; the format follows the suffix (``.png``).
    maps : dict of str to array, each (K, h, w)
        One image's maps by layer name, e.g. ``{k: v[0] for k, v in
        feature_maps(model, x).items()}``.
    max_channels : int
        At most this many channels are drawn per layer (the first ones).

    Returns
    -------
    int
        The number of panels drawn.

    Raises
    ------
    ImportError
        If matplotlib is not installed (``pip install 'cnnumpy[plot]'``).
    TypeError, ValueError
        ``maps`` not a non-empty dict of finite 3-D arrays; ``max_channels`` < 1;
        ``path`` without an image suffix.

    Notes
    -----
    Each panel has its own grey scale, from its smallest value (black) to its
    largest (white): the pattern shows, not the size; the summary of
    ``cnnumpy inspect`` compares the sizes.
    """
    checked = check_maps(maps)
    max_channels = check_int(max_channels, "max_channels", minimum=1)
    cols = min(max_channels, max(len(v) for v in checked.values()))
    # The layer names ('layer3.0.residual.body.conv2') label the rows, at left.
    label = 0.07 * max(len(name) for name in checked)
    fig, path = figure(path, (1.1 * cols + 0.6 + label, 1.25 * len(checked) + 0.4))
    axes = fig.subplots(len(checked), cols, squeeze=False)
    drawn = 0
    for row, (name, layer_maps) in zip(axes, checked.items()):
        row[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
        for c, ax in enumerate(row):
            if c < min(len(layer_maps), cols):
                _show(ax, layer_maps[c], f"[{c}]", cmap="gray")
                drawn += 1
            else:
                ax.axis("off")
    save(fig, path)
    return drawn


def plot_saliency(
    path: str | Path,
    image: np.ndarray,
    grad: np.ndarray,
    title: str = "saliency |d logit / d pixel|",
) -> None:
    """Draw an image beside its saliency map, ``|grad|`` largest over channels.

    Parameters
    ----------
    path : str or Path
        Image file to write; the format follows the suffix (``.png``).
    image : array, (C, H, W) or (H, W)
        The image as the eye sees it (uint8 pixels or floats).
    grad : array, (C, H, W) or (H, W)
        The input gradient of one image, from :func:`saliency`.
    title : str
        Above the saliency map (the class it is for, say).

    Raises
    ------
    ImportError
        If matplotlib is not installed (``pip install 'cnnumpy[plot]'``).
    TypeError, ValueError
        Arrays not real, finite, of the shapes above or of different sizes;
        ``path`` without an image suffix.
    """
    picture = _picture(image)
    g = _real(grad, "grad", (2, 3), "gradient (C, H, W) or (H, W)")
    heat = np.abs(g).max(axis=0) if g.ndim == 3 else np.abs(g)  # (H, W)
    if heat.shape != picture.shape[:2]:
        raise ValueError(
            f"`grad` must cover the image's {picture.shape[:2]} pixels, got "
            f"shape {g.shape}"
        )
    fig, path = figure(path, (5.0, 2.7))
    left, right = fig.subplots(1, 2)
    _show(left, picture, "image")
    _show(right, heat, check_str(title, "title"), cmap="hot")
    save(fig, path)


def plot_grad_cam(
    path: str | Path,
    image: np.ndarray,
    cam: np.ndarray,
    title: str = "Grad-CAM over the image",
) -> None:
    """Draw an image beside its Grad-CAM map laid over it.

    Parameters
    ----------
    path : str or Path
        Image file to write; the format follows the suffix (``.png``).
    image : array, (C, H, W) or (H, W)
        The image as the eye sees it (uint8 pixels or floats).
    cam : array, (H, W)
        One image's map from :func:`grad_cam`, in [0, 1].
    title : str
        Above the overlay (the layer and class, say).

    Raises
    ------
    ImportError
        If matplotlib is not installed (``pip install 'cnnumpy[plot]'``).
    TypeError, ValueError
        Arrays not real, finite, of the shapes above or of different sizes;
        ``path`` without an image suffix.
    """
    picture = _picture(image)
    heat = _real(cam, "cam", (2,), "map (H, W)")
    if heat.shape != picture.shape[:2]:
        raise ValueError(
            f"`cam` must cover the image's {picture.shape[:2]} pixels, got "
            f"shape {heat.shape}"
        )
    fig, path = figure(path, (5.0, 2.7))
    left, right = fig.subplots(1, 2)
    _show(left, picture, "image")
    _show(right, picture, check_str(title, "title"))
    right.imshow(heat, cmap="jet", alpha=0.5, vmin=0, vmax=1)
    save(fig, path)
