"""One rule for bad arguments, checked on every public entry point outside the ops.

`cnnumpy.validation` raises TypeError for a wrong type and ValueError for a
right type with a wrong value, and names the argument and the value it got.
The table below sends, to each argument of each public constructor and
function, one value of a wrong type and (where one exists) one of the right
type but a wrong value; `test_every_argument_has_a_row` reads the signatures so
that an argument added later without a row fails.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cnnumpy
from cnnumpy import data, explain, models, nn, optim, training
from cnnumpy import inspect as look
from cnnumpy.data import transforms
from cnnumpy.nn.parameter import Parameter
from cnnumpy.validation import (
    check_bool,
    check_callable,
    check_choice,
    check_dtype,
    check_instance,
    check_int,
    check_pair,
    check_path,
    check_real,
    check_reals,
    check_str,
)

# ----------------------------------------------------------------- validation.py


@pytest.mark.parametrize("value", [0, 5, np.int64(3), np.uint8(7), -2])
def test_check_int_accepts_ints_and_numpy_ints(value):
    out = check_int(value, "n")
    assert out == value and type(out) is int


@pytest.mark.parametrize(
    "value", [True, np.bool_(False), 1.0, "1", None, np.float64(2)]
)
def test_check_int_refuses_other_types(value):
    with pytest.raises(TypeError, match=r"^`n` must be an int, got "):
        check_int(value, "n")


def test_check_int_bounds_are_inclusive():
    assert check_int(1, "n", minimum=1, maximum=1) == 1
    with pytest.raises(ValueError, match=r"^`n` must be >= 1, got 0$"):
        check_int(0, "n", minimum=1)
    with pytest.raises(ValueError, match=r"^`n` must be <= 3, got 4$"):
        check_int(4, "n", maximum=3)


@pytest.mark.parametrize("value", [0, 2.5, np.float32(0.5), np.int8(3), -1e300])
def test_check_real_accepts_real_numbers_as_float(value):
    out = check_real(value, "x")
    assert out == float(value) and type(out) is float


@pytest.mark.parametrize("value", [True, np.bool_(True), "0.1", None, 1j, [1.0]])
def test_check_real_refuses_other_types(value):
    with pytest.raises(TypeError, match=r"^`x` must be a real number, got "):
        check_real(value, "x")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float64("nan")])
def test_check_real_refuses_nan_and_infinities(value):
    with pytest.raises(ValueError, match=r"^`x` must be a finite number, got "):
        check_real(value, "x", minimum=0)


@pytest.mark.parametrize(
    ("bounds", "bad", "expected"),
    [
        ({"minimum": 0}, -0.5, r">= 0, got -0.5"),
        ({"above": 0}, 0, r"> 0, got 0"),
        ({"maximum": 1}, 1.5, r"<= 1, got 1.5"),
        ({"below": 1}, 1.0, r"< 1, got 1.0"),
        ({"minimum": 0, "maximum": 1}, 2, r"in \[0, 1\], got 2"),
        ({"minimum": 0, "below": 1}, 1, r"in \[0, 1\), got 1"),
        ({"above": 0, "maximum": 1}, 0.0, r"in \(0, 1\], got 0.0"),
        ({"above": 0, "below": 1e-3}, 1, r"in \(0, 0.001\), got 1"),
    ],
)
def test_check_real_bounds_and_messages(bounds, bad, expected):
    with pytest.raises(ValueError, match=r"^`x` must be " + expected + "$"):
        check_real(bad, "x", **bounds)


def test_check_real_bounds_hold_at_the_edges():
    assert check_real(0, "x", minimum=0, maximum=0) == 0.0
    assert check_real(0.5, "x", above=0, below=1) == 0.5


def test_check_reals_takes_a_number_or_one_per_channel():
    assert check_reals(np.float32(0.5), "mean") == 0.5
    assert check_reals([1, 0.5], "std", above=0) == (1.0, 0.5)
    assert check_reals(np.array([0.25]), "std") == (0.25,)
    with pytest.raises(ValueError, match=r"^`std\[1\]` must be > 0, got 0$"):
        check_reals((1.0, 0), "std", above=0)
    with pytest.raises(TypeError, match=r"^`mean\[0\]` must be a real number"):
        check_reals(["0.5"], "mean")
    with pytest.raises(ValueError, match=r"^`mean` must be a number or a non-empty"):
        check_reals([], "mean")
    with pytest.raises(ValueError, match=r"^`mean` must be a number or a non-empty"):
        check_reals(np.zeros((2, 2)), "mean")


def test_check_bool_refuses_ints():
    assert check_bool(np.bool_(True), "flag") is True
    with pytest.raises(TypeError, match=r"^`flag` must be a bool, got int 1$"):
        check_bool(1, "flag")


def test_check_choice_type_then_value():
    assert check_choice("min", "mode", ("min", "max")) == "min"
    with pytest.raises(
        TypeError, match=r"^`mode` must be one of 'min', 'max', got int 1"
    ):
        check_choice(1, "mode", ("min", "max"))
    with pytest.raises(
        ValueError, match=r"^`mode` must be one of 'min', 'max', got 'x'"
    ):
        check_choice("x", "mode", ("min", "max"))


def test_check_pair_and_dtype():
    assert check_pair(np.int64(2), "k", minimum=1) == (2, 2)
    assert check_pair([1, 3], "k", minimum=1) == (1, 3)
    with pytest.raises(
        TypeError, match=r"`k` must be an int or a pair of ints, got True"
    ):
        check_pair(True, "k", minimum=1)
    with pytest.raises(ValueError, match=r"`k` must be >= 1, got \(1, 0\)"):
        check_pair((1, 0), "k", minimum=1)
    assert check_dtype("float32") == np.float32
    with pytest.raises(TypeError, match=r"`dtype` must be float32 or float64, got 'd'"):
        check_dtype("d")


def test_check_str_path_callable_instance():
    assert check_str("a", "s") == "a"
    assert check_path(Path("a"), "p") == Path("a")
    assert check_callable(len, "f") is len
    assert check_instance(3, "n", int, "an int") == 3
    with pytest.raises(TypeError, match=r"^`s` must be a str, got bytes b'a'$"):
        check_str(b"a", "s")
    with pytest.raises(TypeError, match=r"^`p` must be a path .*, got int 3$"):
        check_path(3, "p")
    with pytest.raises(TypeError, match=r"^`f` must be callable, got str 'f'$"):
        check_callable("f", "f")
    with pytest.raises(TypeError, match=r"^`n` must be an int, got str '3'$"):
        check_instance("3", "n", int, "an int")


def test_long_values_are_cut_in_messages():
    with pytest.raises(TypeError) as info:
        check_str(list(range(1000)), "s")
    message = str(info.value)
    assert message.startswith("`s` must be a str, got list [0, 1, 2")
    assert message.endswith("...") and len(message) < 120


# ------------------------------------------------------------- the common table

NO_VALUE = object()  # the argument has no wrong value of the right type


@dataclass(frozen=True)
class Bad:
    """A bad argument; ``name`` and ``got`` as the message must show them.

    ``got`` defaults to ``repr(value)``; ``name`` to the argument's name.
    """

    value: Any
    got: str | None = None
    name: str | None = None


@dataclass
class Entry:
    """A public callable, valid arguments, and per argument (bad type, bad value)."""

    func: Callable[..., Any]
    valid: Callable[[Path], dict[str, Any]]
    bad: dict[str, tuple[Any, Any]]
    needs: tuple[str, ...] = field(default=())  # optional modules


def _bad(x: Any) -> Bad:
    return x if isinstance(x, Bad) else Bad(x)


def _params() -> list[Parameter]:
    return [Parameter(np.zeros(3))]


def _opt() -> optim.Optimizer:
    return optim.SGD(_params(), lr=0.1)


def _sequential_args() -> dict[str, Any]:
    opt = _opt()
    return {"optimizer": opt, "schedulers": [optim.LinearLR(opt)], "milestones": []}


def _dataset(n: int = 4, dtype: Any = np.float32) -> data.Dataset:
    images = np.zeros((n, 1, 28, 28), dtype)
    return data.Dataset(images, np.arange(n) % 2, ("a", "b"), "toy")


def _model() -> nn.Sequential:
    return models.lenet5(rng=np.random.default_rng(0))


GEN = np.random.default_rng(0)
IMAGES = np.zeros((2, 1, 28, 28), np.float32)
DATASET = _dataset()
EMPTY = _dataset(0)
MATRIX = np.array([[2, 1], [0, 3]])
TRUTH = np.array([0, 1])
HISTORY = [{"epoch": 1, "train_loss": 0.5, "train_accuracy": 0.8}]
PATH_VALUE = (
    NO_VALUE  # a path's wrong values are files: see test_checkpoint, test_data*
)

ENTRIES: dict[str, Entry] = {
    # --- nn
    "Conv2d": Entry(
        nn.Conv2d,
        lambda tmp: {"in_channels": 4, "out_channels": 2, "kernel_size": 3},
        {
            "in_channels": (1.5, 0),
            "out_channels": ("2", -1),
            "kernel_size": (1.5, 0),
            "stride": ("1", Bad((1, 0), "(1, 0)")),
            "padding": (1.5, -1),
            "dilation": (None, 0),
            "groups": (2.0, Bad(0)),
            "bias": (1, NO_VALUE),
            "dtype": (np.int32, NO_VALUE),
            "rng": (3, NO_VALUE),
            "impl": (1, "fast"),
        },
    ),
    "Conv2d groups": Entry(
        nn.Conv2d,
        lambda tmp: {"in_channels": 4, "out_channels": 2, "kernel_size": 3},
        {"groups": (NO_VALUE, Bad(3, "(=3)"))},
    ),
    "ConvTranspose2d": Entry(
        nn.ConvTranspose2d,
        lambda tmp: {"in_channels": 4, "out_channels": 2, "kernel_size": 3},
        {
            "in_channels": (1.5, 0),
            "out_channels": ("2", -1),
            "kernel_size": (1.5, 0),
            "stride": ("1", Bad((1, 0), "(1, 0)")),
            "padding": (1.5, -1),
            "output_padding": (None, Bad(1, "(=1)")),
            "groups": (2.0, Bad(3, "(=3)")),
            "bias": (1, NO_VALUE),
            "dilation": (None, 0),
            "dtype": (np.int32, NO_VALUE),
            "rng": (3, NO_VALUE),
            "impl": (1, "fast"),
        },
    ),
    "MaxPool2d": Entry(
        nn.MaxPool2d,
        lambda tmp: {"kernel_size": 2},
        {
            "kernel_size": ("2", 0),
            "stride": (2.0, 0),
            "padding": (None, -1),
            "impl": (None, "fast"),
        },
    ),
    "AvgPool2d": Entry(
        nn.AvgPool2d,
        lambda tmp: {"kernel_size": 2},
        {
            "kernel_size": ([2.0, 2], 0),
            "stride": ("x", 0),
            "padding": (0.5, Bad(2, "(=2)")),
            "impl": (0, "slow"),
        },
    ),
    "AdaptiveAvgPool2d": Entry(
        nn.AdaptiveAvgPool2d,
        lambda tmp: {"output_size": 2},
        {"output_size": (2.0, Bad((2, 0), "(2, 0)")), "impl": (None, "fast")},
    ),
    "Linear": Entry(
        nn.Linear,
        lambda tmp: {"in_features": 3, "out_features": 2},
        {
            "in_features": (3.0, 0),
            "out_features": (True, -1),
            "bias": ("yes", NO_VALUE),
            "dtype": ("float16", NO_VALUE),
            "rng": (0, NO_VALUE),
        },
    ),
    "Flatten": Entry(
        nn.Flatten,
        lambda tmp: {},
        {"start_dim": (None, NO_VALUE), "end_dim": (1.0, NO_VALUE)},
    ),
    "Unflatten": Entry(
        nn.Unflatten,
        lambda tmp: {"dim": 1, "unflattened_size": (2, 3)},
        {
            "dim": (1.0, NO_VALUE),
            "unflattened_size": ("23", Bad((2, 0), "(2, 0)")),
        },
    ),
    "ReLU": Entry(nn.ReLU, lambda tmp: {}, {"inplace": (1, NO_VALUE)}),
    "Tanh": Entry(nn.Tanh, lambda tmp: {}, {"inplace": ("no", NO_VALUE)}),
    "Sigmoid": Entry(nn.Sigmoid, lambda tmp: {}, {}),
    "Identity": Entry(nn.Identity, lambda tmp: {}, {}),
    "Residual": Entry(
        nn.Residual,
        lambda tmp: {"body": nn.ReLU()},
        {"body": (3, NO_VALUE), "shortcut": ("x", NO_VALUE)},
    ),
    "SiLU": Entry(nn.SiLU, lambda tmp: {}, {}),
    "GELU": Entry(nn.GELU, lambda tmp: {}, {"approximate": (None, "erf")}),
    "LeakyReLU": Entry(
        nn.LeakyReLU, lambda tmp: {}, {"negative_slope": ("0.1", math.nan)}
    ),
    "Softmax": Entry(nn.Softmax, lambda tmp: {}, {"dim": (1.0, NO_VALUE)}),
    "LogSoftmax": Entry(nn.LogSoftmax, lambda tmp: {}, {"dim": (True, NO_VALUE)}),
    "Dropout": Entry(
        nn.Dropout, lambda tmp: {}, {"p": ("0.5", 1.5), "rng": (1, NO_VALUE)}
    ),
    "BatchNorm2d": Entry(
        nn.BatchNorm2d,
        lambda tmp: {"num_features": 3},
        {
            "num_features": (3.0, 0),
            "eps": ("1e-5", 0),
            "momentum": (True, 1.5),
            "affine": (1, NO_VALUE),
            "track_running_stats": (0, NO_VALUE),
            "dtype": (np.float16, NO_VALUE),
        },
    ),
    "BatchNorm1d": Entry(
        nn.BatchNorm1d,
        lambda tmp: {"num_features": 3},
        {
            "num_features": (3.0, 0),
            "eps": ("1e-5", 0),
            "momentum": (True, 1.5),
            "affine": (1, NO_VALUE),
            "track_running_stats": (0, NO_VALUE),
            "dtype": (np.float16, NO_VALUE),
        },
    ),
    "CrossEntropyLoss": Entry(
        nn.CrossEntropyLoss, lambda tmp: {}, {"label_smoothing": (True, 1.5)}
    ),
    "Module": Entry(nn.Module, lambda tmp: {}, {}),
    "Parameter": Entry(
        Parameter,
        lambda tmp: {"data": np.zeros(2)},
        {"data": ([1.0, 2.0], NO_VALUE)},
    ),
    # --- optim
    "SGD": Entry(
        optim.SGD,
        lambda tmp: {"params": _params(), "lr": 0.1},
        {
            "params": (Bad("ab", "str at index 0"), Bad([], "an empty list")),
            "lr": ("0.1", -0.1),
            "momentum": (True, -0.9),
            "dampening": ("0", math.inf),
            "weight_decay": (None, -1),
            "nesterov": (1, Bad(True, "momentum=0", name="nesterov=True")),
            "maximize": (0, NO_VALUE),
        },
    ),
    "Adam": Entry(
        optim.Adam,
        lambda tmp: {"params": _params()},
        {
            "params": (Bad(Parameter(np.zeros(1)), "Parameter"), Bad([], "empty")),
            "lr": (True, math.nan),
            "betas": (0.9, Bad((0.9, 1.0), name="betas[1]", got="1.0")),
            "eps": ("1e-8", -1e-8),
            "weight_decay": (None, -0.5),
            "amsgrad": (1, NO_VALUE),
            "maximize": ("no", NO_VALUE),
            "decoupled_weight_decay": (0, NO_VALUE),
        },
    ),
    "AdamW": Entry(
        optim.AdamW,
        lambda tmp: {"params": _params()},
        {
            "params": (Bad({"x"}, "set"), Bad([], "empty")),
            "lr": (None, -1.0),
            "betas": ("ab", Bad((0.9,), "1 values")),
            "eps": (True, math.inf),
            "weight_decay": ("0", -0.01),
            "amsgrad": (None, NO_VALUE),
            "maximize": (1.0, NO_VALUE),
        },
    ),
    "Optimizer": Entry(
        optim.Optimizer,
        lambda tmp: {"params": _params(), "defaults": {"lr": 0.1}},
        {
            "params": (Bad(3, "int"), Bad([], "empty")),
            "defaults": ([("lr", 0.1)], Bad({"lr": -1}, "-1", "lr")),
        },
    ),
    "StepLR": Entry(
        optim.StepLR,
        lambda tmp: {"optimizer": _opt(), "step_size": 2},
        {
            "optimizer": ("sgd", NO_VALUE),
            "step_size": (True, 0),
            "gamma": ("0.1", math.nan),
            "last_epoch": (-1.0, -2),
        },
    ),
    "CosineAnnealingLR": Entry(
        optim.CosineAnnealingLR,
        lambda tmp: {"optimizer": _opt(), "T_max": 5},
        {
            "optimizer": (None, NO_VALUE),
            "T_max": (5.0, 0),
            "eta_min": (True, -math.inf),
            "last_epoch": ("0", Bad(3, "(=3)")),
        },
    ),
    "LinearLR": Entry(
        optim.LinearLR,
        lambda tmp: {"optimizer": _opt()},
        {
            "optimizer": (None, NO_VALUE),
            "start_factor": ("0.5", 0.0),
            "end_factor": (True, 1.5),
            "total_iters": (5.0, 0),
            "last_epoch": ("0", -2),
        },
    ),
    "OneCycleLR": Entry(
        optim.OneCycleLR,
        lambda tmp: {"optimizer": _opt(), "max_lr": 1.0, "total_steps": 10},
        {
            "optimizer": ("sgd", NO_VALUE),
            "max_lr": ("1", Bad([1.0, 2.0], "got 2")),
            "total_steps": (2.5, 0),
            "epochs": ("3", 0),
            "steps_per_epoch": (1.5, -1),
            "pct_start": ("0.3", 1.5),
            "anneal_strategy": (1, "cosine"),
            "cycle_momentum": ("yes", NO_VALUE),
            "base_momentum": (None, Bad([0.8, 0.7], "got 2")),
            "max_momentum": ("0.9", Bad((0.9, 0.9, 0.9), "got 3")),
            "div_factor": (None, 0.0),
            "final_div_factor": (True, -1.0),
            "three_phase": (1, NO_VALUE),
            "last_epoch": (-1.0, -2),
        },
    ),
    "SequentialLR": Entry(
        optim.SequentialLR,
        lambda tmp: _sequential_args(),
        {
            "optimizer": ("x", NO_VALUE),
            "schedulers": ("abc", Bad([], "got none")),
            "milestones": (3, Bad([2], "got 1")),
            "last_epoch": (1.0, -5),
        },
    ),
    "param_groups_without_decay": Entry(
        optim.param_groups_without_decay,
        lambda tmp: {"model": _model(), "weight_decay": 0.1},
        {"model": ({}, NO_VALUE), "weight_decay": ("0.1", -1.0)},
    ),
    # --- data
    "Dataset": Entry(
        data.Dataset,
        lambda tmp: {
            "images": np.zeros((2, 1, 3, 3)),
            "labels": np.array([0, 1]),
            "class_names": ("a", "b"),
            "name": "t",
        },
        {
            "images": ([[[[0.0]]]], Bad(np.zeros((2, 3, 3)), "shape (2, 3, 3)")),
            "labels": (
                Bad(np.zeros(2), "float64"),
                Bad(np.zeros((1, 2), int), "(1, 2)"),
            ),
            "class_names": ((0, 1), ()),
            "name": (3, NO_VALUE),
        },
    ),
    "DataLoader": Entry(
        data.DataLoader,
        lambda tmp: {"dataset": DATASET},
        {
            "dataset": ((1, 2), NO_VALUE),
            "batch_size": (True, 0),
            "shuffle": (1, NO_VALUE),
            "seed": (None, -1),
            "drop_last": ("no", NO_VALUE),
            "transform": ("crop", NO_VALUE),
        },
    ),
    "DataLoader.set_epoch": Entry(
        data.DataLoader(DATASET).set_epoch,
        lambda tmp: {"epoch": 0},
        {"epoch": (1.0, -1), "start": ("0", Bad(5, "got 5"))},
    ),
    "DataLoader.batch_rng": Entry(
        data.DataLoader(DATASET).batch_rng,
        lambda tmp: {"epoch": 0, "batch": 0},
        {"epoch": (None, -1), "batch": (0.5, -3)},
    ),
    "RandomCrop": Entry(
        transforms.RandomCrop,
        lambda tmp: {"size": 2},
        {
            "size": ("2", 0),
            "padding": (1.5, Bad((1, 2, 3), "got 3")),
            "pad_if_needed": (1, NO_VALUE),
            "fill": ("0", math.inf),
            "padding_mode": (None, "wrap"),
        },
    ),
    "RandomCrop.__call__": Entry(
        transforms.RandomCrop(2, padding=1).__call__,
        lambda tmp: {"images": IMAGES, "rng": GEN},
        {
            "images": ([[0.0]], Bad(IMAGES[0], "shape (1, 28, 28)")),
            "rng": (0, NO_VALUE),
        },
    ),
    "RandomHorizontalFlip": Entry(
        transforms.RandomHorizontalFlip, lambda tmp: {}, {"p": ("0.5", 1.5)}
    ),
    "RandomHorizontalFlip.__call__": Entry(
        transforms.RandomHorizontalFlip().__call__,
        lambda tmp: {"images": IMAGES, "rng": GEN},
        {
            "images": (Bad(IMAGES.astype(bool), "bool"), Bad(IMAGES[0, 0], "(28, 28)")),
            "rng": (np.random.RandomState(0), NO_VALUE),
        },
    ),
    "Compose": Entry(
        transforms.Compose,
        lambda tmp: {"transforms": []},
        {"transforms": ("flip", NO_VALUE)},
    ),
    "Compose.__call__": Entry(
        transforms.Compose([]).__call__,
        lambda tmp: {"images": IMAGES, "rng": GEN},
        {"images": (3, Bad(IMAGES[0], "(1, 28, 28)")), "rng": (None, NO_VALUE)},
    ),
    "normalization_stats": Entry(
        data.normalization_stats,
        lambda tmp: {"dataset": DATASET},
        {
            "dataset": (np.zeros(3), Bad(EMPTY, "'toy' has no pixels")),
            "per_channel": (1, NO_VALUE),
        },
    ),
    "load_dataset": Entry(
        data.load_dataset,
        lambda tmp: {"name": "mnist-sample", "cache_dir": tmp, "download": False},
        {
            "name": (3, "cifar"),
            "data_dir": (3, PATH_VALUE),
            "cache_dir": (1.5, PATH_VALUE),
            "download": ("yes", NO_VALUE),
            "progress": (3, NO_VALUE),
        },
    ),
    "load_test_set": Entry(
        data.load_test_set,
        lambda tmp: {"name": "mnist-sample", "cache_dir": tmp, "download": False},
        {
            "name": (None, "svhn"),
            "data_dir": (b"x", PATH_VALUE),
            "cache_dir": (3, PATH_VALUE),
            "download": (0, NO_VALUE),
            "progress": ("f", NO_VALUE),
        },
    ),
    "download": Entry(
        data.download,
        lambda tmp: {
            "urls": "http://127.0.0.1:9/x",
            "dest": tmp / "x",
            "sha256": "0" * 64,
        },
        {
            "urls": ([1], []),
            "dest": (3, PATH_VALUE),
            "sha256": (3, "abc"),
            "md5": (b"0" * 32, "0" * 31),
            "progress": (3, NO_VALUE),
            "timeout": ("30", 0),
        },
    ),
    "read_idx": Entry(
        data.read_idx, lambda tmp: {"path": tmp / "x"}, {"path": (3, PATH_VALUE)}
    ),
    "write_idx": Entry(
        data.write_idx,
        lambda tmp: {"path": tmp / "x", "array": np.zeros(2, np.uint8)},
        {
            "path": (None, PATH_VALUE),
            "array": (Bad([1, 2], "list"), Bad(np.array(1, np.uint8), "got 0")),
        },
    ),
    "load_images": Entry(
        data.load_images,
        lambda tmp: {"paths": [tmp / "x.png"]},
        {"paths": (3, []), "size": (1.5, 0), "channels": ("3", 2)},
    ),
    # --- models
    "lenet5": Entry(
        models.lenet5,
        lambda tmp: {},
        {
            "num_classes": (1.5, 0),
            "in_channels": ("1", 0),
            "input_size": (True, Bad(8, "got 8")),
            "rng": (3, NO_VALUE),
            "dtype": (np.float16, NO_VALUE),
            "impl": (1, "fast"),
        },
    ),
    "lenet5_modern": Entry(
        models.lenet5_modern,
        lambda tmp: {},
        {
            "num_classes": ("10", -1),
            "in_channels": (1.0, 0),
            "input_size": (None, Bad(11, "got 11")),
            "rng": ("seed", NO_VALUE),
            "dtype": ("float", NO_VALUE),
            "impl": (None, "torch"),
        },
    ),
    "resnet8": Entry(
        models.resnet8,
        lambda tmp: {"input_size": 8},
        {
            "num_classes": (1.5, 0),
            "in_channels": ("1", 0),
            "input_size": (True, 0),
            "rng": (3, NO_VALUE),
            "dtype": (np.float16, NO_VALUE),
            "impl": (1, "fast"),
        },
    ),
    "resnet20": Entry(
        models.resnet20,
        lambda tmp: {"input_size": 8},
        {
            "num_classes": ("10", -1),
            "in_channels": (1.0, 0),
            "input_size": (None, -3),
            "rng": ("seed", NO_VALUE),
            "dtype": ("float", NO_VALUE),
            "impl": (None, "torch"),
        },
    ),
    "vgg_bn": Entry(
        models.vgg_bn,
        lambda tmp: {"input_size": 8},
        {
            "num_classes": (None, 0),
            "in_channels": (2.0, -1),
            "input_size": ("28", Bad(7, "got 7")),
            "rng": (1.0, NO_VALUE),
            "dtype": (int, NO_VALUE),
            "impl": (False, "fast"),
        },
    ),
    "create_model": Entry(
        models.create_model, lambda tmp: {"name": "lenet5"}, {"name": (3, "vgg")}
    ),
    "summary": Entry(
        models.summary,
        lambda tmp: {"model": _model(), "input_shape": (1, 28, 28)},
        {
            "model": (Bad(nn.ReLU(), "ReLU"), NO_VALUE),
            "input_shape": (28, (1, 0, 28)),
            "name": (3, NO_VALUE),
        },
    ),
    "count_parameters": Entry(
        models.count_parameters,
        lambda tmp: {"module": nn.ReLU()},
        {"module": ({}, NO_VALUE)},
    ),
    # --- training
    "fit": Entry(
        training.fit,
        lambda tmp: {
            "model": _model(),
            "optimizer": _opt(),
            "train": DATASET,
            "epochs": 1,
            "batch_size": 2,
        },
        {
            "model": ("m", NO_VALUE),
            "optimizer": (None, NO_VALUE),
            "train": ("x", Bad(EMPTY, "got 0")),
            "epochs": (1.0, 0),
            "batch_size": (True, 0),
            "val": (Bad(_dataset(2, np.uint8), "got uint8"), Bad(EMPTY, "got 0")),
            "seed": ("0", -1),
            "callbacks": (3, NO_VALUE),
            "state": ({}, Bad(training.FitState(batch=9), "(=9)", "state.batch")),
            "comm": ("world", NO_VALUE),
            "transform": (3, NO_VALUE),
            "label_smoothing": ("0.1", 2.0),
        },
    ),
    "evaluate": Entry(
        training.evaluate,
        lambda tmp: {"model": _model(), "data": DATASET},
        {
            "model": (3, NO_VALUE),
            "data": ([1], Bad(EMPTY, "got 0")),
            "batch_size": (1.5, 0),
            "comm": (1, NO_VALUE),
        },
    ),
    "predict_proba": Entry(
        training.predict_proba,
        lambda tmp: {"model": _model(), "images": np.zeros((1, 1, 28, 28), np.float32)},
        {
            "model": (None, NO_VALUE),
            "images": ([0.0], Bad(np.zeros((28, 28)), "(28, 28)")),
            "batch_size": ("1", -1),
        },
    ),
    "EarlyStopping": Entry(
        training.EarlyStopping,
        lambda tmp: {},
        {
            "monitor": (3, NO_VALUE),
            "patience": (True, 0),
            "min_delta": ("0", -0.1),
            "mode": (None, "up"),
        },
    ),
    "BestCheckpoint": Entry(
        training.BestCheckpoint,
        lambda tmp: {"save": print},
        {
            "save": ("f", NO_VALUE),
            "monitor": (None, NO_VALUE),
            "mode": (1, "best"),
            "min_delta": (True, math.nan),
        },
    ),
    "TrainConfig": Entry(
        training.TrainConfig,
        lambda tmp: {},
        {
            "model": (1, "vgg"),
            "dataset": (None, "cifar"),
            "data_dir": (3, PATH_VALUE),
            "cache_dir": (1.0, PATH_VALUE),
            "download": (1, NO_VALUE),
            "epochs": ("3", 0),
            "batch_size": (True, 0),
            "lr": (True, 0),
            "optimizer": (0, "rmsprop"),
            "momentum": ("0.9", 1.0),
            "nesterov": ("yes", Bad(True, "'adam'")),
            "weight_decay": (None, -1e-4),
            "schedule": (1, "linear"),
            "lr_step": (2.0, 0),
            "lr_gamma": (True, 0),
            "warmup_epochs": (0.5, 15),
            "label_smoothing": ("0", 1.1),
            "augment": (False, "mixup"),
            "crop_padding": (1.0, Bad(2, "(=2)")),
            "seed": (0.0, -1),
            "val_fraction": ("0.1", 1.0),
            "patience": (True, 0),
            "dtype": (np.float32, "float16"),
            "impl": (1, "fast"),
            "out": (3, PATH_VALUE),
            "resume": (3, PATH_VALUE),
            "plots": (1, NO_VALUE),
        },
    ),
    "split_validation": Entry(
        training.split_validation,
        lambda tmp: {"dataset": DATASET, "fraction": 0.25, "seed": 0},
        {
            "dataset": ("data", NO_VALUE),
            "fraction": ("0.1", 1.0),
            "seed": (1.5, -2),
        },
    ),
    "train_run": Entry(
        training.train_run,
        lambda tmp: {"config": training.TrainConfig(out=str(tmp / "run"))},
        {
            "config": ({"epochs": 1}, NO_VALUE),
            "callbacks": (Bad(print, "builtin_function_or_method"), NO_VALUE),
            "progress": (3, NO_VALUE),
            "comm": ("ranks", NO_VALUE),
        },
    ),
    "resume_config": Entry(
        training.resume_config,
        lambda tmp: {"path": tmp / "last.npz"},
        {"path": (3, PATH_VALUE)},
    ),
    "load_trained": Entry(
        training.load_trained,
        lambda tmp: {"path": tmp / "best.npz"},
        {"path": (None, PATH_VALUE), "impl": (1, "fast")},
    ),
    "load_checkpoint": Entry(
        training.load_checkpoint,
        lambda tmp: {"path": tmp / "x.npz"},
        {"path": (3, PATH_VALUE)},
    ),
    "save_checkpoint": Entry(
        training.save_checkpoint,
        lambda tmp: {"path": tmp / "x.npz", "tree": {}},
        {"path": (3, PATH_VALUE), "tree": (Bad([1], "list"), NO_VALUE)},
    ),
    "set_num_threads": Entry(
        cnnumpy.set_num_threads,
        lambda tmp: {"num_threads": 1},
        {"num_threads": (True, 0)},
    ),
    # --- explain (a malformed shape is always a ValueError of check_shape:
    # tests/test_im2col_indices.py::test_input_shape_errors)
    "explain_im2col": Entry(
        explain.explain_im2col,
        lambda tmp: {"input_shape": (1, 2, 4, 4), "kernel_shape": (1, 2, 2, 2)},
        {
            "input_shape": (NO_VALUE, Bad((1, 2, 4), "(1, 2, 4)")),
            "kernel_shape": (NO_VALUE, Bad((1, 3, 2, 2), "got 3")),
            "stride": ("1", 0),
            "padding": (1.5, -1),
            "dilation": (None, 0),
            "layout": (3, "chw"),
        },
    ),
    "explain_conv_transpose": Entry(
        explain.explain_conv_transpose,
        lambda tmp: {"input_shape": (1, 2, 3, 3), "kernel_shape": (2, 1, 2, 2)},
        {
            "input_shape": (NO_VALUE, Bad((0, 2, 3, 3), "(0, 2, 3, 3)")),
            "kernel_shape": (NO_VALUE, Bad((1, 1, 2, 2), "got 1")),
            "stride": (1.5, 0),
            "padding": ("same", Bad(3, "(=3)")),
            "dilation": ("2", 0),
            "output_padding": (None, Bad(1, "(=1)")),
        },
    ),
    "html_im2col": Entry(
        explain.html_im2col,
        lambda tmp: {
            "path": tmp / "p.html",
            "input_shape": (1, 1, 4, 4),
            "kernel_shape": (1, 1, 3, 3),
        },
        {
            "path": (3, Bad("p.png", "'p.png'")),
            "input_shape": (NO_VALUE, Bad((1, 1, 300, 300), "40,000")),
            "kernel_shape": (NO_VALUE, Bad((1, 1, 5, 5), "(5, 5)")),
            "stride": ((1.0, 1), Bad((1, 0), "(1, 0)")),
            "padding": (1.5, "same"),
            "dilation": (True, 0),
        },
    ),
    # --- inspect
    "feature_maps": Entry(
        look.feature_maps,
        lambda tmp: {"model": _model(), "x": IMAGES},
        {
            "model": (Bad("m", "'m'"), NO_VALUE),
            "x": (Bad([1.0], "list"), Bad(np.zeros((2, 2)), "(2, 2)")),
        },
    ),
    "saliency": Entry(
        look.saliency,
        lambda tmp: {"model": _model(), "x": IMAGES},
        {
            "model": (Bad(None, "None"), NO_VALUE),
            "x": (Bad(IMAGES.astype(int), "int64"), Bad(IMAGES[:0], "(0, 1, 28, 28)")),
            "target": ("3", -1),
        },
    ),
    "grad_cam": Entry(
        look.grad_cam,
        lambda tmp: {"model": _model(), "x": IMAGES},
        {
            "model": (
                Bad(3, "3"),
                Bad(nn.Sequential(nn.Flatten()), "(Flatten)"),
            ),
            "x": (Bad("x", "str"), Bad(IMAGES[0], "(1, 28, 28)")),
            "layer": (3, "conv9"),
            "target": (1.0, 10),
        },
    ),
    "layer_activity": Entry(
        look.layer_activity,
        lambda tmp: {"maps": {"conv1": np.ones((2, 3, 3))}},
        {"maps": (Bad([1], "list"), Bad({}, "empty dict"))},
    ),
}


def _trained() -> training.TrainedModel:
    return training.TrainedModel(
        _model(), tuple("0123456789"), 0.1, 0.3, (1, 28, 28), "toy", {}
    )


def _plot_entries() -> dict[str, Entry]:
    from cnnumpy.training import plots

    images = np.zeros((2, 1, 4, 4))
    pixels = np.zeros((2, 1, 28, 28), np.uint8)
    return {
        "plot_feature_maps": Entry(
            look.plot_feature_maps,
            lambda tmp: {"path": tmp / "m.png", "maps": {"c": np.ones((2, 3, 3))}},
            {
                "path": (3, Bad("m.doc", "'m.doc'")),
                "maps": (
                    Bad([1], "list"),
                    Bad({"c": np.ones(3)}, "(3,)", "maps['c']"),
                ),
                "max_channels": (2.0, 0),
            },
        ),
        "plot_saliency": Entry(
            look.plot_saliency,
            lambda tmp: {"path": tmp / "s.png", "image": images[0], "grad": images[0]},
            {
                "path": (None, Bad("s", "'s'")),
                "image": (Bad(["x"], "<U1"), Bad(images, "(2, 1, 4, 4)")),
                "grad": (Bad(["x"], "<U1"), Bad(np.ones((5, 5)), "(5, 5)")),
                "title": (3, NO_VALUE),
            },
        ),
        "plot_grad_cam": Entry(
            look.plot_grad_cam,
            lambda tmp: {
                "path": tmp / "g.png",
                "image": images[0],
                "cam": images[0, 0],
            },
            {
                "path": (1.5, Bad("g.txt", "'g.txt'")),
                "image": (Bad([[None]], "object"), Bad(np.ones((2, 0)), "(2, 0)")),
                "cam": (Bad(["x"], "<U1"), Bad(np.ones((4, 5)), "(4, 5)")),
                "title": (None, NO_VALUE),
            },
        ),
        "inspect_images": Entry(
            look.inspect_images,
            lambda tmp: {"trained": _trained(), "images": pixels, "out_dir": tmp / "o"},
            {
                "trained": (Bad(_model(), "Sequential"), NO_VALUE),
                "images": (Bad([0], "list"), Bad(images, "(2, 1, 4, 4)")),
                "out_dir": (3, PATH_VALUE),
                "names": (Bad("ab", "'ab'"), Bad(["a"], "['a']")),
                "top": (1.5, 0),
            },
        ),
        "plot_history": Entry(
            plots.plot_history,
            lambda tmp: {"path": tmp / "h.png", "history": HISTORY},
            {
                "path": (3, Bad(Path("h.txt"), "'h.txt'")),
                "history": (Bad(HISTORY[0], "dict"), Bad([], "empty list")),
            },
        ),
        "plot_confusion_matrix": Entry(
            plots.plot_confusion_matrix,
            lambda tmp: {
                "path": tmp / "c.png",
                "matrix": MATRIX,
                "class_names": ["a", "b"],
            },
            {
                "path": (None, Bad(Path("c"), "'c'")),
                "matrix": (Bad(MATRIX / 2, "float64"), Bad(-MATRIX, "-3")),
                "class_names": (Bad("ab", "str"), Bad(["a"], "got 1")),
            },
        ),
        "plot_misclassified": Entry(
            plots.plot_misclassified,
            lambda tmp: {
                "path": tmp / "m.png",
                "images": images,
                "true_labels": TRUTH,
                "predicted_labels": TRUTH,
                "class_names": ["a", "b"],
            },
            {
                "path": (1.5, Bad("m.csv", "'m.csv'")),
                "images": (
                    Bad(["x"], "<U1"),
                    Bad(np.zeros((2, 2, 4, 4)), "(2, 2, 4, 4)"),
                ),
                "true_labels": (Bad(TRUTH * 1.0, "float64"), Bad(TRUTH[:1], "(1,)")),
                "predicted_labels": (Bad(["a", "b"], "<U1"), Bad(TRUTH + 1, "[1, 2]")),
                "class_names": (Bad([0, 1], "int", "class_names[0]"), []),
                "max_images": (2.0, 0),
            },
        ),
        "plot_filters": Entry(
            plots.plot_filters,
            lambda tmp: {"path": tmp / "f.png", "weight": np.ones((2, 1, 3, 3))},
            {
                "path": (3, Bad("f.doc", "'f.doc'")),
                "weight": (
                    Bad(object(), "object"),
                    Bad(np.ones((1, 3, 3)), "(1, 3, 3)"),
                ),
            },
        ),
    }


# Callables of the public API that the table leaves out, and why.
NOT_IN_TABLE = {
    # Records the library fills in and hands back, not built from user input.
    "Evaluation",
    "FitState",
    "RunResult",
    "TrainedModel",
    # Exceptions.
    "BackwardBeforeForwardError",
    "CheckpointError",
    "DatasetNotFoundError",
    "DivergenceError",
    "CIFARError",
    "DownloadError",
    "IDXError",
    "ONNXError",
    "RunLockedError",
    # No arguments.
    "Callback",
    "default_cache_dir",
    "get_num_threads",
    # Takes *modules: a wrong one is tested in test_nn (test_constructor_errors).
    "Sequential",
}
# Arguments of table entries that take no row, and why.
NO_ROW = {
    # **config / **changes go to a function or dataclass that has its own entry.
    ("create_model", "config"),
    ("resume_config", "changes"),
}


def _onnx_entries() -> dict[str, Entry]:
    from cnnumpy import onnx

    return {
        "export": Entry(
            onnx.export,
            lambda tmp: {
                "model": _model(),
                "path": tmp / "m.onnx",
                "input_shape": (1, 28, 28),
            },
            {
                "model": (Bad("lenet5", "'lenet5'"), NO_VALUE),
                "path": (3, PATH_VALUE),
                "input_shape": (
                    Bad("1x28x28", "'1x28x28'"),
                    Bad((1, 0, 28), "0", "input_shape[1]"),
                ),
                "opset": ("18", 12),
            },
        ),
        "load": Entry(
            onnx.load, lambda tmp: {"path": tmp / "m.onnx"}, {"path": (3, PATH_VALUE)}
        ),
        "load_trained": Entry(
            onnx.load_trained,
            lambda tmp: {"path": tmp / "m.onnx"},
            {"path": (None, PATH_VALUE)},
        ),
    }


def _entries() -> dict[str, Entry]:
    entries = dict(ENTRIES)
    try:
        entries.update(_plot_entries())
    except ImportError:  # matplotlib is the ``plot`` extra
        pass
    try:
        entries.update(_onnx_entries())
    except ImportError:  # onnx is the ``onnx`` extra
        pass
    return entries


def _cases() -> list[Any]:
    cases = []
    for key, entry in _entries().items():
        for arg, (bad_type, bad_value) in entry.bad.items():
            for error, bad in ((TypeError, bad_type), (ValueError, bad_value)):
                if bad is not NO_VALUE:
                    kind = error.__name__
                    cases.append(
                        pytest.param(
                            key, arg, error, _bad(bad), id=f"{key}-{arg}-{kind}"
                        )
                    )
    return cases


@pytest.mark.parametrize(("key", "arg", "error", "bad"), _cases())
def test_bad_argument_raises_naming_it(tmp_path, key, arg, error, bad):
    entry = _entries()[key]
    kwargs = entry.valid(tmp_path) | {arg: bad.value}
    got = repr(bad.value) if bad.got is None else bad.got
    name = arg if bad.name is None else bad.name
    pattern = "(?s)`" + re.escape(name) + "`.*" + re.escape(got)
    with pytest.raises(error, match=pattern) as info:
        entry.func(**kwargs)
    assert type(info.value) is error or error is ValueError  # CheckpointError ...
    assert list(tmp_path.iterdir()) == [], "a refused call must write nothing"


def _public_callables() -> dict[str, Callable[..., Any]]:
    from cnnumpy.training import plots

    found = {}
    public = [nn, optim, data, transforms, models, training, plots, look, cnnumpy]
    try:
        from cnnumpy import onnx

        public.append(onnx)
    except ImportError:  # onnx is the ``onnx`` extra
        pass
    for module in public:
        for name in module.__all__:
            obj = getattr(module, name)
            if callable(obj) and not inspect.ismodule(obj):
                found[name] = obj
    return found


def test_every_public_callable_has_an_entry():
    pytest.importorskip("matplotlib")
    covered = {e.func.__name__ for e in _entries().values()}
    missing = sorted(set(_public_callables()) - covered - NOT_IN_TABLE)
    assert not missing, f"public callables with no entry in ENTRIES: {missing}"


@pytest.mark.parametrize("key", list(ENTRIES))
def test_every_argument_has_a_row(key):
    entry = ENTRIES[key]
    if key == "Conv2d groups":
        return  # a second entry for Conv2d, with the arguments of the first
    skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    params = inspect.signature(entry.func).parameters.values()
    args = {p.name for p in params if p.kind not in skip}
    args |= {p.name for p in params if p.kind in skip and (key, p.name) not in NO_ROW}
    assert set(entry.bad) == args, f"{key}: rows {sorted(entry.bad)} for {sorted(args)}"


def test_every_plot_and_onnx_argument_has_a_row():
    pytest.importorskip("matplotlib")
    pytest.importorskip("onnx")
    for key, entry in (_plot_entries() | _onnx_entries()).items():
        args = set(inspect.signature(entry.func).parameters)
        assert set(entry.bad) == args, key


@pytest.mark.parametrize("bad", [True, 1.0, np.float64(1), (1, True), (1.0, 1)])
def test_remembered_geometry_still_refuses_look_alike_arguments(bad):
    """A geometry is remembered by its arguments and their types: after a call
    with stride 1, True and 1.0 (equal to 1) still reach the checks."""
    from cnnumpy import functional as F

    x = np.zeros((1, 1, 5, 5))
    w = np.zeros((1, 1, 3, 3))
    for _ in range(2):  # the second call is answered from memory
        assert F.conv2d(x, w, stride=1).shape == (1, 1, 3, 3)
        assert F.conv2d(x, w, stride=(1, 1)).shape == (1, 1, 3, 3)
        with pytest.raises(TypeError, match="`stride`"):
            F.conv2d(x, w, stride=bad)


def test_remembered_geometry_equals_the_worked_out_one():
    from cnnumpy.functional import geometry

    cases = [
        ((28, 28), (5, 5), 1, 2, 1),
        ((7, 9), 3, (2, 1), 1, (1, 2)),
        ((8, 8), (2, 2), 1, "same", 1),
        ((6, 6), 3, 1, "valid", 2),
    ]
    for args in cases:
        first = geometry.window_geometry(*args)
        assert geometry.window_geometry(*args) is first  # remembered
        assert first == geometry._window_geometry(*args, "kernel_size")
    assert geometry._memo_key([1, 2]) is None  # a list cannot be a key
    assert geometry._memo_key(((1, 2), 3)) is None  # nor a tuple of tuples
