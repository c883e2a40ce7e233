"""Every failure the command line meets ends as one line and exit status 2.

Each case runs ``python -m cnnumpy`` in a subprocess and checks that stderr is
exactly one line, ``cnnumpy: error: ...``, with no traceback and no warning.
"""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from cnnumpy.training import load_checkpoint, save_checkpoint
from test_checkpoint_hostile import checkpoint_tree, set_meta


def cnnumpy(args, cwd: Path, preexec_fn=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnnumpy", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "XDG_CACHE_HOME": str(cwd / "cache")},
        timeout=300,
        preexec_fn=preexec_fn,
    )


def python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cnnumpy: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def digit(tmp_path) -> Path:
    from PIL import Image

    path = tmp_path / "digit.png"
    array = np.zeros((28, 28), np.uint8)
    array[5:22, 12:16] = 255
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def good(tmp_path) -> Path:
    return save_checkpoint(tmp_path / "good.npz", checkpoint_tree())


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares ``width`` x ``height``; its data is cut."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1000)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat))
    return path


def test_predict_works_on_a_good_checkpoint(good, digit, tmp_path):
    result = cnnumpy(["predict", good, digit], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "nan" not in result.stdout


def test_a_plain_npy_as_checkpoint(digit, tmp_path):
    path = tmp_path / "weights.npy"
    np.save(path, np.zeros(3))
    one_error_line(cnnumpy(["predict", path, digit], tmp_path), "single .npy array")


def test_deeply_nested_checkpoint_json(good, digit, tmp_path):
    set_meta(good, lambda meta: None, extra="[" * 100_000 + "]" * 100_000)
    one_error_line(cnnumpy(["predict", good, digit], tmp_path), "nested too deeply")


def test_checkpoint_with_nan_weights_prints_no_nan_probability(digit, tmp_path):
    tree = checkpoint_tree()
    tree["model"]["state"]["fc3.weight"][:] = np.nan
    path = save_checkpoint(tmp_path / "nan.npz", tree)
    result = cnnumpy(["predict", path, digit], tmp_path)
    one_error_line(result, "NaN or infinite", "lower learning rate")
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda m: m["data"].update(class_names=["a"]), "1 class names"),
        (lambda m: m["model"]["config"].update(num_classes=10**12), "num_classes"),
        (lambda m: m.update(version=99), "version 99"),
        (lambda m: m["model"].update(state=[]), "'model/state' must be a dict"),
    ],
)
def test_bad_checkpoint_contents(good, digit, tmp_path, edit, fragment):
    set_meta(good, edit)
    one_error_line(cnnumpy(["predict", good, digit], tmp_path), fragment)
    one_error_line(cnnumpy(["evaluate", good], tmp_path), fragment)


def test_truncated_checkpoint(good, digit, tmp_path):
    good.write_bytes(good.read_bytes()[:3000])
    one_error_line(cnnumpy(["predict", good, digit], tmp_path), "good.npz")


def test_decompression_bomb_image(good, tmp_path):
    bomb = png_header_only(tmp_path / "bomb.png", 40_000, 40_000)
    one_error_line(cnnumpy(["predict", good, bomb], tmp_path), "decompression bomb")


def test_image_pillow_cannot_identify(good, tmp_path):
    path = tmp_path / "noise.png"
    path.write_bytes(bytes(range(256)) * 4)
    one_error_line(cnnumpy(["predict", good, path], tmp_path), "noise.png")


def test_truncated_image_shows_no_warning(good, digit, tmp_path):
    cut = tmp_path / "cut.png"
    cut.write_bytes(digit.read_bytes()[:45])
    one_error_line(cnnumpy(["predict", good, digit, cut], tmp_path), "cut.png")


