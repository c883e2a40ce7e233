"""Checkpoints: round trips, atomic writes, and refusal of unsafe or broken files."""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import numpy as np
import pytest

from cnnumpy.training import CheckpointError, load_checkpoint, save_checkpoint
from cnnumpy.training import checkpoint as ckpt


def tree() -> dict:
    rng = np.random.default_rng(5)
    return {
        "model": {"state": {"conv1.weight": rng.standard_normal((6, 1, 5, 5))}},
        "optimizer": {
            "state": {0: {"step": 3.0, "exp_avg": np.arange(4, dtype=np.float32)}},
            "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0]}],
        },
        "counts": np.array([1, 2, 3], dtype=np.int64),
        "flags": [True, False, None],
        "rng": rng.bit_generator.state,  # 128-bit integers
        "nan": float("nan"),
        "name": "lenet5",
    }


def test_round_trip_keeps_values_dtypes_and_structure(tmp_path):
    saved = tree()
    loaded = load_checkpoint(save_checkpoint(tmp_path / "c.npz", saved))
    assert loaded["format"] == ckpt.FORMAT and loaded["version"] == ckpt.VERSION
    w = loaded["model"]["state"]["conv1.weight"]
    np.testing.assert_array_equal(w, saved["model"]["state"]["conv1.weight"])
    assert w.dtype == np.float64
    exp_avg = loaded["optimizer"]["state"]["0"]["exp_avg"]
    assert exp_avg.dtype == np.float32
    assert loaded["optimizer"]["param_groups"][0]["betas"] == [0.9, 0.999]
    assert loaded["counts"].dtype == np.int64
    assert loaded["flags"] == [True, False, None]
    assert loaded["rng"] == saved["rng"]
    assert np.isnan(loaded["nan"])
    assert loaded["name"] == "lenet5"


def test_restored_generator_continues_the_same_stream(tmp_path):
    rng = np.random.default_rng(11)
    rng.random(7)
    save_checkpoint(tmp_path / "c.npz", {"rng": rng.bit_generator.state})
    expected = rng.random(5)
    other = np.random.default_rng()
    other.bit_generator.state = load_checkpoint(tmp_path / "c.npz")["rng"]
    np.testing.assert_array_equal(other.random(5), expected)


def test_file_holds_no_pickle_and_is_a_plain_npz(tmp_path):
    path = save_checkpoint(tmp_path / "c.npz", tree())
    with np.load(path, allow_pickle=False) as archive:
        assert "__meta__" in archive.files
        assert all(archive[name].dtype != object for name in archive.files)


@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_old_checkpoint_and_no_temporary(
    tmp_path, monkeypatch, failure
):
    path = save_checkpoint(tmp_path / "c.npz", {"epoch": 1})
    before = path.read_bytes()

    def fail(fd):
        raise failure

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(type(failure)):
        save_checkpoint(path, {"epoch": 2})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz"]


def test_pickled_npz_member_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, __meta__=np.array([{"format": ckpt.FORMAT}], dtype=object))
    with pytest.raises(CheckpointError, match=r"evil\.npz.*cannot be read safely"):
        load_checkpoint(path)


def test_plain_pickle_file_is_refused(tmp_path):
    path = tmp_path / "weights.npz"
    path.write_bytes(pickle.dumps({"w": np.zeros(3)}))
    with pytest.raises(CheckpointError, match=r"weights\.npz"):
        load_checkpoint(path)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.95])
def test_truncated_checkpoint_is_refused(tmp_path, keep):
    path = save_checkpoint(tmp_path / "c.npz", tree())
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match=r"c\.npz.*not a complete \.npz"):
        load_checkpoint(path)


def write_npz(path, **arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


def meta(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8)


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"w": np.zeros(3)}, "no '__meta__' entry"),
        ({"__meta__": meta("{not json")}, "malformed metadata"),
        ({"__meta__": meta('{"format": "other"}')}, "is not a 'cnnumpy-checkpoint'"),
        (
            {"__meta__": meta('{"format": "cnnumpy-checkpoint", "version": 99}')},
            "version 99",
        ),
        (
            {
                "__meta__": meta(
                    '{"format": "cnnumpy-checkpoint", "version": 1, '
                    '"w": {"__array__": "missing"}}'
                )
            },
            "missing array 'missing'",
        ),
    ],
)
def test_malformed_checkpoints_are_refused(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    write_npz(path, **arrays)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)


def test_text_file_is_refused(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("hello")
    with pytest.raises(CheckpointError, match=r"notes\.npz"):
        load_checkpoint(path)


def test_zip_without_npy_members_is_refused(tmp_path):
    path = tmp_path / "z.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("__meta__.npy", b"not an npy file")
    with pytest.raises(CheckpointError, match=r"z\.npz"):
        load_checkpoint(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "none.npz")
    with pytest.raises(FileNotFoundError, match=r"folder .* does not exist"):
        save_checkpoint(tmp_path / "no" / "c.npz", {})


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"f": object()}, "got object at 'f'"),
        ({"a": {"b": np.array(["x"])}}, "'a/b' must be numeric"),
        ({(1, 2): 3}, "keys must be str or int"),
    ],
)
def test_values_that_would_need_pickle_are_rejected(tmp_path, bad, match):
    with pytest.raises(TypeError, match=match):
        save_checkpoint(tmp_path / "c.npz", bad)
    assert not list(tmp_path.iterdir())


def test_tree_must_be_a_dict(tmp_path):
    with pytest.raises(TypeError, match="`tree` must be a dict, got list"):
        save_checkpoint(tmp_path / "c.npz", [1, 2])
