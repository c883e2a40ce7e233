"""Data parallelism: `cnnumpy.distributed` in one process, and real ranks.

The tests marked ``mpi`` start ``mpiexec -n 2`` and ``-n 3`` (the MPICH of the
``mpi`` extra, oversubscribing two cores), each with a time limit, so that a
hang fails the test instead of blocking the suite.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import mpi_ranks
from cnnumpy import distributed, models, nn, optim
from cnnumpy.distributed import Communicator, GradientAllreduce, split_batch
from cnnumpy.training import TrainConfig, evaluate, fit, load_checkpoint, train_run
from conftest import write_mnist_dir

MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or (
    shutil.which("mpiexec")
)
needs_mpi = pytest.mark.skipif(
    MPIEXEC is None, reason="no mpiexec: pip install 'cnnumpy[mpi]'"
)
LIMIT = 90  # seconds before a run counts as hung
SHM = Path("/dev/shm")


def _mapped() -> set[str]:
    """The files of /dev/shm that some process has mapped (Linux)."""
    found = set()
    for maps in Path("/proc").glob("[0-9]*/maps"):
        try:
            text = maps.read_text()
        except OSError:  # gone, or not ours to read
            continue
        found.update(re.findall(r"/dev/shm/(mpich_shm_\S+)", text))
    return found


@pytest.fixture(autouse=True, scope="module")
def _no_mpich_files_left():
    """Remove the shared-memory files MPICH leaves when a test aborts its ranks.

    ``MPI_Abort`` ends the ranks before MPICH removes its segments from
    /dev/shm (2 MB each). After this module's tests, the files they made
    that no live process has mapped are removed (the ranks of an aborted run
    may take a moment to end).
    """
    before = set(SHM.glob("mpich_shm_*")) if SHM.is_dir() else set()
    yield
    if not SHM.is_dir():
        return
    deadline = time.monotonic() + 5
    while left := set(SHM.glob("mpich_shm_*")) - before:
        in_use = _mapped()
        for path in left:
            if path.name not in in_use:
                path.unlink(missing_ok=True)
        if not in_use & {p.name for p in left} or time.monotonic() > deadline:
            return
        time.sleep(0.1)


# --- one process -------------------------------------------------------------------


def test_split_batch_cuts_near_equal_parts_larger_first():
    assert split_batch(100, 3) == [34, 33, 33]
    assert split_batch(2, 3) == [1, 1, 0]
    assert split_batch(0, 2) == [0, 0]
    for n in range(20):
        for parts in range(1, 6):
            sizes = split_batch(n, parts)
            assert sum(sizes) == n and max(sizes) - min(sizes) <= 1


def test_one_process_communicator_returns_its_inputs():
    comm = Communicator()
    assert (comm.rank, comm.size, comm.local_size, comm.is_root) == (0, 1, 1, True)
    assert comm.part(7) == slice(0, 7)
    a = np.arange(3.0)
    assert comm.allreduce(a) is a and a.tolist() == [0, 1, 2]
    assert comm.any(True, False) == (True, False)
    assert comm.same(1, 2)
    comm.barrier()
    assert comm.allgather_rows(a, 3) is a
    assert comm.broadcast_text("runs/x") == "runs/x"
    assert comm.default_threads() == len(os.sched_getaffinity(0))
    with pytest.raises(SystemExit) as stop:
        comm.abort(3)
    assert stop.value.code == 3
    assert distributed.world().size == 1  # no launcher here: no MPI at all


def test_launcher_environment_is_read_without_mpi():
    assert distributed.launched_by_mpi({"PMI_RANK": "0", "PMI_SIZE": "2"})
    assert distributed.launched_by_mpi({"OMPI_COMM_WORLD_SIZE": "4"})
    assert not distributed.launched_by_mpi({"HOME": "/root"})
    assert distributed.environment_rank({"PMIX_RANK": "5"}) == 5
    assert distributed.environment_rank({}) == 0


def test_gradient_allreduce_weights_gradients_and_counts_missing_ones_as_zero():
    layer = nn.Linear(3, 2, dtype=np.float64)
    layer.weight.grad = np.full((2, 3), 4.0)
    allreduce = GradientAllreduce(layer.parameters(), Communicator())
    assert allreduce.nbytes == 8 * (6 + 2)
    extras = allreduce(0.25, 1.5, 7)
    assert extras.tolist() == [1.5, 7.0]
    assert np.all(layer.weight.grad == 1.0) and np.all(layer.bias.grad == 0.0)
    assert allreduce(1.0).tolist() == []


def test_weights_checksum_sees_one_bit_and_the_order():
    a = models.create_model("lenet5", rng=np.random.default_rng(0))
    b = models.create_model("lenet5", rng=np.random.default_rng(0))
    params = list(a.parameters())
    assert distributed.weights_checksum(params) == distributed.weights_checksum(
        b.parameters()
    )
    distributed.check_weights_agree(params, Communicator())
    before = distributed.weights_checksum(params)
    b.fc3.bias.data[0] = np.nextafter(b.fc3.bias.data[0], np.float32(1))
    assert distributed.weights_checksum(b.parameters()) != before
    assert distributed.weights_checksum(params[::-1]) != before


def test_root_only():
    assert distributed.root_only(("bar",), Communicator()) == ["bar"]


def test_fit_and_evaluate_with_one_rank_are_fit_and_evaluate():
    runs = [mpi_ranks.train("float64", comm) for comm in (None, Communicator())]
    assert runs[0].keys() == runs[1].keys()
    for key, value in runs[0].items():
        np.testing.assert_array_equal(runs[1][key], value, err_msg=key)


BAD = [
    (lambda: split_batch(-1, 2), ValueError, r"`n` must be >= 0, got -1"),
    (lambda: split_batch(4.0, 2), TypeError, r"`n` must be an int"),
    (lambda: split_batch(4, 0), ValueError, r"`parts` must be >= 1"),
    (lambda: split_batch(4, True), TypeError, r"`parts` must be an int"),
    (lambda: Communicator("world"), TypeError, r"`mpi_comm` must be an mpi4py"),
    (lambda: Communicator().part(-2), ValueError, r"`n` must be >= 0"),
    (lambda: Communicator().allreduce([1.0]), TypeError, r"`array` must be a nump"),
    (
        lambda: Communicator().allreduce(np.zeros((2, 2)).T[0]),
        ValueError,
        r"`array` must be a C-contiguous",
    ),
    (lambda: Communicator().allreduce(np.zeros(2), "prod"), ValueError, r"`op`"),
    (lambda: Communicator().any(1), TypeError, r"`flags\[0\]` must be a bool"),
    (lambda: Communicator().allreduce(np.zeros(2), 1), TypeError, r"`op` must be"),
    (lambda: Communicator().same(True), TypeError, r"`values\[0\]` must be an int"),
    (lambda: Communicator().same(2**63), ValueError, r"`values\[0\]` must be <="),
    (lambda: Communicator().allgather_rows([1], 1), TypeError, r"`part` must be"),
    (
        lambda: Communicator().allgather_rows(np.zeros(2), 3),
        ValueError,
        r"`part` must hold this rank's 3 of 3 rows, got 2",
    ),
    (lambda: Communicator().broadcast_text(3), TypeError, r"`text` must be a str"),
    (lambda: Communicator().abort(256), ValueError, r"`code` must be <= 255"),
    (lambda: Communicator().abort(True), TypeError, r"`code` must be an int"),
    (lambda: GradientAllreduce([], Communicator()), ValueError, r"`params` must hold"),
    (lambda: GradientAllreduce([1.0], Communicator()), TypeError, r"nn.Parameter"),
    (
        lambda: GradientAllreduce(nn.Linear(1, 1).parameters(), "comm"),
        TypeError,
        r"`comm` must be a cnnumpy.distributed.Communicator",
    ),
    (
        lambda: GradientAllreduce(nn.Linear(1, 1).parameters(), Communicator())(-1),
        ValueError,
        r"`weight` must be >= 0",
    ),
    (
        lambda: GradientAllreduce(nn.Linear(1, 1).parameters(), Communicator())(True),
        TypeError,
        r"`weight` must be a real number",
    ),
    (
        lambda: GradientAllreduce(nn.Linear(1, 1).parameters(), Communicator())(1, "x"),
        TypeError,
        r"`extras\[0\]` must be a real number",
    ),
    (
        lambda: distributed.check_weights_agree(nn.Linear(1, 1).parameters(), None),
        TypeError,
        r"`comm` must be",
    ),
    (
        lambda: distributed.check_weights_agree(
            nn.Linear(1, 1).parameters(), Communicator(), 3
        ),
        TypeError,
        r"`when` must be a str",
    ),
    (lambda: distributed.weights_checksum([]), ValueError, r"`params` must hold"),
    (lambda: distributed.root_only([], 0), TypeError, r"`comm` must be"),
    (lambda: distributed.launched_by_mpi(3), TypeError, r"`environ` must be a map"),
    (
        lambda: distributed.environment_rank({"PMI_RANK": "x"}),
        ValueError,
        r"PMI_RANK must be an int, got 'x'",
    ),
    (
        lambda: distributed.environment_rank({"PMI_RANK": "-1"}),
        ValueError,
        r"`PMI_RANK` must be >= 0",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD)
def test_bad_arguments_raise_naming_them(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_fit_evaluate_and_train_run_check_comm():
    model = models.create_model("lenet5", rng=np.random.default_rng(0))
    train, _ = mpi_ranks.splits("float32")
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match=r"`comm` must be a cnnumpy\.distributed"):
        fit(model, opt, train, epochs=1, comm="world")
    with pytest.raises(TypeError, match=r"`comm` must be a cnnumpy\.distributed"):
        evaluate(model, train, comm=1)
    with pytest.raises(TypeError, match=r"`comm` must be a cnnumpy\.distributed"):
        train_run(TrainConfig(), comm=object())


def test_training_in_one_process_never_imports_mpi4py(tmp_path):
    (tmp_path / "data").mkdir()
    folder = write_mnist_dir(tmp_path / "data", 60, 20)
    code = (
        "import sys\nfrom cnnumpy.cli import main\n"
        f"code = main(['train', '--data', {str(folder)!r}, '--epochs', '1', "
        f"'--no-plots', '--quiet', '--out', {str(tmp_path / 'run')!r}])\n"
        "print(code, 'mpi4py' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=LIMIT
    )
    assert result.stdout.splitlines()[-1] == "0 False", result.stderr


def test_under_mpiexec_without_mpi4py_one_line_says_how_to_install(tmp_path):
    code = (
        "import sys\nsys.modules['mpi4py'] = None\nfrom cnnumpy.cli import main\n"
        "sys.exit(main(['train', '--epochs', '1']))"
    )
    env = {**os.environ, "PMI_RANK": "0", "PMI_SIZE": "2"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=LIMIT,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "cnnumpy: error: started by mpiexec, but mpi4py is not installed: "
        "pip install 'cnnumpy[mpi]'"
    ]
    rank1 = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**env, "PMI_RANK": "1"},
        cwd=tmp_path,
        timeout=LIMIT,
    )
    assert (rank1.returncode, rank1.stderr) == (2, "")  # said once, by rank 0


# --- real ranks --------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    """Processes started (transitively) by ``pid``, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _rank_pid(launcher: int, rank: int) -> int:
    for pid in _descendants(launcher):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"PMI_RANK={rank}".encode() in environ:
            return pid
    raise LookupError(f"no rank {rank} under process {launcher}")


