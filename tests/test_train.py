"""fit / evaluate / predict_proba, callbacks, and exact resumption."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cnnumpy import nn, optim
from cnnumpy.data import DataLoader, Dataset, read_idx
from cnnumpy.models import lenet5, lenet5_modern
from cnnumpy.training import (
    BestCheckpoint,
    Callback,
    EarlyStopping,
    FitState,
    evaluate,
    fit,
    load_checkpoint,
    predict_proba,
    save_checkpoint,
)
from conftest import MNIST_DIR

DIGITS = tuple(str(i) for i in range(10))


@pytest.fixture(scope="module")
def digits() -> tuple[Dataset, Dataset]:
    """600 real MNIST digits to train on and 200 to validate, normalized float32."""
    images = read_idx(MNIST_DIR / "t10k-images-idx3-ubyte.gz")[:800, None]
    labels = read_idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz")[:800].astype(np.int64)
    full = Dataset(images, labels, DIGITS, "t10k")
    train, val = full.subset(np.arange(600)), full.subset(np.arange(600, 800))
    return train.normalized(0.13, 0.31), val.normalized(0.13, 0.31)


def make(seed: int = 0, modern: bool = False):
    model = (lenet5_modern if modern else lenet5)(rng=np.random.default_rng(seed))
    return model, optim.Adam(model.parameters(), lr=2e-3)


def weights(model) -> dict[str, np.ndarray]:
    return model.state_dict()


def results(history):
    return [
        {k: v for k, v in h.items() if k not in ("seconds", "images_per_second")}
        for h in history
    ]


def test_fit_learns_and_reports_history(digits):
    train, val = digits
    model, opt = make(modern=True)
    state = fit(model, opt, train, epochs=3, batch_size=50, val=val, seed=1)
    assert state.epoch == 3 and state.batch == 0 and len(state.history) == 3
    first, last = state.history[0], state.history[-1]
    assert set(last) == {
        "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
        "lr", "seconds", "images_per_second",
    }  # fmt: skip
    assert [h["epoch"] for h in state.history] == [1, 2, 3]
    assert last["train_loss"] < first["train_loss"]
    assert last["val_accuracy"] > 0.7  # ten classes: chance is 0.1
    assert last["lr"] == 2e-3
    assert state.batches == 12


def test_val_metrics_equal_evaluate(digits):
    train, val = digits
    model, opt = make()
    state = fit(model, opt, train, epochs=1, batch_size=100, val=val)
    result = evaluate(model, val)
    assert state.history[0]["val_loss"] == result.loss
    assert state.history[0]["val_accuracy"] == result.accuracy


def test_two_runs_with_same_seed_are_bit_identical(digits):
    train, _ = digits
    runs = []
    for _ in range(2):
        model, opt = make(seed=4)
        state = fit(model, opt, train, epochs=2, batch_size=64, seed=9)
        runs.append((weights(model), results(state.history)))
    for key in runs[0][0]:
        np.testing.assert_array_equal(runs[0][0][key], runs[1][0][key])
    assert runs[0][1] == runs[1][1]


class StopAfter(Callback):
    """Stop after a given number of batches of the run (like Ctrl-C would)."""

    def __init__(self, batches: int) -> None:
        self.left = batches

    def on_batch_end(self, state, logs):
        self.left -= 1
        if self.left == 0:
            state.stop = True


def checkpoint_round_trip(tmp_path, model, opt, state):
    """Everything a resume needs, through a file on disk."""
    save_checkpoint(
        tmp_path / "last.npz",
        {
            "model": model.state_dict(),
            "optim": opt.state_dict(),
            "state": state.to_dict(),
        },
    )
    tree = load_checkpoint(tmp_path / "last.npz")
    model2, opt2 = make(seed=123)  # different init: everything must come from disk
    model2.load_state_dict(tree["model"])
    opt2.load_state_dict(tree["optim"])
    return model2, opt2, FitState.from_dict(tree["state"])


@pytest.mark.parametrize("stop_after", [6, 10])  # end of epoch 1; inside epoch 2
def test_resume_gives_the_same_weights_as_one_straight_run(
    digits, tmp_path, stop_after
):
    train, val = digits
    straight, opt = make(seed=2)
    expected = fit(straight, opt, train, epochs=2, batch_size=100, val=val, seed=3)

    model, opt = make(seed=2)
    part = fit(
        model, opt, train, epochs=2, batch_size=100, val=val, seed=3,
        callbacks=[StopAfter(stop_after)],
    )  # fmt: skip
    assert (part.epoch, part.batch) == divmod(stop_after, 6)
    model, opt, state = checkpoint_round_trip(tmp_path, model, opt, part)
    resumed = fit(
        model, opt, train, epochs=2, batch_size=100, val=val, seed=3, state=state
    )

    for key, value in weights(straight).items():
        np.testing.assert_array_equal(weights(model)[key], value, err_msg=key)
    assert results(resumed.history) == results(expected.history)


def test_epochs_is_the_total_when_resuming(digits):
    train, _ = digits
    model, opt = make()
    state = fit(model, opt, train, epochs=1, batch_size=200)
    state = fit(model, opt, train, epochs=1, batch_size=200, state=state)
    assert state.epoch == 1 and len(state.history) == 1  # nothing more to do


def test_early_stopping_stops_and_replays_history(digits):
    train, val = digits
    model, opt = make()
    # train_loss falls every epoch, so in 'max' mode it never improves
    stopper = EarlyStopping("train_loss", patience=2, mode="max")
    state = fit(
        model, opt, train, epochs=10, batch_size=200, val=val, callbacks=[stopper]
    )
    assert state.epoch == 3  # best at 1, no improvement at 2 and 3
    again = EarlyStopping("train_loss", patience=2, mode="max")
    again.on_fit_begin(state)
    assert again.wait == 2 and again.best_epoch == 1


def test_best_checkpoint_saves_only_on_improvement():
    saved = []
    best = BestCheckpoint(lambda s: saved.append(s.epoch), monitor="val_accuracy")
    state = FitState()
    best.on_fit_begin(state)
    for epoch, acc in enumerate([0.5, 0.7, 0.6, 0.8], start=1):
        state.epoch = epoch
        best.on_epoch_end(state, {"epoch": epoch, "val_accuracy": acc})
    assert saved == [1, 2, 4]
    with pytest.raises(
        ValueError, match=r"`monitor` 'val_accuracy' is not in the epoch logs"
    ):
        best.on_epoch_end(state, {"epoch": 5, "train_loss": 1.0})


def test_evaluate_matches_torch_cross_entropy_and_counts(digits):
    _, val = digits
    model, _ = make(modern=True)
    model = model.double()
    x = val.images.astype(np.float64)
    result = evaluate(model, Dataset(x, val.labels, val.class_names, "val"))
    logits = torch.from_numpy(model(x))
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(val.labels))
    assert result.loss == pytest.approx(loss.item(), rel=1e-12)
    cm = result.confusion_matrix
    assert cm.shape == (10, 10) and cm.sum() == len(val)
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(val.labels, minlength=10))
    assert result.accuracy == np.trace(cm) / len(val)
    np.testing.assert_allclose(result.per_class_accuracy, np.diag(cm) / cm.sum(axis=1))
    np.testing.assert_array_equal(result.predictions, logits.argmax(1).numpy())
    report = result.report(DIGITS)
    assert f"accuracy {result.accuracy:.2%}" in report
    assert "confusion matrix" in report and len(report.splitlines()) == 3 + 10 + 3 + 10


def test_per_class_accuracy_is_nan_for_an_absent_class(digits):
    _, val = digits
    only_ones = val.subset(np.flatnonzero(val.labels == 1))
    model, _ = make()
    result = evaluate(model, only_ones)
    assert math.isnan(result.per_class_accuracy[0])
    assert result.to_dict()["per_class_accuracy"][0] is None


def test_predict_proba_is_a_distribution_and_restores_mode(digits):
    _, val = digits
    model, _ = make()
    probs = predict_proba(model, val.images[:30], batch_size=7)
    assert probs.shape == (30, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    assert model.training
    np.testing.assert_allclose(probs, predict_proba(model, val.images[:30]), rtol=1e-6)


def test_diverging_loss_raises(digits):
    train, _ = digits
    model, _ = make(modern=True)
    opt = optim.SGD(model.parameters(), lr=1e30)
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        with np.errstate(all="ignore"):
            fit(model, opt, train, epochs=3, batch_size=100)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"epochs": 0}, ValueError, "`epochs` must be >= 1, got 0"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"train": "x"}, TypeError, "`train` must be a cnnumpy.data.Dataset, got str"),
        ({"val": np.zeros(3)}, TypeError, "`val` must be a cnnumpy.data.Dataset"),
        ({"model": "m"}, TypeError, "`model` must be an nn.Module, got str"),
        (
            {"optimizer": None},
            TypeError,
            "`optimizer` must be a cnnumpy.optim.Optimizer",
        ),
        (
            {"state": FitState(batch=99)},
            ValueError,
            r"`state.batch` \(=99\) must be below the 6",
        ),
        ({"state": {}}, TypeError, "`state` must be a FitState, got dict"),
    ],
)
def test_fit_rejects_bad_arguments(digits, kwargs, error, match):
    train, _ = digits
    model, opt = make()
    call = {
        "model": model,
        "optimizer": opt,
        "train": train,
        "epochs": 1,
        "batch_size": 100,
    }
    call.update(kwargs)
    with pytest.raises(error, match=match):
        fit(call.pop("model"), call.pop("optimizer"), call.pop("train"), **call)


def test_fit_refuses_raw_uint8_images():
    raw = Dataset(
        np.zeros((4, 1, 28, 28), np.uint8), np.zeros(4, np.int64), DIGITS, "raw"
    )
    model, opt = make()
    with pytest.raises(TypeError, match=r"`train` images must be floats .*got uint8"):
        fit(model, opt, raw, epochs=1)


@pytest.mark.parametrize(
    "saved",
    [
        {},
        {"epoch": 1, "batch": 0, "running": {}, "history": []},
        {"epoch": -1, "batch": 0, "running": {}, "history": []},
    ],
)
def test_malformed_state_is_refused(saved):
    with pytest.raises(ValueError, match="training state"):
        FitState.from_dict(saved)


def test_callbacks_see_every_batch(digits):
    train, _ = digits

    class Count(Callback):
        def __init__(self):
            self.batches, self.epochs, self.begun, self.ended = 0, 0, 0, 0

        def on_fit_begin(self, state):
            self.begun += 1

        def on_batch_end(self, state, logs):
            assert set(logs) >= {"loss", "accuracy", "epoch_loss", "images_per_second"}
            self.batches += 1

        def on_epoch_end(self, state, logs):
            self.epochs += 1

        def on_fit_end(self, state):
            self.ended += 1

    count = Count()
    fit(*make(), train, epochs=2, batch_size=250, callbacks=[count])
    assert (count.begun, count.batches, count.epochs, count.ended) == (1, 6, 2, 1)


def test_model_without_softmax_twin_loss_is_cross_entropy(digits):
    """fit minimises nn.CrossEntropyLoss: one step equals a manual step."""
    train, _ = digits
    one = train.subset(np.arange(100))
    a, opt_a = make(seed=8)
    fit(a, opt_a, one, epochs=1, batch_size=100, seed=5)
    one = one.subset(DataLoader(one, 100, shuffle=True, seed=5).order(0))
    b, opt_b = make(seed=8)
    criterion = nn.CrossEntropyLoss()
    criterion(b(one.images), one.labels)
    b.backward(criterion.backward())
    opt_b.step()
    for key, value in weights(a).items():
        np.testing.assert_array_equal(weights(b)[key], value)
