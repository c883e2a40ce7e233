"""cnnumpy.optim against torch.optim: updates, state dicts, schedulers, errors."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

from cnnumpy.nn.parameter import Parameter
from cnnumpy.optim import SGD, Adam, AdamW, CosineAnnealingLR, Optimizer, StepLR

SHAPES = [(3, 4), (5,), (2, 3, 2, 2)]
RTOL = {np.float64: 1e-10, np.float32: 1e-5}
OPTIMIZERS = {
    "SGD": (SGD, torch.optim.SGD),
    "Adam": (Adam, torch.optim.Adam),
    "AdamW": (AdamW, torch.optim.AdamW),
}


def make_params(dtype, seed=0, shapes=SHAPES):
    """Matching cnnumpy and torch parameters with the same random values."""
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    ours = [Parameter(a.copy()) for a in arrays]
    theirs = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in arrays]
    return ours, theirs


def make_grads(dtype, n_steps, seed=1, shapes=SHAPES):
    """Per step, one gradient per shape, with a scale varying across steps so
    that AMSGrad's running maximum matters."""
    rng = np.random.default_rng(seed)
    return [
        [
            (rng.standard_normal(shape) * rng.uniform(0.1, 3.0)).astype(dtype)
            for shape in shapes
        ]
        for _ in range(n_steps)
    ]


def set_grads(ours, theirs, grads):
    """Set the same gradients on both sides; a None gradient stays None."""
    for p, t, g in zip(ours, theirs, grads, strict=True):
        p.grad = None if g is None else g.copy()
        t.grad = None if g is None else torch.from_numpy(g.copy())


def assert_params_close(ours, theirs, dtype):
    """Elementwise rtol, plus the same rtol relative to the tensor's scale.

    An element that ends near 0 by cancellation (1 - 0.9996 say) carries the
    rounding error of its O(1) operands; torch fuses multiply-adds (FMA) where
    NumPy rounds twice, so a relative difference there is not a bug. The
    float32 SGD tests have such an element (4.5e-4 in a tensor of scale 2):
    both sides are off from a float64 run by a fraction of an ulp of the scale.
    """
    for p, t in zip(ours, theirs, strict=True):
        assert p.data.dtype == dtype
        expected = t.detach().numpy()
        scale = float(np.abs(expected).max())
        np.testing.assert_allclose(
            p.data, expected, rtol=RTOL[dtype], atol=RTOL[dtype] * scale
        )


def run_both(name, kwargs, dtype, n_steps=5, grads=None):
    ours, theirs = make_params(dtype)
    ours_cls, torch_cls = OPTIMIZERS[name]
    opt = ours_cls(ours, **kwargs)
    topt = torch_cls(theirs, **kwargs)
    for step_grads in grads or make_grads(dtype, n_steps):
        set_grads(ours, theirs, step_grads)
        opt.step()
        topt.step()
    return opt, topt, ours, theirs


