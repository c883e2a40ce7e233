"""Which layers `cnnumpy.inspect` looks at, at any depth, and how it watches them.

Layers are named by their dotted path, as in ``model.named_modules()`` and the
``state_dict`` keys: ``'conv2'`` in LeNet-5, ``'layer3.0.residual.body.conv2'``
in a ResNet. The forward and backward passes are the model's own; to see what
one layer outputs and what gradient reaches it, `watching` wraps that layer's
``forward`` and ``backward`` for the length of a ``with`` block, as instance
attributes that shadow the class's methods, and removes them after.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from cnnumpy import nn

__all__ = ["cam_layer", "map_layers", "residual_blocks", "watching"]

# The layers whose outputs are feature maps: (N, channels, height, width).
# Not AdaptiveAvgPool2d: as global pooling it makes one value per channel.
MAP_LAYERS = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


def residual_blocks(model: nn.Module) -> dict[str, nn.Module]:
    """Each residual block by name: a Sequential that starts with a Residual
    (the sum then its activation, torchvision's ``BasicBlock``), else the
    Residual itself."""
    blocks: dict[str, nn.Module] = {}
    inside: set[int] = set()  # the Residuals that start a block already met
    for name, m in model.named_modules():
        if isinstance(m, nn.Sequential) and len(m) and isinstance(m[0], nn.Residual):
            blocks[name] = m
            inside.add(id(m[0]))
        elif isinstance(m, nn.Residual) and id(m) not in inside:
            blocks[name] = m
    blocks.pop("", None)  # the model itself is no layer of it
    return blocks


def map_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The layers `feature_maps` keeps: every convolution and pooling layer at
    any depth, and each residual block's output."""
    blocks = residual_blocks(model)
    return {
        name: m
        for name, m in model.named_modules()
        if name and (isinstance(m, MAP_LAYERS) or name in blocks)
    }


def cam_layer(model: nn.Module) -> str:
    """The layer Grad-CAM uses by default: the last Conv2d, or the last
    residual block if the last Conv2d is inside one.

    The walk follows ``named_modules``, which is the order the layers run in
    Sequential and Residual (body, then shortcut) containers.
    """
    blocks = residual_blocks(model)
    last = None
    for name, m in model.named_modules():
        if any(name.startswith(b + ".") for b in blocks):
            continue  # a block counts as one layer, after everything inside it
        if isinstance(m, nn.Conv2d) or name in blocks:
            last = name
    if last is None:
        kinds = ", ".join(type(m).__name__ for m in model.children())
        raise ValueError(
            f"`model` must have a Conv2d layer for Grad-CAM, got layers ({kinds})"
        )
    return last


@contextmanager
def watching(
    layers: dict[str, nn.Module],
) -> Iterator[tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, int]]]:
    """Record the named layers' outputs and the gradients reaching them.

    Yields ``(outputs, grads, calls)``, filled as the model runs: each layer's
    last output (a copy: an in-place activation after it would overwrite it),
    in the order the layers finish; the gradient its last backward received;
    how many times its forward ran. The layers are as they were after the
    block, even if it raises.
    """
    outputs: dict[str, np.ndarray] = {}
    grads: dict[str, np.ndarray] = {}
    calls = dict.fromkeys(layers, 0)
    # What the layers hold as instance attributes already (a spy), to put back.
    own = [
        (m, {k: v for k, v in vars(m).items() if k in ("forward", "backward")})
        for m in layers.values()
    ]

    def wrap(name: str, layer: nn.Module) -> None:
        forward, backward = layer.forward, layer.backward

        def watched_forward(x: np.ndarray) -> np.ndarray:
            y = forward(x)
            outputs.pop(name, None)  # so the order is that of the last calls
            outputs[name] = y.copy()
            calls[name] += 1
            return y

        def watched_backward(dy: np.ndarray) -> np.ndarray | None:
            grads[name] = dy.copy()
            return backward(dy)

        layer.forward, layer.backward = watched_forward, watched_backward

    try:
        for name, layer in layers.items():
            wrap(name, layer)
        yield outputs, grads, calls
    finally:
        for layer, attributes in own:
            vars(layer).pop("forward", None)
            vars(layer).pop("backward", None)
            vars(layer).update(attributes)
