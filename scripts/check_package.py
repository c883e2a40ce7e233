"""The package as users get it: build, inspect, install alone, run (`make package`).

1. ``python -m build`` makes the sdist, then the wheel from the sdist, in a
   temporary folder (so the sdist must hold all the wheel needs).
2. The wheel must hold the package and its data file, no tests, the licence
   files, the metadata pyproject.toml declares, and weigh under 2 MB.
3. A fresh virtual environment in a temporary folder gets the wheel alone (its
   dependency, NumPy, comes from the package index); from a temporary working
   folder outside the repository it runs ``cnnumpy --version``, ``cnnumpy train
   --epochs 1 --quiet``, ``cnnumpy explain im2col ...`` and the README's
   NumPy-only example, and checks that ``cnnumpy`` was imported from there.

    python scripts/check_package.py [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from email.parser import HeaderParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README_SECTION = "A small CNN, one training step, one gradient check"
MAX_WHEEL_BYTES = 2_000_000
DATA_FILE = "cnnumpy/data/mnist_sample.npz"


def version() -> str:
    text = (ROOT / "src" / "cnnumpy" / "_version.py").read_text()
    return re.search(r'__version__ = "([^"]+)"', text).group(1)


def readme_example(readme: str) -> str:
    """The first Python block of the README's section `README_SECTION`."""
    heading = re.search(rf"^#+ {re.escape(README_SECTION)}$", readme, flags=re.M)
    if heading is None:
        raise SystemExit(f"README.md has no section headed '{README_SECTION}'")
    rest = readme[heading.end() :]
    block = re.search(r"^```python\n(.*?)^```", rest, flags=re.S | re.M)
    # The block must come before the next heading outside a code block.
    if block is None or re.search(r"^#+ ", rest[: block.start()], flags=re.M):
        raise SystemExit(f"README.md's section '{README_SECTION}' has no python block")
    return block.group(1)


def step(title: str) -> float:
    print(f"--- {title}", flush=True)
    return time.monotonic()


