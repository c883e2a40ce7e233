"""Inference of exported models in onnxruntime, in cnnumpy (the loaded ONNX file)
and in PyTorch, side by side, in one process.

For each model (``--models``, from the cnnumpy registry, random weights and
batch-norm statistics): the model is exported with ``cnnumpy.onnx.export``, the
file is run by an onnxruntime session and loaded back with
``cnnumpy.onnx.load``, and a PyTorch twin is built with the same weights. The
three are checked to agree, then timed in interleaved rounds (each round runs
every runtime once, in turn; the median over ``--rounds`` is shown):

- batch 1: the latency of one call, median of ``--repeats`` calls per round;
- batch ``--large-batch``: the median of 5 calls per round, in images per second.

All three use ``--threads`` threads (onnxruntime's intra-op pool, cnnumpy's
engine and BLAS, torch.set_num_threads). Run::

    python benchmarks/onnx_speed.py --record benchmarks/results-onnx.md  # README figures
    python benchmarks/onnx_speed.py --rounds 3 --repeats 20 --large-batch 100
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from threadpoolctl import threadpool_limits

import cnnumpy
from _machine import Tee, machine_lines, record_run
from cnnumpy import models, nn
from cnnumpy.onnx import export, load

# Seconds each runtime waits before its calls of a round (see time_rounds).
SETTLE = 0.05

# --- the PyTorch twin ------------------------------------------------------------


def to_torch(m: nn.Module) -> torch.nn.Module:
    """The PyTorch module computing what cnnumpy module ``m`` computes."""
    t = torch.nn
    if isinstance(m, nn.Sequential):
        return t.Sequential(*(to_torch(c) for c in m))
    if isinstance(m, nn.Residual):
        return _TorchResidual(to_torch(m.body), to_torch(m.shortcut))
    simple = {
        nn.ReLU: t.ReLU,
        nn.Tanh: t.Tanh,
        nn.Sigmoid: t.Sigmoid,
        nn.Identity: t.Identity,
        nn.Dropout: t.Identity,
    }
    if type(m) in simple:
        return simple[type(m)]()
    if isinstance(m, nn.Flatten):
        return t.Flatten(m.start_dim, m.end_dim)
    if isinstance(m, nn.Conv2d):
        tm = t.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride,
                      m.padding, m.dilation, m.groups, m.bias is not None)  # fmt: skip
    elif isinstance(m, nn.Linear):
        tm = t.Linear(m.in_features, m.out_features, m.bias is not None)
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        cls = t.BatchNorm2d if isinstance(m, nn.BatchNorm2d) else t.BatchNorm1d
        tm = cls(m.num_features, eps=m.eps)
    elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        cls = t.MaxPool2d if isinstance(m, nn.MaxPool2d) else t.AvgPool2d
        return cls(m.kernel_size, m.stride, m.padding)
    elif isinstance(m, nn.AdaptiveAvgPool2d):
        return t.AdaptiveAvgPool2d(m.output_size)
    else:
        raise TypeError(f"no PyTorch twin for {type(m).__name__}")
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
    return tm


class _TorchResidual(torch.nn.Module):
    def __init__(self, body: torch.nn.Module, shortcut: torch.nn.Module) -> None:
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


# --- the runtimes ----------------------------------------------------------------


def runtimes(name: str, folder: Path, threads: int) -> dict[str, Callable]:
    """name -> a function of a float32 batch, for each runtime."""
    rng = np.random.default_rng(0)
    model = models.create_model(name, rng=rng)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean[:] = rng.normal(size=m.num_features) * 0.1
            m.running_var[:] = rng.uniform(0.5, 2, size=m.num_features)
    path = export(model, folder / f"{name}.onnx", (1, 28, 28))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(path), options, providers=["CPUExecutionProvider"]
    )
    loaded = load(path)
    twin = to_torch(model.eval()).eval()

    def run_torch(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return twin(torch.from_numpy(x)).numpy()

    return {
        "onnxruntime": lambda x: session.run(None, {"input": x})[0],
        "cnnumpy": loaded,
        "PyTorch": run_torch,
    }


def check_agree(runs: dict[str, Callable], x: np.ndarray) -> None:
    outputs = {lib: run(x) for lib, run in runs.items()}
    ref = outputs["onnxruntime"]
    for lib, out in outputs.items():
        scale = float(np.abs(ref).max())
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5 * scale, err_msg=lib)


def time_rounds(
    runs: dict[str, Callable], x: np.ndarray, rounds: int, repeats: int
) -> dict[str, float]:
    """Median seconds per call of each runtime, in interleaved rounds.

    Before its calls in a round, each runtime waits ``SETTLE`` seconds and makes
    one untimed call. onnxruntime's and PyTorch's worker threads spin for a
    while after a call; a runtime timed straight after them shares a core with
    that spinning (results-onnx.md has what it cost). After the pause they sleep, and the untimed call warms the caches
    as the runtime's own previous call would have.
    """
    samples: dict[str, list[float]] = {lib: [] for lib in runs}
    for _ in range(rounds):
        for lib, run in runs.items():
            time.sleep(SETTLE)
            run(x)
            calls = []
            for _ in range(repeats):
                t = time.perf_counter()
                run(x)
                calls.append(time.perf_counter() - t)
            samples[lib].append(statistics.median(calls))
    return {lib: statistics.median(s) for lib, s in samples.items()}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="lenet5,resnet20")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--repeats", type=int, default=200, help="batch-1 calls a round")
    p.add_argument("--large-batch", type=int, default=1000)
    p.add_argument(
        "--record", metavar="FILE", help="also file the run into FILE as its newest"
    )
    return p.parse_args()


def main() -> None:
    args = parse_args()
    cnnumpy.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    command = f"python benchmarks/onnx_speed.py {' '.join(sys.argv[1:])}".rstrip()
    tee = Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        print("\n".join(machine_lines(command)))
        print(f"- onnxruntime {ort.__version__}; {args.threads} threads\n")
        table(args)
    if args.record:
        record_run(args.record, tee.kept.getvalue())


def table(args: argparse.Namespace) -> None:
    print("| model | batch | onnxruntime | cnnumpy | PyTorch | cnnumpy / onnxruntime |")
    print("|---|---|---|---|---|---|")
    rng = np.random.default_rng(1)
    with threadpool_limits(args.threads), tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            runs = runtimes(name, Path(tmp), args.threads)
            for batch, repeats in ((1, args.repeats), (args.large_batch, 5)):
                x = rng.normal(size=(batch, 1, 28, 28)).astype(np.float32)
                check_agree(runs, x)
                t = time_rounds(runs, x, args.rounds, repeats)
                if batch == 1:
                    cells = [f"{t[lib] * 1e3:.3f} ms" for lib in runs]
                else:
                    cells = [f"{batch / t[lib]:,.0f} img/s" for lib in runs]
                ratio = t["cnnumpy"] / t["onnxruntime"]
                print(f"| {name} | {batch} | {' | '.join(cells)} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