SGD_CASES = [
    {
        "lr": 0.1,
        "momentum": momentum,
        "dampening": dampening,
        "nesterov": nesterov,
        "weight_decay": weight_decay,
        "maximize": maximize,
    }
    for momentum, dampening, nesterov, weight_decay, maximize in itertools.product(
        [0.0, 0.9], [0.0, 0.3], [False, True], [0.0, 0.1], [False, True]
    )
    if not nesterov or (momentum > 0 and dampening == 0)
]
ADAM_CASES = [
    {
        "lr": 0.1,
        "betas": betas,
        "weight_decay": weight_decay,
        "amsgrad": amsgrad,
        "maximize": maximize,
    }
    # betas[0] = 0.3 takes the other branch of torch's lerp (weight >= 0.5).
    for betas, weight_decay, amsgrad, maximize in itertools.product(
        [(0.9, 0.999), (0.3, 0.5)], [0.0, 0.1], [False, True], [False, True]
    )
]
CASES = (
    [("SGD", kw) for kw in SGD_CASES]
    + [("Adam", kw) for kw in ADAM_CASES]
    + [("AdamW", kw) for kw in ADAM_CASES]
)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=lambda c: str(c))
def test_matches_torch(name, kwargs, dtype):
    opt, _, ours, theirs = run_both(name, kwargs, dtype)
    assert_params_close(ours, theirs, dtype)
    for p in ours:
        for value in opt.state.get(p, {}).values():
            if isinstance(value, np.ndarray):
                assert value.dtype == dtype


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_defaults_match_torch(name):
    opt, topt, ours, theirs = run_both(name, {}, np.float64)
    assert_params_close(ours, theirs, np.float64)
    torch_group = topt.param_groups[0]
    for key, value in opt.param_groups[0].items():
        if key != "params":
            assert value == torch_group[key], key


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_param_groups_with_own_lr(name):
    dtype = np.float64
    ours, theirs = make_params(dtype)
    ours_cls, torch_cls = OPTIMIZERS[name]
    extra = {"momentum": 0.9} if name == "SGD" else {}
    opt = ours_cls(
        [{"params": ours[:2], "lr": 0.05}, {"params": [ours[2]], **extra}],
        lr=0.2,
    )
    topt = torch_cls(
        [{"params": theirs[:2], "lr": 0.05}, {"params": [theirs[2]], **extra}],
        lr=0.2,
    )
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.2]
    for step_grads in make_grads(dtype, 5):
        set_grads(ours, theirs, step_grads)
        opt.step()
        topt.step()
    assert_params_close(ours, theirs, dtype)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_param_without_grad_is_skipped(name):
    dtype = np.float64
    grads = make_grads(dtype, 5)
    for i, step_grads in enumerate(grads):
        step_grads[0] = None  # never a gradient
        if i in (1, 2):
            step_grads[1] = None  # a gap in the middle
    kwargs = {"momentum": 0.9, "weight_decay": 0.1} if name == "SGD" else {}
    opt, _, ours, theirs = run_both(name, kwargs, dtype, grads=grads)
    assert_params_close(ours, theirs, dtype)
    np.testing.assert_array_equal(ours[0].data, make_params(dtype)[0][0].data)
    assert ours[0] not in opt.state


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_step_leaves_grad_alone(name):
    kwargs = {"weight_decay": 0.1, "maximize": True}
    ours, _ = make_params(np.float32)
    opt = OPTIMIZERS[name][0](ours, **kwargs)
    grads = make_grads(np.float32, 1)[0]
    for p, g in zip(ours, grads, strict=True):
        p.grad = g.copy()
    opt.step()
    for p, g in zip(ours, grads, strict=True):
        np.testing.assert_array_equal(p.grad, g)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_numpy_scalar_hyperparameters_keep_float32(name):
    # NumPy 2 scalars are not "weak": np.float64(0.1) * float32 computes in
    # float64. The step must still round exactly as with Python floats.
    kwargs = {"lr": 0.1, "weight_decay": 0.1}
    if name == "SGD":
        kwargs["momentum"] = 0.9
    else:
        kwargs["betas"] = (0.9, 0.999)
    results = []
    for convert in (float, np.float64):
        ours, _ = make_params(np.float32)
        opt = OPTIMIZERS[name][0](
            ours,
            **{
                k: tuple(map(convert, v)) if isinstance(v, tuple) else convert(v)
                for k, v in kwargs.items()
            },
        )
        for step_grads in make_grads(np.float32, 3):
            for p, g in zip(ours, step_grads, strict=True):
                p.grad = g
            opt.step()
        results.append([p.data for p in ours])
    for a, b in zip(*results, strict=True):
        assert b.dtype == np.float32
        np.testing.assert_array_equal(a, b)


def test_zero_grad_sets_none():
    ours, _ = make_params(np.float64)
    opt = SGD(ours, lr=0.1)
    for p in ours:
        p.grad = np.ones_like(p.data)
    opt.zero_grad()
    assert all(p.grad is None for p in ours)


def test_step_returns_closure_value():
    ours, _ = make_params(np.float64)
    assert SGD(ours).step(lambda: 3.5) == 3.5


def test_grad_of_wrong_shape_raises():
    p = Parameter(np.zeros((2, 3)))
    p.grad = np.zeros(3)
    with pytest.raises(ValueError, match=r"`grad` .* shape \(2, 3\), got \(3,\)"):
        SGD([p]).step()


STATE_CASES = [
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.2, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.1, "amsgrad": True, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.1, "betas": (0.8, 0.99)}),
]


