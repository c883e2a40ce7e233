"""The naive reference ops against PyTorch: outputs and every gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnumpy.reference import (
    avg_pool2d,
    avg_pool2d_backward,
    avg_pool2d_forward,
    conv2d,
    conv2d_backward,
    conv2d_forward,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_forward,
)

TOLERANCE = {
    np.float64: {"rtol": 1e-10, "atol": 1e-12},
    np.float32: {"rtol": 1e-4, "atol": 1e-5},
}

# PyTorch warns that padding='same' with an even kernel and odd dilation copies
# the input to pad it asymmetrically: expected, and exactly the case we test.
same_padding_warning = pytest.mark.filterwarnings(
    "ignore:Using padding='same':UserWarning"
)


def assert_close(actual, expected, dtype):
    assert actual.dtype == dtype
    np.testing.assert_allclose(actual, expected, **TOLERANCE[dtype])


def leaf(a):
    return torch.from_numpy(a.copy()).requires_grad_(True)


def check_conv(rng, dtype, x_shape, w_shape, bias, **kwargs):
    """Compare forward and all gradients of the reference conv with PyTorch's."""
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None

    y, ctx = conv2d_forward(x, w, b, **kwargs)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = conv2d_backward(dy, ctx)

    tx, tw = leaf(x), leaf(w)
    tb = leaf(b) if bias else None
    ty = F.conv2d(tx, tw, tb, **kwargs)
    ty.backward(torch.from_numpy(dy))

    assert_close(y, ty.detach().numpy(), dtype)
    assert_close(dx, tx.grad.numpy(), dtype)
    assert_close(dw, tw.grad.numpy(), dtype)
    if bias:
        assert_close(db, tb.grad.numpy(), dtype)
    else:
        assert db is None


def check_pool(rng, dtype, ours, theirs, x, **kwargs):
    """Compare forward and the input gradient of a reference pool with PyTorch's."""
    forward, backward = ours
    y, ctx = forward(x, **kwargs)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = backward(dy, ctx)

    tx = leaf(x)
    ty = theirs(tx, **kwargs)
    ty.backward(torch.from_numpy(dy))

    assert_close(y, ty.detach().numpy(), dtype)
    assert_close(dx, tx.grad.numpy(), dtype)


# --- conv2d ------------------------------------------------------------------

CONV_CASES = {
    "plain": ((2, 3, 5, 6), (4, 3, 3, 3), True, {}),
    "stride-pad-pairs": (
        (1, 2, 7, 6),
        (3, 2, 3, 2),
        True,
        {"stride": (2, 3), "padding": (1, 2)},
    ),
    "dilation-no-bias": (
        (2, 2, 7, 8),
        (2, 2, 2, 3),
        False,
        {"dilation": (2, 3), "padding": 1},
    ),
    "groups": ((2, 4, 5, 5), (6, 2, 3, 3), True, {"groups": 2, "stride": 2}),
    "depthwise": ((1, 3, 4, 5), (3, 1, 2, 2), True, {"groups": 3}),
    "same-odd-kernel": ((1, 2, 5, 4), (2, 2, 3, 3), True, {"padding": "same"}),
    # Even kernel: the total padding is odd, the extra row/column goes after.
    "same-even-kernel": ((2, 2, 5, 6), (3, 2, 2, 4), True, {"padding": "same"}),
    "same-dilated": (
        (1, 2, 6, 5),
        (2, 2, 2, 3),
        True,
        {"padding": "same", "dilation": (3, 2)},
    ),
    "valid": ((1, 1, 4, 5), (1, 1, 2, 2), True, {"padding": "valid"}),
    "kernel-fills-padded-input": (
        (1, 2, 3, 2),
        (2, 2, 3, 2),
        True,
        {"padding": (1, 1), "dilation": (2, 3)},
    ),
}


@same_padding_warning
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv2d_matches_torch(case, dtype):
    x_shape, w_shape, bias, kwargs = case
    check_conv(np.random.default_rng(0), dtype, x_shape, w_shape, bias, **kwargs)


