"""AdaptiveAvgPool2d: the fast op, the reference loops and PyTorch agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnumpy import functional as F
from cnnumpy import nn, reference
from conftest import assert_close, leaf
from test_nn import DTYPES, check_twin


@st.composite
def adaptive_configs(draw):
    H, W = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    # Outputs smaller, equal and larger than the input; None keeps a size.
    out = (
        draw(st.one_of(st.none(), st.integers(1, 14))),
        draw(st.one_of(st.none(), st.integers(1, 14))),
    )
    if draw(st.booleans()) and out[0] is not None:
        out = out[0]
    return {
        "x_shape": (draw(st.integers(1, 3)), draw(st.integers(1, 3)), H, W),
        "output_size": out,
        "dtype": draw(st.sampled_from(DTYPES)),
    }


@settings(max_examples=60, deadline=None)
@given(config=adaptive_configs(), seed=st.integers(0, 2**16))
def test_adaptive_avg_pool2d_matches_torch_and_reference(config, seed):
    rng = np.random.default_rng(seed)
    dtype = config["dtype"]
    x = rng.standard_normal(config["x_shape"]).astype(dtype)
    for impl in ("im2col", "naive"):
        ours = nn.AdaptiveAvgPool2d(config["output_size"], impl=impl)
        theirs = torch.nn.AdaptiveAvgPool2d(config["output_size"])
        assert repr(ours) == repr(theirs)
        check_twin(ours, theirs, x, dtype, rng)


@pytest.mark.parametrize("dtype", DTYPES)
def test_output_one_is_global_average_pooling(dtype, rng):
    x = rng.standard_normal((2, 3, 5, 7)).astype(dtype)
    y = F.adaptive_avg_pool2d(x, 1)
    assert y.shape == (2, 3, 1, 1) and y.dtype == dtype
    assert_close(y, x.mean(axis=(2, 3), keepdims=True), dtype)
    dy = rng.standard_normal(y.shape).astype(dtype)
    _, ctx = F.adaptive_avg_pool2d_forward(x, 1)
    dx = F.adaptive_avg_pool2d_backward(dy, ctx)
    assert_close(dx, np.broadcast_to(dy / 35, x.shape), dtype)


def test_windows_follow_pytorchs_rule():
    from cnnumpy.functional.geometry import adaptive_windows

    # 5 inputs to 3 outputs: [0, 2), [1, 4), [3, 5): the windows overlap.
    assert adaptive_windows(5, 3) == [(0, 2), (1, 4), (3, 5)]
    assert adaptive_windows(4, 2) == [(0, 2), (2, 4)]
    assert adaptive_windows(2, 4) == [(0, 1), (0, 1), (1, 2), (1, 2)]


def test_backward_is_the_adjoint_of_forward(rng):
    x = rng.standard_normal((2, 2, 7, 5))
    y, ctx = F.adaptive_avg_pool2d_forward(x, (3, 4))
    dy = rng.standard_normal(y.shape)
    dx = F.adaptive_avg_pool2d_backward(dy, ctx)
    np.testing.assert_allclose(np.vdot(y, dy), np.vdot(x, dx), rtol=1e-12)
    tx = leaf(x)
    torch.nn.functional.adaptive_avg_pool2d(tx, (3, 4)).backward(torch.from_numpy(dy))
    assert_close(dx, tx.grad, np.float64)


@pytest.mark.parametrize(
    ("output_size", "error", "match"),
    [
        (0, ValueError, r"`output_size` must be >= 1, got 0"),
        ((2, -1), ValueError, r"`output_size` must be >= 1, got \(2, -1\)"),
        (2.0, TypeError, r"`output_size` must be an int or a pair"),
        ((2, 2, 2), TypeError, r"`output_size` must be an int or a pair"),
        ((True, 2), TypeError, r"`output_size` must be an int or a pair"),
    ],
)
def test_output_size_errors(output_size, error, match):
    with pytest.raises(error, match=match):
        nn.AdaptiveAvgPool2d(output_size)
    with pytest.raises(error, match=match):
        F.adaptive_avg_pool2d(np.zeros((1, 1, 3, 3)), output_size)
    with pytest.raises(error, match=match):
        reference.adaptive_avg_pool2d(np.zeros((1, 1, 3, 3)), output_size)


@pytest.mark.parametrize(
    ("x_shape", "match"),
    [
        ((3, 3), r"`x` must be 4-D"),
        ((1, 0, 3, 3), r"`x` must have at least 1 channel"),
        ((1, 1, 0, 3), r"`x` must have H, W >= 1"),
    ],
)
def test_input_errors(x_shape, match):
    with pytest.raises(ValueError, match=match):
        nn.AdaptiveAvgPool2d(2)(np.zeros(x_shape))


def test_backward_errors(rng):
    m = nn.AdaptiveAvgPool2d(2)
    with pytest.raises(nn.BackwardBeforeForwardError):
        m.backward(np.zeros((1, 1, 2, 2)))
    m(rng.standard_normal((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"`dy` must have the output's shape"):
        m.backward(np.zeros((1, 1, 3, 3)))
    with pytest.raises(TypeError, match=r"`ctx` must be the AdaptivePoolContext"):
        F.adaptive_avg_pool2d_backward(np.zeros((1, 1, 2, 2)), None)
