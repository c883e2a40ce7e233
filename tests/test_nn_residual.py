"""`nn.Residual` against the same block in PyTorch, alone and inside Sequential."""

from __future__ import annotations

import re
from collections import OrderedDict

import numpy as np
import pytest
import torch

from cnnumpy import models, nn
from conftest import TORCH_DTYPE, assert_close, numpy_state
from test_nn import DTYPES, check_twin


class TorchResidual(torch.nn.Module):
    """The PyTorch module with attributes ``body`` and ``shortcut``."""

    def __init__(self, body, shortcut=None):
        super().__init__()
        self.body = body
        self.shortcut = torch.nn.Identity() if shortcut is None else shortcut

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


def ours_block(c_in, c_out, stride, dtype, rng):
    body = nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False, dtype=dtype, rng=rng),
        nn.BatchNorm2d(c_out, dtype=dtype),
        nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False, dtype=dtype, rng=rng),
        nn.BatchNorm2d(c_out, dtype=dtype),
    )
    if stride == 1 and c_in == c_out:
        return nn.Residual(body)
    shortcut = nn.Sequential(
        nn.Conv2d(c_in, c_out, 1, stride, bias=False, dtype=dtype, rng=rng),
        nn.BatchNorm2d(c_out, dtype=dtype),
    )
    return nn.Residual(body, shortcut)


def torch_block(c_in, c_out, stride):
    T = torch.nn
    body = T.Sequential(
        T.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
        T.BatchNorm2d(c_out),
        T.ReLU(),
        T.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
        T.BatchNorm2d(c_out),
    )
    if stride == 1 and c_in == c_out:
        return TorchResidual(body)
    shortcut = T.Sequential(
        T.Conv2d(c_in, c_out, 1, stride, bias=False), T.BatchNorm2d(c_out)
    )
    return TorchResidual(body, shortcut)


def randomize_bn(module, rng):
    """Non-trivial batch-norm weights and running statistics, set in torch."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.from_numpy(rng.uniform(0.5, 2, m.num_features)))
                m.bias.copy_(torch.from_numpy(rng.standard_normal(m.num_features)))
                m.running_mean.copy_(
                    torch.from_numpy(rng.standard_normal(m.num_features))
                )
                m.running_var.copy_(
                    torch.from_numpy(rng.uniform(0.5, 2, m.num_features))
                )


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    ("c_in", "c_out", "stride"), [(4, 8, 2), (4, 4, 1)], ids=["projection", "identity"]
)
def test_residual_block_matches_torch(c_in, c_out, stride, dtype, train, rng):
    theirs = torch_block(c_in, c_out, stride).to(TORCH_DTYPE[np.dtype(dtype)])
    randomize_bn(theirs, rng)
    ours = ours_block(c_in, c_out, stride, dtype, rng)
    # The torch module's weights load directly: the same keys, body.* and shortcut.*
    state = numpy_state(theirs)
    assert list(ours.state_dict()) == list(state)
    assert any(k.startswith("shortcut.") for k in state) == (stride == 2)
    ours.load_state_dict(state)
    x = rng.standard_normal((2, c_in, 7, 6)).astype(dtype)
    check_twin(ours, theirs, x, dtype, rng, train=train)
    for key, value in ours.state_dict().items():  # running statistics too
        if value.dtype.kind == "f":
            assert_close(value, numpy_state(theirs)[key], dtype)


def small_resnet(dtype, rng):
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, dtype=dtype, rng=rng),
        nn.ReLU(),
        ours_block(4, 4, 1, dtype, rng),
        nn.ReLU(),
        ours_block(4, 8, 2, dtype, rng),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 3 * 3, 3, dtype=dtype, rng=rng),
    )


def torch_small_resnet():
    T = torch.nn
    return T.Sequential(
        T.Conv2d(2, 4, 3, padding=1),
        T.ReLU(),
        torch_block(4, 4, 1),
        T.ReLU(),
        torch_block(4, 8, 2),
        T.ReLU(),
        T.Flatten(),
        T.Linear(8 * 3 * 3, 3),
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_residual_nested_in_sequential_matches_torch(dtype, rng):
    theirs = torch_small_resnet().to(TORCH_DTYPE[np.dtype(dtype)])
    randomize_bn(theirs, rng)
    ours = small_resnet(dtype, rng)
    ours.load_state_dict(numpy_state(theirs))
    x = rng.standard_normal((3, 2, 6, 6)).astype(dtype)
    for train in (True, False):
        ours.zero_grad()
        theirs.zero_grad()
        check_twin(ours, theirs, x, dtype, rng, train=train)


def test_residual_first_in_sequential_skips_only_the_input_gradient(rng):
    # As Sequential's first layer, the block computes no input gradient, but
    # both branches still accumulate their parameters' gradients.
    theirs = torch.nn.Sequential(torch_block(2, 4, 2), torch.nn.Flatten()).double()
    ours = nn.Sequential(ours_block(2, 4, 2, np.float64, rng), nn.Flatten())
    ours.load_state_dict(numpy_state(theirs))
    x = rng.standard_normal((2, 2, 5, 5))
    y = ours(x)
    dy = rng.standard_normal(y.shape)
    ours.input_grad = False
    assert ours.backward(dy) is None
    assert ours[0].body.input_grad is False and ours[0].shortcut.input_grad is False
    theirs(torch.from_numpy(x)).backward(torch.from_numpy(dy))
    expected = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, expected[name].grad, np.float64)


def test_residual_with_identity_shortcut_adds_dy_to_the_input_gradient(rng):
    block = nn.Residual(nn.Sequential(nn.Tanh()))
    x = rng.standard_normal((2, 3))
    dy = rng.standard_normal((2, 3))
    np.testing.assert_allclose(block(x), np.tanh(x) + x)
    np.testing.assert_allclose(block.backward(dy), dy * (1 - np.tanh(x) ** 2) + dy)
    assert isinstance(block.shortcut, nn.Identity)
    assert block.state_dict() == {}


class TorchBasicBlock(torch.nn.Module):
    """torchvision's BasicBlock: its attribute names and its ReLU after the sum."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        T = torch.nn
        self.conv1 = T.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = T.BatchNorm2d(c_out)
        self.relu = T.ReLU()
        self.conv2 = T.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = T.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = T.Sequential(
                T.Conv2d(c_in, c_out, 1, stride, bias=False), T.BatchNorm2d(c_out)
            )

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def ours_basic_block(c_in, c_out, stride, rng):
    dt = np.float64
    body = nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False, dtype=dt, rng=rng),
            bn1=nn.BatchNorm2d(c_out, dtype=dt),
            relu=nn.ReLU(),
            conv2=nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False, dtype=dt, rng=rng),
            bn2=nn.BatchNorm2d(c_out, dtype=dt),
        )
    )
    shortcut = None
    if stride != 1 or c_in != c_out:
        shortcut = nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False, dtype=dt, rng=rng),
            nn.BatchNorm2d(c_out, dtype=dt),
        )
    return nn.Sequential(nn.Residual(body, shortcut), nn.ReLU())