def window(draw, *, same):
    """Draw kernel, stride, padding, dilation and a spatial size that fit together."""
    kernel = draw(st.integers(1, 4))
    dilation = draw(st.integers(1, 3))
    extent = dilation * (kernel - 1) + 1
    if same:
        padding, stride, total_pad = "same", 1, extent - 1
    else:
        padding, stride = draw(st.integers(0, 2)), draw(st.integers(1, 3))
        total_pad = 2 * padding
    # Sizes start where the dilated kernel exactly fills the padded input.
    smallest = max(1, extent - total_pad)
    size = draw(st.integers(smallest, max(smallest, 9)))
    return kernel, stride, padding, dilation, size


@st.composite
def conv_configs(draw):
    groups = draw(st.integers(1, 2))
    C = groups * draw(st.integers(1, 4 // groups))
    F_ = groups * draw(st.integers(1, 4 // groups))
    same = draw(st.booleans())  # PyTorch takes 'same' for both axes or neither
    kH, sH, pH, dH, H = window(draw, same=same)
    kW, sW, pW, dW, W = window(draw, same=same)
    return {
        "x_shape": (draw(st.integers(1, 2)), C, H, W),
        "w_shape": (F_, C // groups, kH, kW),
        "bias": draw(st.booleans()),
        "kwargs": {
            "stride": 1 if same else (sH, sW),
            "padding": "same" if same else (pH, pW),
            "dilation": (dH, dW),
            "groups": groups,
        },
    }


@same_padding_warning
@settings(max_examples=30, deadline=None)
@given(
    config=conv_configs(),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 2**32 - 1),
)
def test_conv2d_matches_torch_property(config, dtype, seed):
    check_conv(
        np.random.default_rng(seed),
        dtype,
        config["x_shape"],
        config["w_shape"],
        config["bias"],
        **config["kwargs"],
    )


def test_conv2d_skips_input_grad_and_matches_forward():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    w = rng.standard_normal((3, 2, 2, 2)).astype(np.float32)
    y, ctx = conv2d_forward(x, w, padding=1)
    dx, dw, db = conv2d_backward(np.ones_like(y), ctx, input_grad=False)
    assert dx is None and db is None
    assert dw.dtype == np.float32
    np.testing.assert_array_equal(conv2d(x, w, padding=1), y)


def test_conv2d_1x1_is_a_matmul():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4, 5))
    w = rng.standard_normal((4, 3, 1, 1))
    expected = np.einsum("fc,nchw->nfhw", w[:, :, 0, 0], x)
    np.testing.assert_allclose(conv2d(x, w), expected, rtol=1e-12)


# --- pooling -----------------------------------------------------------------

MAX_POOL = (max_pool2d_forward, max_pool2d_backward)
AVG_POOL = (avg_pool2d_forward, avg_pool2d_backward)
POOLS = {"max": (MAX_POOL, F.max_pool2d), "avg": (AVG_POOL, F.avg_pool2d)}

POOL_CASES = {
    "default-stride": ((2, 3, 6, 4), {"kernel_size": 2}),
    "overlapping": ((1, 2, 5, 6), {"kernel_size": 3, "stride": 1}),
    "padded": ((2, 1, 5, 7), {"kernel_size": (3, 2), "stride": 2, "padding": (1, 1)}),
    "stride-leftover": ((1, 2, 7, 5), {"kernel_size": 2, "stride": 3}),
    "kernel-fills-padded-input": ((1, 1, 2, 3), {"kernel_size": (4, 5), "padding": 2}),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("pool", POOLS.values(), ids=POOLS.keys())
@pytest.mark.parametrize("case", POOL_CASES.values(), ids=POOL_CASES.keys())
def test_pool_matches_torch(case, pool, dtype):
    rng = np.random.default_rng(3)
    x_shape, kwargs = case
    x = rng.standard_normal(x_shape).astype(dtype)
    check_pool(rng, dtype, *pool, x, **kwargs)


@st.composite
def pool_configs(draw):
    kernel, sizes, strides, paddings = [], [], [], []
    for _ in "hw":
        k = draw(st.integers(1, 4))
        p = draw(st.integers(0, k // 2))
        smallest = max(1, k - 2 * p)
        kernel.append(k)
        paddings.append(p)
        strides.append(draw(st.integers(1, 3)))
        sizes.append(draw(st.integers(smallest, max(smallest, 9))))
    x_shape = (draw(st.integers(1, 2)), draw(st.integers(1, 4)), *sizes)
    stride = draw(st.sampled_from([None, tuple(strides)]))
    return x_shape, {
        "kernel_size": tuple(kernel),
        "stride": stride,
        "padding": tuple(paddings),
    }


@settings(max_examples=30, deadline=None)
@given(
    config=pool_configs(),
    pool=st.sampled_from(list(POOLS.values())),
    dtype=st.sampled_from([np.float64, np.float32]),
    ties=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_pool_matches_torch_property(config, pool, dtype, ties, seed):
    rng = np.random.default_rng(seed)
    x_shape, kwargs = config
    # A few integer levels make ties common, so max pool's routing is exercised.
    x = rng.integers(-1, 2, x_shape) if ties else rng.standard_normal(x_shape)
    check_pool(rng, dtype, *pool, x.astype(dtype), **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 2},
        {"kernel_size": 3, "stride": 1, "padding": 1},
        {"kernel_size": (2, 3), "stride": (1, 2), "padding": (1, 0)},
    ],
)
def test_max_pool2d_ties_route_like_torch(kwargs):
    # All zeros, as after a ReLU: every window is one big tie.
    x = np.zeros((1, 2, 5, 6))
    check_pool(np.random.default_rng(4), np.float64, *POOLS["max"], x, **kwargs)


def test_max_pool2d_all_minus_inf_and_nan_route_like_torch():
    x = np.full((1, 2, 4, 4), -np.inf)
    x[0, 1, 0, 1:3] = np.nan
    y, ctx = max_pool2d_forward(x, 3, stride=1, padding=1)
    dx = max_pool2d_backward(np.ones_like(y), ctx)
    tx = leaf(x)
    ty = F.max_pool2d(tx, 3, stride=1, padding=1)
    ty.backward(torch.ones_like(ty))
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(dx, tx.grad.numpy())


def test_pool_wrappers_and_count_include_pad():
    x = np.ones((1, 1, 2, 2), dtype=np.float32)
    y = avg_pool2d(x, 2, stride=1, padding=1)
    assert y.dtype == np.float32
    # Padded zeros count: a corner window holds one 1 out of four.
    np.testing.assert_array_equal(y[0, 0, 0], [0.25, 0.5, 0.25])
    np.testing.assert_array_equal(max_pool2d(x, 2), np.ones((1, 1, 1, 1)))


# --- validation ----------------------------------------------------------------


def test_conv2d_rejects_channel_mismatch():
    with pytest.raises(ValueError, match=r"`x` has 3 channels but `weight` expects 2"):
        conv2d(np.zeros((1, 3, 4, 4)), np.zeros((2, 2, 3, 3)))


def test_conv2d_rejects_groups_not_dividing_channels():
    with pytest.raises(ValueError, match=r"`in_channels` \(=3\) must be divisible"):
        conv2d(np.zeros((1, 3, 4, 4)), np.zeros((2, 1, 3, 3)), groups=2)


def test_conv2d_rejects_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match="larger than the padded input along h"):
        conv2d(np.zeros((1, 1, 2, 5)), np.zeros((1, 1, 3, 3)), dilation=2, padding=1)


def test_conv2d_rejects_same_with_stride():
    with pytest.raises(ValueError, match="'same' requires `stride`=1"):
        conv2d(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3)), padding="same", stride=2)


def test_pool_rejects_padding_over_half_kernel():
    with pytest.raises(ValueError, match="must be at most half of `kernel_size`"):
        max_pool2d(np.zeros((1, 1, 4, 4)), 2, padding=2)


@pytest.mark.parametrize("pool", [MAX_POOL, AVG_POOL])
def test_pool_backward_rejects_wrong_dy_shape(pool):
    forward, backward = pool
    _, ctx = forward(np.zeros((1, 1, 4, 4)), 2)
    with pytest.raises(ValueError, match=r"`dy` must have the output's shape"):
        backward(np.zeros((1, 1, 3, 2)), ctx)


def test_conv2d_backward_rejects_wrong_dy_shape():
    _, ctx = conv2d_forward(np.zeros((1, 1, 4, 4)), np.zeros((2, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"output's shape \(1, 2, 2, 2\)"):
        conv2d_backward(np.zeros((1, 2, 2, 3)), ctx)
