"""What the benchmark scripts share: threads, training loops, interleaved rounds.

Both libraries run in one process, in turns, so that both see the same
stretches of a shared machine whose speed drifts within seconds; every figure
is a median over rounds. The thread count of both libraries (and of NumPy's
BLAS) is set together by :func:`set_threads`; a run may measure several
thread counts, interleaved too, so their ratios stand side by side.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import threadpool_limits

import cnnumpy
from cnnumpy import nn, optim

LIBS = ("cnnumpy", "torch")
NAMES = {"cnnumpy": "cnnumpy", "torch": "PyTorch"}
DTYPES = {
    "float32": (np.float32, torch.float32),
    "float64": (np.float64, torch.float64),
}
# Each recipe as both libraries build it: Adam as LeNet-5 trains, SGD with
# momentum and weight decay as He et al. (2016) train CIFAR ResNets.
OPTIMIZERS = {
    "adam": (
        "Adam 1e-3",
        lambda p: optim.Adam(p, lr=1e-3),
        lambda p: torch.optim.Adam(p, lr=1e-3),
    ),
    "sgd": (
        "SGD 0.1, momentum 0.9, weight decay 5e-4",
        lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=5e-4),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=5e-4),
    ),
}


def set_threads(n: int) -> None:
    """The same thread count for PyTorch, cnnumpy and NumPy's BLAS."""
    torch.set_num_threads(n)
    cnnumpy.set_num_threads(n)
    threadpool_limits(limits=n)


def timed(fn: Callable[..., object], *args: object) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def median_time(fn: Callable[[], object], rounds: int) -> float:
    """Median seconds of ``rounds`` calls of ``fn``, after one untimed call."""
    fn()
    return statistics.median(timed(fn) for _ in range(rounds))


