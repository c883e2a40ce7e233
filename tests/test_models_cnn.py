"""resnet8, resnet20 and vgg-bn against torch twins, in the registry and the CLI."""

from __future__ import annotations

import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch

from cnnumpy import models
from cnnumpy.models.registry import MODELS, SHAPES
from cnnumpy.training import TrainConfig
from conftest import assert_close, numpy_state, write_mnist_dir
from test_nn import check_twin
from test_nn_residual import TorchResidual, randomize_bn

T = torch.nn
NEW = ("resnet8", "resnet20", "vgg-bn")


def torch_block(cin, cout, stride):
    body = T.Sequential(
        OrderedDict(
            conv1=T.Conv2d(cin, cout, 3, stride, 1, bias=False),
            bn1=T.BatchNorm2d(cout),
            relu=T.ReLU(),
            conv2=T.Conv2d(cout, cout, 3, 1, 1, bias=False),
            bn2=T.BatchNorm2d(cout),
        )
    )
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = T.Sequential(
            T.Conv2d(cin, cout, 1, stride, bias=False), T.BatchNorm2d(cout)
        )
    return T.Sequential(
        OrderedDict(residual=TorchResidual(body, shortcut), relu=T.ReLU())
    )


def torch_resnet(blocks, num_classes, in_channels):
    layers = OrderedDict(
        conv1=T.Conv2d(in_channels, 16, 3, padding=1, bias=False),
        bn1=T.BatchNorm2d(16),
        relu=T.ReLU(),
    )
    cin = 16
    for stage, width in enumerate((16, 32, 64), start=1):
        stack = []
        for b in range(blocks):
            stack.append(torch_block(cin, width, 2 if stage > 1 and b == 0 else 1))
            cin = width
        layers[f"layer{stage}"] = T.Sequential(*stack)
    layers["avgpool"] = T.AdaptiveAvgPool2d(1)
    layers["flatten"] = T.Flatten()
    layers["fc"] = T.Linear(64, num_classes)
    return T.Sequential(layers)


def torch_vgg_bn(num_classes, in_channels):
    features, cin = [], in_channels
    for i, width in enumerate((32, 32, 64, 64, 128, 128)):
        features += [
            T.Conv2d(cin, width, 3, padding=1, bias=False),
            T.BatchNorm2d(width),
            T.ReLU(),
        ]
        if i % 2 == 1:
            features.append(T.MaxPool2d(2))
        cin = width
    return T.Sequential(
        OrderedDict(
            features=T.Sequential(*features),
            avgpool=T.AdaptiveAvgPool2d(1),
            flatten=T.Flatten(),
            classifier=T.Linear(128, num_classes),
        )
    )


TWINS = {
    "resnet8": lambda k, c: torch_resnet(1, k, c),
    "resnet20": lambda k, c: torch_resnet(3, k, c),
    "vgg-bn": torch_vgg_bn,
}
SHAPES_IN = [(1, 28), (3, 32)]


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize(("in_channels", "size"), SHAPES_IN)
def test_output_shape_and_parameter_count(name, in_channels, size):
    model = models.create_model(
        name, num_classes=7, in_channels=in_channels, input_size=size,
        rng=np.random.default_rng(0),
    )  # fmt: skip
    y = model(np.zeros((2, in_channels, size, size), np.float32))
    assert y.shape == (2, 7) and y.dtype == np.float32
    twin = TWINS[name](7, in_channels)
    ours = sum(p.data.size for p in model.parameters())
    assert ours == sum(p.numel() for p in twin.parameters())
    # The shapes the registry computes without building are the model's own.
    shapes = SHAPES[name](num_classes=7, in_channels=in_channels, input_size=size)
    assert shapes == {k: v.shape for k, v in model.state_dict().items()}


def test_resnet20_has_the_papers_parameter_count():
    # 0.27M in He et al. (2016), table 6; 272,474 with projection shortcuts.
    model = models.resnet20(in_channels=3, input_size=32, rng=np.random.default_rng(0))
    assert sum(p.data.size for p in model.parameters()) == 272_474
    twin = torch_resnet(3, 10, 3)
    assert sum(p.numel() for p in twin.parameters()) == 272_474


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_forward_backward_match_torch_twin(name, train):
    rng = np.random.default_rng(3)
    in_channels, size = (3, 12) if name != "vgg-bn" else (1, 16)
    theirs = TWINS[name](5, in_channels).to(torch.float64)
    randomize_bn(theirs, rng)
    ours = models.create_model(
        name, num_classes=5, in_channels=in_channels, input_size=size,
        rng=rng, dtype=np.float64,
    )  # fmt: skip
    state = numpy_state(theirs)
    assert list(ours.state_dict()) == list(state)
    ours.load_state_dict(state)
    x = rng.standard_normal((3, in_channels, size, size))
    check_twin(ours, theirs, x, np.float64, rng, train=train)
    for key, value in ours.state_dict().items():  # running statistics too
        if value.dtype.kind == "f":
            assert_close(value, numpy_state(theirs)[key], np.float64)


