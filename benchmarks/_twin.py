"""PyTorch twins of cnnumpy models: the same structure, names and weights.

:func:`torch_twin` walks a cnnumpy model and builds the PyTorch module of each
of its parts (``Sequential`` keeps its children's names, ``Residual`` becomes a
module with ``body`` and ``shortcut``), then loads the cnnumpy ``state_dict``,
so both libraries start a benchmark from the same weights.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

from cnnumpy import nn

T = torch.nn

__all__ = ["TorchResidual", "torch_twin"]


class TorchResidual(T.Module):
    """``body(x) + shortcut(x)``: cnnumpy's ``nn.Residual`` in PyTorch."""

    def __init__(self, body: T.Module, shortcut: T.Module) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


def _conv(m: nn.Conv2d) -> T.Module:
    return T.Conv2d(
        m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
        m.dilation, m.groups, bias=m.bias is not None,
    )  # fmt: skip


def _batch_norm(m: nn.BatchNorm2d) -> T.Module:
    return T.BatchNorm2d(
        m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats
    )


_SIMPLE = {  # cnnumpy type -> its PyTorch module, built from its attributes
    nn.Conv2d: _conv,
    nn.BatchNorm2d: _batch_norm,
    nn.Linear: lambda m: T.Linear(m.in_features, m.out_features, m.bias is not None),
    nn.Flatten: lambda m: T.Flatten(m.start_dim, m.end_dim),
    nn.Identity: lambda m: T.Identity(),
    nn.ReLU: lambda m: T.ReLU(m.inplace),  # in place where cnnumpy is: no copy
    nn.Tanh: lambda m: T.Tanh(),
    nn.Sigmoid: lambda m: T.Sigmoid(),
    nn.MaxPool2d: lambda m: T.MaxPool2d(m.kernel_size, m.stride, m.padding),
    nn.AvgPool2d: lambda m: T.AvgPool2d(m.kernel_size, m.stride, m.padding),
    nn.AdaptiveAvgPool2d: lambda m: T.AdaptiveAvgPool2d(m.output_size),
}


def _structure(m: nn.Module) -> T.Module:
    if isinstance(m, nn.Sequential):
        return T.Sequential(
            OrderedDict((name, _structure(c)) for name, c in m.named_children())
        )
    if isinstance(m, nn.Residual):
        return TorchResidual(_structure(m.body), _structure(m.shortcut))
    for kind, make in _SIMPLE.items():
        if type(m) is kind:
            return make(m)
    raise TypeError(f"no PyTorch twin known for {type(m).__name__}")


def torch_twin(model: nn.Module) -> T.Module:
    """The PyTorch module with ``model``'s structure, names, dtype and weights.

    Raises TypeError for a layer it does not know.
    """
    twin = _structure(model)
    state = model.state_dict()
    floats = [v.dtype for v in state.values() if v.dtype.kind == "f"]
    if floats:
        twin = twin.to(torch.float64 if floats[0] == np.float64 else torch.float32)
    twin.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    twin.train(model.training)
    return twin