def to_json_and_back(state_dict):
    """What a checkpoint does: groups and numbers through JSON, arrays aside."""
    arrays = {}
    meta = {"state": {}, "param_groups": state_dict["param_groups"]}
    for index, p_state in state_dict["state"].items():
        meta["state"][index] = {}
        for key, value in p_state.items():
            if isinstance(value, np.ndarray):
                arrays[f"{index}/{key}"] = value
                meta["state"][index][key] = None
            else:
                meta["state"][index][key] = value
    meta = json.loads(json.dumps(meta))
    for index, p_state in meta["state"].items():
        for key, value in p_state.items():
            if value is None:
                p_state[key] = arrays[f"{index}/{key}"]
    return meta


@pytest.mark.parametrize(("name", "kwargs"), STATE_CASES)
@pytest.mark.parametrize("through_json", [False, True])
def test_state_dict_round_trip(name, kwargs, through_json):
    dtype = np.float64
    grads = make_grads(dtype, 5)
    cls = OPTIMIZERS[name][0]

    straight, _ = make_params(dtype)
    opt = cls(straight, **kwargs)
    for step_grads in grads:
        for p, g in zip(straight, step_grads, strict=True):
            p.grad = g.copy()
        opt.step()

    first, _ = make_params(dtype)
    opt = cls(first, **kwargs)
    for step_grads in grads[:3]:
        for p, g in zip(first, step_grads, strict=True):
            p.grad = g.copy()
        opt.step()
    saved = opt.state_dict()
    if through_json:
        saved = to_json_and_back(saved)

    resumed = [Parameter(p.data.copy()) for p in first]
    opt = cls(resumed, lr=123.0)  # hyperparameters come from the state dict
    opt.load_state_dict(saved)
    assert opt.param_groups[0]["lr"] == kwargs["lr"]
    for step_grads in grads[3:]:
        for p, g in zip(resumed, step_grads, strict=True):
            p.grad = g.copy()
        opt.step()
    for p, q in zip(resumed, straight, strict=True):
        np.testing.assert_array_equal(p.data, q.data)


@pytest.mark.parametrize(("name", "kwargs"), STATE_CASES)
def test_state_dict_is_torch_shaped(name, kwargs):
    dtype = np.float64
    ours_cls, torch_cls = OPTIMIZERS[name]
    ours, theirs = make_params(dtype)
    opt = ours_cls([{"params": ours[:1]}, {"params": ours[1:]}], **kwargs)
    topt = torch_cls([{"params": theirs[:1]}, {"params": theirs[1:]}], **kwargs)
    for step_grads in make_grads(dtype, 3):
        set_grads(ours, theirs, step_grads)
        opt.step()
        topt.step()
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sd.keys() == tsd.keys()
    assert sd["state"].keys() == tsd["state"].keys() == {0, 1, 2}
    for index, p_state in sd["state"].items():
        assert p_state.keys() == tsd["state"][index].keys()
        for key, value in p_state.items():
            expected = tsd["state"][index][key]
            if isinstance(value, np.ndarray):
                np.testing.assert_allclose(value, expected.numpy(), rtol=1e-10)
            else:
                assert value == expected.item()
    torch_only = {"foreach", "capturable", "differentiable", "fused"}
    for group, tgroup in zip(sd["param_groups"], tsd["param_groups"], strict=True):
        assert group.keys() == tgroup.keys() - torch_only
        assert group == {key: tgroup[key] for key in group}


def test_state_dict_is_a_copy():
    ours, _ = make_params(np.float64)
    opt = SGD(ours, lr=0.1, momentum=0.9)
    for p in ours:
        p.grad = np.ones_like(p.data)
    opt.step()
    saved = opt.state_dict()
    before = saved["state"][0]["momentum_buffer"].copy()
    opt.step()
    np.testing.assert_array_equal(saved["state"][0]["momentum_buffer"], before)


def test_load_state_dict_casts_to_param_dtype():
    saved_params, _ = make_params(np.float64)
    opt = Adam(saved_params)
    for p in saved_params:
        p.grad = np.ones_like(p.data)
    opt.step()
    ours, _ = make_params(np.float32)
    opt32 = Adam(ours)
    opt32.load_state_dict(opt.state_dict())
    for p in ours:
        assert opt32.state[p]["exp_avg"].dtype == np.float32
        assert opt32.state[p]["step"] == 1.0