def test_sixteen_bit_png_is_predicted(good, tmp_path):
    from PIL import Image

    array = np.zeros((28, 28), np.uint16)
    array[5:22, 12:16] = 60_000
    path = tmp_path / "deep.png"
    Image.fromarray(array).save(path)
    result = cnnumpy(["predict", good, path], tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_huge_idx_label_in_a_data_folder(tmp_path):
    from test_data_hostile import write_mnist_like

    data = tmp_path / "data"
    data.mkdir()
    write_mnist_like(data, np.array([0, 2**31 - 1, 1], np.int32))
    result = cnnumpy(["train", "--data", data, "--out", tmp_path / "run"], tmp_path)
    one_error_line(result, "labels must be below 65536")


def test_memory_running_out(tmp_path):
    limit = 400 * 2**20

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    result = cnnumpy(["summary", "--input-size", "580"], tmp_path, preexec_fn=cap)
    one_error_line(result, "out of memory")


@pytest.mark.parametrize(
    ("error", "fragment"),
    [
        ("RecursionError('maximum recursion depth exceeded')", "nested too deeply"),
        ("FloatingPointError('overflow encountered')", "overflow encountered"),
        ("KeyError('surprise')", "KeyError: 'surprise'"),
        ("MemoryError()", "out of memory"),
    ],
)
def test_any_exception_is_one_line(tmp_path, error, fragment):
    code = (
        "import sys, warnings\n"
        "import cnnumpy.cli as cli, cnnumpy.cli.summary as summary\n"
        "def fail(args):\n"
        "    warnings.warn('a warning that must not show')\n"
        f"    raise {error}\n"
        "summary.run_summary = fail\n"
        "sys.exit(cli.main(['summary']))\n"
    )
    one_error_line(python(code, tmp_path), fragment)


def test_diverging_run_exits_2_with_one_line(tiny_mnist_dir, tmp_path):
    args = ["train", "--data", tiny_mnist_dir, "--epochs", "2", "--batch-size", "20"]
    args += ["--model", "lenet5-modern", "--optimizer", "sgd", "--lr", "1000"]
    result = cnnumpy(
        [*args, "--out", tmp_path / "q", "--no-plots", "--quiet"], tmp_path
    )
    one_error_line(result, "became nan at epoch 1, batch", "lower the learning rate")
    assert sorted(p.name for p in (tmp_path / "q").iterdir()) == []
    # With progress bars, the bar is cleared and the error has a line of its own.
    result = cnnumpy([*args, "--out", tmp_path / "bars", "--no-plots"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.endswith("\n") and "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("cnnumpy: error: the training loss became nan"), last


@pytest.mark.parametrize(
    "args",
    [
        ["summary", "--input-size", "100000"],
        ["summary", "--num-classes", "100000000"],
        ["summary", "--in-channels", "6000"],
        ["explain", "im2col", "--input", "100,100,100,100", "--kernel", "1,100,3,3"],
        ["explain", "pool", "--input", "1,1,3000,3000", "--kernel-size", "2"],
    ],
)
def test_sizes_on_the_command_line_are_bounded(tmp_path, args):
    if args[1] == "pool":
        args = [*args, "--kind", "max"]
    one_error_line(cnnumpy(args, tmp_path), "allowed")


def test_metrics_are_valid_json_and_checkpoints_finite(tiny_mnist_dir, tmp_path):
    args = ["train", "--data", tiny_mnist_dir, "--epochs", "1", "--batch-size", "50"]
    result = cnnumpy([*args, "--out", tmp_path / "run", "--no-plots"], tmp_path)
    assert result.returncode == 0, result.stderr
    json.loads(
        (tmp_path / "run" / "metrics.json").read_text(),
        parse_constant=lambda c: pytest.fail(f"metrics.json holds {c}"),
    )
    state = load_checkpoint(tmp_path / "run" / "last.npz")["model"]["state"]
    assert all(np.isfinite(a).all() for a in state.values())


def test_a_reader_leaving_early_ends_quietly(good, tmp_path):
    from cnnumpy.data import write_idx

    images = tmp_path / "many-idx3-ubyte"
    write_idx(images, np.zeros((20_000, 28, 28), np.uint8))
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnumpy", "predict", good, images],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert proc.stdout.readline().startswith(str(images).encode())
    proc.stdout.close()  # as `| head -1` does
    stderr = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=300) == 141
    assert stderr == b""
