"""Identity, SiLU, GELU, BatchNorm1d and label smoothing against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnumpy import functional as F
from cnnumpy import nn
from conftest import TOLERANCE, TORCH_DTYPE, assert_close, leaf, numpy_state
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


# --- BatchNorm1d --------------------------------------------------------------------

BATCHNORM1D_CASES = {
    "default": {},
    "momentum-none": {"momentum": None},
    "momentum-eps": {"momentum": 0.3, "eps": 1e-3},
    "affine-false": {"affine": False},
    "no-running-stats": {"track_running_stats": False},
}


@pytest.mark.parametrize("x_shape", [(6, 3), (4, 3, 5)], ids=["NC", "NCL"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kwargs", BATCHNORM1D_CASES.values(), ids=BATCHNORM1D_CASES.keys()
)
def test_batchnorm1d_matches_torch(kwargs, dtype, x_shape, rng):
    theirs = torch.nn.BatchNorm1d(3, **kwargs).to(TORCH_DTYPE[np.dtype(dtype)])
    ours = nn.BatchNorm1d(3, **kwargs, dtype=dtype)
    if kwargs.get("affine", True):
        with torch.no_grad():
            theirs.weight.copy_(torch.from_numpy(rng.uniform(0.5, 2, 3)))
            theirs.bias.copy_(torch.from_numpy(rng.standard_normal(3)))
    ours.load_state_dict(numpy_state(theirs))
    shape = (1, 3) + (1,) * (len(x_shape) - 2)
    scale = np.array([3, 0.5, 1]).reshape(shape)
    offset = np.array([2, -1, 0]).reshape(shape)
    # Training steps then evaluation: running statistics follow PyTorch's.
    for train in (True, True, False):
        ours.zero_grad()
        theirs.zero_grad()
        x = (rng.standard_normal(x_shape) * scale + offset).astype(dtype)
        check_twin(ours, theirs, x, dtype, rng, train=train)
        expected = numpy_state(theirs)
        state = ours.state_dict()
        assert list(state) == list(expected)
        for key, value in state.items():
            if key == "num_batches_tracked":
                assert value.dtype == np.int64
                np.testing.assert_array_equal(value, expected[key])
            else:
                assert_close(value, expected[key], dtype)


@pytest.mark.parametrize("x_shape", [(4,), (4, 2), (4, 3, 2, 2), (4, 3, 2, 2, 2)])
def test_batchnorm1d_refuses_other_shapes(x_shape):
    with pytest.raises(
        ValueError, match=r"`x` must have shape \(N, 3\) or \(N, 3, L\)"
    ):
        nn.BatchNorm1d(3)(np.ones(x_shape))


# --- CrossEntropyLoss(label_smoothing) ----------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_cross_entropy_label_smoothing_matches_torch(scale, smoothing, dtype, rng):
    logits = (rng.standard_normal((6, 5)) * scale).astype(dtype)
    target = rng.integers(0, 5, 6)
    criterion = nn.CrossEntropyLoss(label_smoothing=smoothing)
    loss = criterion(logits, target)
    grad = criterion.backward()
    tlogits = leaf(logits)
    theirs = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)
    tloss = theirs(tlogits, torch.from_numpy(target))
    tloss.backward()
    assert repr(criterion) == repr(theirs)
    assert isinstance(loss, float)
    np.testing.assert_allclose(loss, tloss.item(), **TOLERANCE[np.dtype(dtype)])
    assert_close(grad, tlogits.grad, dtype)
    assert F.cross_entropy(logits, target, smoothing) == loss


def test_label_smoothing_errors():
    with pytest.raises(TypeError, match=r"`label_smoothing` must be a real number"):
        nn.CrossEntropyLoss(label_smoothing="0.1")
    with pytest.raises(ValueError, match=r"`label_smoothing` must be in \[0, 1\]"):
        nn.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"`label_smoothing` must be in \[0, 1\]"):
        F.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), -0.1)


@pytest.mark.parametrize(
    ("shape", "dim", "sizes"),
    [
        ((3, 64), 1, (4, 4, 4)),  # a Linear's output into feature maps
        ((3, 64), -1, (16, -1)),  # -1 worked out, a negative dim
        ((2, 6, 5), 1, (2, 3)),
        ((2, 6, 5), 2, (5, 1)),
    ],
)
def test_unflatten_matches_torch_and_inverts_flatten(shape, dim, sizes):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    m, t = nn.Unflatten(dim, sizes), torch.nn.Unflatten(dim, sizes)
    tx = leaf(x)
    ty = t(tx)
    y = m(x)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    dy = rng.standard_normal(y.shape)
    ty.backward(torch.from_numpy(dy))
    np.testing.assert_array_equal(m.backward(dy), tx.grad.numpy())
    d = dim % len(shape)
    back = nn.Flatten(d, d + len(sizes) - 1)(y)
    np.testing.assert_array_equal(back, x)
    assert repr(m) == f"Unflatten(dim={dim}, unflattened_size={sizes})"


def test_unflatten_refuses_sizes_that_do_not_split_the_dimension():
    x = np.zeros((2, 10))
    with pytest.raises(ValueError, match=r"`unflattened_size` \(3, 3\) does not split"):
        nn.Unflatten(1, (3, 3))(x)
    with pytest.raises(ValueError, match=r"\(3, -1\) does not split dimension 1"):
        nn.Unflatten(1, (3, -1))(x)
    with pytest.raises(ValueError, match=r"`dim` \(=2\) must be a dimension"):
        nn.Unflatten(2, (5, 2))(x)
    with pytest.raises(ValueError, match="one of them possibly -1"):
        nn.Unflatten(1, (-1, -1))
    with pytest.raises(TypeError, match="`unflattened_size`"):
        nn.Unflatten(1, (2, True))
