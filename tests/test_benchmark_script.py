"""`benchmarks/lenet.py` runs end to end on a tiny setting and prints its tables.

No timing is asserted (timings belong in benchmarks/results-lenet.md, measured
alone); this only keeps the script from breaking unnoticed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "lenet.py"


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_tiny_run_prints_every_table():
    done = run_script(
        "--images", "40", "--batch-size", "4", "--infer-images", "40",
        "--infer-batch", "20", "--rounds", "2", "--turn-batches", "3",
        "--infer-repeats", "1", "--no-memory", "--profile-batches", "1",
        "--naive-batches", "1", "--dtypes", "float32",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "| float32 | train epoch |" in out
    assert "| float32 | inference |" in out
    assert "| dtype | task | round 1 | round 2 |" in out
    assert "| 0: Conv2d |" in out  # the per-layer table
    assert "cnnumpy naive loops" in out
    assert "# round 2/2 done" in done.stderr


@pytest.mark.parametrize("flag", ["--rounds", "--turn-batches"])
def test_bad_flag_names_the_flag(flag):
    done = run_script(flag, "0")
    assert done.returncode != 0
    assert f"{flag} must be >= 1, got 0" in done.stderr


def test_onnx_speed_runs_on_a_tiny_setting():
    pytest.importorskip("onnxruntime")
    script = SCRIPT.parent / "onnx_speed.py"
    done = subprocess.run(
        [sys.executable, str(script), "--rounds", "1", "--repeats", "2",
         "--large-batch", "4"],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "| lenet5 | 1 |" in done.stdout and "| resnet20 | 4 |" in done.stdout
