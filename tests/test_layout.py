"""Channels-last convolution: ``conv2d(..., layout='nhwc')`` against PyTorch.

PyTorch takes NCHW; an NHWC array reaches it through ``permute(0, 3, 1, 2)``,
and its output and input gradient come back through ``permute(0, 2, 3, 1)``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnumpy import functional as F
from cnnumpy import reference
from conftest import TORCH_DTYPE, assert_close, leaf

CONFIGS = {
    "plain": ((2, 6, 7, 3), (4, 3, 3, 3), {}),
    "stride 2, padding 1": ((3, 7, 6, 2), (5, 2, 3, 2), {"stride": 2, "padding": 1}),
    "dilation, groups": (
        (2, 8, 9, 4),
        (6, 2, 2, 3),
        {"stride": (1, 2), "padding": (2, 0), "dilation": 2, "groups": 2},
    ),
    "same, one image": ((1, 5, 5, 3), (2, 3, 3, 3), {"padding": "same"}),
}


def nhwc_case(config: str, dtype: type, seed: int = 0):
    x_shape, w_shape, kwargs = CONFIGS[config]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)  # (N, H, W, C)
    weight = rng.standard_normal(w_shape).astype(dtype)  # (F, C/g, kH, kW)
    bias = rng.standard_normal(w_shape[0]).astype(dtype)
    return x, weight, bias, kwargs


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("config", CONFIGS)
def test_nhwc_forward_and_gradients_equal_torch(config, dtype):
    x, weight, bias, kwargs = nhwc_case(config, dtype)
    y, ctx = F.conv2d_forward(x, weight, bias, **kwargs, layout="nhwc")
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    dx, dweight, dbias = F.conv2d_backward(dy, ctx)

    tx, tw, tb = leaf(x), leaf(weight), leaf(bias)
    ty = torch.nn.functional.conv2d(tx.permute(0, 3, 1, 2), tw, tb, **kwargs)
    ty = ty.permute(0, 2, 3, 1)  # (N, out_h, out_w, F)
    ty.backward(torch.from_numpy(dy))
    assert ty.dtype == TORCH_DTYPE[np.dtype(dtype)]
    assert y.shape == tuple(ty.shape) and dx.shape == x.shape
    assert_close(y, ty, dtype)
    assert_close(dx, tx.grad, dtype)
    assert_close(dweight, tw.grad, dtype)
    assert_close(dbias, tb.grad, dtype)


@pytest.mark.parametrize("config", CONFIGS)
def test_nhwc_is_the_nchw_engine_bit_for_bit(config):
    x, weight, bias, kwargs = nhwc_case(config, np.float32, seed=2)
    y, ctx = F.conv2d_forward(x, weight, bias, **kwargs, layout="nhwc")
    xn = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # (N, C, H, W)
    yn, ctxn = F.conv2d_forward(xn, weight, bias, **kwargs)
    np.testing.assert_array_equal(y, yn.transpose(0, 2, 3, 1))
    dy = np.random.default_rng(3).standard_normal(y.shape).astype(np.float32)
    grads = F.conv2d_backward(dy, ctx)
    gradsn = F.conv2d_backward(np.ascontiguousarray(dy.transpose(0, 3, 1, 2)), ctxn)
    np.testing.assert_array_equal(grads[0], gradsn[0].transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(grads[1], gradsn[1])
    np.testing.assert_array_equal(grads[2], gradsn[2])
    np.testing.assert_array_equal(F.conv2d(x, weight, bias, **kwargs, layout="nhwc"), y)
    assert F.conv2d_backward(dy, ctx, input_grad=False)[0] is None


def test_nhwc_reference_loops_agree():
    x, weight, bias, kwargs = nhwc_case("stride 2, padding 1", np.float64)
    y, ctx = reference.conv2d_forward(x, weight, bias, **kwargs, layout="nhwc")
    yf, ctxf = F.conv2d_forward(x, weight, bias, **kwargs, layout="nhwc")
    np.testing.assert_allclose(y, yf, rtol=1e-12)
    dy = np.random.default_rng(4).standard_normal(y.shape)
    for got, want in zip(
        reference.conv2d_backward(dy, ctx), F.conv2d_backward(dy, ctxf)
    ):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert reference.conv2d(x, weight, bias, **kwargs, layout="nhwc").shape == y.shape


@pytest.mark.parametrize("op", [F.conv2d, reference.conv2d])
def test_layout_errors(op):
    x, weight, _, _ = nhwc_case("plain", np.float64)
    with pytest.raises(
        ValueError, match=r"`layout` must be one of 'nchw', 'nhwc', got 'NHWC'"
    ):
        op(x, weight, layout="NHWC")
    with pytest.raises(TypeError, match=r"`layout` must be one of .*, got int 1"):
        op(x, weight, layout=1)
    with pytest.raises(
        ValueError, match=r"`x` must be 4-D \(N, H, W, C\) for layout='nhwc'"
    ):
        op(x[0], weight, layout="nhwc")
    # An NCHW x whose C is not last: the channel count is checked as usual.
    with pytest.raises(ValueError, match=r"channels"):
        op(x.transpose(0, 3, 1, 2), weight, layout="nhwc")


def test_nhwc_backward_wants_an_nhwc_gradient():
    x, weight, bias, _ = nhwc_case("plain", np.float64)
    y, ctx = F.conv2d_forward(x, weight, bias, layout="nhwc")
    with pytest.raises(
        ValueError, match=r"`dy` must have the output's shape \(2, 4, 5, 4\)"
    ):
        F.conv2d_backward(y.transpose(0, 3, 1, 2), ctx)
