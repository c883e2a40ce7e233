"""cnnumpy: convolutional neural networks in NumPy alone.

The engine unfolds receptive fields into columns (im2col) so that a convolution is
one matrix product, and folds gradients back (col2im). Layers, optimizers and
their results match PyTorch's.
"""

from cnnumpy import functional, nn, optim, reference

__version__ = "0.1.0"

__all__ = ["__version__", "functional", "nn", "optim", "reference"]
