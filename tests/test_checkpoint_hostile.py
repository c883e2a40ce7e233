"""Hostile checkpoints: sizes checked before reading, one schema for the JSON."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cnnumpy import models, optim
from cnnumpy.training import (
    CheckpointError,
    FitState,
    load_checkpoint,
    load_trained,
    save_checkpoint,
)
from cnnumpy.training import checkpoint as ckpt
from cnnumpy.training.config import TrainConfig
from cnnumpy.training.trained import training_checkpoint


def checkpoint_tree(num_classes: int = 10, dtype: str = "float32") -> dict:
    """The tree `cnnumpy train` writes, for a fresh LeNet-5 (no training)."""
    model = models.lenet5(num_classes, rng=np.random.default_rng(0), dtype=dtype)
    optimizer = optim.Adam(model.parameters(), lr=0.001)
    x = np.zeros((2, 1, 28, 28), dtype)
    model.backward(np.ones_like(model(x)))
    optimizer.step()  # an optimizer state with arrays and a step count
    return training_checkpoint(
        config=TrainConfig(dtype=dtype).saved(),
        model=model,
        model_info={
            "name": "lenet5",
            "config": {"num_classes": num_classes, "in_channels": 1, "input_size": 28},
            "dtype": dtype,
        },
        data_info={
            "dataset": "mnist-sample",
            "class_names": [str(i) for i in range(num_classes)],
            "input_shape": [1, 28, 28],
            "normalization": {"mean": 0.13, "std": 0.3},
        },
        optimizer=optimizer,
        optimizer_name="adam",
        state=FitState(),
    )


@pytest.fixture
def good(tmp_path) -> Path:
    return save_checkpoint(tmp_path / "good.npz", checkpoint_tree())


def rewrite(path: Path, change) -> Path:
    """Rewrite the archive at ``path``: ``change(members)`` edits name -> bytes."""
    with zipfile.ZipFile(path) as z:
        members = {name: z.read(name) for name in z.namelist()}
    change(members)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    path.write_bytes(buffer.getvalue())
    return path


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def set_meta(path: Path, edit, extra: str = "") -> Path:
    """Edit the JSON of ``path`` (``extra`` is appended as raw JSON text)."""

    def change(members):
        meta = json.loads(np.load(io.BytesIO(members["__meta__.npy"])).tobytes())
        edit(meta)
        text = json.dumps(meta)
        if extra:
            text = text[:-1] + ', "extra": ' + extra + "}"
        members["__meta__.npy"] = npy(np.frombuffer(text.encode(), np.uint8))

    return rewrite(path, change)


def test_good_checkpoint_round_trips(good):
    trained = load_trained(good)
    assert trained.class_names == tuple("0123456789")
    assert "optimizer" not in trained.checkpoint  # not read to predict
    assert "optimizer" in load_checkpoint(good)


def test_a_plain_npy_is_named_as_such(tmp_path):
    path = tmp_path / "weights.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(CheckpointError, match=r"single \.npy array, not a checkpoint"):
        load_checkpoint(path)


def test_member_declaring_a_huge_shape_is_refused_before_reading(good):
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }"
    header = header.ljust(117) + "\n"
    fake = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()

    def change(members):
        members["model/state/fc3.bias.npy"] = fake + bytes(80)

    rewrite(good, change)
    with pytest.raises(CheckpointError, match=r"fc3\.bias.*more than the"):
        load_checkpoint(good)


def test_member_whose_header_disagrees_with_its_size_is_refused(good):
    def change(members):
        data = members["model/state/fc3.bias.npy"]
        members["model/state/fc3.bias.npy"] = data[:-8]

    rewrite(good, change)
    with pytest.raises(CheckpointError, match=r"fc3\.bias.*declares shape \(10,\)"):
        load_checkpoint(good)


def test_zip_directory_declaring_a_huge_member_is_refused(good, monkeypatch):
    monkeypatch.setattr(ckpt, "MAX_MEMBER_BYTES", 100)
    with pytest.raises(CheckpointError, match=r"declares .*more than the 100"):
        load_checkpoint(good)


def test_arrays_over_the_limit_all_together_are_refused(good, monkeypatch):
    # Deflated, the file is smaller than its arrays: each member and the file
    # pass their limits, the arrays together do not.
    with zipfile.ZipFile(good) as z:
        members = {name: z.read(name) for name in z.namelist()}
    with zipfile.ZipFile(good, "w", zipfile.ZIP_DEFLATED) as z:
        for name, value in members.items():
            z.writestr(name, value)
    arrays = sum(len(v) for k, v in members.items() if k != "__meta__.npy")
    size = good.stat().st_size
    assert size < arrays
    monkeypatch.setattr(ckpt, "MAX_FILE_BYTES", size)
    with pytest.raises(CheckpointError, match=r"arrays declare [\d,]+ bytes in all"):
        load_checkpoint(good)
    monkeypatch.setattr(ckpt, "MAX_FILE_BYTES", arrays + 1000)
    assert load_checkpoint(good)["model"]["name"] == "lenet5"


def test_metadata_over_its_limit_is_refused(good, monkeypatch):
    monkeypatch.setattr(ckpt, "MAX_META_BYTES", 100)
    with pytest.raises(CheckpointError, match=r"__meta__.*more than the 100"):
        load_checkpoint(good)


@pytest.mark.parametrize("depth", [100, 100_000])
def test_deeply_nested_metadata_is_a_checkpoint_error(good, depth):
    set_meta(good, lambda meta: None, extra="[" * depth + "]" * depth)
    with pytest.raises(CheckpointError, match="nested too deeply"):
        load_checkpoint(good)


def test_unreferenced_members_are_not_read(good):
    def change(members):
        members["junk.npy"] = b"\x93NUMPY garbage that is never parsed"

    rewrite(good, change)
    assert load_checkpoint(good)["model"]["name"] == "lenet5"


def test_corrupt_optimizer_arrays_do_not_stop_predictions(good):
    def change(members):
        members["optimizer/state/state/0/exp_avg.npy"] = b"broken"

    rewrite(good, change)
    with pytest.raises(CheckpointError):
        load_checkpoint(good)
    assert load_trained(good).model is not None


def test_duplicate_and_non_npy_members_are_refused(good):
    rewrite(good, lambda members: members.update({"readme.txt": b"hi"}))
    with pytest.raises(CheckpointError, match=r"'readme\.txt' is not a \.npy array"):
        load_checkpoint(good)


# ---------------------------------------------------------------- the schema


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda m: m["data"].update(class_names=["a", "b"]),
            "2 class names for a model of 10 outputs",
        ),
        (
            lambda m: m["model"]["config"].update(num_classes=10**9),
            r"'model/config/num_classes' must be an int in \[1, 65536\]",
        ),
        (
            lambda m: m["model"]["config"].update(num_classes=20),
            r"'model/state/fc3.weight' must be an array of shape \(20, 84\)",
        ),
        (
            lambda m: m["model"]["config"].update(input_size=1000),
            r"'model/state/fc1.weight' must be an array of shape \(120, 984064\)",
        ),
        (lambda m: m["model"].update(dtype="float16"), "'model/dtype' must be one of"),
        (lambda m: m["model"].update(name="vgg"), "'model/name' must be one of"),
        (
            lambda m: m["data"].update(input_shape=[3, 28, 28]),
            r"input shape \[3, 28, 28\] differs from the model's config",
        ),
        (
            lambda m: m["data"]["normalization"].update(std=0),
            "'data/normalization/std' must be > 0",
        ),
        (
            lambda m: m["data"]["normalization"].update(mean=float("nan")),
            "'data/normalization/mean' must be a finite number",
        ),
        (
            lambda m: m["data"]["normalization"].update(mean=[0.1, 0.2, 0.3]),
            r"'data/normalization/mean' must be a number or a list of 1 \(one per",
        ),
        (
            lambda m: m["data"]["normalization"].update(std=[0.0]),
            "'data/normalization/std/0' must be > 0",
        ),
        (
            lambda m: m["data"]["normalization"].update(mean=["0.1"]),
            "'data/normalization/mean/0' must be a finite number",
        ),
        (lambda m: m["data"].update(class_names="0123"), "'data/class_names'"),
        (lambda m: m.pop("data"), "lacks the entry 'data'"),
    ],
)
def test_schema_violations_are_named(good, edit, message):
    set_meta(good, edit)
    with pytest.raises(CheckpointError, match=message):
        load_trained(good)


def test_normalization_is_a_number_or_one_per_channel(good):
    scalar = load_trained(good)  # the form of grey runs, and of older checkpoints
    assert (scalar.mean, scalar.std) == (0.13, 0.3) and type(scalar.std) is float
    set_meta(good, lambda m: m["data"]["normalization"].update(mean=[0.13], std=[0.3]))
    listed = load_trained(good)
    assert (listed.mean, listed.std) == ((0.13,), (0.3,))
    images = (np.arange(2 * 28 * 28) % 256).astype(np.uint8).reshape(2, 1, 28, 28)
    np.testing.assert_array_equal(
        listed.predict_proba(images), scalar.predict_proba(images)
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda m: m["optimizer"]["state"]["state"]["0"].update(step=-1),
            "step' must be a finite number >= 0",
        ),
        (
            lambda m: m["optimizer"]["state"]["state"]["0"].update(step=1.5),
            "step' must be a whole number >= 0",
        ),
        (lambda m: m["progress"].update(epoch=-2), "'progress/epoch' must be an int"),
        (
            lambda m: m["progress"].update(epoch=3),
            "'progress/history' must be a list of 3 epochs",
        ),
        (
            lambda m: m["rng"].update(drop={"state": {}}),
            "'rng/drop' must be a generator state",
        ),
    ],
)
def test_schema_of_a_resumed_run(good, edit, message):
    from cnnumpy.training.config import resume_config

    set_meta(good, edit)
    with pytest.raises(CheckpointError, match=message):
        resume_config(good)


def test_restoring_a_generator_state_of_the_wrong_layout_is_refused():
    from cnnumpy import nn
    from cnnumpy.training.trained import restore_rngs

    model = nn.Sequential(nn.Dropout(0.5, rng=np.random.default_rng(0)))
    state = model[0].rng.bit_generator.state
    restore_rngs(model, {"0": state})
    bad = {**state, "state": {"state": 1}}
    with pytest.raises(ValueError, match="does not have the layout of a PCG64 state"):
        restore_rngs(model, {"0": bad})


def test_non_finite_weights_are_refused(tmp_path):
    tree = checkpoint_tree()
    tree["model"]["state"]["fc2.bias"][3] = np.nan
    path = save_checkpoint(tmp_path / "nan.npz", tree)
    with pytest.raises(CheckpointError, match=r"'fc2\.bias' holds NaN or infinite"):
        load_trained(path)


def test_integer_weights_are_refused(tmp_path):
    tree = checkpoint_tree()
    tree["model"]["state"]["fc2.bias"] = np.zeros(84, np.int32)
    path = save_checkpoint(tmp_path / "int.npz", tree)
    with pytest.raises(CheckpointError, match=r"fc2\.bias' must be an array of floats"):
        load_trained(path)


def test_weights_of_another_dtype_kind_are_refused(tmp_path):
    tree = checkpoint_tree()
    tree["model"]["state"]["fc2.bias"] = np.zeros(84, np.complex64)
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / "c.npz", tree)


@pytest.mark.parametrize("name", sorted(models.MODELS))
@pytest.mark.parametrize("config", [(10, 1, 28), (3, 3, 32), (47, 2, 12)])
def test_computed_shapes_are_those_of_the_built_model(name, config):
    from cnnumpy.models.registry import SHAPES

    num_classes, in_channels, input_size = config
    model = models.create_model(
        name, num_classes=num_classes, in_channels=in_channels, input_size=input_size
    )
    built = {k: v.shape for k, v in model.state_dict().items()}
    assert built == SHAPES[name](num_classes, in_channels, input_size)


def test_create_model_refuses_a_huge_model_before_allocating():
    with pytest.raises(ValueError, match=r"would have [\d,]+ parameters, more than"):
        models.create_model("lenet5", input_size=100_000)