def adam_state_dict():
    ours, _ = make_params(np.float64)
    opt = Adam(ours)
    for p in ours:
        p.grad = np.ones_like(p.data)
    opt.step()
    return opt.state_dict()


def corrupt(edit):
    sd = adam_state_dict()
    edit(sd)
    return sd


@pytest.mark.parametrize(
    ("state_dict", "match"),
    [
        (
            corrupt(lambda sd: sd.pop("state")),
            r"`state_dict` must have the key 'state'",
        ),
        (
            corrupt(lambda sd: sd["param_groups"].append(dict(sd["param_groups"][0]))),
            r"`state_dict\['param_groups'\]` must have 1 groups, got 2",
        ),
        (
            corrupt(lambda sd: sd["param_groups"][0]["params"].pop()),
            r"`state_dict\['param_groups'\]\[0\]\['params'\]` must have 3 "
            r"parameters, got 2",
        ),
        (
            corrupt(lambda sd: sd["state"][1].update(exp_avg=np.zeros(4))),
            r"`state_dict\['state'\]\[1\]\['exp_avg'\]` must have shape \(5,\), "
            r"got \(4,\)",
        ),
        (
            corrupt(lambda sd: sd["state"][0].update(step="one")),
            r"`state_dict\['state'\]\[0\]\['step'\]` must be a number, got str",
        ),
        (
            corrupt(lambda sd: sd["state"].update({7: {}})),
            r"`state_dict\['state'\]` keys must be parameter indices in "
            r"\[0, 1, 2\], got 7",
        ),
        (
            corrupt(lambda sd: sd["param_groups"][0].update(lr=-1.0)),
            r"`lr` must be >= 0, got -1",
        ),
    ],
)
def test_load_state_dict_errors(state_dict, match):
    ours, _ = make_params(np.float64)
    opt = Adam(ours)
    before = opt.state_dict()
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(state_dict)
    assert opt.state_dict() == before  # nothing half-loaded


def step_scheduler_pair(opt, sched, topt, tsched, n_epochs):
    lrs, tlrs = [], []
    for _ in range(n_epochs):
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
        lrs.append(sched.get_last_lr())
        tlrs.append(tsched.get_last_lr())
        assert [g["lr"] for g in opt.param_groups] == lrs[-1]
    return lrs, tlrs


def scheduler_pair(make_ours, make_torch, lrs=(0.1, 0.03)):
    ours, theirs = make_params(np.float64)
    opt = SGD([{"params": [ours[0]], "lr": lrs[0]}, {"params": ours[1:], "lr": lrs[1]}])
    topt = torch.optim.SGD(
        [{"params": [theirs[0]], "lr": lrs[0]}, {"params": theirs[1:], "lr": lrs[1]}]
    )
    return opt, make_ours(opt), topt, make_torch(topt)


SCHEDULERS = {
    "StepLR": (lambda o: StepLR(o, 3, gamma=0.5), lambda o: torch_step_lr(o, 3, 0.5)),
    "StepLR-default": (lambda o: StepLR(o, 1), lambda o: torch_step_lr(o, 1, 0.1)),
    "Cosine": (
        lambda o: CosineAnnealingLR(o, 5, eta_min=0.01),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 5, eta_min=0.01),
    ),
    "Cosine-T7": (
        lambda o: CosineAnnealingLR(o, 7),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 7),
    ),
}


def torch_step_lr(optimizer, step_size, gamma):
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma=gamma)


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_scheduler_matches_torch(name):
    opt, sched, topt, tsched = scheduler_pair(*SCHEDULERS[name])
    assert sched.get_last_lr() == tsched.get_last_lr() == [0.1, 0.03]
    assert sched.base_lrs == tsched.base_lrs
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.03]
    lrs, tlrs = step_scheduler_pair(opt, sched, topt, tsched, 21)  # 3 * T_max
    np.testing.assert_allclose(lrs, tlrs, rtol=1e-12, atol=0)


