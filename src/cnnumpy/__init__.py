"""cnnumpy: convolutional neural networks in NumPy alone.

The engine unfolds receptive fields into columns (im2col) so that a convolution is
one matrix product, and folds gradients back (col2im). Layers, optimizers and
their results match PyTorch's.

The subpackages load on first use (PEP 562): ``import cnnumpy`` itself imports
nothing, so the ``cnnumpy`` command can catch a Ctrl-C from its very start,
and ``cnnumpy.nn`` or ``from cnnumpy import nn`` work as with eager imports.
"""

import importlib
from typing import Any

from cnnumpy._version import __version__

__all__ = [
    "__version__",
    "data",
    "distributed",
    "functional",
    "get_num_threads",
    "models",
    "nn",
    "onnx",
    "optim",
    "reference",
    "set_num_threads",
    "training",
]

_FUNCTIONAL = ("get_num_threads", "set_num_threads")


def __getattr__(name: str) -> Any:
    if name in _FUNCTIONAL:
        return getattr(importlib.import_module("cnnumpy.functional"), name)
    if name in __all__:
        return importlib.import_module(f"cnnumpy.{name}")
    raise AttributeError(f"module 'cnnumpy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
