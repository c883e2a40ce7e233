"""What a trained network computes on an image: feature maps, saliency, Grad-CAM.

Everything here is NumPy: the model's forward pass, keeping the outputs of
the layers of interest at any depth (`cnnumpy.inspect.layers`), and its
backward pass from a one-hot gradient of the chosen class's logit. The model
is put in evaluation mode for the pass and its parameters' gradients are put
back as they were: inspecting a model changes nothing in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from cnnumpy import nn
from cnnumpy.inspect.layers import cam_layer, map_layers, watching
from cnnumpy.validation import check_array, check_instance, check_int, check_str

__all__ = [
    "check_maps",
    "feature_maps",
    "grad_cam",
    "saliency",
    "upsample_bilinear",
]


def _check_model_input(model: object, x: object) -> tuple[nn.Sequential, np.ndarray]:
    model = check_instance(model, "model", nn.Sequential, "an nn.Sequential")
    x = check_array(x, "x", 4, "images (N, C, H, W)")
    if x.shape[0] == 0:
        raise ValueError(f"`x` must hold at least one image, got shape {x.shape}")
    return model, x


@contextmanager
def _untouched(model: nn.Sequential) -> Iterator[None]:
    """Evaluation mode and fresh gradients inside; modes and grads put back after."""
    modes = [(m, m.training, m.input_grad) for m in model.modules()]
    grads = [(p, p.grad) for p in model.parameters()]
    model.eval()
    for p, _ in grads:
        p.grad = None
    try:
        yield
    finally:
        for m, training, input_grad in modes:
            m.training, m.input_grad = training, input_grad
        for p, grad in grads:
            p.grad = grad


def _one_hot(logits: np.ndarray, target: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``dy`` for the chosen class of each image (its top class if ``target`` is
    None) and those classes."""
    N, K = logits.shape
    if target is None:
        classes = np.argmax(logits, axis=1)
    else:
        target = check_int(target, "target", minimum=0, maximum=K - 1)
        classes = np.full(N, target)
    dy = np.zeros_like(logits)
    dy[np.arange(N), classes] = 1
    return dy, classes


def feature_maps(model: nn.Sequential, x: np.ndarray) -> dict[str, np.ndarray]:
    """The output of every convolution, pooling layer and residual block.

    Layers at any depth count, named by their path in ``model.named_modules()``.
    A residual block is a Sequential that starts with a Residual (the sum and
    the activation after it, as torchvision's ``BasicBlock``), or a Residual
    alone. Global pooling (``AdaptiveAvgPool2d``), one value per channel, is
    left out.

    Parameters
    ----------
    model : nn.Sequential
        Run in evaluation mode.
    x : ndarray, shape (N, C, H, W)
        Normalized images, in the model's dtype.

    Returns
    -------
    dict of str to ndarray
        ``{'conv1': (N, 6, 28, 28), 'pool1': (N, 6, 14, 14), ...}`` for LeNet-5
        on 28x28 images; ``{'conv1': ..., 'layer1.0.residual.body.conv1': ...,
        'layer1.0.residual.body.conv2': ..., 'layer1.0': ..., ...}`` for
        resnet8. In the order the layers finish (a block after the layers
        inside it), as copies, so an in-place activation after a convolution
        leaves its map as the convolution made it (before the activation).

    Raises
    ------
    TypeError
        ``model`` not an nn.Sequential, ``x`` not a float ndarray.
    ValueError
        ``x`` not 4-D or empty.
    """
    model, x = _check_model_input(model, x)
    with _untouched(model), watching(map_layers(model)) as (maps, _, _):
        model(x)
    return {name: a for name, a in maps.items() if a.ndim == 4}


