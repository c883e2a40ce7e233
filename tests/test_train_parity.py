"""Training a small CNN for several steps gives PyTorch's weights (float64).

Everything together: forward, loss, backward, gradient accumulation and the
optimizer update rules, step after step, on real gradients.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnumpy import nn, optim
from conftest import assert_close, numpy_state

OPTIMIZERS = {
    "sgd": (optim.SGD, torch.optim.SGD, {"lr": 0.05}),
    "sgd-nesterov-wd": (
        optim.SGD,
        torch.optim.SGD,
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
    ),
    "sgd-dampening": (
        optim.SGD,
        torch.optim.SGD,
        {"lr": 0.05, "momentum": 0.8, "dampening": 0.3},
    ),
    "adam": (optim.Adam, torch.optim.Adam, {"lr": 1e-2}),
    "adam-amsgrad-wd": (
        optim.Adam,
        torch.optim.Adam,
        {"lr": 1e-2, "amsgrad": True, "weight_decay": 1e-2},
    ),
    "adamw": (optim.AdamW, torch.optim.AdamW, {"lr": 1e-2}),
}


def twins():
    t = torch.nn
    theirs = t.Sequential(
        t.Conv2d(1, 4, 3, padding=1),
        t.ReLU(),
        t.MaxPool2d(2),
        t.Conv2d(4, 6, 3, stride=2, padding="valid"),
        t.Tanh(),
        t.Flatten(),
        t.Linear(6, 5),
    ).double()
    ours = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, dtype=np.float64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, stride=2, padding="valid", dtype=np.float64),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(6, 5, dtype=np.float64),
    )
    ours.load_state_dict(numpy_state(theirs))
    return ours, theirs


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_training_steps_match_torch(name):
    ours_cls, theirs_cls, kwargs = OPTIMIZERS[name]
    torch.manual_seed(0)
    ours, theirs = twins()
    opt = ours_cls(ours.parameters(), **kwargs)
    topt = theirs_cls(theirs.parameters(), **kwargs)
    criterion, tcriterion = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(1)
    for _ in range(5):
        x = rng.standard_normal((4, 1, 8, 8))
        y = rng.integers(0, 5, 4)
        opt.zero_grad()
        loss = criterion(ours(x), y)
        ours.backward(criterion.backward())
        opt.step()
        topt.zero_grad()
        tloss = tcriterion(theirs(torch.tensor(x)), torch.tensor(y))
        tloss.backward()
        topt.step()
        np.testing.assert_allclose(loss, tloss.item(), rtol=1e-10)
    for key, value in numpy_state(theirs).items():
        assert_close(ours.state_dict()[key], value, np.float64)
