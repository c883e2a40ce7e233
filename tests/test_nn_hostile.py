"""Types at the edges of nn: dtypes, gradients, zero channels, in-place layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnumpy import functional as F
from cnnumpy import models, nn
from cnnumpy.models.lenet import parameter_shapes
from cnnumpy.validation import check_elements, check_grad_dtype, check_shape

LAYERS = [
    (lambda: nn.Conv2d(2, 3, 3), (2, 2, 5, 5)),
    (lambda: nn.Linear(4, 3), (2, 4)),
    (lambda: nn.BatchNorm2d(2), (2, 2, 3, 3)),
    (lambda: nn.ReLU(), (2, 3)),
    (lambda: nn.Tanh(), (2, 3)),
    (lambda: nn.Sigmoid(), (2, 3)),
    (lambda: nn.LeakyReLU(), (2, 3)),
    (lambda: nn.Softmax(), (2, 3)),
    (lambda: nn.LogSoftmax(), (2, 3)),
    (lambda: nn.MaxPool2d(2), (1, 2, 4, 4)),
    (lambda: nn.AvgPool2d(2), (1, 2, 4, 4)),
    (lambda: nn.Flatten(), (2, 2, 3)),
    (lambda: nn.Dropout(0.5, rng=np.random.default_rng(0)), (2, 3)),
]


@pytest.mark.parametrize(("make", "shape"), LAYERS)
@pytest.mark.parametrize("bad", [np.float16, np.int64, np.uint8, np.bool_])
def test_backward_refuses_a_gradient_of_the_wrong_dtype(make, shape, bad, rng):
    module = make()
    y = module(rng.standard_normal(shape).astype(np.float32))
    with pytest.raises(TypeError, match=r"`dy` must be float32 or float64, got "):
        module.backward(np.ones(y.shape, dtype=bad))
    module.backward(np.ones(y.shape, dtype=np.float32))


@pytest.mark.parametrize(
    "dtype", ["float", float, "d", "f4", np.float16, "float16", np.int32, None]
)
def test_dtype_accepts_only_float32_and_float64(dtype):
    with pytest.raises(TypeError, match="`dtype` must be float32 or float64"):
        nn.Linear(2, 2, dtype=dtype)
    with pytest.raises(TypeError, match="`dtype` must be float32 or float64"):
        nn.Linear(2, 2).to(dtype)
    with pytest.raises(TypeError, match="`dtype` must be float32 or float64"):
        models.create_model("lenet5", dtype=dtype)


@pytest.mark.parametrize("dtype", ["float32", np.float64, np.dtype("float32")])
def test_to_takes_the_two_names_and_types(dtype):
    assert nn.Linear(2, 2).to(dtype).weight.data.dtype == np.dtype(dtype)


@pytest.mark.parametrize(
    "call",
    [
        lambda x: F.conv2d(x, np.zeros((2, 0, 3, 3), np.float32)),
        lambda x: nn.MaxPool2d(2)(x),
        lambda x: nn.AvgPool2d(2)(x),
        lambda x: nn.MaxPool2d(2, impl="naive")(x),
        lambda x: nn.Conv2d(1, 2, 3)(x),
    ],
)
def test_zero_channel_input_is_named(call):
    x = np.zeros((2, 0, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"`x` (must have at least 1 channel|has 0)"):
        call(x)


def test_conv_weight_without_outputs_is_named():
    x = np.zeros((2, 1, 8, 8), np.float32)
    with pytest.raises(ValueError, match="`weight` must have at least 1 output"):
        F.conv2d(x, np.zeros((0, 1, 3, 3), np.float32))


@pytest.mark.parametrize(
    "layers",
    [
        lambda: [nn.Linear(3, 3), nn.Tanh(inplace=True), nn.Tanh(inplace=True)],
        lambda: [nn.Linear(3, 3), nn.Sigmoid(), nn.ReLU(inplace=True)],
        lambda: [nn.Linear(3, 3), nn.Softmax(), nn.ReLU(inplace=True)],
        lambda: [nn.Linear(3, 3), nn.ReLU(inplace=True), nn.ReLU(inplace=True)],
        lambda: [nn.Linear(3, 3), nn.Tanh(), nn.Dropout(0.0), nn.Tanh(inplace=True)],
    ],
)
def test_inplace_after_a_layer_keeping_its_output_raises(layers):
    model = nn.Sequential(*layers())
    x = np.random.default_rng(0).standard_normal((2, 3))
    y = model(x)  # the forward values are right: inference works
    with pytest.raises(
        RuntimeError, match=r"overwritten by the in-place .*inplace=False"
    ):
        model.backward(np.ones_like(y))


def test_inplace_after_max_pool_raises_through_flatten():
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, rng=np.random.default_rng(0)),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.ReLU(inplace=True),
    )
    y = model(np.random.default_rng(1).standard_normal((2, 1, 8, 8)).astype(np.float32))
    with pytest.raises(RuntimeError, match=r"MaxPool2d \(layer '1'\)"):
        model.backward(np.ones_like(y))


def test_pytorch_raises_in_the_same_case():
    x = torch.randn(2, 3, requires_grad=True)
    # tanh keeps its output for backward; tanh_ overwrites it.
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        torch.tanh_(torch.tanh(x)).sum().backward()


def test_inplace_where_nothing_is_kept_still_matches_pytorch(rng):
    for name in models.MODELS:  # ReLU/Tanh in place after conv and linear layers
        model = models.create_model(name, rng=np.random.default_rng(0))
        y = model(rng.standard_normal((2, 1, 28, 28)).astype(np.float32))
        model.backward(np.ones_like(y))


def test_parameter_shapes_validates_its_arguments():
    with pytest.raises(TypeError, match="`num_classes` must be an int"):
        parameter_shapes("10")
    with pytest.raises(ValueError, match="`input_size` must be at least 12"):
        parameter_shapes(10, 1, 8)


def test_check_elements_and_check_grad_dtype():
    assert check_elements(4, "x", 4) == 4
    with pytest.raises(ValueError, match=r"^`x` asks for 5 elements, more than the 4"):
        check_elements(5, "x", 4)
    assert check_shape((1, 2, 2, 1), maximum=4) == (1, 2, 2, 1)
    with pytest.raises(ValueError, match="`input_shape` asks for 8 elements"):
        check_shape((2, 2, 2, 1), maximum=4)
    with pytest.raises(TypeError, match=r"^`g` must be a numpy.ndarray, got list$"):
        check_grad_dtype([1.0], "g")
    with pytest.raises(TypeError, match=r"^`g` must be float32 or float64, got int8$"):
        check_grad_dtype(np.zeros(2, np.int8), "g")


def test_inplace_check_uses_the_last_forward_pass():
    """The check runs at backward, on the arrays of the latest forward pass."""
    model = nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Tanh(inplace=True))
    y = model(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match="overwritten by the in-place Tanh"):
        model.backward(np.ones_like(y))
    model[2].inplace = False  # fixed: the next forward pass keeps its own array
    y = model(np.ones((2, 3)))
    assert model.backward(np.ones_like(y)).shape == (2, 3)