def saliency(
    model: nn.Sequential, x: np.ndarray, target: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The gradient of a class's logit with respect to the input pixels.

    Parameters
    ----------
    model : nn.Sequential
        Its last layer's outputs are the logits (before softmax).
    x : ndarray, shape (N, C, H, W)
        Normalized images, in the model's dtype.
    target : int, optional
        The class whose logit is differentiated; each image's top class if None.

    Returns
    -------
    grad : ndarray, shape (N, C, H, W)
        ``d logit[n, target_n] / d x[n]``. The saliency picture is its absolute
        value, largest over the channels.
    classes : ndarray of int, shape (N,)
        The class differentiated for each image.

    Raises
    ------
    TypeError, ValueError
        As :func:`feature_maps`; ``target`` not an int in ``[0, K)``.
    """
    model, x = _check_model_input(model, x)
    with _untouched(model):
        model.input_grad = True
        logits = model(x)
        dy, classes = _one_hot(logits, target)
        grad = model.backward(dy)
    return grad, classes


def check_maps(maps: object) -> dict[str, np.ndarray]:
    """``maps`` as a non-empty dict of finite real (K, h, w) arrays by layer name."""
    if not isinstance(maps, dict):
        raise TypeError(f"`maps` must be a dict of arrays, got {type(maps).__name__}")
    if not maps:
        raise ValueError("`maps` must hold at least one layer, got an empty dict")
    out = {}
    for key, value in maps.items():
        a = np.asarray(value)
        name = f"maps[{key!r}]"
        if a.dtype.kind not in "iuf":
            raise TypeError(f"`{name}` must be a real array, got dtype {a.dtype}")
        if a.ndim != 3 or a.size == 0:
            raise ValueError(f"`{name}` must be a non-empty (K, h, w), got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"`{name}` must be finite, got NaN or infinite values")
        out[str(key)] = a
    return out


def grad_cam(
    model: nn.Sequential,
    x: np.ndarray,
    layer: str | None = None,
    target: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM: where in the image a layer's maps support a class.

    With ``A`` the output of ``layer`` (K maps) and ``s`` the class's logit::

        w_k = mean over (i, j) of d s / d A_k[i, j]
        cam = ReLU(sum_k w_k A_k)

    upsampled bilinearly to the input's size (`upsample_bilinear`, PyTorch's
    ``interpolate(mode='bilinear', align_corners=False)``) and divided by its
    largest value, so each image's map lies in [0, 1] (all zeros if no pixel
    is positive).

    Parameters
    ----------
    model : nn.Sequential
        Its last layer's outputs are the logits (before softmax).
    x : ndarray, shape (N, C, H, W)
        Normalized images, in the model's dtype.
    layer : str, optional
        The layer whose output is ``A``, by its path in
        ``model.named_modules()``: ``'conv2'``, ``'layer3.0'``,
        ``'layer3.0.residual.body.conv2'``. If None, the last Conv2d (its
        output before the activation that follows it); or, when that
        convolution is inside a residual block, the last block's output, the
        ReLU of its sum (see Notes).
    target : int, optional
        The class explained; each image's top class if None.

    Returns
    -------
    cam : ndarray, shape (N, H, W)
        In [0, 1].
    classes : ndarray of int, shape (N,)
        The class explained for each image.

    Raises
    ------
    TypeError, ValueError
        As :func:`saliency`; ``layer`` not the name of a layer that runs once
        with a 4-D output.

    Notes
    -----
    In a ResNet the default is the last block's output, as pytorch-grad-cam
    takes ``model.layer4[-1]``: the maps the global average pooling reads, on
    which Grad-CAM is the class activation map of Zhou et al. (2016), the
    class's weights in the last layer times the maps. The last convolution in
    the block would leave out the shortcut's share, and in resnet8 the last
    convolution to run is the shortcut's 1x1 projection.
    """
    model, x = _check_model_input(model, x)
    layers = {name: m for name, m in model.named_modules() if name}
    if layer is None:
        layer = cam_layer(model)
    if check_str(layer, "layer") not in layers:
        raise ValueError(f"`layer` must be one of {list(layers)}, got {layer!r}")
    with _untouched(model), watching({layer: layers[layer]}) as (outputs, grads, calls):
        # Every layer passes its input gradient on, so the watched one gets it.
        model.input_grad = True
        logits = model(x)
        if calls[layer] != 1:
            raise ValueError(
                f"`layer` must run once in the forward pass, {layer!r} ran "
                f"{calls[layer]} times"
            )
        maps = outputs[layer]
        if maps.ndim != 4:
            raise ValueError(
                f"`layer` must have a 4-D output (N, K, h, w), {layer!r} gives "
                f"shape {maps.shape}"
            )
        dy, classes = _one_hot(logits, target)
        model.backward(dy)
        dmaps = grads[layer]  # (N, K, h, w)
    weights = dmaps.mean(axis=(2, 3))  # (N, K)
    cam = np.maximum(np.einsum("nk,nkhw->nhw", weights, maps), 0)  # (N, h, w)
    cam = upsample_bilinear(cam, x.shape[2:])  # (N, H, W)
    top = cam.max(axis=(1, 2), keepdims=True)
    return np.divide(cam, top, out=np.zeros_like(cam), where=top > 0), classes


def upsample_bilinear(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``(N, h, w)`` maps to ``(N, H, W)`` bilinearly, as PyTorch's
    ``interpolate(mode='bilinear', align_corners=False)``.

    Output pixel ``o`` samples the input at ``(o + 0.5) * h / H - 0.5``
    (clamped at 0): pixel centres line up, and the edges repeat.
    """
    a = check_array(a, "a", 3, "maps (N, h, w)")
    H = check_int(size[0], "size[0]", minimum=1)
    W = check_int(size[1], "size[1]", minimum=1)

    def taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0)
        lo = np.floor(src).astype(np.intp)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (src - lo).astype(a.dtype)

    y0, y1, fy = taps(a.shape[1], H)
    x0, x1, fx = taps(a.shape[2], W)
    rows = a[:, y0] * (1 - fy)[:, None] + a[:, y1] * fy[:, None]  # (N, H, w)
    return rows[:, :, x0] * (1 - fx) + rows[:, :, x1] * fx  # (N, H, W)