def _kill_all(proc: subprocess.Popen) -> None:
    for pid in [*_descendants(proc.pid), proc.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "COLUMNS": "100"}


def _start(n_or_parts, args, tmp_path) -> subprocess.Popen:
    """``mpiexec -n N python args``, or MPMD parts ``[(n, args), ...]``."""
    parts = n_or_parts if isinstance(n_or_parts, list) else [(n_or_parts, args)]
    command = [MPIEXEC]
    for i, (n, part_args) in enumerate(parts):
        command += [":"] if i else []
        command += ["-n", str(n), sys.executable, *map(str, part_args)]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=_env(tmp_path),
    )


def _finish(proc: subprocess.Popen, limit: float = LIMIT) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        _kill_all(proc)
        proc.communicate()
        pytest.fail(f"hung: {proc.args}")
    return proc.returncode, out, err


def ranks(n_or_parts, args, tmp_path, limit: float = LIMIT) -> tuple[int, str, str]:
    return _finish(_start(n_or_parts, args, tmp_path), limit)


CLI = ["-m", "cnnumpy.cli", "train"]


@needs_mpi
@pytest.mark.parametrize("n", [2, 3])
def test_n_ranks_train_what_one_process_trains(n, tmp_path):
    """float64 to a relative 1e-10, float32 to 1e-4, evaluation counts exactly."""
    code, _, err = ranks(n, [Path(mpi_ranks.__file__), tmp_path], tmp_path)
    assert code == 0, err
    got = np.load(tmp_path / "ranks.npz")
    assert int(got["world_size"]) == n
    for dtype, rtol in (("float64", 1e-10), ("float32", 1e-4)):
        for key, want in mpi_ranks.train(dtype, None).items():
            if key.endswith(("confusion", "predictions")):
                np.testing.assert_array_equal(got[key], want, err_msg=key)
            else:
                worst = np.max(np.abs(got[key] - want)) / np.max(np.abs(want))
                assert worst <= rtol, (key, worst)
    # A weight one bit off on one rank stops every rank, saying why.
    assert got["ranks"][:, 3].tolist() == [1] * n
    assert f"the {n} ranks' weights differ in the test" in str(got["caught"])
    # Each rank's engine threads: its share of the cores.
    cpus = len(os.sched_getaffinity(0))
    assert got["ranks"][:, 1].tolist() == [max(1, cpus // n)] * n


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_mnist_dir(tmp_path_factory.mktemp("mpi-data"), 150, 60)


def _train_args(data_dir: Path, out: Path, epochs: int) -> list:
    return [*CLI, "--data", data_dir, "--epochs", epochs, "--batch-size", 20,
            "--dtype", "float64", "--no-plots", "--out", out]  # fmt: skip


@pytest.fixture(scope="module")
def one_process(data_dir, tmp_path_factory) -> Path:
    """Two epochs in one process: what every split of the work must give."""
    tmp = tmp_path_factory.mktemp("one")
    result = subprocess.run(
        [sys.executable, *map(str, _train_args(data_dir, tmp / "run", 2))],
        capture_output=True, text=True, cwd=tmp, env=_env(tmp), timeout=LIMIT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return tmp / "run"


def _assert_same_run(run: Path, reference: Path) -> None:
    got, want = (
        load_checkpoint(run / "last.npz"),
        load_checkpoint(reference / "last.npz"),
    )
    for key, value in want["model"]["state"].items():
        diff = np.max(np.abs(got["model"]["state"][key] - value))
        assert diff <= 1e-10 * np.max(np.abs(value)), key
    metrics = json.loads((run / "metrics.json").read_text())
    expected = json.loads((reference / "metrics.json").read_text())
    assert metrics["confusion_matrix"] == expected["confusion_matrix"]
    assert metrics["test_accuracy"] == expected["test_accuracy"]


@needs_mpi
def test_mpiexec_train_prints_once_and_rank_0_writes_the_run(
    data_dir, one_process, tmp_path
):
    code, out, err = ranks(2, _train_args(data_dir, tmp_path / "run", 2), tmp_path)
    assert code == 0, err
    assert out.count("Test accuracy") == 1 and out.count("epoch 2/2 - ") == 1
    assert "rank" not in err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    _assert_same_run(tmp_path / "run", one_process)


@needs_mpi
def test_ranks_augment_and_schedule_as_one_process_does(data_dir, tmp_path):
    recipe = ["--augment", "crop-flip", "--schedule", "onecycle", "--optimizer",
              "sgd", "--lr", "0.05", "--weight-decay", "1e-3"]  # fmt: skip
    single = [*_train_args(data_dir, tmp_path / "one", 2), *recipe]
    result = subprocess.run(
        [sys.executable, *map(str, single)],
        capture_output=True, text=True, cwd=tmp_path, env=_env(tmp_path),
        timeout=LIMIT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    both = [*_train_args(data_dir, tmp_path / "two", 2), *recipe]
    code, _, err = ranks(2, both, tmp_path)
    assert code == 0, err
    _assert_same_run(tmp_path / "two", tmp_path / "one")


@needs_mpi
def test_checkpoints_resume_on_other_numbers_of_ranks(data_dir, one_process, tmp_path):
    """2 ranks -> 3 ranks, 2 ranks -> 1 process, 1 process -> 2 ranks."""
    first = tmp_path / "two"
    code, _, err = ranks(2, _train_args(data_dir, first, 1), tmp_path)
    assert code == 0, err
    single = tmp_path / "single"
    subprocess.run(
        [sys.executable, *map(str, _train_args(data_dir, single, 1))],
        check=True, capture_output=True, cwd=tmp_path, env=_env(tmp_path),
        timeout=LIMIT,
    )  # fmt: skip
    for start, n, name in ((first, 3, "three"), (first, 1, "one"), (single, 2, "b")):
        shutil.copytree(start, tmp_path / name)
        args = [*CLI, "--resume", tmp_path / name / "last.npz", "--epochs", 2]
        if n == 1:
            result = subprocess.run(
                [sys.executable, *map(str, args)], capture_output=True, text=True,
                cwd=tmp_path, env=_env(tmp_path), timeout=LIMIT,
            )  # fmt: skip
            code, err = result.returncode, result.stderr
        else:
            code, _, err = ranks(n, args, tmp_path)
        assert code == 0, (name, err)
        _assert_same_run(tmp_path / name, one_process)
        assert (
            json.loads((tmp_path / name / "metrics.json").read_text())["world_size"]
            == n
        )


def _wait_for(path: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + LIMIT
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            _kill_all(proc)
            pytest.fail(f"{path} never came: {proc.communicate()}")
        time.sleep(0.05)


@needs_mpi
@pytest.mark.parametrize(
    ("where", "sig", "code"),
    [("mpiexec", signal.SIGINT, 130), ("rank 1", signal.SIGTERM, 143)],
)
def test_a_signal_stops_every_rank_after_one_batch_and_saves_once(
    data_dir, tmp_path, where, sig, code
):
    out = tmp_path / "run"
    args = _train_args(data_dir, out, 500)
    proc = _start(2, args, tmp_path)
    _wait_for(out / "last.npz", proc)  # epoch 1 done: handlers installed
    target = proc.pid if where == "mpiexec" else _rank_pid(proc.pid, 1)
    os.kill(target, sig)
    returncode, stdout, stderr = _finish(proc)
    assert returncode == code, stderr
    assert "Traceback" not in stderr
    assert stdout.count("Continue with: mpiexec -n 2 cnnumpy train --resume") == 1
    assert stderr.count("stopping after this batch") <= 1  # rank 0's word
    done = load_checkpoint(out / "last.npz")["progress"]["epoch"]
    assert 1 <= done < 500
    assert not (out / "metrics.json").exists()
    if where == "mpiexec":  # stopped inside an epoch, perhaps: go on with 3 ranks
        args = [*CLI, "--resume", out / "last.npz", "--epochs", done + 1]
        returncode, _, stderr = ranks(3, args, tmp_path)
        assert returncode == 0, stderr
        assert json.loads((out / "metrics.json").read_text())["epochs"] == done + 1


@needs_mpi
@pytest.mark.parametrize("fault", ["no folder", "empty folder", "other data"])
def test_a_rank_that_fails_ends_every_rank_and_says_so_once(data_dir, tmp_path, fault):
    """A bad data folder on one machine (simulated on rank 1)."""
    for name in ("empty", "other"):
        (tmp_path / name).mkdir()
    other = {
        "no folder": tmp_path / "missing",
        "empty folder": tmp_path / "empty",
        "other data": write_mnist_dir(tmp_path / "other", 100, 60),
    }[fault]
    args = _train_args(data_dir, tmp_path / "run", 500)
    bad = [other if a == data_dir else a for a in args]
    start = time.monotonic()
    code, out, err = ranks([(1, args), (1, bad)], None, tmp_path, limit=60)
    assert code != 0 and time.monotonic() - start < 30
    lines = [line for line in err.splitlines() if line.startswith("cnnumpy: error")]
    assert len(lines) == 1, err
    if fault == "other data":  # seen by every rank: rank 0 says it
        assert "must call fit alike" in lines[0] and "(rank" not in lines[0]
    else:
        assert lines[0].endswith("(rank 1)")


@needs_mpi
def test_a_bad_flag_is_reported_once(tmp_path):
    code, out, err = ranks(3, [*CLI, "--epochs", "0"], tmp_path)
    assert code == 2
    assert err.count("cnnumpy: error: argument --epochs") == 1, err


def _docstring_example() -> str:
    """The loop in `cnnumpy.distributed`'s docstring, as a script."""
    doc = distributed.__doc__ or ""
    lines = []
    for line in doc.split("::\n\n", 1)[1].splitlines():
        if line and not line.startswith("    "):
            break
        lines.append(line[4:])
    return "\n".join(lines)


@needs_mpi
def test_the_loop_of_the_docstring_runs_on_two_ranks(tmp_path):
    (tmp_path / "loop.py").write_text(_docstring_example())
    code, out, err = ranks(2, ["loop.py"], tmp_path)
    assert code == 0, err
    losses = [float(line.split()[1]) for line in out.splitlines()]
    assert len(losses) == 40  # 4,000 images in batches of 100, rank 0 alone
    assert losses[-1] < losses[0] / 2


def test_the_guide_shows_the_loop_of_the_docstring():
    """docs/distributed.md's loop is the one the test above runs on two ranks."""
    guide = (
        Path(__file__).resolve().parents[1] / "docs" / "distributed.md"
    ).read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", guide, flags=re.S | re.M)
    assert _docstring_example().strip() in [b.strip() for b in blocks]
