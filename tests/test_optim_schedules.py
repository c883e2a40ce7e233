"""LinearLR, OneCycleLR, SequentialLR and the no-decay parameter groups against torch."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from cnnumpy import nn, optim
from cnnumpy.nn.parameter import Parameter

TS = torch.optim.lr_scheduler


def pair(lrs=(0.1, 0.03), optimizer="SGD"):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    ours = [Parameter(a.copy()) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    opt = getattr(optim, optimizer)(
        [{"params": [ours[0]], "lr": lrs[0]}, {"params": [ours[1]], "lr": lrs[1]}]
    )
    topt = getattr(torch.optim, optimizer)(
        [{"params": [theirs[0]], "lr": lrs[0]}, {"params": [theirs[1]], "lr": lrs[1]}]
    )
    return opt, topt


def one_cycle(kind, **kwargs):
    lib = TS if kind == "torch" else optim
    return lambda o: lib.OneCycleLR(o, **kwargs)


def sequential(kind):
    lib = TS if kind == "torch" else optim

    def make(o):
        warm = lib.LinearLR(o, start_factor=0.1, total_iters=4)
        cos = lib.CosineAnnealingLR(o, T_max=6, eta_min=0.001)
        step = lib.StepLR(o, step_size=2, gamma=0.5)
        return lib.SequentialLR(o, [warm, cos, step], milestones=[4, 10])

    return make


def sequential_cosine_first(kind):
    lib = TS if kind == "torch" else optim

    def make(o):
        cos = lib.CosineAnnealingLR(o, T_max=5)
        warm = lib.LinearLR(o, start_factor=0.5, end_factor=0.2, total_iters=3)
        return lib.SequentialLR(o, [cos, warm], milestones=[3])

    return make


CASES = {
    "LinearLR": (lambda o: optim.LinearLR(o), lambda o: TS.LinearLR(o), 12),
    "LinearLR-args": (
        lambda o: optim.LinearLR(o, start_factor=0.7, end_factor=0.05, total_iters=7),
        lambda o: TS.LinearLR(o, start_factor=0.7, end_factor=0.05, total_iters=7),
        12,
    ),
    "OneCycleLR": (
        one_cycle("ours", max_lr=1.0, total_steps=20),
        one_cycle("torch", max_lr=1.0, total_steps=20),
        20,
    ),
    "OneCycleLR-linear-3phase": (
        one_cycle(
            "ours",
            max_lr=[0.5, 2.0],
            epochs=3,
            steps_per_epoch=7,
            pct_start=0.25,
            anneal_strategy="linear",
            div_factor=10.0,
            final_div_factor=100.0,
            three_phase=True,
        ),
        one_cycle(
            "torch",
            max_lr=[0.5, 2.0],
            epochs=3,
            steps_per_epoch=7,
            pct_start=0.25,
            anneal_strategy="linear",
            div_factor=10.0,
            final_div_factor=100.0,
            three_phase=True,
        ),
        21,
    ),
    "OneCycleLR-no-momentum": (
        one_cycle("ours", max_lr=0.3, total_steps=9, cycle_momentum=False),
        one_cycle("torch", max_lr=0.3, total_steps=9, cycle_momentum=False),
        9,
    ),
    "SequentialLR": (sequential("ours"), sequential("torch"), 16),
    "SequentialLR-cosine-first": (
        sequential_cosine_first("ours"),
        sequential_cosine_first("torch"),
        9,
    ),
}


def run(opt, sched, n):
    lrs = [sched.get_last_lr()]
    for _ in range(n):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr())
        assert [g["lr"] for g in opt.param_groups] == lrs[-1]
    return lrs


def run_torch(opt, sched, n):
    lrs = [sched.get_last_lr()]
    with warnings.catch_warnings():
        # torch warns about scheduler steps without gradients; not our concern.
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(n):
            opt.step()
            sched.step()
            lrs.append(sched.get_last_lr())
    return lrs


def build(name):
    make, tmake, n = CASES[name]
    opt, topt = pair()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tsched = tmake(topt)
    return opt, make(opt), topt, tsched, n


@pytest.mark.parametrize("name", list(CASES))
def test_lr_sequence_matches_torch(name):
    opt, sched, topt, tsched, n = build(name)
    np.testing.assert_allclose(
        run(opt, sched, n), run_torch(topt, tsched, n), rtol=1e-12, atol=1e-15
    )


@pytest.mark.parametrize("name", list(CASES))
def test_state_dict_round_trip(name):
    opt, sched, topt, tsched, n = build(name)
    run(opt, sched, n // 2)
    run_torch(topt, tsched, n // 2)
    sd = json.loads(json.dumps(sched.state_dict()))
    opt_sd = opt.state_dict()

    opt2, sched2, _, _, _ = build(name)
    opt2.load_state_dict(opt_sd)
    sched2.load_state_dict(sd)
    assert sched2.get_last_lr() == sched.get_last_lr()
    rest = n - n // 2
    np.testing.assert_allclose(
        run(opt2, sched2, rest), run(opt, sched, rest), rtol=0, atol=0
    )

    # A state dict saved by torch loads too, and goes on as torch does.
    opt3, sched3, _, _, _ = build(name)
    opt3.load_state_dict(opt_sd)
    sched3.load_state_dict(tsched.state_dict())
    np.testing.assert_allclose(
        run(opt3, sched3, rest), run_torch(topt, tsched, rest), rtol=1e-12, atol=1e-15
    )


def test_state_dict_keys_are_torchs():
    for name in ("LinearLR", "OneCycleLR"):
        opt, sched, topt, tsched, n = build(name)
        sd, tsd = sched.state_dict(), tsched.state_dict()
        assert sd.keys() <= tsd.keys()
        assert json.loads(json.dumps(sd)) == {k: tsd[k] for k in sd}


@pytest.mark.parametrize("optimizer", ["SGD", "Adam", "AdamW"])
@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle_cycles_momentum_as_torch(optimizer, three_phase):
    opt, topt = pair(optimizer=optimizer)
    kwargs = dict(
        max_lr=[0.5, 1.0],
        total_steps=11,
        base_momentum=[0.8, 0.7],
        max_momentum=0.9,
        three_phase=three_phase,
    )
    sched = optim.OneCycleLR(opt, **kwargs)
    tsched = TS.OneCycleLR(topt, **kwargs)
    key = "momentum" if optimizer == "SGD" else "betas"

    def momenta(o):
        return [np.ravel(g[key]).tolist() for g in o.param_groups]

    assert momenta(opt) == momenta(topt)
    for _ in range(11):
        run(opt, sched, 1)
        run_torch(topt, tsched, 1)
        np.testing.assert_allclose(momenta(opt), momenta(topt), rtol=1e-12)
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12)


def test_one_cycle_refuses_a_step_past_total_steps():
    opt, _ = pair()
    sched = optim.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    run(opt, sched, 3)
    with pytest.raises(ValueError, match=r"stepped 4 times.*`total_steps` \(=3\)"):
        sched.step()


def test_one_cycle_needs_a_length():
    opt, _ = pair()
    with pytest.raises(ValueError, match=r"`total_steps` or both `epochs`"):
        optim.OneCycleLR(opt, max_lr=1.0, epochs=3)
    with pytest.raises(ValueError, match=r"`max_lr` must have 2 entries"):
        optim.OneCycleLR(opt, max_lr=[1.0], total_steps=3)
    plain = optim.Optimizer([Parameter(np.zeros(2))], {"lr": 0.1})
    with pytest.raises(ValueError, match=r"`cycle_momentum` needs an optimizer"):
        optim.OneCycleLR(plain, max_lr=1.0, total_steps=3)
    optim.OneCycleLR(plain, max_lr=1.0, total_steps=3, cycle_momentum=False)


def test_sequential_errors():
    opt, _ = pair()
    other, _ = pair()
    warm = optim.LinearLR(opt)
    with pytest.raises(ValueError, match=r"at least one scheduler"):
        optim.SequentialLR(opt, [], [])
    with pytest.raises(ValueError, match=r"`milestones` must have 1 entries"):
        optim.SequentialLR(opt, [warm, optim.StepLR(opt, 2)], [])
    with pytest.raises(ValueError, match=r"`schedulers\[0\]` must schedule"):
        optim.SequentialLR(other, [warm], [])
    with pytest.raises(TypeError, match=r"`schedulers\[0\]` must be a scheduler"):
        optim.SequentialLR(opt, ["x"], [])
    with pytest.raises(ValueError, match=r"must be increasing"):
        optim.SequentialLR(opt, [warm, warm, warm], [3, 3])


def small_model():
    rng = np.random.default_rng(0)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3, rng=rng, dtype=np.float64),
        nn.BatchNorm2d(2, dtype=np.float64),
        nn.Flatten(),
        nn.Linear(8, 3, rng=rng, dtype=np.float64),
    )


def test_param_groups_without_decay_splits_by_dimension():
    model = small_model()
    groups = optim.param_groups_without_decay(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    assert [g["weight_decay"] for g in groups] == [0.01, 0.0]
    assert [names[id(p)] for p in groups[0]["params"]] == ["0.weight", "3.weight"]
    assert [names[id(p)] for p in groups[1]["params"]] == [
        "0.bias",
        "1.weight",
        "1.bias",
        "3.bias",
    ]
    no_bias = nn.Sequential(nn.Linear(2, 2, bias=False, rng=np.random.default_rng(0)))
    assert len(optim.param_groups_without_decay(no_bias, 0.1)) == 1


def test_param_groups_without_decay_trains_as_torch_groups():
    model = small_model()
    params = dict(model.named_parameters())
    theirs = {
        n: torch.tensor(p.data.copy(), requires_grad=True) for n, p in params.items()
    }
    opt = optim.SGD(optim.param_groups_without_decay(model, 0.1), lr=0.5, momentum=0.9)
    decay = [n for n in theirs if theirs[n].ndim >= 2]
    topt = torch.optim.SGD(
        [
            {"params": [theirs[n] for n in decay], "weight_decay": 0.1},
            {
                "params": [t for n, t in theirs.items() if n not in decay],
                "weight_decay": 0.0,
            },
        ],
        lr=0.5,
        momentum=0.9,
    )
    rng = np.random.default_rng(1)
    for _ in range(3):
        for n, p in params.items():
            g = rng.standard_normal(p.data.shape)
            p.grad = g.copy()
            theirs[n].grad = torch.tensor(g)
        opt.step()
        topt.step()
    for n, p in params.items():
        np.testing.assert_allclose(p.data, theirs[n].detach().numpy(), rtol=1e-12)
    # The biases and batch-norm parameters moved by their gradients alone.
    assert groups_decay(opt) == [0.1, 0.0]


def groups_decay(opt):
    return [g["weight_decay"] for g in opt.param_groups]
