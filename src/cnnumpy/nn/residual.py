"""`Residual`: a skip connection, ``y = body(x) + shortcut(x)``."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from cnnumpy.nn.linear import Identity
from cnnumpy.nn.module import Module, Sequential
from cnnumpy.validation import check_instance

__all__ = ["Residual"]


class Residual(Module):
    """A residual block: ``y = body(x) + shortcut(x)``, He et al. (2016).

    ``backward(dy)`` sends ``dy`` into both branches (the sum's gradient is
    ``dy`` for each term), so each accumulates its parameters' gradients, and
    returns the sum of their input gradients. Use it as any layer, inside a
    :class:`Sequential` too.

    Parameters
    ----------
    body : Module
        The residual branch, typically ``Sequential(Conv2d, BatchNorm2d, ReLU,
        Conv2d, BatchNorm2d)``.
    shortcut : Module or None
        The skip branch; None is the identity (stored as an :class:`Identity`).
        Where the body changes the shape (a stride, more channels), a 1x1
        ``Conv2d`` with the same stride and a ``BatchNorm2d``, in a
        ``Sequential``.

    Raises
    ------
    TypeError
        ``body`` or ``shortcut`` is not a Module.

    Notes
    -----
    Neither branch may start with an in-place layer (``ReLU(inplace=True)``
    ...): the other branch reads the same input, so the forward pass raises
    ValueError.

    Names. The children are ``body`` and ``shortcut``, so the ``state_dict``
    keys are ``body.*`` and ``shortcut.*`` and the weights of a PyTorch module
    with attributes ``body`` and ``shortcut`` built of the same layers load
    directly: ``block.load_state_dict({k: v.numpy() for k, v in
    torch_block.state_dict().items()})``.

    torchvision's ResNets name their layers otherwise: a ``BasicBlock`` holds
    ``conv1, bn1, conv2, bn2`` and an optional ``downsample`` (a Sequential of a
    1x1 conv and a batch norm), adds them and then applies a ReLU. Its twin
    here is ``Sequential(Residual(Sequential(OrderedDict(conv1=..., bn1=...,
    relu=ReLU(), conv2=..., bn2=...)), Sequential(conv, bn)), ReLU())``. In a
    model named as torchvision's (``Sequential(OrderedDict(conv1=..., bn1=...,
    layer1=Sequential(block, block), ..., fc=...))``), the stem and ``fc``
    keep their names and the keys of block 0 of ``layer1`` are renamed so::

        layer1.0.conv1.weight         ->  layer1.0.0.body.conv1.weight
        layer1.0.bn1.running_mean     ->  layer1.0.0.body.bn1.running_mean
        layer1.0.downsample.0.weight  ->  layer1.0.0.shortcut.0.weight

    that is ``re.sub(r"^(layer\\d+\\.\\d+)\\.downsample\\.", r"\\1.0.shortcut.", k)``
    then ``re.sub(r"^(layer\\d+\\.\\d+)\\.(?!0\\.)", r"\\1.0.body.", k)``.

    Examples
    --------
    >>> from cnnumpy import nn
    >>> rng = np.random.default_rng(0)
    >>> block = nn.Residual(
    ...     nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, rng=rng), nn.ReLU())
    ... )
    >>> x = np.ones((2, 4, 5, 5), np.float32)
    >>> block(x).shape
    (2, 4, 5, 5)
    >>> sorted(block.state_dict())
    ['body.0.bias', 'body.0.weight']
    """

    def __init__(self, body: Module, shortcut: Module | None = None) -> None:
        super().__init__()
        self.body = check_instance(body, "body", Module, "an nn.Module")
        if shortcut is not None:
            check_instance(shortcut, "shortcut", Module, "an nn.Module or None")
        self.shortcut = Identity() if shortcut is None else shortcut

    def forward(self, x: np.ndarray) -> np.ndarray:
        for name, branch in self.named_children():
            first = branch
            while isinstance(first, Sequential) and len(first):
                first = first[0]
            if getattr(first, "inplace", False):
                raise ValueError(
                    f"`{name}` must not start with an in-place layer "
                    f"({type(first).__name__}(inplace=True)): the other branch "
                    f"reads the same input"
                )
        a = self.body(x)
        b = self.shortcut(x)
        if a.shape != b.shape:
            raise ValueError(
                f"`body` and `shortcut` outputs must have the same shape, got "
                f"{a.shape} and {b.shape}"
            )
        return a + b  # a new array: neither branch's kept output is shared

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        # Both branches run backward for their parameters' gradients; they
        # compute an input gradient only if the caller wants one.
        self.body.input_grad = self.shortcut.input_grad = self.input_grad
        dx_body = self.body.backward(dy)
        dx_shortcut = self.shortcut.backward(dy)
        if not self.input_grad:
            return None
        return dx_body + dx_shortcut

    def _kept(self) -> Iterator[np.ndarray]:
        # What the branches keep for their backward, for Sequential's check of
        # in-place layers after this one.
        yield from self.body._kept()
        yield from self.shortcut._kept()
