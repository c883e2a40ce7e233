"""`benchmarks/scaling.py` runs end to end on a tiny setting and prints its tables.

No timing is asserted (the real measurement runs on a quiet machine); this
keeps the script, its ``mpiexec`` launches and PyTorch's DDP from breaking
unnoticed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "scaling.py"


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.skipif(
    not Path(sys.executable).with_name("mpiexec").exists(),
    reason="no mpiexec beside Python: pip install 'cnnumpy[mpi]'",
)
def test_tiny_run_prints_the_table_and_the_cost_model():
    done = run_script(
        "--images", "200", "--batch-size", "50", "--rounds", "1", "--warmup", "1"
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for setting in ("| cnnumpy, 2 ranks x 1 thread |",
                    "| PyTorch DDP (gloo), 2 ranks x 1 thread |",
                    "| PyTorch, 1 process, 2 threads |",
                    "| cnnumpy, --processes 2 (no MPI), 1 thread each |"):  # fmt: skip
        assert setting in out
    assert "2 ranks x 1 thread against: 1 process, 1 thread" in out
    assert "without MPI (--processes 2)" in out
    assert "| 10 Gb/s | 20 us |" in out and "| 100 Gb/s | 2 us |" in out
    assert "# round 1/1 done" in done.stderr


def test_bad_flag_names_the_flag():
    done = run_script("--rounds", "0")
    assert done.returncode != 0
    assert "--rounds: must be >= 1, got 0" in done.stderr