def test_torchvision_names_map_as_the_docstring_says(rng):
    theirs = torch.nn.Sequential(
        OrderedDict(
            layer1=torch.nn.Sequential(
                TorchBasicBlock(2, 2, 1), TorchBasicBlock(2, 4, 2)
            )
        )
    ).double()
    randomize_bn(theirs, rng)
    ours = nn.Sequential(
        OrderedDict(
            layer1=nn.Sequential(
                ours_basic_block(2, 2, 1, rng), ours_basic_block(2, 4, 2, rng)
            )
        )
    )

    def rename(k):
        k = re.sub(r"^(layer\d+\.\d+)\.downsample\.", r"\1.0.shortcut.", k)
        return re.sub(r"^(layer\d+\.\d+)\.(?!0\.)", r"\1.0.body.", k)

    state = {rename(k): v for k, v in numpy_state(theirs).items()}
    assert "layer1.0.0.body.conv1.weight" in state
    assert "layer1.1.0.shortcut.0.weight" in state
    ours.load_state_dict(state)
    x = rng.standard_normal((2, 2, 6, 6))
    theirs.eval()
    ours.eval()
    assert_close(ours(x), theirs(torch.from_numpy(x)), np.float64)


def test_summary_shows_the_branches(rng):
    model = small_resnet(np.float32, rng)
    table = models.summary(model, (2, 6, 6), "tiny")
    lines = table.splitlines()
    assert any(re.match(r"^2 \(Residual\) +\(N, 4, 6, 6\) +\d", line) for line in lines)
    assert any(
        re.match(r"^  body\.0 \(Conv2d\) +\(N, 4, 6, 6\) +144$", line) for line in lines
    )
    assert any(
        re.match(r"^  shortcut \(Identity\) +\(N, 4, 6, 6\) +0$", line)
        for line in lines
    )
    assert any(
        re.match(r"^  shortcut\.0 \(Conv2d\) +\(N, 8, 3, 3\) +32$", line)
        for line in lines
    )
    total = sum(p.data.size for p in model.parameters())
    assert f"Trainable params: {total:,}" in table


def test_residual_errors(rng):
    with pytest.raises(TypeError, match=r"`body` must be an nn.Module, got int 3"):
        nn.Residual(3)
    with pytest.raises(TypeError, match=r"`shortcut` must be an nn.Module or None"):
        nn.Residual(nn.ReLU(), "x")
    block = nn.Residual(nn.Conv2d(2, 3, 1, rng=rng))
    with pytest.raises(ValueError, match=r"`body` and `shortcut` outputs must have"):
        block(np.zeros((1, 2, 4, 4), np.float32))
    with pytest.raises(nn.BackwardBeforeForwardError):
        nn.Residual(nn.ReLU()).backward(np.zeros(3))
    x = np.ones((1, 2, 4, 4), np.float32)
    inplace = nn.Residual(nn.Sequential(nn.Sequential(nn.ReLU(inplace=True))))
    with pytest.raises(ValueError, match=r"`body` must not start with an in-place"):
        inplace(x)
    with pytest.raises(ValueError, match=r"`shortcut` must not start with an in-pl"):
        nn.Residual(nn.Tanh(), nn.Tanh(inplace=True))(x)
    assert (x == 1).all()