@pytest.mark.parametrize(("T_max", "eta_min"), [(5, 0.01), (7, 0.0), (1, 0.02)])
def test_cosine_follows_closed_form(T_max, eta_min):
    ours, _ = make_params(np.float64)
    opt = SGD(ours, lr=0.1)
    sched = CosineAnnealingLR(opt, T_max, eta_min=eta_min)
    for epoch in range(1, 3 * T_max + 1):
        sched.step()
        expected = (
            eta_min + (0.1 - eta_min) * (1 + math.cos(math.pi * epoch / T_max)) / 2
        )
        assert sched.get_last_lr()[0] == pytest.approx(expected, rel=1e-12, abs=1e-17)


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_scheduler_state_dict_round_trip(name):
    make_ours, make_torch = SCHEDULERS[name]
    opt, sched, topt, tsched = scheduler_pair(make_ours, make_torch)
    step_scheduler_pair(opt, sched, topt, tsched, 4)
    sd = json.loads(json.dumps(sched.state_dict()))
    tsd = tsched.state_dict()
    assert sd == {key: tsd[key] for key in sd}
    assert tsd.keys() - sd.keys() == {"_is_initial", "_get_lr_called_within_step"}
    opt_sd = opt.state_dict()

    # As after a restart: new optimizer and scheduler, then load both.
    opt2, sched2, _, _ = scheduler_pair(make_ours, make_torch, lrs=(5.0, 5.0))
    opt2.load_state_dict(opt_sd)
    sched2.load_state_dict(sd)
    assert sched2.get_last_lr() == sched.get_last_lr()
    for _ in range(8):
        opt2.step()
        sched2.step()
    lrs, tlrs = step_scheduler_pair(opt, sched, topt, tsched, 8)
    assert sched2.get_last_lr() == lrs[-1]
    np.testing.assert_allclose(lrs[-1], tlrs[-1], rtol=1e-12, atol=0)

    # A state dict saved by torch loads too.
    sched2.load_state_dict(tsched.state_dict())
    assert sched2.last_epoch == tsched.last_epoch


def test_scheduler_resume_with_last_epoch():
    ours, theirs = make_params(np.float64)
    opt = SGD(ours, lr=0.1)
    topt = torch.optim.SGD(theirs, lr=0.1)
    for o in (opt, topt):
        o.param_groups[0]["initial_lr"] = 0.2
    sched = StepLR(opt, 3, gamma=0.5, last_epoch=5)
    tsched = torch.optim.lr_scheduler.StepLR(topt, 3, gamma=0.5, last_epoch=5)
    assert sched.get_last_lr() == tsched.get_last_lr()  # torch decays at once here
    assert sched.base_lrs == [0.2]
    lrs, tlrs = step_scheduler_pair(opt, sched, topt, tsched, 6)
    assert lrs == tlrs


def test_scheduler_load_state_dict_errors():
    ours, _ = make_params(np.float64)
    sched = StepLR(SGD(ours), 2)
    sd = sched.state_dict()
    with pytest.raises(ValueError, match=r"missing \['gamma'\] and unknown \['gama'\]"):
        sched.load_state_dict(
            {**{k: v for k, v in sd.items() if k != "gamma"}, "gama": 1}
        )
    with pytest.raises(ValueError, match=r"`state_dict\['base_lrs'\]` must have 1"):
        sched.load_state_dict({**sd, "base_lrs": [0.1, 0.2]})
    with pytest.raises(ValueError, match=r"`step_size` must be >= 1, got 0"):
        sched.load_state_dict({**sd, "step_size": 0})