def run(cmd: list[str | Path], **kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd``; on failure print its output and stop."""
    result = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, **kwargs
    )
    if result.returncode != 0:
        print(result.stdout, result.stderr, sep="\n", file=sys.stderr)
        raise SystemExit(
            f"failed (exit {result.returncode}): {' '.join(map(str, cmd))}"
        )
    return result


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"package check failed: {message}")


def build(dist: Path) -> tuple[Path, Path]:
    run([sys.executable, "-m", "build", "--outdir", dist, ROOT])
    (sdist,) = dist.glob("cnnumpy-*.tar.gz")
    (wheel,) = dist.glob("cnnumpy-*.whl")
    return sdist, wheel


def check_sdist(sdist: Path) -> None:
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for needed in (
        "LICENSE",
        "NOTICE",
        "README.md",
        "pyproject.toml",
        f"src/{DATA_FILE}",
    ):
        check(needed in names, f"{sdist.name} lacks {needed}")
    check(not any(n.startswith(".venv/") for n in names), f"{sdist.name} holds .venv")


def check_wheel(wheel: Path) -> None:
    size = wheel.stat().st_size
    print(f"{wheel.name}: {size:,} bytes")
    check(size < MAX_WHEEL_BYTES, f"{wheel.name} is {size:,} bytes, over 2 MB")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        dist_info = f"cnnumpy-{version()}.dist-info"
        meta = HeaderParser().parsestr(zf.read(f"{dist_info}/METADATA").decode())
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
    tops = {name.split("/")[0] for name in names}
    check(tops == {"cnnumpy", dist_info}, f"unexpected top-level entries {tops}")
    for needed in (
        "cnnumpy/__init__.py",
        "cnnumpy/cli/__init__.py",
        "cnnumpy/functional/conv.py",
        DATA_FILE,
        f"{dist_info}/licenses/LICENSE",
        f"{dist_info}/licenses/NOTICE",
    ):
        check(needed in names, f"{wheel.name} lacks {needed}")
    tests = [
        n for n in names if re.search(r"(^|/)(tests?|conftest)(/|\.py$)|/test_", n)
    ]
    check(not tests, f"{wheel.name} holds tests: {tests}")
    check(meta["Version"] == version(), f"Version {meta['Version']} != {version()}")
    check(meta["License-Expression"] == "MIT", "License-Expression is not MIT")
    check(
        meta["Requires-Python"] == ">=3.10",
        f"Requires-Python {meta['Requires-Python']}",
    )
    requires = meta.get_all("Requires-Dist")
    check("numpy>=1.25" in requires, f"Requires-Dist {requires} lacks numpy>=1.25")
    core = [r for r in requires if "extra ==" not in r]
    check(core == ["numpy>=1.25"], f"the core requires more than NumPy: {core}")
    check("cnnumpy = cnnumpy._launch:main" in entry_points, "no `cnnumpy` command")


def check_installed(wheel: Path, tmp: Path) -> None:
    venv, work = tmp / "venv", tmp / "work"
    work.mkdir()
    # The base interpreter, not this virtual environment's packages.
    run([sys.executable, "-m", "venv", venv])
    bin_ = venv / "bin"
    run([bin_ / "python", "-m", "pip", "install", "--quiet", wheel])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PATH"] = f"{bin_}{os.pathsep}{env.get('PATH', '')}"
    env["XDG_CACHE_HOME"] = str(tmp / "cache")
    # No repository on the path: from a folder outside it, with no PYTHONPATH.
    kwargs = {"cwd": work, "env": env, "timeout": 600}

    where = run(
        [bin_ / "python", "-c", "import cnnumpy; print(cnnumpy.__file__)"], **kwargs
    )
    imported = Path(where.stdout.strip()).resolve()
    check(venv.resolve() in imported.parents, f"cnnumpy imported from {imported}")
    check(ROOT not in imported.parents, "cnnumpy imported from the repository")
    listed = run([bin_ / "python", "-m", "pip", "list", "--format=json"], **kwargs)
    skip = {"pip", "setuptools", "wheel"}  # what venv itself may bring
    names = sorted(p["name"].lower() for p in json.loads(listed.stdout))
    names = [name for name in names if name not in skip]
    check(names == ["cnnumpy", "numpy"], f"the wheel brought more than NumPy: {names}")

    out = run([bin_ / "cnnumpy", "--version"], **kwargs).stdout
    check(out == f"cnnumpy {version()}\n", f"cnnumpy --version printed {out!r}")
    print(out, end="")

    started = time.monotonic()
    trained = run([bin_ / "cnnumpy", "train", "--epochs", "1", "--quiet"], **kwargs)
    expected = r"Test accuracy: (\d+\.\d\d)% \(loss [\d.]+\) on 1,000 images of "
    accuracy = re.fullmatch(expected + "mnist-sample\n", trained.stdout)
    check(accuracy is not None, f"cnnumpy train printed {trained.stdout!r}")
    check(float(accuracy.group(1)) > 50, f"one epoch gave only {accuracy.group(1)}%")
    check("pip install 'cnnumpy[cli]'" in trained.stderr, "no hint about the plots")
    print(trained.stdout, end="")
    print(trained.stderr, end="")
    print(f"(train: {time.monotonic() - started:.1f} s)")
    (run_dir,) = (work / "runs").iterdir()
    files = sorted(p.name for p in run_dir.iterdir())
    check(
        files == ["best.npz", "history.csv", "last.npz", "metrics.json"],
        f"run folder holds {files}",
    )

    explain = [bin_ / "cnnumpy", "explain", "im2col", "--input", "1,3,4,4"]
    out = run([*explain, "--kernel", "2,3,2,2"], **kwargs).stdout
    check("im2col" in out and len(out.splitlines()) > 10, f"explain printed {out!r}")
    print(f"explain im2col: {len(out.splitlines())} lines")

    example = readme_example((ROOT / "README.md").read_text())
    script = work / "readme_example.py"
    script.write_text(example)
    run([bin_ / "python", script], **kwargs)
    print(f"README example ({len(example.splitlines())} lines): ran")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="cnnumpy-package-"))
    try:
        t = step("build sdist and wheel")
        sdist, wheel = build(tmp / "dist")
        seconds = time.monotonic() - t
        print(f"{sdist.name}: {sdist.stat().st_size:,} bytes ({seconds:.1f} s)")
        t = step("check their contents")
        check_sdist(sdist)
        check_wheel(wheel)
        t = step("install the wheel alone in a fresh virtual environment and run it")
        check_installed(wheel, tmp)
        print(f"({time.monotonic() - t:.1f} s)")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("package check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
