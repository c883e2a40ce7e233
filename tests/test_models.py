"""LeNet-5 models, the registry and the summary table."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch

from cnnumpy import nn
from cnnumpy.models import (
    MODELS,
    count_parameters,
    create_model,
    lenet5,
    lenet5_modern,
    summary,
)
from cnnumpy.models.lenet import flat_features
from conftest import assert_close, numpy_state


def torch_lenet(modern: bool, dtype: torch.dtype) -> torch.nn.Sequential:
    act = torch.nn.ReLU if modern else torch.nn.Tanh
    pool = torch.nn.MaxPool2d if modern else torch.nn.AvgPool2d
    torch.manual_seed(0)
    return torch.nn.Sequential(
        OrderedDict(
            conv1=torch.nn.Conv2d(1, 6, 5, padding=2),
            act1=act(),
            pool1=pool(2),
            conv2=torch.nn.Conv2d(6, 16, 5),
            act2=act(),
            pool2=pool(2),
            flatten=torch.nn.Flatten(),
            fc1=torch.nn.Linear(400, 120),
            act3=act(),
            fc2=torch.nn.Linear(120, 84),
            act4=act(),
            fc3=torch.nn.Linear(84, 10),
        )
    ).to(dtype)


@pytest.mark.parametrize("modern", [False, True])
def test_lenet_matches_pytorch_twin_forward_and_backward(modern, mnist_digits):
    images, labels = mnist_digits
    x = images[:16].astype(np.float64)
    y = labels[:16]
    twin = torch_lenet(modern, torch.float64)
    model = (lenet5_modern if modern else lenet5)(dtype=np.float64)
    assert list(model.state_dict()) == list(twin.state_dict())
    model.load_state_dict(numpy_state(twin))

    xt = torch.from_numpy(x)
    out_t = twin(xt)
    loss_t = torch.nn.functional.cross_entropy(out_t, torch.from_numpy(y))
    loss_t.backward()
    criterion = nn.CrossEntropyLoss()
    x_before = x.copy()
    out = model(x)
    loss = criterion(out, y)
    model.backward(criterion.backward())
    np.testing.assert_array_equal(x, x_before)  # in-place activations spare it
    assert_close(out, out_t, np.float64)
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    for name, p in model.named_parameters():
        assert_close(p.grad, dict(twin.named_parameters())[name].grad, np.float64)


@pytest.mark.parametrize("modern", [False, True])
def test_an_empty_batch_goes_through_as_in_pytorch(modern):
    """A batch of 0 images (the tail of a split, a filter that kept nothing)."""
    twin = torch_lenet(modern, torch.float32)
    model = (lenet5_modern if modern else lenet5)(dtype=np.float32)
    model.load_state_dict(numpy_state(twin))
    model.input_grad = True
    x = np.zeros((0, 1, 28, 28), np.float32)
    out = model(x)
    xt = torch.zeros((0, 1, 28, 28), requires_grad=True)
    out_t = twin(xt)
    assert out.shape == tuple(out_t.shape) == (0, 10)
    dx = model.backward(np.zeros_like(out))
    out_t.backward(torch.zeros_like(out_t))
    assert dx.shape == x.shape
    for name, p in model.named_parameters():
        assert_close(p.grad, dict(twin.named_parameters())[name].grad, np.float32)


def test_lenet5_layers_and_parameter_count():
    model = lenet5(rng=np.random.default_rng(0))
    names = [name for name, _ in model.named_children()]
    assert names == [
        "conv1", "act1", "pool1", "conv2", "act2", "pool2",
        "flatten", "fc1", "act3", "fc2", "act4", "fc3",
    ]  # fmt: skip
    assert [type(m).__name__ for m in model][:3] == ["Conv2d", "Tanh", "AvgPool2d"]
    assert all(m.inplace for m in (model.act1, model.act2, model.act3, model.act4))
    assert count_parameters(model) == (61_706, 0)
    assert model.conv1.padding == (2, 2)
    assert model(np.zeros((3, 1, 28, 28), np.float32)).dtype == np.float32


def test_same_generator_seed_gives_same_weights_and_naive_impl_same_output():
    a = lenet5(rng=np.random.default_rng(3))
    b = lenet5(rng=np.random.default_rng(3), impl="naive")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va, vb)
    x = np.random.default_rng(1).standard_normal((2, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(a(x), b(x), rtol=1e-5, atol=1e-6)
    assert b.conv1.impl == "naive" and b.pool1.impl == "naive"


def test_other_sizes_and_class_counts():
    assert flat_features(28) == 400
    assert flat_features(32) == 16 * 6 * 6
    model = create_model("lenet5", num_classes=26, in_channels=3, input_size=32)
    assert model(np.zeros((2, 3, 32, 32), np.float32)).shape == (2, 26)
    assert model.fc1.in_features == 576


def test_registry_names():
    assert set(MODELS) == {"lenet5", "lenet5-modern", "resnet8", "resnet20", "vgg-bn"}
    assert isinstance(create_model("lenet5-modern").pool1, nn.MaxPool2d)


@pytest.mark.parametrize(
    ("name", "config", "error", "match"),
    [
        (
            "vgg",
            {},
            ValueError,
            r"`name` must be one of 'lenet5', 'lenet5-modern', 'resnet8', 'resnet20', 'vgg-bn', got 'vgg'",
        ),
        ("lenet5", {"width": 2}, TypeError, r"model 'lenet5'.*width"),
        (
            "lenet5",
            {"num_classes": 0},
            ValueError,
            r"`num_classes` must be >= 1, got 0",
        ),
        ("lenet5", {"in_channels": 1.5}, TypeError, r"`in_channels` must be an int"),
        ("lenet5", {"input_size": 8}, ValueError, r"`input_size` must be at least 12"),
        ("lenet5", {"impl": "fast"}, ValueError, r"`impl` must be one of"),
        (
            "lenet5",
            {"dtype": np.float16},
            TypeError,
            r"`dtype` must be float32 or float64",
        ),
        ("lenet5", {"rng": 3}, TypeError, r"`rng` must be a numpy.random.Generator"),
    ],
)
def test_bad_model_arguments(name, config, error, match):
    with pytest.raises(error, match=match):
        create_model(name, **config)


def test_summary_table_rows_and_totals():
    model = lenet5_modern(rng=np.random.default_rng(0))
    text = summary(model, (1, 28, 28), "lenet5-modern")
    lines = text.splitlines()
    assert lines[0] == "Model: lenet5-modern"
    assert lines[3].split() == ["conv1", "(Conv2d)", "(N,", "6,", "28,", "28)", "156"]
    assert "pool1 (MaxPool2d)      (N, 6, 14, 14)" in text
    assert lines[-4:] == [
        "Total params: 61,706",
        "Trainable params: 61,706",
        "Non-trainable params: 0",
        # 6*28*28*25 + 16*10*10*150 + 400*120 + 120*84 + 84*10
        "Multiply-adds per image: 416,520",
    ]
    assert model.training  # the summary ran in eval mode and restored the mode


def test_summary_counts_batchnorm_statistics_as_non_trainable():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten())
    model.eval()
    text = summary(model, (1, 5, 5))
    assert "Trainable params: 48" in text  # 36 + 4 conv, 4 + 4 affine
    assert "Non-trainable params: 8" in text  # running mean and variance
    assert "(N, 36)" in text
    assert not model.training
    np.testing.assert_array_equal(model[1].running_mean, np.zeros(4, np.float32))


@pytest.mark.parametrize(
    ("shape", "error"),
    [
        ((28, 28), ValueError),
        ((1, 0, 28), ValueError),
        ([1, 28, "28"], ValueError),
        (28, TypeError),
    ],
)
def test_summary_rejects_bad_input_shapes(shape, error):
    with pytest.raises(error, match=r"`input_shape` must be"):
        summary(lenet5(), shape)


def test_count_parameters_rejects_non_modules():
    with pytest.raises(TypeError, match=r"`module` must be an nn\.Module, got dict"):
        count_parameters({})


def test_summary_rejects_non_sequential():
    with pytest.raises(
        TypeError, match=r"`model` must be an nn\.Sequential, got Conv2d"
    ):
        summary(nn.Conv2d(1, 1, 1), (1, 4, 4))
