"""Runs under faults: one run per folder, no temporaries left, divergence stops."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnumpy import data
from cnnumpy.training import (
    Callback,
    DivergenceError,
    RunLockedError,
    TrainConfig,
    load_checkpoint,
    train_run,
)
from cnnumpy.training.artifacts import write_metrics
from cnnumpy.training.callbacks import FitState
from cnnumpy.training.lock import LOCK_NAME, remove_stale_temporaries, run_lock


def config(data_dir: Path, out: Path, **changes) -> TrainConfig:
    settings = dict(
        data_dir=str(data_dir), out=str(out), epochs=2, batch_size=50, plots=False
    )
    return TrainConfig(**{**settings, **changes})


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def cnnumpy_popen(args, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cnnumpy", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={**os.environ, "XDG_CACHE_HOME": str(cwd / "cache")},
    )


# ------------------------------------------------------------ one run per folder


def test_two_runs_started_together_in_one_folder(tiny_mnist_dir, tmp_path):
    args = ["train", "--data", tiny_mnist_dir, "--epochs", "2", "--batch-size", "20"]
    args += ["--out", tmp_path / "run", "--no-plots", "--quiet"]
    procs = [cnnumpy_popen(args, tmp_path) for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(rc for rc, _, _ in results)
    assert codes == [0, 2], results
    _, _, stderr = next(r for r in results if r[0] == 2)
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "is in use by process" in lines[0] or "already holds a run" in lines[0]
    assert not (tmp_path / "run" / LOCK_NAME).exists()
    json.loads((tmp_path / "run" / "metrics.json").read_text())


def test_a_held_folder_is_refused_naming_the_holder(tiny_mnist_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from cnnumpy.training.lock import run_lock\n"
            f"with run_lock(Path({str(out)!r})):\n"
            "    print('held', flush=True)\n"
            "    sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(RunLockedError) as info:
            train_run(config(tiny_mnist_dir, out))
        message = str(info.value)
        assert f"process {holder.pid} on host {socket.gethostname()}" in message
        args = ["train", "--data", tiny_mnist_dir, "--out", out, "--quiet"]
        cli = cnnumpy_popen(args, tmp_path)
        _, stderr = cli.communicate(timeout=300)
        assert cli.returncode == 2
        assert stderr.splitlines() == [f"cnnumpy: error: {message}"]
    finally:
        holder.communicate("")
    assert holder.returncode == 0
    assert list(out.iterdir()) == []  # released by the holder, nothing written


def test_a_stale_lock_and_temporaries_of_dead_processes_are_cleaned(
    tiny_mnist_dir, tmp_path
):
    out = tmp_path / "run"
    out.mkdir()
    pid = dead_pid()
    (out / LOCK_NAME).write_text(f"{pid} {socket.gethostname()}\n")
    stale = [
        out / f".last.npz.{pid}.tmp",
        out / f".t10k.gz.{pid}.0123abcd.part",
        out / f".history.{pid}.89abcdef.tmp.png",
    ]
    live = out / f".other.npz.{os.getpid()}.tmp"
    for path in [*stale, live]:
        path.write_bytes(b"left behind")
    result = train_run(config(tiny_mnist_dir, out))
    assert result.state.epoch == 2
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [live.name, "best.npz", "history.csv", "last.npz", "metrics.json"]
    )


def test_a_lock_of_another_host_is_never_stale(tmp_path):
    (tmp_path / LOCK_NAME).write_text(f"{dead_pid()} some-other-host\n")
    with pytest.raises(RunLockedError, match="on host some-other-host"):
        with run_lock(tmp_path):
            pass


def test_the_lock_is_released_on_errors(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with run_lock(tmp_path):
            assert (tmp_path / LOCK_NAME).read_text().split()[0] == str(os.getpid())
            1 / 0
    assert not (tmp_path / LOCK_NAME).exists()


def test_remove_stale_temporaries_keeps_other_files(tmp_path):
    keep = ["last.npz", ".hidden", f".x.{os.getpid()}.tmp", ".lock"]
    for name in [*keep, f".x.{dead_pid()}.tmp"]:
        (tmp_path / name).write_text("x")
    remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


class _StopAt(Callback):
    def __init__(self, epoch: int, batch: int) -> None:
        self.at = (epoch, batch)

    def on_batch_end(self, state: FitState, logs) -> None:
        if (state.epoch, state.batch) == self.at:
            state.stop = state.interrupted = True


def test_a_stop_leaves_no_temporary_files_and_no_lock(tiny_mnist_dir, tmp_path):
    out = tmp_path / "run"
    result = train_run(config(tiny_mnist_dir, out), callbacks=[_StopAt(1, 2)])
    assert result.interrupted
    assert sorted(p.name for p in out.iterdir()) == ["best.npz", "last.npz"]


# ------------------------------------------------------------------- divergence


class _Poison(Callback):
    """Make a weight NaN after batch ``batch`` of epoch ``epoch`` (0-based)."""

    def __init__(self, model_params, epoch: int, batch: int) -> None:
        self.params, self.at = model_params, (epoch, batch)

    def on_batch_end(self, state: FitState, logs) -> None:
        if (state.epoch, state.batch) == self.at:
            self.params()[0].data[0] = np.nan


def test_divergence_stops_the_run_and_keeps_the_last_finite_checkpoint(
    tiny_mnist_dir, tmp_path, monkeypatch
):
    from cnnumpy.training import run

    models = []
    original = run._new_training

    def remember(cfg, d):
        made = original(cfg, d)
        models.append(made.model)
        return made

    monkeypatch.setattr(run, "_new_training", remember)
    out = tmp_path / "run"
    poison = _Poison(lambda: list(models[0].parameters()), epoch=1, batch=8)
    with pytest.raises(DivergenceError) as info:
        train_run(config(tiny_mnist_dir, out, epochs=3), callbacks=[poison])
    message = str(info.value)
    assert "at epoch 2" in message and "lower the learning rate" in message
    assert isinstance(info.value, FloatingPointError)
    last = load_checkpoint(out / "last.npz")
    assert last["progress"]["epoch"] == 1
    assert all(np.isfinite(a).all() for a in last["model"]["state"].values())
    assert sorted(p.name for p in out.iterdir()) == ["best.npz", "last.npz"]


def test_a_non_finite_validation_loss_stops_fit(rng):
    from cnnumpy import models, optim
    from cnnumpy.training import fit

    model = models.lenet5(rng=np.random.default_rng(0))
    images = rng.standard_normal((20, 1, 28, 28)).astype(np.float32)
    train = data.Dataset(images, np.arange(20) % 10, tuple("0123456789"), "toy")
    bad = images.copy()
    bad[3, 0, 5, 5] = np.nan
    val = data.Dataset(bad, np.arange(20) % 10, tuple("0123456789"), "toy")
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    with pytest.raises(DivergenceError, match=r"validation loss became nan at epoch 1"):
        fit(model, optimizer, train, epochs=1, batch_size=10, val=val)


def test_metrics_with_nan_are_refused_and_not_written(tmp_path):
    state = FitState()
    with pytest.raises(ValueError, match=r"metrics\.json would hold a NaN"):
        write_metrics(tmp_path, {"test_loss": float("nan")}, state)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_lock_of_an_exited_unreaped_process_is_stale(tmp_path):
    import time

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    time.sleep(1.0)  # exited, not yet waited for: a zombie that os.kill still finds
    try:
        (tmp_path / LOCK_NAME).write_text(f"{child.pid} {socket.gethostname()}\n")
        with run_lock(tmp_path):
            assert (tmp_path / LOCK_NAME).read_text().startswith(f"{os.getpid()} ")
    finally:
        child.wait()
