"""LeNet-5 in cnnumpy and in PyTorch, side by side, in one process.

Measures, with the same threads and interleaved rounds (median of ``--rounds``):

- one training epoch (``--images`` random 1x28x28 images, batch ``--batch-size``,
  Adam 1e-3, cross-entropy) in float32 and in float64, for both libraries;
- inference on ``--infer-images`` images, batch ``--infer-batch``;
- the ratio cnnumpy / PyTorch, images per second, and the peak resident memory of
  each training epoch above the process's memory before the data set existed;
- a per-layer table of cnnumpy's forward and backward milliseconds per batch;
- the naive reference loops on ``--naive-batches`` batches, extrapolated to an epoch.

Uses only the public ``cnnumpy.nn`` / ``cnnumpy.optim`` API. Run::

    python benchmarks/lenet.py                     # the README figures
    python benchmarks/lenet.py --images 5000 --rounds 3 --naive-batches 0  # quick
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from cnnumpy import nn, optim

DTYPES = {
    "float32": (np.float32, torch.float32),
    "float64": (np.float64, torch.float64),
}


# --- the two networks ----------------------------------------------------------------


def cnnumpy_lenet5(dtype: type, seed: int, impl: str = "im2col") -> nn.Sequential:
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2, dtype=dtype, rng=rng, impl=impl),
        nn.Tanh(),
        nn.AvgPool2d(2, impl=impl),
        nn.Conv2d(6, 16, 5, dtype=dtype, rng=rng, impl=impl),
        nn.Tanh(),
        nn.AvgPool2d(2, impl=impl),
        nn.Flatten(),
        nn.Linear(400, 120, dtype=dtype, rng=rng),
        nn.Tanh(),
        nn.Linear(120, 84, dtype=dtype, rng=rng),
        nn.Tanh(),
        nn.Linear(84, 10, dtype=dtype, rng=rng),
    )


def torch_lenet5(dtype: torch.dtype, seed: int) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    t = torch.nn
    return t.Sequential(
        t.Conv2d(1, 6, 5, padding=2),
        t.Tanh(),
        t.AvgPool2d(2),
        t.Conv2d(6, 16, 5),
        t.Tanh(),
        t.AvgPool2d(2),
        t.Flatten(),
        t.Linear(400, 120),
        t.Tanh(),
        t.Linear(120, 84),
        t.Tanh(),
        t.Linear(84, 10),
    ).to(dtype)


# --- one epoch / one inference pass ----------------------------------------------------


def cnnumpy_epoch(model, x: np.ndarray, y: np.ndarray, batch: int) -> None:
    model.train()
    model.input_grad = False  # the input is data
    criterion = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    for i in range(0, len(x), batch):
        opt.zero_grad()
        criterion(model(x[i : i + batch]), y[i : i + batch])
        model.backward(criterion.backward())
        opt.step()


def torch_epoch(model, x: torch.Tensor, y: torch.Tensor, batch: int) -> None:
    model.train()
    criterion = torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for i in range(0, len(x), batch):
        opt.zero_grad()
        loss = criterion(model(x[i : i + batch]), y[i : i + batch])
        loss.backward()
        opt.step()


def cnnumpy_infer(model, x: np.ndarray, batch: int) -> None:
    model.eval()
    for i in range(0, len(x), batch):
        model(x[i : i + batch])


def torch_infer(model, x: torch.Tensor, batch: int) -> None:
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            model(x[i : i + batch])


# --- memory ----------------------------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (Linux): VmHWM then covers one phase."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --- per-layer profile -------------------------------------------------------------------


def layer_table(dtype: type, x: np.ndarray, y: np.ndarray, batch: int, batches: int):
    """Forward and backward milliseconds per batch for each layer of cnnumpy's LeNet."""
    model = cnnumpy_lenet5(dtype, seed=0)
    model.train()
    criterion = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    layers = list(model)
    fwd = np.zeros(len(layers) + 1)
    bwd = np.zeros(len(layers) + 1)
    for b in range(batches + 1):  # the first batch warms up and is not counted
        warm = b > 0
        i = (b * batch) % len(x)
        h = x[i : i + batch]
        opt.zero_grad()
        for k, m in enumerate(layers):
            t = time.perf_counter()
            h = m(h)
            fwd[k] += (time.perf_counter() - t) * warm
        t = time.perf_counter()
        criterion(h, y[i : i + batch])
        g = criterion.backward()
        fwd[-1] += (time.perf_counter() - t) * warm
        for k in reversed(range(len(layers))):
            layers[k].input_grad = k > 0  # as Sequential decides for this network
            t = time.perf_counter()
            g = layers[k].backward(g)
            bwd[k] += (time.perf_counter() - t) * warm
        t = time.perf_counter()
        opt.step()
        bwd[-1] += (time.perf_counter() - t) * warm
    names = [f"{k}: {type(m).__name__}" for k, m in enumerate(layers)]
    names.append("loss / Adam step")
    return names, fwd * 1e3 / batches, bwd * 1e3 / batches


