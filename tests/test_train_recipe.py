"""The training recipe of a run: augmentation, schedules, weight decay, label
smoothing; their rates against torch, exact resumes, config and checkpoint checks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from cnnumpy import models, nn, optim
from cnnumpy.data import Dataset
from cnnumpy.data.dataset import normalize
from cnnumpy.data.transforms import RandomCrop
from cnnumpy.training import (
    Callback,
    CheckpointError,
    TrainConfig,
    fit,
    load_checkpoint,
    resume_config,
    train_run,
)
from cnnumpy.training.checkpoint import save_checkpoint
from cnnumpy.training.recipe import (
    crop_padding,
    make_optimizer,
    make_scheduler,
    make_transform,
)

TS = torch.optim.lr_scheduler


@pytest.fixture
def config(tiny_mnist_dir, tmp_path) -> TrainConfig:
    """360 training digits (8 batches of 50 per epoch), 40 validation, 100 test."""
    return TrainConfig(
        data_dir=str(tiny_mnist_dir),
        epochs=2,
        batch_size=50,
        plots=False,
        out=str(tmp_path / "run"),
    )


BATCHES = 8


class Rates(Callback):
    """The learning rate of every step."""

    def __init__(self) -> None:
        self.rates: list[float] = []

    def on_batch_end(self, state, logs):
        self.rates.append(logs["lr"])


class StopAt(Callback):
    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_batch_end(self, state, logs):
        if (state.epoch, state.batch) == (self.epoch, self.batch):
            state.stop = state.interrupted = True


def last(folder):
    return load_checkpoint(folder / "last.npz")


def torch_rates(make, steps: int, lr: float) -> list[float]:
    """The rates of ``steps`` steps of a torch scheduler ``make(optimizer)``."""
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr, momentum=0.9)
    sched = make(topt)
    rates = []
    for _ in range(steps):
        rates.append(topt.param_groups[0]["lr"])
        topt.step()
        sched.step()
    return rates


# ------------------------------------------------------------ exact resumes


@pytest.mark.parametrize(
    "recipe",
    [
        {"augment": "crop-flip", "schedule": "onecycle", "optimizer": "sgd"},
        {
            "augment": "crop",
            "crop_padding": 3,
            "schedule": "cosine",
            "warmup_epochs": 1,
            "optimizer": "adamw",
            "weight_decay": 0.05,
            "label_smoothing": 0.1,
            "epochs": 3,
        },
    ],
    ids=["crop-flip-onecycle", "crop-cosine-warmup-adamw"],
)
def test_a_run_stopped_inside_an_epoch_resumes_to_the_same_weights(
    config, tmp_path, recipe
):
    config = replace(config, lr=0.01, **recipe)
    straight = train_run(replace(config, out=str(tmp_path / "straight")))
    part = train_run(config, callbacks=[StopAt(1, 3)])
    assert part.interrupted
    assert (
        last(part.out)["progress"]["epoch"],
        last(part.out)["progress"]["batch"],
    ) == (1, 3)
    done = train_run(resume_config(part.out / "last.npz"))
    assert done.test.accuracy == straight.test.accuracy
    for key, value in last(straight.out)["model"]["state"].items():
        np.testing.assert_array_equal(
            last(part.out)["model"]["state"][key], value, err_msg=key
        )
    assert last(part.out)["scheduler"] == last(straight.out)["scheduler"]
    assert [h["lr"] for h in done.state.history] == [
        h["lr"] for h in straight.state.history
    ]


def test_augmentation_changes_training_and_the_same_seed_repeats_it(config, tmp_path):
    plain = train_run(replace(config, out=str(tmp_path / "plain")))
    a = train_run(replace(config, augment="crop", out=str(tmp_path / "a")))
    b = train_run(replace(config, augment="crop", out=str(tmp_path / "b")))
    conv1 = [last(r.out)["model"]["state"]["conv1.weight"] for r in (plain, a, b)]
    np.testing.assert_array_equal(conv1[1], conv1[2])
    assert not np.array_equal(conv1[1], conv1[0])
    timing = ("seconds", "images_per_second")
    assert [
        {k: v for k, v in h.items() if k not in timing} for h in a.state.history
    ] == [{k: v for k, v in h.items() if k not in timing} for h in b.state.history]


# ----------------------------------------------------- rates against torch


def test_onecycle_steps_per_batch_with_torchs_rates(config):
    rates = Rates()
    train_run(
        replace(config, schedule="onecycle", lr=0.05, optimizer="sgd"),
        callbacks=[rates],
    )
    expected = torch_rates(
        lambda o: TS.OneCycleLR(o, max_lr=0.05, total_steps=2 * BATCHES),
        2 * BATCHES,
        0.05,
    )
    np.testing.assert_allclose(rates.rates, expected, rtol=1e-12, atol=1e-15)


def test_warmup_epochs_set_onecycles_rising_part(config):
    rates = Rates()
    cfg = replace(config, schedule="onecycle", epochs=4, warmup_epochs=1, lr=0.05)
    train_run(cfg, callbacks=[rates])
    expected = torch_rates(
        lambda o: TS.OneCycleLR(
            o, max_lr=0.05, total_steps=4 * BATCHES, pct_start=0.25
        ),
        4 * BATCHES,
        0.05,
    )
    np.testing.assert_allclose(rates.rates, expected, rtol=1e-12, atol=1e-15)
    assert int(np.argmax(rates.rates)) == BATCHES - 1


@pytest.mark.parametrize(
    ("changes", "make"),
    [
        (
            {"schedule": "cosine", "warmup_epochs": 2},
            lambda o: TS.SequentialLR(
                o,
                [
                    TS.LinearLR(o, start_factor=0.01, total_iters=2),
                    TS.CosineAnnealingLR(o, T_max=3),
                ],
                milestones=[2],
            ),
        ),
        ({"schedule": "cosine"}, lambda o: TS.CosineAnnealingLR(o, T_max=5)),
        (
            {"lr_step": 2, "lr_gamma": 0.5, "warmup_epochs": 1},
            lambda o: TS.SequentialLR(
                o,
                [
                    TS.LinearLR(o, start_factor=0.01, total_iters=1),
                    TS.StepLR(o, 2, 0.5),
                ],
                milestones=[1],
            ),
        ),
        (
            {"warmup_epochs": 3},
            lambda o: TS.LinearLR(o, start_factor=0.01, total_iters=3),
        ),
    ],
    ids=["cosine-warmup", "cosine", "step-warmup", "constant-warmup"],
)
def test_epoch_schedules_have_torchs_rates(config, changes, make):
    result = train_run(replace(config, epochs=5, lr=0.01, **changes))
    rates = [h["lr"] for h in result.state.history]
    np.testing.assert_allclose(
        rates, torch_rates(make, 5, 0.01), rtol=1e-12, atol=1e-15
    )


# ------------------------------------------------------------ the pieces


def test_defaults_build_the_recipe_runs_always_had():
    model = models.lenet5(rng=np.random.default_rng(0))
    config = TrainConfig()
    opt = make_optimizer(config, model)
    assert type(opt) is optim.Adam and len(opt.param_groups) == 1
    assert opt.param_groups[0]["params"] == list(model.parameters())
    assert make_scheduler(config, opt, BATCHES) is None
    assert make_transform(config, (1, 28, 28), 0.13, 0.31) is None
    step = make_scheduler(replace(config, lr_step=3), opt, BATCHES)
    assert type(step) is optim.StepLR and step.step_size == 3


def test_weight_decay_skips_biases_and_batch_norm():
    model = models.resnet8(in_channels=1, input_size=28, rng=np.random.default_rng(0))
    for name, kind in (
        ("sgd", optim.SGD),
        ("adamw", optim.AdamW),
        ("adam", optim.Adam),
    ):
        opt = make_optimizer(TrainConfig(optimizer=name, weight_decay=0.1), model)
        assert type(opt) is kind
        decay, rest = opt.param_groups
        assert decay["weight_decay"] == 0.1 and rest["weight_decay"] == 0.0
        assert all(p.data.ndim >= 2 for p in decay["params"])
        assert all(p.data.ndim == 1 for p in rest["params"]) and rest["params"]
    nesterov = make_optimizer(TrainConfig(optimizer="sgd", nesterov=True), model)
    assert (
        nesterov.param_groups[0]["nesterov"]
        and nesterov.param_groups[0]["momentum"] == 0.9
    )
    adamw = make_optimizer(TrainConfig(optimizer="adamw"), model)
    assert adamw.param_groups[0]["weight_decay"] == 0.0  # not AdamW's own 0.01


def test_crops_pad_with_normalised_black_like_torchvisions_crop_then_normalize():
    raw = np.random.default_rng(0).integers(0, 256, (6, 1, 28, 28)).astype(np.uint8)
    mean, std = 0.1307, 0.3081
    config = TrainConfig(augment="crop", dtype="float32")
    transform = make_transform(config, (1, 28, 28), mean, std)
    (crop,) = transform.transforms
    assert crop.size == (28, 28) and crop.padding == (2, 2, 2, 2)
    ours = transform(normalize(raw, mean, std, np.float32), np.random.default_rng(1))
    # torchvision: RandomCrop(28, padding=2) on the raw image, then Normalize.
    theirs = normalize(
        RandomCrop(28, padding=2, fill=0)(raw, np.random.default_rng(1)), mean, std
    )
    np.testing.assert_array_equal(ours, theirs)
    assert (ours == normalize(np.zeros(1, np.uint8), mean, std)[0]).any()
    flip = make_transform(TrainConfig(augment="crop-flip"), (3, 32, 32), 0.5, 0.25)
    assert [type(t).__name__ for t in flip.transforms] == [
        "RandomCrop", "RandomHorizontalFlip"
    ]  # fmt: skip
    assert flip.transforms[0].padding == (4, 4, 4, 4)
    assert crop_padding(TrainConfig(augment="crop", crop_padding=0), 32) == 0


def test_fit_augments_training_batches_only_and_smooths_the_training_loss():
    rng = np.random.default_rng(0)
    images = rng.standard_normal((40, 1, 28, 28)).astype(np.float32)
    train = Dataset(images, np.arange(40) % 10, tuple("0123456789"), "toy")
    calls = []

    def spy(x, generator):
        calls.append(len(x))
        return x

    model = models.lenet5(rng=np.random.default_rng(0))
    opt = optim.SGD(model.parameters(), lr=0.0)  # nothing moves: losses comparable
    state = fit(model, opt, train, epochs=2, batch_size=16, val=train, transform=spy)
    assert calls == [16, 16, 8] * 2  # never the validation batches
    smooth = fit(
        model, opt, train, epochs=1, batch_size=40, val=train, label_smoothing=0.2
    )
    logits = model.eval()(train.images)
    expected = nn.CrossEntropyLoss(0.2)(logits, train.labels)
    assert smooth.history[0]["train_loss"] == pytest.approx(expected, rel=1e-6)
    assert smooth.history[0]["val_loss"] == pytest.approx(state.history[-1]["val_loss"])
    plain = nn.CrossEntropyLoss()(logits, train.labels)
    assert smooth.history[0]["val_loss"] == pytest.approx(plain, rel=1e-6)
    assert abs(expected - plain) > 100 * 1e-6 * plain  # beyond the tolerance


# ------------------------------------------------------------ config checks


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"augment": "mixup"}, ValueError, r"`augment` must be one of 'none', 'crop'"),
        ({"augment": None}, TypeError, r"`augment` must be one of"),
        ({"crop_padding": 2}, ValueError, r"`crop_padding` \(=2\) applies to augment"),
        (
            {"augment": "crop", "crop_padding": -1},
            ValueError,
            r"`crop_padding` must be >= 0",
        ),
        (
            {"augment": "crop", "crop_padding": 2.0},
            TypeError,
            r"`crop_padding` must be an int",
        ),
        ({"schedule": "linear"}, ValueError, r"`schedule` must be one of 'constant'"),
        ({"schedule": "step"}, ValueError, r"`schedule` 'step' needs `lr_step`"),
        (
            {"schedule": "cosine", "lr_step": 2},
            ValueError,
            r"`lr_step` \(=2\) applies to schedule 'step', not 'cosine'",
        ),
        ({"warmup_epochs": 15}, ValueError, r"`warmup_epochs` \(=15\) must be fewer"),
        ({"warmup_epochs": 1.0}, TypeError, r"`warmup_epochs` must be an int"),
        ({"weight_decay": -0.1}, ValueError, r"`weight_decay` must be >= 0"),
        ({"weight_decay": "0"}, TypeError, r"`weight_decay` must be a real number"),
        (
            {"label_smoothing": 1.5},
            ValueError,
            r"`label_smoothing` must be in \[0, 1\]",
        ),
        ({"nesterov": 1}, TypeError, r"`nesterov` must be a bool"),
        ({"nesterov": True}, ValueError, r"`nesterov` needs optimizer 'sgd'"),
        (
            {"nesterov": True, "optimizer": "sgd", "momentum": 0.0},
            ValueError,
            r"`nesterov` needs .* momentum 0.0",
        ),
    ],
)
def test_config_refuses_bad_recipes(changes, error, match):
    with pytest.raises(error, match=match):
        TrainConfig(**changes)


def test_resume_keeps_the_epochs_a_schedule_spans(config):
    first = train_run(replace(config, schedule="cosine", epochs=2))
    with pytest.raises(ValueError, match=r"its 'cosine' schedule spans the run's"):
        train_run(resume_config(first.out / "last.npz", epochs=3))
    with pytest.raises(ValueError, match=r"`augment` \(='crop'\) differs from the"):
        train_run(
            replace(
                config,
                schedule="cosine",
                augment="crop",
                resume=str(first.out / "last.npz"),
            )
        )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t["config"].update(augment="mixup"),
            "malformed run config.*augment",
        ),
        (lambda t: t["config"].update(schedule=3), "malformed run config.*schedule"),
        (
            lambda t: t["config"].update(warmup_epochs=-1),
            "malformed run config.*warmup",
        ),
        (
            lambda t: t["scheduler"].update(_schedulers="x"),
            "'scheduler/_schedulers' must be a list of 1 to 16",
        ),
        (
            lambda t: t["scheduler"]["_schedulers"][1].update(last_epoch="1"),
            "'scheduler/_schedulers/1/last_epoch' must be an int",
        ),
        (
            lambda t: t["scheduler"]["_schedulers"][0].pop("_step_count"),
            "lacks the entry 'scheduler/_schedulers/0/_step_count'",
        ),
        (
            lambda t: t["scheduler"].update(_milestones=[5]),
            "cannot restore training.*_milestones",
        ),
    ],
)
def test_hostile_recipe_entries_of_a_checkpoint_are_refused(config, edit, message):
    first = train_run(replace(config, schedule="cosine", warmup_epochs=1, epochs=3))
    path = first.out / "last.npz"
    tree = load_checkpoint(path)
    edit(tree)
    save_checkpoint(
        path, {k: v for k, v in tree.items() if k not in ("format", "version")}
    )
    with pytest.raises(CheckpointError, match=message):
        train_run(resume_config(path))
