"""cnnumpy: convolutional neural networks in NumPy alone.

The engine unfolds receptive fields into columns (im2col) so that a convolution is
one matrix product, and folds gradients back (col2im). Layers, optimizers and
their results match PyTorch's.
"""

from cnnumpy import (
    data,
    distributed,
    functional,
    models,
    nn,
    optim,
    reference,
    training,
)
from cnnumpy._version import __version__
from cnnumpy.functional import get_num_threads, set_num_threads

__all__ = [
    "__version__",
    "data",
    "distributed",
    "functional",
    "get_num_threads",
    "models",
    "nn",
    "optim",
    "reference",
    "set_num_threads",
    "training",
]
