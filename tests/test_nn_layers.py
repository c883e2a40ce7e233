"""Identity, SiLU, GELU, BatchNorm1d and label smoothing against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnumpy import functional as F
from cnnumpy import nn
from test_nn import DTYPES, check_twin

# --- Identity, SiLU, GELU ----------------------------------------------------------

ACTIVATION_CASES = {
    "identity": ((2, 3, 4, 5), nn.Identity, torch.nn.Identity),
    "silu": ((2, 3, 4, 5), nn.SiLU, torch.nn.SiLU),
    "gelu": ((2, 3, 4, 5), nn.GELU, torch.nn.GELU),
    "gelu-none": ((4, 9), lambda: nn.GELU("none"), lambda: torch.nn.GELU("none")),
    "gelu-tanh": (
        (2, 3, 4, 5),
        lambda: nn.GELU(approximate="tanh"),
        lambda: torch.nn.GELU(approximate="tanh"),
    ),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [1.0, 8.0])
@pytest.mark.parametrize("case", ACTIVATION_CASES.values(), ids=ACTIVATION_CASES.keys())
def test_activation_matches_torch(case, scale, dtype, rng):
    x_shape, ours, theirs = case
    x = (scale * rng.standard_normal(x_shape)).astype(dtype)
    module = ours()
    assert list(module.parameters()) == []
    assert repr(module) == repr(theirs())
    check_twin(module, theirs(), x, dtype, rng)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_and_silu_gradients_match_finite_differences(approximate, rng):
    x = 3 * rng.standard_normal(50)
    h = 1e-6
    for fn, grad in (
        (
            lambda v: F.gelu(v, approximate),
            lambda v: F.gelu_backward(np.ones_like(v), v, approximate),
        ),
        (F.silu, lambda v: F.silu_backward(np.ones_like(v), v)),
    ):
        numeric = (fn(x + h) - fn(x - h)) / (2 * h)
        np.testing.assert_allclose(grad(x), numeric, rtol=1e-6, atol=1e-8)


def test_identity_returns_its_input_and_passes_the_gradient(rng):
    x = rng.standard_normal((3, 4))
    m = nn.Identity()
    assert m(x) is x
    dy = rng.standard_normal((3, 4))
    assert m.backward(dy) is dy
    with pytest.raises(ValueError, match="dy"):
        m.backward(dy[:2])
    m.input_grad = False
    assert m.backward(dy) is None


def test_gelu_approximate_errors():
    with pytest.raises(TypeError, match=r"`approximate` must be one of .*got int 1"):
        nn.GELU(1)
    with pytest.raises(ValueError, match=r"`approximate` must be one of .*'erf'"):
        nn.GELU("erf")
    with pytest.raises(ValueError, match=r"`approximate` .*'x'"):
        F.gelu(np.zeros(2), "x")


@pytest.mark.parametrize("make", [nn.Identity, nn.SiLU, nn.GELU])
def test_backward_before_forward_raises(make):
    with pytest.raises(nn.BackwardBeforeForwardError):
        make().backward(np.zeros(3))
