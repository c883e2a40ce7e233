"""The pictures and the summary of ``cnnumpy inspect``, for a trained model."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cnnumpy.inspect.core import check_maps, feature_maps, grad_cam, saliency
from cnnumpy.inspect.layers import cam_layer
from cnnumpy.inspect.plots import plot_feature_maps, plot_grad_cam, plot_saliency
from cnnumpy.training import TrainedModel
from cnnumpy.validation import check_instance, check_int, check_path

__all__ = ["inspect_images", "layer_activity"]


def layer_activity(maps: dict[str, np.ndarray]) -> dict[str, tuple[float, int]]:
    """How active each layer's maps are on one image.

    Parameters
    ----------
    maps : dict of str to array, each (K, h, w)
        One image's feature maps by layer name.

    Returns
    -------
    dict of str to (float, int)
        Per layer, the mean absolute activation over its maps and the channel
        with the largest mean absolute activation.
    """
    out = {}
    for name, a in check_maps(maps).items():
        per_channel = np.abs(a).mean(axis=(1, 2))  # (K,)
        out[name] = (float(per_channel.mean()), int(np.argmax(per_channel)))
    return out


def _unique(names: list[str]) -> list[str]:
    """``names`` with ``-2``, ``-3`` ... added to repeats, for file names."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


def inspect_images(
    trained: TrainedModel,
    images: np.ndarray,
    out_dir: str | os.PathLike,
    names: list[str] | None = None,
    top: int = 3,
) -> str:
    """Write feature maps, saliency and Grad-CAM pictures; return a summary.

    For image ``i`` named ``name``, ``out_dir`` receives
    ``name-feature-maps.png`` (every conv and pooling layer and residual
    block, at any depth: :func:`feature_maps`), ``name-saliency.png`` and
    ``name-grad-cam.png`` (both for the top class, Grad-CAM on its default
    layer: the last convolution, or the last residual block), and
    ``summary.txt`` holds the text returned.

    Parameters
    ----------
    trained : TrainedModel
        From :func:`cnnumpy.training.load_trained`.
    images : ndarray, shape (N, C, H, W)
        uint8 images of the model's input shape (:func:`cnnumpy.data.load_images`).
    out_dir : str or PathLike
        Created if missing.
    names : list of str, optional
        One name per image for the files (``image-0`` ... if None); repeats get
        ``-2``, ``-3`` ... added.
    top : int
        How many classes the summary lists per image.

    Returns
    -------
    str
        Per image: the top classes with probabilities, each layer's mean absolute
        activation and most active channel, and the most active layer.

    Raises
    ------
    TypeError, ValueError
        Bad arguments; images not of the model's input shape.
    ImportError
        If matplotlib is not installed (``pip install 'cnnumpy[plot]'``).
    """
    check_instance(trained, "trained", TrainedModel, "a TrainedModel")
    check_instance(images, "images", np.ndarray, "a numpy.ndarray of uint8 pixels")
    x = trained.normalize(images)  # checks the shape
    out = Path(check_path(out_dir, "out_dir"))
    if names is None:
        names = [f"image-{i}" for i in range(len(x))]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"`names` must be a list of str, got {names!r}")
    if len(names) != len(x) or not all(n and "/" not in n for n in names):
        raise ValueError(
            f"`names` must hold {len(x)} non-empty file names without '/', "
            f"got {names!r}"
        )
    top = check_int(top, "top", minimum=1)
    tops = trained.top_classes(images, top)
    maps = feature_maps(trained.model, x)
    grads, _ = saliency(trained.model, x)
    layer = cam_layer(trained.model)
    cams, classes = grad_cam(trained.model, x, layer)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, name in enumerate(_unique(names)):
        one = {layer: a[i] for layer, a in maps.items()}
        plot_feature_maps(out / f"{name}-feature-maps.png", one)
        label = trained.class_names[classes[i]]
        plot_saliency(
            out / f"{name}-saliency.png",
            images[i],
            grads[i],
            f"saliency |d logit / d pixel|, class {label}",
        )
        plot_grad_cam(
            out / f"{name}-grad-cam.png",
            images[i],
            cams[i],
            f"Grad-CAM on {layer}, class {label}",
        )
        guesses = ", ".join(f"{label} ({p:.1%})" for label, p in tops[i])
        activity = layer_activity(one)
        busiest = max(activity, key=lambda k: activity[k][0])
        lines += [
            f"{name}: {guesses}",
            f"  saliency and Grad-CAM ({layer}) for class {label}",
            *(
                f"  {layer}: mean |activation| {mean:.4g}, most active channel "
                f"{channel}"
                for layer, (mean, channel) in activity.items()
            ),
            f"  most active layer: {busiest}",
        ]
    text = "\n".join(lines) + "\n"
    (out / "summary.txt").write_text(text)
    return text
