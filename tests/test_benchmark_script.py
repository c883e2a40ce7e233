"""The benchmark scripts run end to end on tiny settings and print their tables.

No timing is asserted (timings belong in benchmarks/results-*.md, measured
alone); this only keeps the scripts, their machine header and their output
format from breaking unnoticed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH / name), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_machine_header(out: str) -> None:
    lines = out.splitlines()
    assert lines[0].startswith("- CPU: ") and "logical CPUs" in lines[0]
    assert lines[1].startswith("- SIMD: ")
    blas = next(line for line in lines if line.startswith("- NumPy "))
    assert "BLAS " in blas and ", kernel " in blas
    backend = next(line for line in lines if line.startswith("- PyTorch "))
    assert "CPU capability" in backend and "oneDNN" in backend
    assert any(line.startswith("- command: `python benchmarks/") for line in lines)


def test_lenet_tiny_run_prints_every_table(tmp_path):
    results = tmp_path / "results.md"
    results.write_text("# Results\n\nIntro.\n\n## Run 1999-01-01: old\n\nold run\n")
    done = run_script(
        "lenet.py",
        "--images", "40", "--batch-size", "4", "--infer-images", "40",
        "--infer-batch", "20", "--rounds", "2", "--turn-batches", "3",
        "--infer-repeats", "1", "--no-memory", "--profile-batches", "2",
        "--naive-batches", "1", "--dtypes", "float32", "--threads", "1,2",
        "--record", str(results),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert_machine_header(out)
    assert "| float32 | train epoch | 1 |" in out
    assert "| float32 | train epoch | 2 |" in out
    assert "| float32 | inference | 2 |" in out
    # Both ratios and both speed-ups side by side, for training and inference.
    assert (
        "| dtype | task | cnnumpy / PyTorch, 1 thread | cnnumpy / PyTorch, 2 threads "
        "| cnnumpy speed-up 1 to 2 | PyTorch speed-up 1 to 2 |"
    ) in out
    side = [line for line in out.splitlines() if line.startswith("| float32 |")]
    assert sum(line.count("x |") == 4 for line in side) == 2
    assert "| dtype | task | threads | round 1 | round 2 |" in out
    assert "| 0: Conv2d |" in out  # the per-layer table
    assert "| **outside the layers: step - layers** |" in out
    assert "| of which optimizer step (timed directly) |" in out
    assert "Overhead per training step outside the layers (float32" in out
    assert "cnnumpy naive loops" in out
    # cnnumpy on 2 processes beside PyTorch on 2 threads: a ratio, one per round.
    assert "| dtype | cnnumpy, 2 processes s | PyTorch, 2 threads s |" in out
    row = next(
        r
        for r in out.splitlines()
        if r.startswith("| float32 | ") and r.count("x |") == 3
    )
    assert row.count("|") == 7
    assert "# round 2/2 done" in done.stderr
    # The run went in as the newest, above the old one, under a machine heading.
    text = results.read_text()
    assert text.startswith("# Results\n\nIntro.\n\n## Run ")
    assert text.index("- CPU: ") < text.index("## Run 1999-01-01: old")
    assert text.endswith("old run\n")


def test_resnet_tiny_run_prints_every_table():
    done = run_script(
        "resnet.py",
        "--inputs", "3x8x8", "--threads", "1,2", "--rounds", "1",
        "--conv-batch", "2", "--conv-repeats", "1", "--images", "8",
        "--batch-size", "4", "--turn-batches", "1", "--profile-batches", "1",
        "--memory-batches", "1", "--memory-images", "16",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert_machine_header(out)
    assert "| convolution | count | shape | cnnumpy fwd | cnnumpy bwd |" in out
    # Every distinct convolution: stem, 3x3 at each width, strided, shortcuts.
    for row in (
        "| conv1 | 1 | 3->16, 3x3, 8x8->8x8 |",
        "| layer1.0.residual.body.conv1 | 6 | 16->16, 3x3, 8x8->8x8 |",
        "| layer2.0.residual.body.conv1 | 1 | 16->32, 3x3 /2, 8x8->4x4 |",
        "| layer2.0.residual.shortcut.0 | 1 | 16->32, 1x1 /2, 8x8->4x4 |",
        "| layer2.0.residual.body.conv2 | 5 | 32->32, 3x3, 4x4->4x4 |",
        "| layer3.0.residual.body.conv2 | 5 | 64->64, 3x3, 2x2->2x2 |",
    ):
        assert row in out
    assert out.count("| all 21 convolutions (count x fwd+bwd) |") == 2  # 1, 2 threads
    assert "| 3x8x8 | train epoch | 2 |" in out
    assert (
        "| input | task | cnnumpy / PyTorch, 1 thread | cnnumpy / PyTorch, 2 threads"
        in out
    )
    assert "| layer2: Sequential |" in out
    assert "Overhead per training step outside the layers (resnet20, 3x8x8" in out
    assert "| 3x8x8 | random, 16 images |" in out  # the memory table
    assert "cnnumpy's peak over the data set (target: at most 300 MB): 3x8x8" in out


@pytest.mark.parametrize(
    ("script", "flag", "value", "message"),
    [
        ("lenet.py", "--rounds", "0", "--rounds must be >= 1, got 0"),
        ("lenet.py", "--turn-batches", "0", "--turn-batches must be >= 1, got 0"),
        ("lenet.py", "--threads", "0,2", "must be >= 1, got '0,2'"),
        ("resnet.py", "--conv-batch", "0", "--conv-batch must be >= 1, got 0"),
        ("resnet.py", "--inputs", "3x32x28", "must be CxSxS"),
    ],
)
def test_bad_flag_names_the_flag(script, flag, value, message):
    done = run_script(script, flag, value)
    assert done.returncode != 0
    assert message in done.stderr


def test_torch_twin_has_resnet20s_names_and_outputs(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    from _twin import torch_twin
    from cnnumpy import models

    model = models.resnet20(
        in_channels=3, input_size=8, rng=np.random.default_rng(0), dtype=np.float64
    )
    twin = torch_twin(model)
    assert list(twin.state_dict()) == list(model.state_dict())
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8))
    model.train()
    y = twin(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(model(x), y, rtol=1e-10, atol=1e-12)


def test_onnx_speed_runs_on_a_tiny_setting():
    pytest.importorskip("onnxruntime")
    done = run_script(
        "onnx_speed.py", "--rounds", "1", "--repeats", "2", "--large-batch", "4"
    )
    assert done.returncode == 0, done.stderr
    assert "| lenet5 | 1 |" in done.stdout and "| resnet20 | 4 |" in done.stdout


def test_conv_paths_times_both_input_gradients_and_files_the_run(tmp_path):
    results = tmp_path / "results.md"
    results.write_text("# Input-gradient paths\n")
    done = run_script("conv_paths.py", "--rounds", "1", "--record", str(results))
    assert done.returncode == 0, done.stderr
    assert_machine_header(done.stdout)
    lines = done.stdout.splitlines()
    # The valid LeNet-5 conv2 folds by col2im; resnet20's 'same' convs by conv.
    lenet = [r for r in lines if r.startswith("| LeNet-5 conv2 | 6->16")]
    assert len(lenet) == 2 and all(r.endswith("| col2im |") for r in lenet)
    resnet = [r for r in lines if r.startswith("| resnet20 ") and "pad 1" in r]
    assert len(resnet) == 6  # 3 shapes x 2 thread counts
    assert all(r.endswith("| by conv |") for r in resnet)
    assert sum(r.startswith("| resnet20 ") for r in lines) == 6 + 3  # + products
    text = results.read_text()
    assert text.startswith("# Input-gradient paths\n") and "\n## Run " in text


def test_conv_blocks_times_every_block_size_and_files_the_run(tmp_path):
    results = tmp_path / "results.md"
    results.write_text("# Block sizes\n")
    done = run_script(
        "conv_blocks.py",
        "--rounds",
        "1",
        "--calls",
        "1",
        "--batches",
        "4",
        "--record",
        str(results),
    )
    assert done.returncode == 0, done.stderr
    assert_machine_header(done.stdout)
    rows = [r for r in done.stdout.splitlines() if r.startswith("| ") and "," in r]
    # 5 block sizes x 2 dtypes, each with 4 timings and their sum; one marked.
    blocks = [r for r in rows if r.count("|") == 7]
    assert len(blocks) == 10 and sum("*" in r for r in blocks) == 2
    assert sum(r.startswith("| 5,600 | 840,000 |") for r in rows) == 1
    resnet = [r for r in rows if "x" in r.split("|")[1] and r.count("|") == 6]
    assert len(resnet) == 8  # 4 convolutions x 1 and 2 threads
    text = results.read_text()
    assert text.startswith("# Block sizes\n") and "\n## Run " in text


def test_threads_profiles_short_calls_and_a_lenet_step(tmp_path):
    results = tmp_path / "results.md"
    done = run_script(
        "threads.py", "--calls", "4", "--rounds", "1", "--steps", "8",
        "--record", str(results),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert_machine_header(done.stdout)
    assert "| 2,000 |" in done.stdout and "| 2,000,000 |" in done.stdout
    assert "| conv2d_forward |" in done.stdout  # the convolutions hand off
    assert "Step, median of 8" in done.stdout and "speed-up" in done.stdout
    assert "sleeping worker starts after" in done.stdout
    costs = [
        r for r in done.stdout.splitlines() if r.startswith(("| conv1 ", "| conv2 "))
    ]
    assert len(costs) == 4 and all(r.count("|") == 6 for r in costs)
    assert results.read_text().startswith("## Run ")
