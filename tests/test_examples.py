"""The README's main job, ``examples/train_lenet5.py``, runs and learns."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "train_lenet5.py"


def test_train_example_learns_on_a_small_slice():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--epochs", "2", "--limit", "1600"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    accuracy = [float(a) for a in re.findall(r"test accuracy ([\d.]+)%", result.stdout)]
    assert len(accuracy) == 2
    # 1,600 digits, two epochs: chance is 10%; a broken backward stays near it.
    assert accuracy[-1] > 70, result.stdout


def test_train_example_rejects_bad_arguments():
    for args, message in (
        (["--epochs", "0"], "--epochs must be >= 1, got 0"),
        (["--limit", "5"], "--limit must be >= 10, got 5"),
        (["--data", "/nonexistent"], "/nonexistent does not exist"),
    ):
        result = subprocess.run(
            [sys.executable, str(SCRIPT), *args], capture_output=True, text=True
        )
        assert result.returncode == 2
        assert message in result.stderr
        assert "Traceback" not in result.stderr
