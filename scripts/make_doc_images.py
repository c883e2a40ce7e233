"""Draw the README's pictures of ``cnnumpy inspect`` and of the im2col page.

- ``docs/images/inspect-grad-cam.png``: ``cnnumpy inspect`` on a test digit of
  the MNIST sample, for ``lenet5-modern`` trained 3 epochs on the sample's
  training split (``cnnumpy train --model lenet5-modern --epochs 3``).
- ``docs/images/im2col-page.png``: the page of ``cnnumpy explain im2col
  --input 1,2,5,5 --kernel 2,2,3,3 --stride 2 --padding 1 --html FILE``,
  opened by headless Chromium with output cell (0, 1, 1, 1) chosen.

Needs the ``cli`` and ``plot`` extras and a ``chromium`` on PATH.

    python scripts/make_doc_images.py [--only inspect|page]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
CLI = [sys.executable, "-m", "cnnumpy.cli"]
PAGE_ARGS = ["--input", "1,2,5,5", "--kernel", "2,2,3,3", "--stride", "2"]
PAGE_ARGS += ["--padding", "1"]
CELL = "#0,1,1,1"


def run(*args: str) -> None:
    subprocess.run([*CLI, *args], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def inspect_picture(work: Path) -> None:
    from cnnumpy import data

    run(
        "train", "--model", "lenet5-modern", "--epochs", "3", "--out", str(work / "run")
    )
    _, test = data.load_dataset("mnist-sample")
    digit = work / "digit.idx"
    data.write_idx(digit, test.images[703, 0])  # a 7 (the split is grouped by class)
    out = work / "inspect"
    run("inspect", str(work / "run" / "best.npz"), str(digit), "--out", str(out))
    shutil.copyfile(out / "digit-grad-cam.png", IMAGES / "inspect-grad-cam.png")
    print((out / "summary.txt").read_text())


def page_picture(work: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("no chromium on PATH: apt-get install chromium")
    page = work / "im2col.html"
    run("explain", "im2col", *PAGE_ARGS, "--html", str(page))
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={work / 'profile'}", "--window-size=1200,1060",
         f"--screenshot={IMAGES / 'im2col-page.png'}", page.as_uri() + CELL],
        check=True, capture_output=True,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("inspect", "page"))
    args = parser.parse_args()
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.only in (None, "inspect"):
            inspect_picture(work)
        if args.only in (None, "page"):
            page_picture(work)


if __name__ == "__main__":
    main()