def a_param():
    return Parameter(np.zeros(3))


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: SGD([a_param()], lr=-1), ValueError, r"`lr` must be >= 0, got -1"),
        (
            lambda: Adam([a_param()], lr=-0.5),
            ValueError,
            r"`lr` must be >= 0, got -0.5",
        ),
        (
            lambda: SGD([a_param()], lr=math.nan),
            ValueError,
            r"`lr` must be a finite number, got nan",
        ),
        (
            lambda: SGD([a_param()], lr="0.1"),
            TypeError,
            r"`lr` must be a real number, got str",
        ),
        (
            lambda: SGD([{"params": [a_param()], "lr": -2}], lr=0.1),
            ValueError,
            r"`lr` must be >= 0, got -2",
        ),
        (
            lambda: Adam([a_param()], eps=-1e-8),
            ValueError,
            r"`eps` must be >= 0, got -1e-08",
        ),
        (
            lambda: SGD([a_param()], momentum=-0.9),
            ValueError,
            r"`momentum` must be >= 0, got -0.9",
        ),
        (
            lambda: SGD([a_param()], weight_decay=-1),
            ValueError,
            r"`weight_decay` must be >= 0, got -1",
        ),
        (
            lambda: Adam([a_param()], weight_decay=-1),
            ValueError,
            r"`weight_decay` must be >= 0, got -1",
        ),
        (
            lambda: AdamW([a_param()], weight_decay=-0.01),
            ValueError,
            r"`weight_decay` must be >= 0, got -0.01",
        ),
        (
            lambda: SGD([a_param()], nesterov=True),
            ValueError,
            r"`nesterov=True` requires `momentum` > 0 and `dampening` == 0, "
            r"got momentum=0, dampening=0",
        ),
        (
            lambda: SGD([a_param()], momentum=0.9, dampening=0.1, nesterov=True),
            ValueError,
            r"got momentum=0.9, dampening=0.1",
        ),
        (
            lambda: SGD([a_param()], nesterov=1),
            TypeError,
            r"`nesterov` must be a bool, got int",
        ),
        (
            lambda: Adam([a_param()], betas=0.9),
            TypeError,
            r"`betas` must be a pair of floats, got float",
        ),
        (
            lambda: Adam([a_param()], betas=(0.9, 0.99, 0.999)),
            ValueError,
            r"`betas` must be a pair, got 3 values",
        ),
        (
            lambda: Adam([a_param()], betas=(1.0, 0.999)),
            ValueError,
            r"`betas\[0\]` must be in \[0, 1\), got 1.0",
        ),
        (
            lambda: AdamW([a_param()], betas=(0.9, -0.1)),
            ValueError,
            r"`betas\[1\]` must be in \[0, 1\), got -0.1",
        ),
        (lambda: SGD([]), ValueError, r"`params` must not be empty, got an empty list"),
        (
            lambda: SGD(a_param()),
            TypeError,
            r"`params` must be an ordered iterable of Parameter or of dicts, "
            r"got Parameter",
        ),
        (lambda: SGD({a_param()}), TypeError, r"ordered iterable .* got set"),
        (
            lambda: SGD([a_param(), np.zeros(3)]),
            TypeError,
            r"`params` must contain only Parameter, got ndarray at index 1",
        ),
        (
            lambda: SGD([a_param(), {"params": [a_param()]}]),
            TypeError,
            r"`params` must hold either only Parameters or only dicts, got a mix",
        ),
        (
            lambda: SGD([{"lr": 0.1}]),
            ValueError,
            r"`param_group` must have a 'params' key, got keys \['lr'\]",
        ),
    ],
)
def test_validation_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_duplicate_params_raise():
    p, q = a_param(), a_param()
    with pytest.raises(ValueError, match=r"`params` must not repeat a parameter"):
        SGD([{"params": [p, q]}, {"params": [q]}])
    with pytest.raises(ValueError, match=r"at index 1 a second time"):
        Adam([p, p])


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda o: StepLR(o, 0), ValueError, r"`step_size` must be >= 1, got 0"),
        (lambda o: StepLR(o, 2.5), TypeError, r"`step_size` must be an int, got float"),
        (
            lambda o: StepLR(o, 2, gamma="x"),
            TypeError,
            r"`gamma` must be a real number",
        ),
        (lambda o: CosineAnnealingLR(o, 0), ValueError, r"`T_max` must be >= 1, got 0"),
        (
            lambda o: CosineAnnealingLR(o, -3),
            ValueError,
            r"`T_max` must be >= 1, got -3",
        ),
        (
            lambda o: StepLR("sgd", 2),
            TypeError,
            r"`optimizer` must be an Optimizer, got str",
        ),
        (
            lambda o: CosineAnnealingLR(o, 5, last_epoch=3),
            ValueError,
            r"`last_epoch` \(=3\) >= 0 resumes .* got none in "
            r"`optimizer.param_groups\[0\]`",
        ),
        (
            lambda o: StepLR(o, 2, last_epoch=-2),
            ValueError,
            r"`last_epoch` must be >= -1, got -2",
        ),
    ],
)
def test_scheduler_validation_errors(make, error, match):
    opt = SGD([a_param()], lr=0.1)
    with pytest.raises(error, match=match):
        make(opt)


def test_optimizer_is_abstract():
    with pytest.raises(NotImplementedError):
        Optimizer([a_param()], {"lr": 0.1}).step()
