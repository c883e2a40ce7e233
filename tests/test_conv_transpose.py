"""ConvTranspose2d: the fast op, the reference loops and PyTorch agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnumpy import functional as F
from cnnumpy import nn, reference
from conftest import TORCH_DTYPE, numpy_state
from test_nn import DTYPES, check_twin


@st.composite
def transpose_configs(draw):
    groups = draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    output_padding = tuple(
        draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation)
    )
    size = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    # Padding may take away at most what the output would have, less one.
    padding = []
    for n, s, d, k, op in zip(size, stride, dilation, kernel, output_padding):
        full = (n - 1) * s + d * (k - 1) + op + 1
        padding.append(draw(st.integers(0, (full - 1) // 2)))
    return {
        "x_shape": (draw(st.integers(1, 2)), groups * draw(st.integers(1, 2)), *size),
        "out_per_group": draw(st.integers(1, 2)),
        "dtype": draw(st.sampled_from(DTYPES)),
        "kwargs": {
            "kernel_size": kernel,
            "stride": stride,
            "padding": tuple(padding),
            "output_padding": output_padding,
            "groups": groups,
            "bias": draw(st.booleans()),
            "dilation": dilation,
        },
    }


@settings(max_examples=80, deadline=None)
@given(config=transpose_configs(), seed=st.integers(0, 2**16))
def test_conv_transpose2d_matches_torch_property(config, seed):
    rng = np.random.default_rng(seed)
    dtype, kwargs = config["dtype"], config["kwargs"]
    N, C, H, W = config["x_shape"]
    out_channels = config["out_per_group"] * kwargs["groups"]
    theirs = torch.nn.ConvTranspose2d(C, out_channels, **kwargs)
    theirs = theirs.to(TORCH_DTYPE[np.dtype(dtype)])
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    for impl in ("im2col", "naive"):
        ours = nn.ConvTranspose2d(C, out_channels, **kwargs, dtype=dtype, impl=impl)
        ours.load_state_dict(numpy_state(theirs))
        theirs.zero_grad()
        assert repr(ours) == repr(theirs)
        y = check_twin(ours, theirs, x, dtype, rng)
        assert y.shape[2:] == tuple(
            (n - 1) * s - 2 * p + d * (k - 1) + op + 1
            for n, s, p, d, k, op in zip(
                (H, W),
                kwargs["stride"],
                kwargs["padding"],
                kwargs["dilation"],
                kwargs["kernel_size"],
                kwargs["output_padding"],
            )
        )


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_transpose2d_input_grad_false_gives_the_same_weight_grads(dtype, rng):
    m = nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, output_padding=1, dtype=dtype)
    x = rng.standard_normal((2, 2, 4, 5)).astype(dtype)
    dy = rng.standard_normal(m(x).shape).astype(dtype)
    m.backward(dy)
    expected = m.weight.grad.copy(), m.bias.grad.copy()
    m.zero_grad()
    m.input_grad = False
    assert m.backward(dy) is None
    np.testing.assert_array_equal(m.weight.grad, expected[0])
    np.testing.assert_array_equal(m.bias.grad, expected[1])


@settings(max_examples=30, deadline=None)
@given(config=transpose_configs(), seed=st.integers(0, 2**16))
def test_conv_transpose2d_is_the_adjoint_of_conv2d(config, seed):
    # <conv2d(z, W), x> == <z, conv_transpose2d(x, W)> for the same arguments.
    rng = np.random.default_rng(seed)
    kw = config["kwargs"]
    N, C, H, W = config["x_shape"]
    weight = rng.standard_normal((C, config["out_per_group"], *kw["kernel_size"]))
    x = rng.standard_normal((N, C, H, W))
    args = (kw["stride"], kw["padding"], kw["output_padding"], kw["groups"])
    y = F.conv_transpose2d(x, weight, None, *args, kw["dilation"])
    z = rng.standard_normal(y.shape)
    conv = F.conv2d(
        z, weight, None, kw["stride"], kw["padding"], kw["dilation"], kw["groups"]
    )
    conv = conv[:, :, :H, :W]  # output_padding >= stride: rows beyond x
    np.testing.assert_allclose(np.vdot(conv, x), np.vdot(z, y), rtol=1e-10, atol=1e-10)


def test_default_init_uses_pytorchs_fan_in(rng):
    # fan_in = out_channels // groups * kH * kW, from weight.shape[1:].
    m = nn.ConvTranspose2d(64, 6, 3, groups=2, rng=rng)
    assert m.weight.shape == (64, 3, 3, 3) and m.bias.shape == (6,)
    bound = 1 / np.sqrt(3 * 9)
    assert np.abs(m.weight.data).max() <= bound
    assert np.abs(m.weight.data).max() > 0.9 * bound


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"output_padding": 2, "stride": 2}, ValueError, r"`output_padding` \(=2\)"),
        ({"groups": 3}, ValueError, r"`in_channels` \(=4\) must be divisible"),
        ({"output_padding": 1.0}, TypeError, r"`output_padding` must be an int"),
    ],
)
def test_constructor_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        nn.ConvTranspose2d(4, 6, 3, **kwargs)


@pytest.mark.parametrize("op", [F.conv_transpose2d, reference.conv_transpose2d])
def test_functional_errors(op):
    x = np.zeros((1, 2, 3, 3))
    w = np.zeros((2, 3, 3, 3))
    with pytest.raises(ValueError, match=r"`x` has 3 channels but `weight` expects 2"):
        op(np.zeros((1, 3, 3, 3)), w)
    with pytest.raises(TypeError, match=r"`weight` dtype must match `x`"):
        op(x, w.astype(np.float32))
    with pytest.raises(ValueError, match=r"`bias` must have shape \(3,\)"):
        op(x, w, np.zeros(2))
    with pytest.raises(ValueError, match=r"`padding` \(=3\) is too large"):
        op(x, w, None, 1, 3)
    with pytest.raises(ValueError, match=r"`output_padding` \(=1\) must be smaller"):
        op(x, w, None, 1, 0, 1)
    with pytest.raises(ValueError, match=r"`in_channels` \(=2\) must be divisible"):
        op(x, w, None, 1, 0, 0, 3)


def test_backward_errors(rng):
    m = nn.ConvTranspose2d(2, 3, 2)
    with pytest.raises(nn.BackwardBeforeForwardError):
        m.backward(np.zeros((1, 3, 3, 3), np.float32))
    m(rng.standard_normal((1, 2, 2, 2)))
    with pytest.raises(ValueError, match=r"`dy` must have the output's shape"):
        m.backward(np.zeros((1, 3, 2, 2), np.float32))
    with pytest.raises(TypeError, match=r"`ctx` must be the ConvTranspose2dContext"):
        F.conv_transpose2d_backward(np.zeros((1, 3, 3, 3)), None)