@pytest.mark.parametrize("name", NEW)
def test_named_modules_are_torchs(name):
    model = models.create_model(name, in_channels=3, input_size=32)
    names = [n for n, _ in TWINS[name](10, 3).named_modules()]
    assert [n for n, _ in model.named_modules()] == names
    assert [n for n, _ in model.named_modules("net")] == ["net"] + [
        f"net.{n}" for n in names[1:]
    ]


def test_named_modules_gives_a_shared_module_once():
    from cnnumpy import nn

    relu, twin = nn.ReLU(), T.ReLU()
    model = nn.Sequential(relu, nn.Conv2d(1, 2, 3), nn.Sequential(relu, nn.Tanh()))
    twin = T.Sequential(twin, T.Conv2d(1, 2, 3), T.Sequential(twin, T.Tanh()))
    ours = [(n, type(m).__name__) for n, m in model.named_modules()]
    assert ours == [(n, type(m).__name__) for n, m in twin.named_modules()]


def test_registry_and_train_config_know_the_new_models():
    assert set(NEW) <= set(MODELS)
    for name in NEW:
        assert TrainConfig(model=name).model == name


def test_too_small_input_for_vgg_is_refused():
    with pytest.raises(ValueError, match=r"`input_size` must be at least 8"):
        models.create_model("vgg-bn", input_size=7)


def cli(args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "cnnumpy.cli", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=300,
        env={"XDG_CACHE_HOME": str(cwd / "cache"), "COLUMNS": "100",
             "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_summary_lists_resnet20(tmp_path):
    out = cli(["summary", "--model", "resnet20", "--in-channels", "3",
               "--input-size", "32"], tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "layer3 (Sequential)" in out.stdout
    # Stages and blocks are unfolded down to the residual branches.
    assert "    layer3.0.residual (Residual)  (N, 64, 8, 8)" in out.stdout
    assert "      shortcut.0 (Conv2d)         (N, 64, 8, 8)" in out.stdout
    assert "Trainable params: 272,474" in out.stdout


def test_train_resnet8_one_epoch_then_evaluate(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_mnist_dir(data, 100, 40)
    out = cli(["train", "--data", data, "--model", "resnet8", "--epochs", "1",
               "--batch-size", "50", "--no-plots", "--out", tmp_path / "run"],
              tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Test accuracy" in out.stdout
    # The checkpoint, batch-norm counters included, loads back.
    out = cli(["evaluate", tmp_path / "run" / "best.npz", "--data", data], tmp_path)
    assert out.returncode == 0, out.stderr


def torch_multiply_adds(model, x):
    """Multiply-adds of one image through a torch model's Conv2d and Linear."""
    total = []

    def hook(module, inputs, output):
        if isinstance(module, T.Conv2d):
            kH, kW = module.kernel_size
            per = module.in_channels // module.groups * kH * kW
            total.append(output[0].numel() * per)
        elif isinstance(module, T.Linear):
            total.append(output[0].numel() * module.in_features)

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model.eval()(x)
    for h in handles:
        h.remove()
    return sum(total)


@pytest.mark.parametrize("name", NEW)
def test_summary_counts_multiply_adds_as_torch_hooks_do(name):
    model = models.create_model(name, in_channels=3, input_size=32)
    twin = TWINS[name](10, 3)
    expected = torch_multiply_adds(twin, torch.zeros(1, 3, 32, 32))
    text = models.summary(model, (3, 32, 32))
    assert text.splitlines()[-1] == f"Multiply-adds per image: {expected:,}"


def test_summary_counts_transposed_convolutions_per_input():
    from cnnumpy import nn

    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, groups=2),
        nn.ConvTranspose2d(4, 6, 2, 2, groups=2),
    )
    text = models.summary(model, (2, 5, 5))
    conv = 4 * 5 * 5 * (1 * 3 * 3)
    transposed = 4 * 5 * 5 * (3 * 2 * 2)  # each input value, into out/groups * k*k
    assert text.splitlines()[-1] == f"Multiply-adds per image: {conv + transposed:,}"