def thread_counts(text: str) -> list[int]:
    """``--threads``: a comma list of counts >= 1, e.g. '1,2'."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a comma list of ints, got {text!r}"
        ) from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return sorted(set(counts))


# --- training and inference loops ------------------------------------------------


def cnnumpy_trainer(model: nn.Module, recipe: str) -> Callable[..., None]:
    """``train(x, y, batch)``: optimizer steps over ``x``; one optimizer across calls."""
    model.train()
    model.input_grad = False  # the input is data
    criterion = nn.CrossEntropyLoss()
    opt = OPTIMIZERS[recipe][1](model.parameters())

    def train(x: np.ndarray, y: np.ndarray, batch: int) -> None:
        for i in range(0, len(x), batch):
            opt.zero_grad()
            criterion(model(x[i : i + batch]), y[i : i + batch])
            model.backward(criterion.backward())
            opt.step()

    return train


def torch_trainer(model: torch.nn.Module, recipe: str) -> Callable[..., None]:
    """``train(x, y, batch)``: optimizer steps over ``x``; one optimizer across calls."""
    model.train()
    criterion = torch.nn.CrossEntropyLoss()
    opt = OPTIMIZERS[recipe][2](model.parameters())

    def train(x: torch.Tensor, y: torch.Tensor, batch: int) -> None:
        for i in range(0, len(x), batch):
            opt.zero_grad()
            criterion(model(x[i : i + batch]), y[i : i + batch]).backward()
            opt.step()

    return train


def cnnumpy_infer(model: nn.Module, x: np.ndarray, batch: int) -> None:
    model.eval()
    for i in range(0, len(x), batch):
        model(x[i : i + batch])


def torch_infer(model: torch.nn.Module, x: torch.Tensor, batch: int) -> None:
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            model(x[i : i + batch])


# --- interleaved rounds --------------------------------------------------------------


@dataclass
class Case:
    """One row group of a run: a dtype or an input shape, and its data.

    ``build(seed)`` returns the cnnumpy model and its PyTorch counterpart.
    """

    name: str
    build: Callable[[int], tuple[nn.Module, torch.nn.Module]]
    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        self.tx, self.ty = torch.from_numpy(self.x), torch.from_numpy(self.y)


def run_rounds(cases: list[Case], args: argparse.Namespace) -> tuple[dict, dict]:
    """Training epochs and inference passes, both libraries in turns.

    Keys ``(lib, case name, threads)``, values one time per round (training)
    or per pass (inference, ``args.infer_repeats`` per round). Round 0 is a
    short warm-up (``args.warmup_batches``, default 10 batches), not counted.
    In each round, for each thread count (their order alternating between
    rounds) and case, both libraries train one epoch of ``args.images`` on
    fresh models, taking turns every ``args.turn_batches`` batches; each
    library's epoch time is the sum of its turns. Then, if ``args.infer_images``, the trained models run
    inference ``args.infer_repeats`` times each, alternating.
    """
    keys = [(lib, c.name, n) for lib in LIBS for c in cases for n in args.threads]
    train: dict = {k: [] for k in keys}
    infer: dict = {k: [] for k in keys}
    batch = args.batch_size
    for r in range(args.rounds + 1):
        warmup = getattr(args, "warmup_batches", 10) * batch
        n_images = args.images if r else min(args.images, warmup)
        turn = args.turn_batches * batch
        for n in args.threads if r % 2 else args.threads[::-1]:
            set_threads(n)
            for case in cases:
                order = LIBS if r % 2 else LIBS[::-1]
                models = dict(zip(LIBS, case.build(r)))
                trainers = {
                    "cnnumpy": (cnnumpy_trainer(models["cnnumpy"], args.recipe), case.x, case.y),
                    "torch": (torch_trainer(models["torch"], args.recipe), case.tx, case.ty),
                }  # fmt: skip
                spent = dict.fromkeys(LIBS, 0.0)
                for k, start in enumerate(range(0, n_images, turn)):
                    stop = min(start + turn, n_images)
                    for lib in order if k % 2 == 0 else order[::-1]:
                        fn, xs, ys = trainers[lib]
                        spent[lib] += timed(fn, xs[start:stop], ys[start:stop], batch)
                if r:
                    for lib in LIBS:
                        train[lib, case.name, n].append(spent[lib])
                if not args.infer_images:
                    continue
                xi = {"cnnumpy": case.x, "torch": case.tx}
                infer_fn = {"cnnumpy": cnnumpy_infer, "torch": torch_infer}
                for rep in range(args.infer_repeats):
                    for lib in order if rep % 2 else order[::-1]:
                        t = timed(
                            infer_fn[lib],
                            models[lib],
                            xi[lib][: args.infer_images],
                            args.infer_batch,
                        )
                        if r:
                            infer[lib, case.name, n].append(t)
        if r:
            print(f"# round {r}/{args.rounds} done", file=sys.stderr)
    return train, infer


def _median(table: dict, lib: str, case: str, n: int) -> float:
    return statistics.median(table[lib, case, n])


def print_speed(
    cases: list[Case], args: argparse.Namespace, train: dict, infer: dict, label: str
) -> None:
    """The speed table, the thread-count table, then each round's ratio."""
    tasks = [("train epoch", train, args.images)]
    if args.infer_images:
        tasks.append(("inference", infer, args.infer_images))
    print(
        f"| {label} | task | threads | cnnumpy s | PyTorch s | cnnumpy / PyTorch "
        "| cnnumpy img/s | PyTorch img/s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for case in cases:
        for task, table, images in tasks:
            for n in args.threads:
                c = _median(table, "cnnumpy", case.name, n)
                t = _median(table, "torch", case.name, n)
                print(
                    f"| {case.name} | {task} | {n} | {c:.2f} | {t:.2f} | {c / t:.2f}x "
                    f"| {images / c:,.0f} | {images / t:,.0f} |"
                )
    if len(args.threads) > 1:
        lo, hi = args.threads[0], args.threads[-1]
        print()
        print(
            f"Thread counts side by side (medians): cnnumpy / PyTorch at each count, "
            f"and each library's speed-up from {lo} to {hi} threads (its time with "
            f"{lo} over its time with {hi}):"
        )
        print()
        heads = [f"cnnumpy / PyTorch, {n} thread{'s' * (n > 1)}" for n in args.threads]
        heads += [f"{NAMES[lib]} speed-up {lo} to {hi}" for lib in LIBS]
        print(f"| {label} | task | " + " | ".join(heads) + " |")
        print("|---|---|" + "---:|" * len(heads))
        for case in cases:
            for task, table, _ in tasks:
                cells = [
                    _median(table, "cnnumpy", case.name, n)
                    / _median(table, "torch", case.name, n)
                    for n in args.threads
                ]
                cells += [
                    _median(table, lib, case.name, lo)
                    / _median(table, lib, case.name, hi)
                    for lib in LIBS
                ]
                print(
                    f"| {case.name} | {task} | "
                    + " | ".join(f"{q:.2f}x" for q in cells)
                    + " |"
                )
    print()
    print(
        "Each round on its own (cnnumpy / PyTorch, each library's time in that round"
        + ("; inference: the median of the round's passes" if args.infer_images else "")
        + "), to show the spread:"
    )
    print()
    rounds = range(args.rounds)
    print(
        f"| {label} | task | threads | "
        + " | ".join(f"round {r + 1}" for r in rounds)
        + " |"
    )
    print("|---|---|---:|" + "---:|" * args.rounds)
    for case in cases:
        for task, table, _ in tasks:
            for n in args.threads:
                c, t = table["cnnumpy", case.name, n], table["torch", case.name, n]
                per = len(c) // args.rounds  # times per round
                ratios = [
                    statistics.median(c[r * per : (r + 1) * per])
                    / statistics.median(t[r * per : (r + 1) * per])
                    for r in rounds
                ]
                print(
                    f"| {case.name} | {task} | {n} | "
                    + " | ".join(f"{q:.2f}x" for q in ratios)
                    + " |"
                )


# --- peak memory, in a fresh process ---------------------------------------------------


def status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS: now, VmHWM: peak), in MiB.

    VmHWM, unlike getrusage's ru_maxrss, starts afresh at exec, so a subprocess
    does not inherit the peak of its parent.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> None:
    """Set VmHWM back to the current RSS (Linux >= 4.0; harmless where refused)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def run_probe(cmd: list[str]) -> list[float]:
    """Run a script's hidden memory probe; the numbers it prints on one line."""
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [float(v) for v in out.split()]


def positive(parser: argparse.ArgumentParser, args: argparse.Namespace, *names: str):
    """Refuse ``--name 0`` (or below) for each of ``names``, naming the flag."""
    for name in names:
        if getattr(args, name) < 1:
            flag = "--" + name.replace("_", "-")
            parser.error(f"{flag} must be >= 1, got {getattr(args, name)}")
