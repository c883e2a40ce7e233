"""The README's Python example runs as written, with NumPy as the only import."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
# Make any import of these fail, as on a machine with NumPy alone installed.
BLOCK_EXTRAS = "import sys\nfor m in ('torch', 'hypothesis', 'pytest'):\n    sys.modules[m] = None\n"


def test_readme_example_runs_with_numpy_alone():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    for block in blocks:
        result = subprocess.run(
            [sys.executable, "-c", BLOCK_EXTRAS + block],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr


def test_core_imports_without_extras():
    code = BLOCK_EXTRAS + "import cnnumpy, cnnumpy.nn, cnnumpy.optim, cnnumpy.reference"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
