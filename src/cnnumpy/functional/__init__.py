"""Pure array-in, array-out ops on NCHW arrays, each forward with its backward.

Ops with a cache (convolution, pooling, batch norm, dropout, cross-entropy) come
in three functions: ``op_forward(...) -> (y, ctx)``, ``op_backward(dy, ctx) ->
gradients`` and ``op(...) -> y``. The others take what their derivative needs:
``relu_backward(dy, y)``, ``linear_backward(dy, x, weight)``,
``flatten_backward(dy, input_shape)``. A ``ctx.geom`` is a :class:`Geometry`:
the (h, w) kernel, stride, padding, dilation and output size of a window op.
``conv2d`` also takes channels-last arrays, ``layout='nhwc'``
(:mod:`cnnumpy.functional.layout`).
"""

from cnnumpy.functional._engine import get_num_threads, set_num_threads
from cnnumpy.functional.activation import (
    GELU_APPROXIMATIONS,
    gelu,
    gelu_backward,
    leaky_relu,
    leaky_relu_backward,
    log_softmax,
    log_softmax_backward,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    silu,
    silu_backward,
    softmax,
    softmax_backward,
    tanh,
    tanh_backward,
)
from cnnumpy.functional.adaptive_pool import (
    AdaptivePoolContext,
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_avg_pool2d_forward,
)
from cnnumpy.functional.conv import (
    Conv2dContext,
    conv2d,
    conv2d_backward,
    conv2d_forward,
)
from cnnumpy.functional.conv_transpose import (
    ConvTranspose2dContext,
    conv_transpose2d,
    conv_transpose2d_backward,
    conv_transpose2d_forward,
)
from cnnumpy.functional.dropout import dropout, dropout_backward, dropout_forward
from cnnumpy.functional.geometry import Geometry
from cnnumpy.functional.im2col import col2im, im2col
from cnnumpy.functional.im2col_indices import (
    col2im_by_index,
    im2col_by_index,
    im2col_indices,
)
from cnnumpy.functional.linear import flatten, flatten_backward, linear, linear_backward
from cnnumpy.functional.loss import (
    cross_entropy,
    cross_entropy_backward,
    cross_entropy_forward,
)
from cnnumpy.functional.normalization import (
    BatchNormContext,
    batch_norm,
    batch_norm_backward,
    batch_norm_forward,
)
from cnnumpy.functional.pool import (
    PoolContext,
    avg_pool2d,
    avg_pool2d_backward,
    avg_pool2d_forward,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_forward,
)

__all__ = [
    "GELU_APPROXIMATIONS",
    "AdaptivePoolContext",
    "BatchNormContext",
    "Conv2dContext",
    "ConvTranspose2dContext",
    "Geometry",
    "PoolContext",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_avg_pool2d_forward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "batch_norm",
    "batch_norm_backward",
    "batch_norm_forward",
    "col2im",
    "col2im_by_index",
    "conv2d",
    "conv2d_backward",
    "conv2d_forward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "conv_transpose2d_forward",
    "cross_entropy",
    "cross_entropy_backward",
    "cross_entropy_forward",
    "dropout",
    "dropout_backward",
    "dropout_forward",
    "flatten",
    "flatten_backward",
    "gelu",
    "gelu_backward",
    "get_num_threads",
    "im2col",
    "im2col_by_index",
    "im2col_indices",
    "leaky_relu",
    "leaky_relu_backward",
    "linear",
    "linear_backward",
    "log_softmax",
    "log_softmax_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "relu",
    "relu_backward",
    "set_num_threads",
    "sigmoid",
    "sigmoid_backward",
    "silu",
    "silu_backward",
    "softmax",
    "softmax_backward",
    "tanh",
    "tanh_backward",
]