# --- driver ----------------------------------------------------------------------------


def timed(fn: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=50_000)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--infer-images", type=int, default=10_000)
    p.add_argument("--infer-batch", type=int, default=1_000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--naive-batches", type=int, default=2)
    p.add_argument("--profile-batches", type=int, default=50)
    args = p.parse_args()
    for name in ("images", "batch_size", "infer_images", "infer_batch", "threads"):
        if getattr(args, name) < 1:
            p.error(
                f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}"
            )
    if args.rounds < 1 or args.naive_batches < 0 or args.profile_batches < 0:
        p.error("--rounds must be >= 1; --naive-batches, --profile-batches >= 0")
    dtypes = args.dtypes.split(",")
    if not set(dtypes) <= set(DTYPES):
        p.error(f"--dtypes must be a comma list of {sorted(DTYPES)}, got {args.dtypes}")

    torch.set_num_threads(args.threads)
    limits = threadpool_limits(limits=args.threads)
    blas = [
        f"{i['internal_api']} {i['version']} ({i.get('architecture')})"
        for i in threadpool_info()
    ]
    print(
        f"# cnnumpy vs PyTorch {torch.__version__}, NumPy {np.__version__} ({', '.join(blas)})"
    )
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads"
    )
    print(f"# command: python benchmarks/lenet.py {' '.join(sys.argv[1:])}".rstrip())

    base_rss = rss_mb()
    rng = np.random.default_rng(0)
    data = {}
    for name in dtypes:
        np_dt, t_dt = DTYPES[name]
        x = rng.standard_normal((args.images, 1, 28, 28)).astype(np_dt)
        y = rng.integers(0, 10, args.images)
        xi = x[: args.infer_images]
        data[name] = (
            x,
            y,
            torch.from_numpy(x),
            torch.from_numpy(y),
            xi,
            torch.from_numpy(xi),
        )
    can_reset = reset_peak()

    train = {(lib, d): [] for lib in ("cnnumpy", "torch") for d in dtypes}
    infer = {(lib, d): [] for lib in ("cnnumpy", "torch") for d in dtypes}
    peak = {}
    for r in range(args.rounds):
        for name in dtypes:
            np_dt, t_dt = DTYPES[name]
            x, y, tx, ty, xi, txi = data[name]
            for lib in ("cnnumpy", "torch") if r % 2 == 0 else ("torch", "cnnumpy"):
                if lib == "cnnumpy":
                    model = cnnumpy_lenet5(np_dt, seed=r)
                    reset_peak()
                    train[lib, name].append(
                        timed(lambda: cnnumpy_epoch(model, x, y, args.batch_size))
                    )
                    infer[lib, name].append(
                        timed(lambda: cnnumpy_infer(model, xi, args.infer_batch))
                    )
                else:
                    model = torch_lenet5(t_dt, seed=r)
                    reset_peak()
                    train[lib, name].append(
                        timed(lambda: torch_epoch(model, tx, ty, args.batch_size))
                    )
                    infer[lib, name].append(
                        timed(lambda: torch_infer(model, txi, args.infer_batch))
                    )
                peak[lib, name] = max(peak.get((lib, name), 0.0), peak_mb() - base_rss)
        print(f"# round {r + 1}/{args.rounds} done", file=sys.stderr)

    print()
    print(
        f"Training epoch: {args.images:,} images, batch {args.batch_size}, Adam; "
        f"inference: {args.infer_images:,} images, batch {args.infer_batch}; "
        f"median of {args.rounds} interleaved rounds"
    )
    print()
    print(
        "| dtype | task | cnnumpy s | PyTorch s | ratio | cnnumpy img/s | PyTorch img/s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in dtypes:
        for task, table, n in (
            ("train epoch", train, args.images),
            ("inference", infer, args.infer_images),
        ):
            c, t = (
                statistics.median(table["cnnumpy", name]),
                statistics.median(table["torch", name]),
            )
            print(
                f"| {name} | {task} | {c:.2f} | {t:.2f} | {c / t:.2f}x | {n / c:,.0f} | {n / t:,.0f} |"
            )
    print()
    data_mb = {n: data[n][0].nbytes / 2**20 for n in dtypes}
    note = "" if can_reset else " (peak-RSS reset unavailable: process-wide peaks)"
    print(
        f"Peak resident memory above the pre-data baseline during train + inference{note}:"
    )
    print()
    print("| dtype | data set MB | cnnumpy MB | PyTorch MB |")
    print("|---|---:|---:|---:|")
    for name in dtypes:
        print(
            f"| {name} | {data_mb[name]:.0f} | {peak['cnnumpy', name]:.0f} | {peak['torch', name]:.0f} |"
        )

    if args.profile_batches:
        print()
        print(
            f"cnnumpy per layer, ms per batch of {args.batch_size} (mean of {args.profile_batches} batches):"
        )
        print()
        header = "| layer | " + " | ".join(f"{d} fwd | {d} bwd" for d in dtypes) + " |"
        print(header)
        print("|---|" + "---:|---:|" * len(dtypes))
        tables = [
            layer_table(
                DTYPES[d][0], *data[d][:2], args.batch_size, args.profile_batches
            )
            for d in dtypes
        ]
        for k, name in enumerate(tables[0][0]):
            cells = " | ".join(f"{f[k]:.2f} | {b[k]:.2f}" for _, f, b in tables)
            print(f"| {name} | {cells} |")
        totals = " | ".join(f"{f.sum():.2f} | {b.sum():.2f}" for _, f, b in tables)
        print(f"| total | {totals} |")

    if args.naive_batches:
        name = dtypes[0]
        np_dt = DTYPES[name][0]
        x, y = data[name][:2]
        n = args.naive_batches * args.batch_size
        model = cnnumpy_lenet5(np_dt, seed=0, impl="naive")
        s = timed(lambda: cnnumpy_epoch(model, x[:n], y[:n], args.batch_size))
        epoch = s / n * args.images
        c = statistics.median(train["cnnumpy", name])
        t = statistics.median(train["torch", name])
        print()
        print(
            f"One training epoch of {args.images:,} images, {name} (naive: {args.naive_batches} "
            f"batches timed, extrapolated):"
        )
        print()
        print("| implementation | seconds per epoch | vs PyTorch |")
        print("|---|---:|---:|")
        print(
            f"| cnnumpy naive loops (`impl='naive'`) | {epoch:,.0f} | {epoch / t:,.0f}x |"
        )
        print(f"| cnnumpy im2col | {c:.2f} | {c / t:.2f}x |")
        print(f"| PyTorch {torch.__version__} | {t:.2f} | 1.00x |")
    limits.unregister() if hasattr(limits, "unregister") else None
    return 0


if __name__ == "__main__":
    sys.exit(main())
