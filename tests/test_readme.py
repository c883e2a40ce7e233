"""The README's Python example runs as written, with NumPy as the only import."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_package_check_finds_the_readme_example():
    """`make package` runs this README block in a venv that has only the wheel."""
    spec = importlib.util.spec_from_file_location(
        "check_package", README.parent / "scripts" / "check_package.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    example = module.readme_example(README.read_text())
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert example in blocks
    assert "from cnnumpy import nn, optim" in example
    with pytest.raises(SystemExit, match=r"README\.md has no section"):
        module.readme_example("# cnnumpy\n\n```python\nprint(1)\n```\n")


def test_readme_stays_short():
    """The README is for users; the benchmarks' history lives in benchmarks/."""
    assert len(README.read_text().splitlines()) < 250
