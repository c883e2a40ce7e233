"""`cnnumpy.distributed.local`: ranks on this machine without MPI (``--processes``)."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import local_ranks
from cnnumpy.distributed import Communicator, local
from cnnumpy.training import load_checkpoint
from conftest import write_mnist_dir

LIMIT = 120  # seconds for a run before the test calls it hung


def run(n: int, fn, slot: int = local.SLOT) -> int:
    """``fn(comm)`` on n ranks (this process is rank 0); the run's status."""
    comm = local.start(n, fn, slot=slot)
    status = 1
    try:
        status = fn(comm)
    finally:
        status = local.finish(comm, status)
    return status


@pytest.mark.parametrize("n", [2, 3])
def test_every_collective_across_ranks_in_chunks(n, tmp_path):
    out = tmp_path / "out.npz"
    # A slot of 256 bytes: every array goes through in several chunks.
    assert run(n, functools.partial(local_ranks.exchange, out=str(out)), slot=256) == 0
    got = np.load(out)
    for dtype in ("float64", "float32", "int32"):
        each = [(np.arange(1001) * (r + 1) + r).astype(dtype) for r in range(n)]
        np.testing.assert_array_equal(got[f"{dtype}/sum"], np.sum(each, axis=0))
        np.testing.assert_array_equal(got[f"{dtype}/max"], np.max(each, axis=0))
        np.testing.assert_array_equal(got[f"{dtype}/min"], np.min(each, axis=0))
    assert got["same_bits"]  # every rank holds the same sum, bit for bit
    assert str(got["text"]) == "from rank 0"
    np.testing.assert_array_equal(got["rows"], np.repeat(np.arange(11)[:, None], 3, 1))
    assert got["any"].tolist() == [True, False]
    assert got["same"].tolist() == [True, False]


@pytest.mark.parametrize("how", ["raise", "exit", "kill"])
def test_a_rank_that_ends_early_ends_the_others(how):
    """Raised, a non-zero status, or killed: rank 0, waiting, does not hang."""
    start = time.monotonic()
    if how == "kill":
        with pytest.raises(local.RankLost, match=r"rank 1 of 2 ended"):
            run(2, functools.partial(local_ranks.fail_on_last, how=how))
    else:
        with pytest.raises(SystemExit) as stop:
            run(2, functools.partial(local_ranks.fail_on_last, how=how))
        assert stop.value.code == (3 if how == "exit" else 1)
    assert time.monotonic() - start < 30


def test_a_failing_rank_0_ends_the_waiting_ranks():
    comm = local.start(3, local_ranks.wait_for_root)
    peers = list(comm._group._peers)
    assert local.finish(comm, 2) == 2  # rank 0 failed: the others end too
    assert all(not p.is_alive() for p in peers)


def test_start_and_finish_check_their_arguments():
    with pytest.raises(ValueError, match="`n` must be >= 1, got 0"):
        local.start(0, local_ranks.wait_for_root)
    with pytest.raises(TypeError, match="`n`"):
        local.start("2", local_ranks.wait_for_root)
    with pytest.raises(TypeError, match="`fn`"):
        local.start(2, "not callable")
    with pytest.raises(TypeError, match="`quiet_others`"):
        local.start(2, local_ranks.wait_for_root, quiet_others=1)
    with pytest.raises(ValueError, match="`slot` must be >= 8, got 4"):
        local.start(2, local_ranks.wait_for_root, slot=4)
    with pytest.raises(TypeError, match="`comm` must be the Communicator"):
        local.finish(Communicator(), 0)
    comm = local.start(2, local_ranks.wait_for_root)
    with pytest.raises(ValueError, match="`code` must be <= 255, got 256"):
        local.finish(comm, 256)
    comm.barrier()  # what rank 1 waits for
    assert local.finish(comm, 0) == 0
    with pytest.raises(TypeError, match="`comm` must be the Communicator"):
        local.finish(comm, 0)  # finished already


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_mnist_dir(tmp_path_factory.mktemp("local-data"), 150, 60)


def _train(data_dir: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "cnnumpy.cli", "train", "--data", str(data_dir),
               "--epochs", "2", "--batch-size", "20", "--dtype", "float64",
               "--no-plots", "--out", str(out), *extra]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=LIMIT)


def test_processes_train_what_one_process_trains(data_dir, tmp_path):
    one = _train(data_dir, tmp_path / "one")
    two = _train(data_dir, tmp_path / "two", "--processes", "2")
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("Test accuracy") == 1  # rank 0 alone prints
    assert "leaked" not in two.stderr and "rank" not in two.stderr
    got = load_checkpoint(tmp_path / "two" / "last.npz")["model"]["state"]
    want = load_checkpoint(tmp_path / "one" / "last.npz")["model"]["state"]
    for key, value in want.items():
        assert np.max(np.abs(got[key] - value)) <= 1e-10 * np.max(np.abs(value)), key
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    expected = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert metrics["confusion_matrix"] == expected["confusion_matrix"]


def test_processes_flag_is_checked(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "cnnumpy.cli", "train", "--processes", "0"],
        capture_output=True, text=True, timeout=LIMIT,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--processes" in done.stderr and "got '0'" in done.stderr


def test_an_error_on_the_ranks_is_shown_once_and_ends_them_all(tmp_path):
    """Rank 0 fails first (it loads the data first) and ends the waiting rank."""
    (tmp_path / "empty").mkdir()
    start = time.monotonic()
    done = _train(tmp_path / "empty", tmp_path / "run", "--processes", "2")
    assert done.returncode == 2 and time.monotonic() - start < 60
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("cnnumpy: error")]
    assert len(errors) == 1 and "(rank" not in errors[0], done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("target", ["rank 0", "every rank"])
def test_ctrl_c_stops_the_ranks_saves_once_and_resumes(data_dir, tmp_path, target):
    """SIGINT to rank 0 alone (kill) or to the process group (a terminal's Ctrl-C)."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "cnnumpy.cli", "train", "--data", str(data_dir),
               "--epochs", "500", "--batch-size", "20", "--dtype", "float64",
               "--no-plots", "--out", str(out), "--processes", "2"]  # fmt: skip
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + LIMIT
    while not (out / "last.npz").exists():  # epoch 1 done: handlers installed
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.05)
    if target == "rank 0":
        os.kill(proc.pid, signal.SIGINT)
    else:
        os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=LIMIT)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stdout.count("Continue with: cnnumpy train --processes 2 --resume") == 1
    done = load_checkpoint(out / "last.npz")["progress"]["epoch"]
    assert 1 <= done < 500
    resumed = subprocess.run(
        [sys.executable, "-m", "cnnumpy.cli", "train", "--resume", str(out / "last.npz"),
         "--epochs", str(done + 1), "--processes", "2"],
        capture_output=True, text=True, timeout=LIMIT,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "metrics.json").read_text())["epochs"] == done + 1
