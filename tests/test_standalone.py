"""The repository stands alone: a clone with nothing beside it has all it needs.

A user clones the repository by itself; no file may read or name a folder
outside it (the developers' shared folder beside the checkout included).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Spelled in pieces, so that this file does not name what it looks for.
OUTSIDE = ("..", "/", "shared")


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    folder = tmp_path_factory.mktemp("alone") / "cnnumpy"
    git("clone", "--quiet", "--no-hardlinks", str(ROOT), str(folder), cwd=ROOT)
    return folder


def test_no_file_names_a_folder_beside_the_repository(clone):
    needle = "".join(OUTSIDE)
    assert not list(clone.parent.iterdir())[1:], "the clone has company"
    offenders = []
    for name in git("ls-files", cwd=clone).splitlines():
        path = clone / name
        if path.is_file() and needle.encode() in path.read_bytes():
            offenders.append(name)
    assert offenders == [], f"{needle} named in {offenders}"


def test_tests_that_need_real_digits_run_in_the_clone(clone):
    """The real MNIST digits the tests use are inside the repository."""
    env = {**os.environ, "PYTHONPATH": str(clone / "src")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_data.py::test_real_mnist_test_digits",
            "tests/test_docs.py",
            "tests/test_examples.py",
        ],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " skipped" not in result.stdout, result.stdout[-2000:]
    assert "passed" in result.stdout
