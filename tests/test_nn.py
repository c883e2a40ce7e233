"""The nn modules against their PyTorch twins, and the Module contract.

Every module is run next to ``torch.nn``'s module of the same name, with the
weights copied across by ``state_dict``: outputs, input gradients and every
parameter gradient must match, float64 tightly and float32 loosely.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnumpy import nn
from cnnumpy.nn import Parameter
from conftest import TOLERANCE, TORCH_DTYPE, assert_close, leaf, numpy_state

DTYPES = [np.float64, np.float32]

# PyTorch warns that padding='same' with an even kernel and odd dilation copies
# the input to pad it asymmetrically: expected, and exactly what we test.
same_padding_warning = pytest.mark.filterwarnings(
    "ignore:Using padding='same':UserWarning"
)


def torch_twin(module: torch.nn.Module, dtype: object) -> torch.nn.Module:
    return module.to(TORCH_DTYPE[np.dtype(dtype)])


def check_twin(ours, theirs, x, dtype, rng, train=True):
    """Forward ``x`` through both, backprop one random ``dy``, compare everything.

    Returns the output, for tests that check more. Neither ``x`` nor ``dy`` may
    be written to.
    """
    ours.train(train)
    theirs.train(train)
    tx = leaf(x)
    x_before = x.copy()
    y = ours(x)
    ty = theirs(tx)
    assert_close(y, ty, dtype)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dy_before = dy.copy()
    dx = ours.backward(dy)
    ty.backward(torch.from_numpy(dy))
    assert_close(dx, tx.grad, dtype)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(dy, dy_before)
    ours_params = dict(ours.named_parameters())
    theirs_params = dict(theirs.named_parameters())
    assert list(ours_params) == list(theirs_params)
    for name, p in ours_params.items():
        assert_close(p.grad, theirs_params[name].grad, dtype)
    return y


# --- Conv2d ------------------------------------------------------------------------

CONV_CASES = {
    "plain": ((2, 3, 7, 9), {"in_channels": 3, "out_channels": 4, "kernel_size": 3}),
    "stride-padding": (
        (2, 2, 9, 8),
        {
            "in_channels": 2,
            "out_channels": 3,
            "kernel_size": 3,
            "stride": 2,
            "padding": 1,
        },
    ),
    "pairs": (
        (1, 2, 8, 11),
        {
            "in_channels": 2,
            "out_channels": 3,
            "kernel_size": (2, 3),
            "stride": (2, 1),
            "padding": (1, 2),
        },
    ),
    "same-odd": (
        (2, 2, 6, 5),
        {"in_channels": 2, "out_channels": 2, "kernel_size": 3, "padding": "same"},
    ),
    # Even kernel: odd total padding, the extra row/column goes after (PyTorch).
    "same-even": (
        (2, 2, 6, 7),
        {"in_channels": 2, "out_channels": 3, "kernel_size": (4, 2), "padding": "same"},
    ),
    "same-dilated": (
        (1, 2, 7, 6),
        {
            "in_channels": 2,
            "out_channels": 2,
            "kernel_size": 3,
            "padding": "same",
            "dilation": (2, 3),
        },
    ),
    "valid": (
        (2, 1, 6, 5),
        {"in_channels": 1, "out_channels": 2, "kernel_size": 2, "padding": "valid"},
    ),
    "dilation": (
        (1, 2, 9, 10),
        {
            "in_channels": 2,
            "out_channels": 2,
            "kernel_size": 3,
            "dilation": 2,
            "padding": 2,
        },
    ),
    "groups": (
        (2, 4, 6, 7),
        {
            "in_channels": 4,
            "out_channels": 6,
            "kernel_size": 3,
            "groups": 2,
            "stride": 2,
        },
    ),
    "depthwise": (
        (2, 3, 5, 6),
        {"in_channels": 3, "out_channels": 6, "kernel_size": 2, "groups": 3},
    ),
    "no-bias": (
        (2, 3, 6, 6),
        {"in_channels": 3, "out_channels": 2, "kernel_size": 3, "bias": False},
    ),
    "1x1": ((3, 4, 5, 3), {"in_channels": 4, "out_channels": 5, "kernel_size": 1}),
}


@same_padding_warning
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES.keys())
def test_conv2d_matches_torch(case, dtype, rng):
    x_shape, kwargs = case
    theirs = torch_twin(torch.nn.Conv2d(**kwargs), dtype)
    ours = nn.Conv2d(**kwargs, dtype=dtype, rng=rng)
    ours.load_state_dict(numpy_state(theirs))
    x = rng.standard_normal(x_shape).astype(dtype)
    check_twin(ours, theirs, x, dtype, rng)


def test_conv2d_accepts_non_contiguous_input(rng):
    theirs = torch_twin(torch.nn.Conv2d(3, 2, 3), np.float64)
    ours = nn.Conv2d(3, 2, 3, dtype=np.float64, rng=rng)
    ours.load_state_dict(numpy_state(theirs))
    x = rng.standard_normal((6, 9, 3, 2)).transpose(3, 2, 1, 0)[
        :, :, ::-1
    ]  # (2, 3, 9, 6)
    assert not x.flags.c_contiguous
    check_twin(ours, theirs, x, np.float64, rng)


@st.composite
def conv_configs(draw):
    groups = draw(st.integers(1, 4))
    in_channels = groups * draw(st.integers(1, 4 // groups))
    out_channels = groups * draw(st.integers(1, 4 // groups))
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(
        st.one_of(
            st.tuples(st.integers(0, 3), st.integers(0, 3)),
            st.sampled_from(["valid", "same"] if stride == (1, 1) else ["valid"]),
        )
    )
    size = []
    for axis in range(2):
        extent = dilation[axis] * (kernel[axis] - 1) + 1
        if padding == "same":
            total_pad = extent - 1
        elif padding == "valid":
            total_pad = 0
        else:
            total_pad = 2 * padding[axis]
        # From the size where the dilated kernel exactly fills the padded input.
        smallest = max(1, extent - total_pad)
        size.append(draw(st.integers(smallest, smallest + 6)))
    return {
        "x_shape": (draw(st.integers(1, 3)), in_channels, *size),
        "dtype": draw(st.sampled_from(DTYPES)),
        "kwargs": {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "kernel_size": kernel,
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
            "groups": groups,
            "bias": draw(st.booleans()),
        },
    }


@same_padding_warning
@settings(max_examples=40, deadline=None)
@given(config=conv_configs(), seed=st.integers(0, 2**16))
def test_conv2d_matches_torch_property(config, seed):
    rng = np.random.default_rng(seed)
    dtype, kwargs = config["dtype"], config["kwargs"]
    ours = nn.Conv2d(**kwargs, dtype=dtype, rng=rng)
    theirs = torch_twin(torch.nn.Conv2d(**kwargs), dtype)
    # This direction too: cnnumpy's state_dict loads into PyTorch.
    theirs.load_state_dict(
        {k: torch.from_numpy(v) for k, v in ours.state_dict().items()}
    )
    x = rng.standard_normal(config["x_shape"]).astype(dtype)
    check_twin(ours, theirs, x, dtype, rng)


# --- Linear, Flatten, pools, activations --------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("x_shape", "bias"),
    [((5, 7), True), ((2, 4, 7), True), ((6, 7), False), ((7,), True)],
)
def test_linear_matches_torch(x_shape, bias, dtype, rng):
    theirs = torch_twin(torch.nn.Linear(7, 3, bias=bias), dtype)
    ours = nn.Linear(7, 3, bias=bias, dtype=dtype, rng=rng)
    ours.load_state_dict(numpy_state(theirs))
    x = rng.standard_normal(x_shape).astype(dtype)
    y = check_twin(ours, theirs, x, dtype, rng)
    assert y.shape == (*x_shape[:-1], 3)


PARAMETER_FREE_CASES = {
    "maxpool-2": ((2, 3, 8, 7), nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
    "maxpool-3-s2-p1": (
        (2, 2, 7, 9),
        nn.MaxPool2d(3, stride=2, padding=1),
        torch.nn.MaxPool2d(3, stride=2, padding=1),
    ),
    "maxpool-pairs": (
        (1, 2, 6, 9),
        nn.MaxPool2d((2, 3), stride=(1, 2), padding=(1, 0)),
        torch.nn.MaxPool2d((2, 3), stride=(1, 2), padding=(1, 0)),
    ),
    "avgpool-2": ((2, 3, 8, 7), nn.AvgPool2d(2), torch.nn.AvgPool2d(2)),
    "avgpool-3-s2-p1": (
        (2, 2, 7, 9),
        nn.AvgPool2d(3, stride=2, padding=1),
        torch.nn.AvgPool2d(3, stride=2, padding=1),
    ),
    "avgpool-pairs": (
        (1, 2, 6, 9),
        nn.AvgPool2d((3, 2), stride=1, padding=(1, 1)),
        torch.nn.AvgPool2d((3, 2), stride=1, padding=(1, 1)),
    ),
    "flatten": ((2, 3, 4, 5), nn.Flatten(), torch.nn.Flatten()),
    "flatten-2-3": ((2, 3, 4, 5), nn.Flatten(2, 3), torch.nn.Flatten(2, 3)),
    "relu": ((4, 9), nn.ReLU(), torch.nn.ReLU()),
    "leaky-relu": ((2, 3, 4, 5), nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
    "leaky-relu-default": ((4, 9), nn.LeakyReLU(), torch.nn.LeakyReLU()),
    "tanh": ((2, 3, 4, 5), nn.Tanh(), torch.nn.Tanh()),
    "sigmoid": ((4, 9), nn.Sigmoid(), torch.nn.Sigmoid()),
    "softmax": ((4, 9), nn.Softmax(), torch.nn.Softmax(dim=-1)),
    "softmax-dim1": ((2, 3, 4, 5), nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
    "log-softmax": ((4, 9), nn.LogSoftmax(), torch.nn.LogSoftmax(dim=-1)),
    "log-softmax-dim1": ((2, 3, 4), nn.LogSoftmax(dim=1), torch.nn.LogSoftmax(dim=1)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "case", PARAMETER_FREE_CASES.values(), ids=PARAMETER_FREE_CASES.keys()
)
def test_parameter_free_module_matches_torch(case, dtype, rng):
    x_shape, ours, theirs = case
    x = 3 * rng.standard_normal(x_shape).astype(dtype)
    assert list(ours.parameters()) == []
    check_twin(ours, theirs, x, dtype, rng)


@st.composite
def pool_configs(draw):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    size = [draw(st.integers(max(1, k - 2 * p), 9)) for k, p in zip(kernel, padding)]
    return {
        "x_shape": (draw(st.integers(1, 3)), draw(st.integers(1, 3)), *size),
        "dtype": draw(st.sampled_from(DTYPES)),
        # Rounded inputs tie inside windows: the gradient goes to the first max.
        "ties": draw(st.booleans()),
        "kwargs": {"kernel_size": kernel, "stride": stride, "padding": padding},
    }


@settings(max_examples=40, deadline=None)
@given(config=pool_configs(), seed=st.integers(0, 2**16))
def test_pools_match_torch_property(config, seed):
    rng = np.random.default_rng(seed)
    dtype, kwargs = config["dtype"], config["kwargs"]
    x = 2 * rng.standard_normal(config["x_shape"])
    x = (np.round(x) if config["ties"] else x).astype(dtype)
    for ours, theirs in [
        (nn.MaxPool2d(**kwargs), torch.nn.MaxPool2d(**kwargs)),
        (nn.AvgPool2d(**kwargs), torch.nn.AvgPool2d(**kwargs)),
    ]:
        check_twin(ours, theirs, x, dtype, rng)


@pytest.mark.parametrize("dtype", DTYPES)
def test_activations_match_torch_on_large_inputs(dtype, rng):
    # Saturated sigmoid/tanh and softmax of big logits: no overflow, no NaN.
    x = (rng.standard_normal((4, 6)) * 1e3).astype(dtype)
    for ours, theirs in [
        (nn.Sigmoid(), torch.nn.Sigmoid()),
        (nn.Tanh(), torch.nn.Tanh()),
        (nn.Softmax(), torch.nn.Softmax(dim=-1)),
        (nn.LogSoftmax(), torch.nn.LogSoftmax(dim=-1)),
    ]:
        y = check_twin(ours, theirs, x, dtype, rng)
        assert np.isfinite(y).all()


# --- Dropout -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_train_matches_torch_with_the_same_mask(dtype, rng):
    p = 0.3
    ours = nn.Dropout(p, rng=np.random.default_rng(1))
    x = rng.standard_normal((8, 3, 5, 5)).astype(dtype)
    y = ours(x)
    kept = y != 0  # x is never exactly 0
    assert 0 < kept.mean() < 1
    # PyTorch's dropout with cnnumpy's mask: survivors scaled by 1/(1-p).
    tx = leaf(x)
    ty = tx * torch.from_numpy(kept) / (1 - p)
    assert_close(y, ty, dtype)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ours.backward(dy)
    ty.backward(torch.from_numpy(dy))
    assert_close(dx, tx.grad, dtype)
    assert (dx[~kept] == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_eval_is_identity(dtype, rng):
    ours = nn.Dropout(0.5, rng=rng).eval()
    x = rng.standard_normal((4, 5)).astype(dtype)
    dy = rng.standard_normal((4, 5)).astype(dtype)
    y = ours(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(ours.backward(dy), dy)


def test_dropout_rate_within_binomial_bound():
    p, n = 0.3, 200_000
    y = nn.Dropout(p, rng=np.random.default_rng(2))(np.ones(n, dtype=np.float32))
    dropped = int((y == 0).sum())
    # Binomial(n, p): six standard deviations is a bound no honest run crosses.
    assert abs(dropped - n * p) < 6 * np.sqrt(n * p * (1 - p))
    np.testing.assert_array_equal(np.unique(y), np.float32([0, 1 / (1 - p)]))


def test_dropout_masks_come_from_the_rng():
    x = np.ones((50, 50))
    a = nn.Dropout(0.5, rng=np.random.default_rng(3))
    b = nn.Dropout(0.5, rng=np.random.default_rng(3))
    first = a(x)
    np.testing.assert_array_equal(first, b(x))  # same seed, same mask
    assert not np.array_equal(first, a(x))  # the next call draws a new mask


def test_dropout_p_zero_and_one(rng):
    x = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(nn.Dropout(0.0)(x), x)
    one = nn.Dropout(1.0)
    np.testing.assert_array_equal(one(x), np.zeros_like(x))
    np.testing.assert_array_equal(one.backward(np.ones_like(x)), np.zeros_like(x))


# --- BatchNorm2d ---------------------------------------------------------------------

BATCHNORM_CASES = {
    "default": {},
    "momentum-none": {"momentum": None},
    "momentum-eps": {"momentum": 0.3, "eps": 1e-3},
    "affine-false": {"affine": False},
    "no-running-stats": {"track_running_stats": False},
    "affine-false-no-running-stats": {"affine": False, "track_running_stats": False},
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs", BATCHNORM_CASES.values(), ids=BATCHNORM_CASES.keys())
def test_batchnorm2d_matches_torch(kwargs, dtype, rng):
    theirs = torch_twin(torch.nn.BatchNorm2d(3, **kwargs), dtype)
    ours = nn.BatchNorm2d(3, **kwargs, dtype=dtype)
    if kwargs.get("affine", True):
        # Non-trivial weight and bias, set in torch and copied across.
        with torch.no_grad():
            theirs.weight.copy_(torch.from_numpy(rng.uniform(0.5, 2, 3)))
            theirs.bias.copy_(torch.from_numpy(rng.standard_normal(3)))
    ours.load_state_dict(numpy_state(theirs))

    # Per-channel scales and offsets, so the running statistics move.
    scale = np.array([3, 0.5, 1]).reshape(1, 3, 1, 1)
    offset = np.array([2, -1, 0]).reshape(1, 3, 1, 1)

    def batch():
        return (rng.standard_normal((4, 3, 5, 6)) * scale + offset).astype(dtype)

    # Several training steps, then evaluation: the running statistics and
    # num_batches_tracked must follow PyTorch's at every step.
    for train in (True, True, True, False, False):
        ours.zero_grad()
        theirs.zero_grad()
        check_twin(ours, theirs, batch(), dtype, rng, train=train)
        state = ours.state_dict()
        expected = numpy_state(theirs)
        assert list(state) == list(expected)
        for key, value in state.items():
            if key == "num_batches_tracked":
                assert value.dtype == np.int64
                np.testing.assert_array_equal(value, expected[key])
            else:
                assert_close(value, expected[key], dtype)
    if kwargs.get("track_running_stats", True):
        assert int(ours.state_dict()["num_batches_tracked"]) == 3


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm2d_resumes_from_a_loaded_state(momentum, rng):
    # With momentum=None the running averages weigh batches by 1/num_batches_tracked,
    # so training must continue from the loaded count, not from zero.
    theirs = torch.nn.BatchNorm2d(3, momentum=momentum).double()
    for _ in range(3):
        theirs(torch.from_numpy(rng.standard_normal((4, 3, 2, 2)) + 1))
    ours = nn.BatchNorm2d(3, momentum=momentum, dtype=np.float64)
    ours.load_state_dict(numpy_state(theirs))
    x = 2 * rng.standard_normal((4, 3, 2, 2)) - 1
    ours(x)
    theirs(torch.from_numpy(x))
    expected = numpy_state(theirs)
    for key, value in ours.state_dict().items():
        np.testing.assert_allclose(value, expected[key], rtol=1e-10, atol=1e-12)
    assert int(ours.num_batches_tracked) == 4


def test_batchnorm2d_failed_forward_changes_nothing():
    bn = nn.BatchNorm2d(3)
    before = bn.state_dict()
    with pytest.raises(
        ValueError, match=r"more than 1 value per channel, .*\(1, 3, 1, 1\)"
    ):
        bn(np.ones((1, 3, 1, 1)))
    # PyTorch counts the rejected batch in num_batches_tracked; cnnumpy does not.
    for key, value in bn.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


# --- LeNet-5 on MNIST ------------------------------------------------------------------


def lenet(lib, modern=False, **kwargs):
    """LeNet-5 (tanh, average pooling) or its modern variant (ReLU, max pooling).

    ``lib`` is ``torch.nn`` or ``cnnumpy.nn``; ``kwargs`` go to the layers with
    parameters (cnnumpy's ``dtype`` and ``rng``).
    """
    act = lib.ReLU if modern else lib.Tanh
    pool = lib.MaxPool2d if modern else lib.AvgPool2d
    return lib.Sequential(
        lib.Conv2d(1, 6, 5, padding=2, **kwargs),
        act(),
        pool(2),
        lib.Conv2d(6, 16, 5, **kwargs),
        act(),
        pool(2),
        lib.Flatten(),
        lib.Linear(400, 120, **kwargs),
        act(),
        lib.Linear(120, 84, **kwargs),
        act(),
        lib.Linear(84, 10, **kwargs),
    )


def lenet_ours(modern=False, dtype=np.float32, seed=0):
    return lenet(nn, modern, dtype=dtype, rng=np.random.default_rng(seed))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("modern", [False, True], ids=["tanh-avgpool", "relu-maxpool"])
def test_lenet5_matches_torch_on_mnist(modern, dtype, mnist_digits):
    images, labels = mnist_digits
    torch.manual_seed(0)
    theirs = torch_twin(lenet(torch.nn, modern), dtype)
    ours = lenet_ours(modern, dtype)
    assert [n for n, _ in ours.named_parameters()] == [
        n for n, _ in theirs.named_parameters()
    ]
    ours.load_state_dict(numpy_state(theirs))

    x = (images / 255).astype(dtype)  # (16, 1, 28, 28)
    tx = leaf(x)
    logits = ours(x)
    tlogits = theirs(tx)
    tlogits.retain_grad()
    assert_close(logits, tlogits, dtype)

    criterion = nn.CrossEntropyLoss()
    loss = criterion(logits, labels)
    tloss = torch.nn.functional.cross_entropy(tlogits, torch.from_numpy(labels))
    assert isinstance(loss, float)
    np.testing.assert_allclose(loss, tloss.item(), **TOLERANCE[np.dtype(dtype)])

    dlogits = criterion.backward()
    dx = ours.backward(dlogits)
    tloss.backward()
    assert_close(dlogits, tlogits.grad, dtype)
    assert_close(dx, tx.grad, dtype)
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, theirs_params[name].grad, dtype)


def test_lenet5_takes_raw_uint8_images(mnist_digits):
    images, _ = mnist_digits
    model = lenet_ours()
    y = model(images)  # uint8 becomes the model's float32
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, model(images.astype(np.float32)))


# --- CrossEntropyLoss ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_cross_entropy_matches_torch(scale, dtype, rng):
    logits = (rng.standard_normal((6, 5)) * scale).astype(dtype)
    target = rng.integers(0, 5, 6)
    criterion = nn.CrossEntropyLoss()
    loss = criterion(logits, target)
    grad = criterion.backward()

    tlogits = leaf(logits)
    tloss = torch.nn.functional.cross_entropy(tlogits, torch.from_numpy(target))
    tloss.backward()
    assert isinstance(loss, float)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    np.testing.assert_allclose(loss, tloss.item(), **TOLERANCE[np.dtype(dtype)])
    assert_close(grad, tlogits.grad, dtype)


def test_cross_entropy_takes_uint8_labels(rng):
    logits = rng.standard_normal((4, 10))
    labels = np.array([7, 2, 1, 0], dtype=np.uint8)  # as read from an IDX file
    criterion = nn.CrossEntropyLoss()
    loss = criterion(logits, labels)
    grad = criterion.backward()
    assert loss == criterion(logits, labels.astype(np.int64))
    np.testing.assert_array_equal(grad, criterion.backward())


def test_cross_entropy_backward_scales_by_grad(rng):
    logits = rng.standard_normal((3, 4))
    criterion = nn.CrossEntropyLoss()
    criterion(logits, np.array([0, 3, 1]))
    np.testing.assert_allclose(criterion.backward(2.5), 2.5 * criterion.backward())


# --- the Module contract ---------------------------------------------------------------


def small_net(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1, dtype=dtype, rng=rng),
        nn.BatchNorm2d(3, dtype=dtype),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.5, rng=rng),
        nn.Linear(12, 5, dtype=dtype, rng=rng),
    )


def small_net_torch():
    return torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3, padding=1),
        torch.nn.BatchNorm2d(3),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Dropout(0.5),
        torch.nn.Linear(12, 5),
    )


def grads(module):
    return {name: p.grad.copy() for name, p in module.named_parameters()}


def test_call_is_forward(rng):
    model = small_net().eval()
    x = rng.standard_normal((2, 2, 4, 4))
    np.testing.assert_array_equal(model(x), model.forward(x))


def test_backward_accumulates_until_zero_grad(rng):
    model = small_net().eval()
    x = rng.standard_normal((2, 2, 4, 4))
    dy = rng.standard_normal((2, 5))
    model(x)
    model.backward(dy)
    once = grads(model)
    model(x)
    model.backward(dy)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, 2 * once[name], rtol=1e-12)
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model(x)
    model.backward(dy)
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(p.grad, once[name])
    # Two backward passes of one forward pass accumulate too.
    model.backward(dy)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, 2 * once[name], rtol=1e-12)


def test_parameters_are_named_attributes():
    conv = nn.Conv2d(2, 3, 3)
    assert isinstance(conv.weight, Parameter) and isinstance(conv.bias, Parameter)
    assert conv.weight.data.shape == (3, 2, 3, 3) and conv.weight.grad is None
    assert [p for p in conv.parameters()] == [conv.weight, conv.bias]
    assert dict(conv.named_parameters()) == {"weight": conv.weight, "bias": conv.bias}
    assert nn.Conv2d(2, 3, 3, bias=False).bias is None
    assert [n for n, _ in nn.Linear(2, 3, bias=False).named_parameters()] == ["weight"]


def test_names_and_state_dict_keys_match_torch():
    ours = nn.Sequential(
        nn.Conv2d(3, 4, 3, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4, affine=False)),
        nn.BatchNorm2d(4, track_running_stats=False),
        nn.Flatten(),
        nn.Linear(4, 2),
    )
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, bias=False),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.Sequential(
            torch.nn.Conv2d(4, 4, 1), torch.nn.BatchNorm2d(4, affine=False)
        ),
        torch.nn.BatchNorm2d(4, track_running_stats=False),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 2),
    )
    assert [n for n, _ in ours.named_parameters()] == [
        n for n, _ in theirs.named_parameters()
    ]
    state = ours.state_dict()
    expected = numpy_state(theirs)
    assert list(state) == list(expected)
    for key in state:
        assert state[key].shape == expected[key].shape
    ours.load_state_dict(expected)
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(value, expected[key])


def test_state_dict_returns_copies():
    model = nn.Linear(3, 2)
    state = model.state_dict()
    state["weight"][...] = 7
    assert not (model.weight.data == 7).any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_load_state_dict_keeps_the_module_dtype(dtype):
    theirs = lenet(torch.nn).double()  # float64 state
    ours = lenet_ours(dtype=dtype)
    ours.load_state_dict(numpy_state(theirs))
    for key, value in ours.state_dict().items():
        assert value.dtype == dtype
        np.testing.assert_array_equal(value, numpy_state(theirs)[key].astype(dtype))
    bn = nn.BatchNorm2d(3, dtype=dtype)
    bn.load_state_dict(numpy_state(torch.nn.BatchNorm2d(3).double()))
    assert bn.running_mean.dtype == bn.running_var.dtype == dtype
    assert bn.num_batches_tracked.dtype == np.int64


def test_train_and_eval_reach_every_child(rng):
    model = nn.Sequential(small_net(), nn.Sequential(nn.Dropout(), nn.ReLU()))
    assert model.eval() is model
    assert all(not m.training for m in model.modules())
    assert model.train() is model
    assert all(m.training for m in model.modules())
    model.train(False)
    assert all(not m.training for m in model.modules())


def test_eval_mode_network_matches_torch(rng):
    theirs = small_net_torch().double()
    ours = small_net()
    # Train a few steps in both so the running statistics are not the defaults;
    # dropout is left out of the training steps (its masks differ).
    theirs[1].train()
    ours[1].train()
    for _ in range(2):
        x = rng.standard_normal((4, 2, 4, 4)) + 1
        theirs[1](theirs[0](torch.from_numpy(x)))
    ours.load_state_dict(numpy_state(theirs))
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((4, 2, 4, 4))
    check_twin(ours, theirs, x, np.float64, rng, train=False)


def test_sequential_indexing():
    layers = [nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3)]
    model = nn.Sequential(*layers)
    assert len(model) == 4
    assert list(model) == layers
    assert model[0] is layers[0] and model[-1] is layers[-1] and model[-4] is layers[0]
    head = model[1:3]
    assert isinstance(head, nn.Sequential) and list(head) == layers[1:3]
    tail = model[-2:]
    assert list(tail) == layers[2:]
    # As in PyTorch, a slice keeps the children's names.
    assert [n for n, _ in tail.named_parameters()] == ["3.weight", "3.bias"]
    assert tail[1].weight is layers[3].weight  # a slice shares the modules
    with pytest.raises(IndexError, match=r"`index` must be in \[-4, 3\], got 4"):
        model[4]
    with pytest.raises(IndexError, match=r"got -5"):
        model[-5]
    with pytest.raises(TypeError, match=r"`index` must be an int or a slice, got 'a'"):
        model["a"]


def test_repr_matches_torch_for_conv_linear_and_activations():
    for ours, theirs in [
        (nn.Conv2d(1, 6, 5, padding=2), torch.nn.Conv2d(1, 6, 5, padding=2)),
        (nn.Conv2d(4, 8, 3, stride=2, groups=2), torch.nn.Conv2d(4, 8, 3, 2, groups=2)),
        (nn.Conv2d(2, 2, 3, bias=False), torch.nn.Conv2d(2, 2, 3, bias=False)),
        (nn.Linear(400, 120), torch.nn.Linear(400, 120)),
        (nn.Tanh(), torch.nn.Tanh()),
        (nn.Flatten(), torch.nn.Flatten()),
    ]:
        assert repr(ours) == repr(theirs)


def test_sequential_repr_lists_children():
    text = repr(lenet_ours())
    lines = text.splitlines()
    assert lines[0] == "Sequential("
    assert lines[1].startswith("  (0): Conv2d(1, 6, kernel_size=(5, 5)")
    assert lines[12] == "  (11): Linear(in_features=84, out_features=10, bias=True)"
    assert lines[-1] == ")"
    assert "Dropout(p=0.25)" in repr(nn.Dropout(0.25))
    assert "MaxPool2d(kernel_size=(2, 2)" in repr(nn.MaxPool2d(2))


@pytest.mark.parametrize(
    ("make", "x_shape"),
    [
        (lambda r: nn.Conv2d(2, 3, 3, dtype=np.float64, rng=r), (2, 2, 5, 5)),
        (lambda r: nn.Linear(4, 3, dtype=np.float64, rng=r), (2, 4)),
        (lambda r: nn.BatchNorm2d(2, dtype=np.float64), (3, 2, 2, 2)),
        (lambda r: nn.Tanh(), (2, 4)),
    ],
    ids=["conv", "linear", "batchnorm", "tanh"],
)
def test_input_grad_false_skips_the_input_gradient(make, x_shape, rng):
    module = make(rng)
    x = rng.standard_normal(x_shape)
    y = module(x)
    dy = rng.standard_normal(y.shape)
    assert module.backward(dy).shape == x.shape
    with_dx = grads(module)
    module.zero_grad()
    module.input_grad = False
    module(x)
    assert module.backward(dy) is None
    for name, p in module.named_parameters():
        np.testing.assert_array_equal(p.grad, with_dx[name])


class CountingReLU(nn.ReLU):
    """A ReLU that counts its backward calls."""

    def __init__(self) -> None:
        super().__init__()
        self.backward_calls = 0

    def backward(self, dy):
        self.backward_calls += 1
        return super().backward(dy)


def test_sequential_input_grad_false_skips_the_first_layers(rng):
    def net():
        r = np.random.default_rng(0)
        return nn.Sequential(
            CountingReLU(),
            nn.Sequential(nn.Conv2d(2, 3, 3, dtype=np.float64, rng=r), nn.Tanh()),
            nn.Flatten(),
            nn.Linear(27, 4, dtype=np.float64, rng=r),
        )

    x = rng.standard_normal((2, 2, 5, 5))
    dy = rng.standard_normal((2, 4))
    full = net()
    full(x)
    assert full.backward(dy).shape == x.shape
    assert full[0].backward_calls == 1
    skipping = net()
    skipping.input_grad = False
    skipping(x)
    assert skipping.backward(dy) is None
    for name, p in skipping.named_parameters():
        np.testing.assert_array_equal(p.grad, grads(full)[name])
    # The first child with parameters (a Sequential, whose own first layer is the
    # conv) computes no input gradient, and the ReLU before it is not run at all.
    assert [m.input_grad for m in skipping[1:]] == [False, True, True]
    assert [m.input_grad for m in skipping[1]] == [False, True]
    assert skipping[0].backward_calls == 0
    # Asking again for the input gradient turns it back on.
    skipping.input_grad = True
    skipping(x)
    np.testing.assert_array_equal(skipping.backward(dy), full.backward(dy))
    assert skipping[0].backward_calls == 1


# --- dtype rules ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("input_dtype", [np.float64, np.float32, np.uint8, np.int64])
@pytest.mark.parametrize(
    ("make", "x_shape"),
    [
        (lambda d: nn.Conv2d(2, 3, 3, dtype=d), (2, 2, 5, 5)),
        (lambda d: nn.Linear(4, 3, dtype=d), (2, 4)),
        (lambda d: nn.BatchNorm2d(2, dtype=d), (2, 2, 3, 3)),
    ],
    ids=["conv", "linear", "batchnorm"],
)
def test_modules_with_parameters_compute_in_their_dtype(
    make, x_shape, input_dtype, dtype, rng
):
    module = make(dtype)
    x = rng.integers(0, 5, x_shape).astype(input_dtype)
    y = module(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, module(x.astype(dtype)))
    if np.dtype(input_dtype).kind != "f":  # an integer gradient is refused
        with pytest.raises(TypeError, match=r"`dy` must be float32 or float64"):
            module.backward(np.ones(y.shape, dtype=input_dtype))
        input_dtype = dtype
    dx = module.backward(np.ones(y.shape, dtype=input_dtype))
    assert dx.dtype == dtype
    assert all(p.grad.dtype == dtype for p in module.parameters())


@pytest.mark.parametrize(
    "module",
    [
        nn.ReLU(),
        nn.LeakyReLU(),
        nn.Tanh(),
        nn.Sigmoid(),
        nn.Softmax(),
        nn.LogSoftmax(),
        nn.MaxPool2d(2),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.5),
    ],
    ids=lambda m: type(m).__name__,
)
def test_parameter_free_modules_keep_the_float_dtype(module, rng):
    for dtype in DTYPES:
        x = rng.standard_normal((2, 2, 4, 4)).astype(dtype)
        y = module(x)
        assert y.dtype == dtype
        assert module.backward(np.ones_like(y)).dtype == dtype
    # Integer inputs (raw pixels) become float32.
    assert module(np.arange(64, dtype=np.uint8).reshape(2, 2, 4, 4)).dtype == np.float32


@pytest.mark.parametrize("modern", [False, True])
def test_float32_network_stays_float32(modern, rng):
    model = lenet_ours(modern, np.float32)
    model.train()
    x = rng.standard_normal((3, 1, 28, 28)).astype(np.float32)
    logits = model(x)
    assert logits.dtype == np.float32
    criterion = nn.CrossEntropyLoss()
    criterion(logits, np.array([1, 2, 3]))
    dlogits = criterion.backward()
    assert dlogits.dtype == np.float32
    assert model.backward(dlogits).dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())
    net = small_net(np.float32)
    out = net(x[:, :1].repeat(2, axis=1)[:, :, :4, :4])
    assert out.dtype == np.float32
    assert net.backward(np.ones_like(out)).dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in net.parameters())


# --- initialisation ------------------------------------------------------------------


def test_default_init_bounds_and_spread():
    layer = nn.Linear(400, 1000, rng=np.random.default_rng(0))
    bound = 1 / np.sqrt(400)
    for p in layer.parameters():
        # float32 rounding may land a draw exactly on the (rounded) bound.
        assert np.abs(p.data).max() <= np.float32(bound)
    w = layer.weight.data.astype(np.float64)
    # 400k draws of U(-b, b): std b/sqrt(3), mean 0, to well within 1%.
    np.testing.assert_allclose(w.std(), bound / np.sqrt(3), rtol=0.01)
    assert abs(w.mean()) < 0.01 * bound
    assert np.abs(w).max() > 0.99 * bound
    # Conv fan_in is in_channels / groups * kH * kW.
    conv = nn.Conv2d(8, 64, 3, groups=2, rng=np.random.default_rng(0))
    conv_bound = 1 / np.sqrt(4 * 9)
    for p in conv.parameters():
        assert np.abs(p.data).max() <= np.float32(conv_bound)
        assert np.abs(p.data).max() > 0.9 * conv_bound


def test_init_is_reproducible_and_leaves_the_global_rng_alone():
    # The legacy global state is exactly what must stay untouched.
    before = np.random.get_state()  # noqa: NPY002
    a = lenet_ours(seed=1).state_dict()
    b = lenet_ours(seed=1).state_dict()
    c = lenet_ours(seed=2).state_dict()
    nn.Dropout(0.5)(np.ones(10))
    nn.Conv2d(1, 2, 3)  # rng=None: a fresh generator, not the global one
    after = np.random.get_state()  # noqa: NPY002
    assert before[0] == after[0] and before[2:] == after[2:]
    np.testing.assert_array_equal(before[1], after[1])
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
        assert not np.array_equal(a[key], c[key])


# --- validation errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: nn.Conv2d(1, 2, 0), ValueError, r"`kernel_size` must be >= 1, got 0"),
        (
            lambda: nn.Conv2d(1, 2, -3),
            ValueError,
            r"`kernel_size` must be >= 1, got -3",
        ),
        (lambda: nn.Conv2d(1, 2, (3, 0)), ValueError, r"`kernel_size` .*got \(3, 0\)"),
        (lambda: nn.Conv2d(1, 2, 2.5), TypeError, r"`kernel_size` .*got 2\.5"),
        (
            lambda: nn.Conv2d(1, 2, 3, stride=0),
            ValueError,
            r"`stride` must be >= 1, got 0",
        ),
        (lambda: nn.Conv2d(1, 2, 3, dilation=0), ValueError, r"`dilation` .*got 0"),
        (
            lambda: nn.Conv2d(1, 2, 3, padding=-1),
            ValueError,
            r"`padding` .*>= 0, got -1",
        ),
        (lambda: nn.Conv2d(1, 2, 3, padding="full"), ValueError, r"`padding` .*'full'"),
        (
            lambda: nn.Conv2d(1, 2, 3, stride=2, padding="same"),
            ValueError,
            r"`padding`='same' requires `stride`=1, got stride=\(?2",
        ),
        (
            lambda: nn.Conv2d(3, 4, 3, groups=2),
            ValueError,
            r"`in_channels` \(=3\) must be divisible by `groups` \(=2\)",
        ),
        (
            lambda: nn.Conv2d(4, 3, 3, groups=2),
            ValueError,
            r"`out_channels` \(=3\) must be divisible by `groups` \(=2\)",
        ),
        (lambda: nn.Conv2d(0, 2, 3), ValueError, r"`in_channels` must be >= 1, got 0"),
        (
            lambda: nn.Conv2d(1, 2, 3, groups=0),
            ValueError,
            r"`groups` must be >= 1, got 0",
        ),
        (
            lambda: nn.Conv2d(1, 2, 3, bias="yes"),
            TypeError,
            r"`bias` must be a bool, got str 'yes'",
        ),
        (lambda: nn.Conv2d(1, 2, 3, dtype=np.int32), TypeError, r"`dtype` .*int32"),
        (lambda: nn.Linear(0, 3), ValueError, r"`in_features` must be >= 1, got 0"),
        (lambda: nn.Linear(2, -1), ValueError, r"`out_features` must be >= 1, got -1"),
        (lambda: nn.Linear(2, 3, dtype="int32"), TypeError, r"`dtype` .*int32"),
        (lambda: nn.Linear(2, 3, dtype=np.float16), TypeError, r"`dtype` .*float16"),
        (
            lambda: nn.Linear(2, 3, rng=42),
            TypeError,
            r"`rng` must be .*Generator.*got int",
        ),
        (
            lambda: nn.Conv2d(1, 2, 3, rng=np.random.RandomState(0)),
            TypeError,
            r"`rng` .*got RandomState",
        ),
        (lambda: nn.MaxPool2d(0), ValueError, r"`kernel_size` must be >= 1, got 0"),
        (
            lambda: nn.AvgPool2d(2, stride=0),
            ValueError,
            r"`stride` must be >= 1, got 0",
        ),
        (lambda: nn.MaxPool2d(2, padding=-1), ValueError, r"`padding` .*got -1"),
        (
            lambda: nn.MaxPool2d(2, padding=2),
            ValueError,
            r"`padding` \(=2\) must be at most half of `kernel_size` \(=2\)",
        ),
        (
            lambda: nn.AvgPool2d((3, 2), padding=(1, 2)),
            ValueError,
            r"`padding` \(=\(1, 2\)\) must be at most half of `kernel_size` \(=\(3, 2\)\)",
        ),
        (
            lambda: nn.Dropout(1.5),
            ValueError,
            r"`p` must be in \[0, 1\], got 1\.5",
        ),
        (lambda: nn.Dropout(-0.1), ValueError, r"`p` .*got -0\.1"),
        (lambda: nn.Dropout(0.5, rng=1), TypeError, r"`rng` .*got int"),
        (lambda: nn.BatchNorm2d(0), ValueError, r"`num_features` must be >= 1, got 0"),
        (lambda: nn.BatchNorm2d(3, eps=0), ValueError, r"`eps` .*got 0"),
        (lambda: nn.BatchNorm2d(3, momentum=1.5), ValueError, r"`momentum` .*got 1\.5"),
        (lambda: nn.BatchNorm2d(3, dtype=np.int32), TypeError, r"`dtype` .*int32"),
        (lambda: nn.LeakyReLU("0.1"), TypeError, r"`negative_slope` .*got str '0\.1'"),
        (
            lambda: nn.Softmax(dim=1.0),
            TypeError,
            r"`dim` must be an int, got float 1\.0",
        ),
        (
            lambda: nn.Flatten(start_dim=None),
            TypeError,
            r"`start_dim` .*got NoneType None",
        ),
        (lambda: nn.Sequential(nn.ReLU(), "relu"), TypeError, r"got str at position 1"),
    ],
)
def test_constructor_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize(
    ("module", "x_shape", "error", "match"),
    [
        (
            nn.Conv2d(3, 2, 3),
            (3, 8, 8),
            ValueError,
            r"`x` must be 4-D \(N, C, H, W\), got shape \(3, 8, 8\) \(3-D\)",
        ),
        (
            nn.Conv2d(3, 2, 3),
            (1, 2, 8, 8),
            ValueError,
            r"`x` has 2 channels but `weight` expects 3",
        ),
        (
            nn.Conv2d(1, 2, 5),
            (1, 1, 3, 8),
            ValueError,
            r"`weight` \(=\(5, 5\), dilated extent 5\) is larger than the padded "
            r"input along h \(3 \+ 2\*0 = 3\)",
        ),
        (
            nn.Conv2d(1, 2, 3, padding=1, dilation=3),
            (1, 1, 8, 4),
            ValueError,
            r"`weight` \(=\(3, 3\), dilated extent 7\) is larger than the padded "
            r"input along w \(4 \+ 2\*1 = 6\)",
        ),
        (
            nn.MaxPool2d(3),
            (1, 1, 8, 2),
            ValueError,
            r"`kernel_size` \(=\(3, 3\), dilated extent 3\) is larger than the "
            r"padded input along w \(2 \+ 2\*0 = 2\)",
        ),
        (nn.AvgPool2d(2), (4, 4), ValueError, r"`x` must be 4-D .*got shape \(4, 4\)"),
        (
            nn.Linear(4, 3),
            (2, 5),
            ValueError,
            r"`x` must have shape \(\*, 4\) to match `weight`, got \(2, 5\)",
        ),
        (
            nn.BatchNorm2d(3),
            (2, 4, 5, 5),
            ValueError,
            r"`x` must have shape \(N, 3, H, W\), got \(2, 4, 5, 5\)",
        ),
        (
            nn.BatchNorm2d(3),
            (2, 3, 5),
            ValueError,
            r"`x` must have shape .*got \(2, 3, 5\)",
        ),
        (
            nn.Softmax(dim=2),
            (2, 3),
            ValueError,
            r"`dim` must be in \[-2, 1\] for a 2-D input, got 2",
        ),
        (nn.Flatten(2, 1), (2, 3, 4), ValueError, r"`start_dim`..`end_dim` \(=2..1\)"),
    ],
)
def test_forward_errors(module, x_shape, error, match):
    with pytest.raises(error, match=match):
        module(np.ones(x_shape, dtype=np.float32))


def test_forward_rejects_non_numeric_input():
    with pytest.raises(TypeError, match=r"`x` must be a numeric array, got dtype <U1"):
        nn.Linear(1, 1)(np.array([["a"]]))
    with pytest.raises(
        TypeError, match=r"`x` must be a numeric array, got dtype object"
    ):
        nn.ReLU()(np.array([None]))


BACKWARD_CASES = {
    "conv": (lambda: nn.Conv2d(2, 3, 3), (2, 2, 5, 5)),
    "linear": (lambda: nn.Linear(4, 3), (2, 4)),
    "maxpool": (lambda: nn.MaxPool2d(2), (2, 2, 4, 4)),
    "avgpool": (lambda: nn.AvgPool2d(2), (2, 2, 4, 4)),
    "flatten": (nn.Flatten, (2, 2, 3, 3)),
    "relu": (nn.ReLU, (2, 3)),
    "leaky-relu": (nn.LeakyReLU, (2, 3)),
    "tanh": (nn.Tanh, (2, 3)),
    "sigmoid": (nn.Sigmoid, (2, 3)),
    "softmax": (nn.Softmax, (2, 3)),
    "log-softmax": (nn.LogSoftmax, (2, 3)),
    "dropout": (nn.Dropout, (2, 3)),
    "batchnorm": (lambda: nn.BatchNorm2d(2), (2, 2, 3, 3)),
    "sequential": (lambda: nn.Sequential(nn.Linear(4, 3), nn.ReLU()), (2, 4)),
}


@pytest.mark.parametrize(
    ("make", "x_shape"), BACKWARD_CASES.values(), ids=BACKWARD_CASES
)
def test_backward_before_forward_raises(make, x_shape):
    module = make()
    # A Sequential runs backward from its last child.
    name = type(module[-1] if isinstance(module, nn.Sequential) else module).__name__
    with pytest.raises(ValueError, match=rf"{name}.backward called before forward"):
        module.backward(np.ones(x_shape, dtype=np.float32))
    # The same error is a RuntimeError too, as PyTorch raises for a missing graph.
    with pytest.raises(RuntimeError):
        module.backward(np.ones(x_shape, dtype=np.float32))


def test_loss_backward_before_forward_raises():
    with pytest.raises(
        nn.BackwardBeforeForwardError,
        match=r"CrossEntropyLoss.backward called before forward",
    ):
        nn.CrossEntropyLoss().backward()


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(
    ("make", "x_shape"), BACKWARD_CASES.values(), ids=BACKWARD_CASES
)
def test_backward_rejects_a_wrongly_shaped_dy(make, x_shape, train):
    module = make().train(train)
    y = module(np.ones(x_shape, dtype=np.float32))
    for bad in [(*y.shape[:-1], y.shape[-1] + 1), y.shape[::-1], (y.size,)]:
        if bad == y.shape:
            continue
        with pytest.raises(
            ValueError, match=r"`dy` must have .*got (shape )?" + rf"\({bad[0]},"
        ):
            module.backward(np.ones(bad, dtype=np.float32))


@pytest.mark.parametrize(
    ("target", "error", "match"),
    [
        (
            np.array([0, 1, 5]),
            ValueError,
            r"`target` values must be in \[0, 4\], got 5",
        ),
        (
            np.array([0, -1, 2]),
            ValueError,
            r"`target` values must be in \[0, 4\], got -1",
        ),
        (
            np.array([0.0, 1.0, 2.0]),
            TypeError,
            r"`target` must hold integer class indices, got dtype float64",
        ),
        (
            np.array([[0], [1], [2]]),
            ValueError,
            r"`target` must have shape \(3,\) to match `input`, got \(3, 1\)",
        ),
        (np.array([0, 1]), ValueError, r"`target` must have shape \(3,\) .*got \(2,\)"),
    ],
)
def test_cross_entropy_errors(target, error, match):
    with pytest.raises(error, match=match):
        nn.CrossEntropyLoss()(np.zeros((3, 5)), target)


def test_cross_entropy_rejects_non_2d_logits():
    with pytest.raises(ValueError, match=r"`input` must be 2-D .*got shape \(5,\)"):
        nn.CrossEntropyLoss()(np.zeros(5), np.array([1]))


def test_load_state_dict_errors_name_the_key_and_change_nothing():
    model = lenet_ours(seed=0)
    before = model.state_dict()
    good = numpy_state(lenet(torch.nn))  # other weights, same keys and shapes

    def assert_untouched():
        after = model.state_dict()
        for key, value in before.items():
            np.testing.assert_array_equal(after[key], value)

    missing = dict(good)
    del missing["9.bias"]
    with pytest.raises(ValueError, match=r"missing \['9\.bias'\], unexpected \[\]"):
        model.load_state_dict(missing)
    assert_untouched()

    unexpected = dict(good, **{"12.weight": np.zeros((2, 2))})
    with pytest.raises(ValueError, match=r"missing \[\], unexpected \['12\.weight'\]"):
        model.load_state_dict(unexpected)
    assert_untouched()

    # The bad key is the last one: every earlier key must stay as it was.
    wrong_shape = dict(good, **{"11.bias": np.zeros(11)})
    with pytest.raises(
        ValueError,
        match=r"state_dict\['11\.bias'\] must have shape \(10,\), got \(11,\)",
    ):
        model.load_state_dict(wrong_shape)
    assert_untouched()

    non_numeric = dict(good, **{"11.bias": np.array(["x"] * 10)})
    with pytest.raises(TypeError, match=r"state_dict\['11\.bias'\] must be numeric"):
        model.load_state_dict(non_numeric)
    assert_untouched()

    with pytest.raises(TypeError, match=r"`state_dict` must be a mapping .*got list"):
        model.load_state_dict(list(good.items()))
    assert_untouched()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_naive_impl_matches_im2col_through_modules(dtype):
    # impl='naive' runs the reference loops behind the same modules: a learner can
    # swap engines and get the same numbers.
    def net(impl):
        r = np.random.default_rng(7)
        return nn.Sequential(
            nn.Conv2d(2, 3, 3, padding=1, dtype=dtype, rng=r, impl=impl),
            nn.ReLU(),
            nn.MaxPool2d(2, impl=impl),
            nn.Conv2d(3, 4, 2, stride=2, dtype=dtype, rng=r, impl=impl),
            nn.AvgPool2d(1, impl=impl),
        )

    x = np.random.default_rng(8).standard_normal((2, 2, 8, 8)).astype(dtype)
    fast, naive = net("im2col"), net("naive")
    for _ in range(2):  # twice: the second forward reuses the column buffer
        y_fast, y_naive = fast(x), naive(x)
        dy = np.ones_like(y_fast)
        assert_close(y_naive, y_fast, dtype)
        assert_close(naive.backward(dy), fast.backward(dy), dtype)
    for p, q in zip(fast.parameters(), naive.parameters()):
        assert_close(q.grad, p.grad, dtype)
    with pytest.raises(
        ValueError, match=r"`impl` must be one of 'im2col', 'naive', got 'fast'"
    ):
        nn.Conv2d(1, 1, 1, impl="fast")


def test_sequential_named_by_an_ordered_dict_matches_torch():
    from collections import OrderedDict

    t = torch.nn
    theirs = t.Sequential(
        OrderedDict(
            conv1=t.Conv2d(1, 2, 3), act=t.ReLU(), flat=t.Flatten(), fc=t.Linear(8, 3)
        )
    ).double()
    ours = nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(1, 2, 3, dtype=np.float64),
            act=nn.ReLU(),
            flat=nn.Flatten(),
            fc=nn.Linear(8, 3, dtype=np.float64),
        )
    )
    assert [k for k, _ in ours.named_parameters()] == [
        k for k, _ in theirs.named_parameters()
    ]
    ours.load_state_dict(numpy_state(theirs))
    x = np.random.default_rng(9).standard_normal((2, 1, 4, 4))
    assert_close(ours(x), theirs(torch.tensor(x)), np.float64)
    assert ours.conv1 is ours[0] and ours.fc is ours[-1]
    tail = ours[2:]
    assert [k for k, _ in tail.named_parameters()] == ["fc.weight", "fc.bias"]
    assert list(nn.Sequential(nn.ReLU(), nn.Linear(2, 2))[1:].state_dict()) == [
        "1.weight",
        "1.bias",
    ]
    ours.append(nn.ReLU())
    assert [name for name, _ in ours.named_children()][-1] == "4"
    with pytest.raises(AttributeError, match=r"Sequential has no attribute 'conv2'"):
        ours.conv2
    with pytest.raises(
        ValueError, match=r"names must be non-empty strings without '\.', got 'a\.b'"
    ):
        nn.Sequential({"a.b": nn.ReLU()})
    with pytest.raises(
        TypeError, match=r"must be Modules, got int at position 0 \('x'\)"
    ):
        nn.Sequential({"x": 3})


def test_to_dtype_casts_parameters_buffers_and_compute():
    r = np.random.default_rng(3)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, rng=r),
        nn.BatchNorm2d(2),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(8, 2, rng=r),
    )
    x = r.standard_normal((3, 1, 4, 4))
    y32 = model(x)
    model.backward(np.ones_like(y32))
    before = {k: v.astype(np.float64) for k, v in model.state_dict().items()}
    assert model.double() is model
    for key, value in model.state_dict().items():
        want = np.int64 if key.endswith("num_batches_tracked") else np.float64
        assert value.dtype == want, key
        np.testing.assert_array_equal(value, before[key])  # same values, wider type
    assert all(p.grad.dtype == np.float64 for p in model.parameters())
    y64 = model(x)
    assert y64.dtype == np.float64
    assert model.backward(np.ones_like(y64)).dtype == np.float64
    model.float()
    assert model(x).dtype == np.float32 and model[0].weight.data.dtype == np.float32
    with pytest.raises(
        TypeError,
        match=r"`dtype` must be float32 or float64, got <class 'numpy.int32'>",
    ):
        model.to(np.int32)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_keeps_no_columns_and_eval_mode_changes_nothing(dtype):
    """The module keeps its input, not the column matrix, in either mode."""
    rng = np.random.default_rng(12)
    conv = nn.Conv2d(3, 4, 3, padding=1, dtype=dtype, rng=rng)
    x = rng.standard_normal((2, 3, 6, 6)).astype(dtype)
    dy = rng.standard_normal((2, 4, 6, 6)).astype(dtype)
    y_train = conv(x)
    assert conv._ctx.x is x and not hasattr(conv._ctx, "cols")
    dx_train = conv.backward(dy)
    grads_train = [p.grad.copy() for p in conv.parameters()]
    conv.zero_grad()
    conv.eval()
    y_eval = conv(x)
    assert conv._ctx.x is x
    dx_eval = conv.backward(dy)
    np.testing.assert_array_equal(y_eval, y_train)
    np.testing.assert_array_equal(dx_eval, dx_train)
    for p, g in zip(conv.parameters(), grads_train, strict=True):
        np.testing.assert_array_equal(p.grad, g)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("ours", "theirs"), [("Tanh", torch.tanh), ("ReLU", torch.relu)]
)
def test_inplace_activation_overwrites_its_input_with_the_same_gradient(
    dtype, ours, theirs
):
    rng = np.random.default_rng(13)
    x = rng.standard_normal((3, 4, 5, 6)).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    expected = theirs(torch.from_numpy(x.copy()))
    m = getattr(nn, ours)(inplace=True)
    assert repr(m) == f"{ours}(inplace=True)"
    buf = x.copy()
    y = m(buf)
    assert y is buf  # no new array
    assert_close(y, expected, dtype)
    plain = getattr(nn, ours)()
    y2 = plain(x)
    assert y2 is not x and repr(plain) == f"{ours}()"
    np.testing.assert_array_equal(m.backward(dy), plain.backward(dy))


def test_inplace_must_be_a_bool():
    with pytest.raises(TypeError, match="`inplace` must be a bool, got str 'yes'"):
        nn.Tanh(inplace="yes")
