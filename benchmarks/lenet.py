"""LeNet-5 in cnnumpy and in PyTorch, side by side, in one process.

Measures, with the same threads and interleaved rounds (median of ``--rounds``;
within a round's epoch the libraries take turns every ``--turn-batches``
batches; inference: median of ``--rounds`` x ``--infer-repeats`` alternating
passes):

- one training epoch (``--images`` random 1x28x28 images, batch ``--batch-size``,
  Adam 1e-3, cross-entropy) in float32 and in float64, for both libraries;
- inference on ``--infer-images`` images, batch ``--infer-batch``;
- the ratio cnnumpy / PyTorch and images per second;
- the peak resident memory of one training epoch, each library in a fresh
  subprocess: peak RSS minus the RSS after imports, so it counts the data set;
- a per-layer table of forward and backward milliseconds per batch, cnnumpy
  beside PyTorch;
- the naive reference loops on ``--naive-batches`` batches, extrapolated to an epoch.

Uses only the public ``cnnumpy.nn`` / ``cnnumpy.optim`` API. Run::

    python benchmarks/lenet.py                     # the figures of results-lenet.md
    python benchmarks/lenet.py --images 5000 --rounds 3 --naive-batches 0  # quick
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

import cnnumpy
from cnnumpy import nn, optim

DTYPES = {
    "float32": (np.float32, torch.float32),
    "float64": (np.float64, torch.float64),
}


# --- the two networks ----------------------------------------------------------------


def cnnumpy_lenet5(dtype: type, seed: int, impl: str = "im2col") -> nn.Sequential:
    """The seed's LeNet-5, as ``cnnumpy.models.lenet5`` builds it.

    The activations overwrite their input (``inplace=True``), as the model
    factory does: each follows a layer that does not keep its output.
    """
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2, dtype=dtype, rng=rng, impl=impl),
        nn.Tanh(inplace=True),
        nn.AvgPool2d(2, impl=impl),
        nn.Conv2d(6, 16, 5, dtype=dtype, rng=rng, impl=impl),
        nn.Tanh(inplace=True),
        nn.AvgPool2d(2, impl=impl),
        nn.Flatten(),
        nn.Linear(400, 120, dtype=dtype, rng=rng),
        nn.Tanh(inplace=True),
        nn.Linear(120, 84, dtype=dtype, rng=rng),
        nn.Tanh(inplace=True),
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


def cnnumpy_trainer(model) -> Callable[[np.ndarray, np.ndarray, int], None]:
    """``train(x, y, batch)``: Adam steps over ``x``; one optimizer across calls."""
    model.train()
    model.input_grad = False  # the input is data
    criterion = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=1e-3)

    def train(x: np.ndarray, y: np.ndarray, batch: int) -> None:
        for i in range(0, len(x), batch):
            opt.zero_grad()
            criterion(model(x[i : i + batch]), y[i : i + batch])
            model.backward(criterion.backward())
            opt.step()

    return train


def torch_trainer(model) -> Callable[[torch.Tensor, torch.Tensor, int], None]:
    """``train(x, y, batch)``: Adam steps over ``x``; one optimizer across calls."""
    model.train()
    criterion = torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train(x: torch.Tensor, y: torch.Tensor, batch: int) -> None:
        for i in range(0, len(x), batch):
            opt.zero_grad()
            loss = criterion(model(x[i : i + batch]), y[i : i + batch])
            loss.backward()
            opt.step()

    return train


def cnnumpy_epoch(model, x: np.ndarray, y: np.ndarray, batch: int) -> None:
    cnnumpy_trainer(model)(x, y, batch)


def torch_epoch(model, x: torch.Tensor, y: torch.Tensor, batch: int) -> None:
    torch_trainer(model)(x, y, batch)


def cnnumpy_infer(model, x: np.ndarray, batch: int) -> None:
    model.eval()
    for i in range(0, len(x), batch):
        model(x[i : i + batch])


def torch_infer(model, x: torch.Tensor, batch: int) -> None:
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            model(x[i : i + batch])


# --- peak memory, one library and dtype per fresh process ---------------------------


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


def memory_probe(lib: str, dtype: str, images: int, batch: int) -> None:
    """Print this process's peak RSS growth over one epoch, data set included."""
    base = status_mb("VmRSS")
    np_dt, t_dt = DTYPES[dtype]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((images, 1, 28, 28), dtype=np_dt)
    y = rng.integers(0, 10, images)
    reset_peak()  # forget any temporaries of making the data
    if lib == "cnnumpy":
        cnnumpy_epoch(cnnumpy_lenet5(np_dt, 0), x, y, batch)
    else:
        torch_epoch(
            torch_lenet5(t_dt, 0), torch.from_numpy(x), torch.from_numpy(y), batch
        )
    peak = status_mb("VmHWM")
    print(f"{peak - base:.1f} {x.nbytes / 2**20:.1f}")


def measure_memory(
    lib: str, dtype: str, args: argparse.Namespace
) -> tuple[float, float]:
    cmd = [sys.executable, __file__, "--memory-probe", lib, dtype]
    cmd += ["--images", str(args.images), "--batch-size", str(args.batch_size)]
    cmd += ["--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    peak, data = out.split()
    return float(peak), float(data)


# --- per-layer profile -------------------------------------------------------------


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
            layers[k].input_grad = k > 0  # what Sequential decides for this network
            t = time.perf_counter()
            g = layers[k].backward(g)
            bwd[k] += (time.perf_counter() - t) * warm
        t = time.perf_counter()
        opt.step()
        bwd[-1] += (time.perf_counter() - t) * warm
    names = [f"{k}: {type(m).__name__}" for k, m in enumerate(layers)]
    return [*names, "loss / Adam step"], fwd * 1e3 / batches, bwd * 1e3 / batches


def torch_layer_table(tdtype, x: np.ndarray, y: np.ndarray, batch: int, batches: int):
    """PyTorch's milliseconds per layer, measured like :func:`layer_table`.

    Each layer runs on a detached copy of its input, so its backward can be
    timed on its own: ``out.backward(dy)`` then hands ``input.grad`` down.
    """
    model = torch_lenet5(tdtype, seed=0)
    model.train()
    criterion = torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    layers = list(model)
    fwd = np.zeros(len(layers) + 1)
    bwd = np.zeros(len(layers) + 1)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    for b in range(batches + 1):
        warm = b > 0
        i = (b * batch) % len(x)
        h = tx[i : i + batch]
        opt.zero_grad()
        inputs, outputs = [], []
        for k, m in enumerate(layers):
            h = h.detach().requires_grad_(k > 0)
            t = time.perf_counter()
            out = m(h)
            fwd[k] += (time.perf_counter() - t) * warm
            inputs.append(h)
            outputs.append(out)
            h = out
        logits = h.detach().requires_grad_(True)
        t = time.perf_counter()
        loss = criterion(logits, ty[i : i + batch])
        fwd[-1] += (time.perf_counter() - t) * warm
        t = time.perf_counter()
        loss.backward()
        g = logits.grad
        for k in reversed(range(len(layers))):
            t = time.perf_counter()
            outputs[k].backward(g)
            bwd[k] += (time.perf_counter() - t) * warm
            g = inputs[k].grad
        t = time.perf_counter()
        opt.step()
        bwd[-1] += (time.perf_counter() - t) * warm
    return fwd * 1e3 / batches, bwd * 1e3 / batches


# --- driver ------------------------------------------------------------------------


def timed(fn: Callable[..., None], *args: object) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=50_000)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--infer-images", type=int, default=10_000)
    p.add_argument("--infer-batch", type=int, default=1_000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="timed rounds; the medians are over these (default: 5)",
    )
    p.add_argument(
        "--turn-batches",
        type=int,
        default=50,
        help="training batches per turn; the libraries take turns within an epoch "
        "(default: 50)",
    )
    p.add_argument(
        "--infer-repeats",
        type=int,
        default=3,
        help="inference passes per library and round (default: 3)",
    )
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--naive-batches", type=int, default=2)
    p.add_argument("--profile-batches", type=int, default=50)
    p.add_argument("--no-memory", action="store_true", help="skip the memory probes")
    p.add_argument(
        "--memory-probe", nargs=2, metavar=("LIB", "DTYPE"), help=argparse.SUPPRESS
    )
    args = p.parse_args()
    for name in (
        "images",
        "batch_size",
        "infer_images",
        "infer_batch",
        "threads",
        "rounds",
        "turn_batches",
        "infer_repeats",
    ):
        if getattr(args, name) < 1:
            p.error(
                f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}"
            )
    for name in ("naive_batches", "profile_batches"):
        if getattr(args, name) < 0:
            p.error(
                f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}"
            )
    args.dtypes = args.dtypes.split(",")
    if not set(args.dtypes) <= set(DTYPES):
        p.error(f"--dtypes must be a comma list of {sorted(DTYPES)}, got {args.dtypes}")
    return args


def run_rounds(args: argparse.Namespace, data: dict) -> tuple[dict, dict]:
    """Interleaved rounds (the order alternates); each run on a fresh model.

    In each round both libraries train one epoch, taking turns every
    ``--turn-batches`` batches, so that both see the same stretches of a
    shared machine whose speed drifts within seconds; each library's epoch
    time is the sum of its turns. Then their trained models run inference
    ``--infer-repeats`` times each, alternating: one inference pass takes well
    under a second, so a single pass per round would be at the mercy of a
    shared machine's bad moment.
    """
    train: dict = {(lib, d): [] for lib in ("cnnumpy", "torch") for d in args.dtypes}
    infer: dict = {(lib, d): [] for lib in ("cnnumpy", "torch") for d in args.dtypes}
    for r in range(args.rounds + 1):  # round 0 is a short warm-up, not counted
        n = args.images if r else 10 * args.batch_size
        turn = args.turn_batches * args.batch_size
        for name in args.dtypes:
            np_dt, t_dt = DTYPES[name]
            x, y, tx, ty = data[name]
            xi, txi = x[: args.infer_images], tx[: args.infer_images]
            order = ("cnnumpy", "torch") if r % 2 else ("torch", "cnnumpy")
            models = {
                "cnnumpy": cnnumpy_lenet5(np_dt, seed=r),
                "torch": torch_lenet5(t_dt, seed=r),
            }
            trainers = {
                "cnnumpy": (cnnumpy_trainer(models["cnnumpy"]), x, y),
                "torch": (torch_trainer(models["torch"]), tx, ty),
            }
            spent = dict.fromkeys(order, 0.0)
            for k, start in enumerate(range(0, n, turn)):
                stop = min(start + turn, n)
                for lib in order if k % 2 == 0 else order[::-1]:
                    train_, xs, ys = trainers[lib]
                    spent[lib] += timed(
                        train_, xs[start:stop], ys[start:stop], args.batch_size
                    )
            if r:
                for lib in order:
                    train[lib, name].append(spent[lib])
            for rep in range(args.infer_repeats):
                for lib in order if rep % 2 else order[::-1]:
                    if lib == "cnnumpy":
                        t = timed(cnnumpy_infer, models[lib], xi, args.infer_batch)
                    else:
                        t = timed(torch_infer, models[lib], txi, args.infer_batch)
                    if r:
                        infer[lib, name].append(t)
        if r:
            print(f"# round {r}/{args.rounds} done", file=sys.stderr)
    return train, infer


def print_speed(args, train, infer) -> None:
    print(
        f"Training epoch: {args.images:,} images, batch {args.batch_size}, Adam 1e-3; "
        f"inference: {args.infer_images:,} images, batch {args.infer_batch}; "
        f"medians of {args.rounds} interleaved rounds; in each, the libraries take "
        f"turns every {args.turn_batches} training batches, then make "
        f"{args.infer_repeats} alternating inference passes each."
    )
    print()
    print(
        "| dtype | task | cnnumpy s | PyTorch s | cnnumpy / PyTorch | cnnumpy img/s | PyTorch img/s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in args.dtypes:
        for task, table, n in (
            ("train epoch", train, args.images),
            ("inference", infer, args.infer_images),
        ):
            c = statistics.median(table["cnnumpy", name])
            t = statistics.median(table["torch", name])
            print(
                f"| {name} | {task} | {c:.2f} | {t:.2f} | {c / t:.2f}x | {n / c:,.0f} | {n / t:,.0f} |"
            )
    print()
    print(
        "Each round on its own (cnnumpy / PyTorch, each library's time in that "
        "round; inference: the median of the round's passes), to show the spread:"
    )
    print()
    print(
        "| dtype | task | "
        + " | ".join(f"round {r + 1}" for r in range(args.rounds))
        + " |"
    )
    print("|---|---|" + "---:|" * args.rounds)
    for name in args.dtypes:
        for task, table in (("train epoch", train), ("inference", infer)):
            per = len(table["cnnumpy", name]) // args.rounds  # times per round
            ratios = [
                statistics.median(table["cnnumpy", name][r * per : (r + 1) * per])
                / statistics.median(table["torch", name][r * per : (r + 1) * per])
                for r in range(args.rounds)
            ]
            print(
                f"| {name} | {task} | " + " | ".join(f"{q:.2f}x" for q in ratios) + " |"
            )


def print_memory(args) -> None:
    print()
    print(
        "Peak resident memory of one training epoch (fresh process, data set included):"
    )
    print()
    print("| dtype | data set MB | cnnumpy MB | PyTorch MB |")
    print("|---|---:|---:|---:|")
    for name in args.dtypes:
        c, data_mb = measure_memory("cnnumpy", name, args)
        t, _ = measure_memory("torch", name, args)
        print(f"| {name} | {data_mb:.0f} | {c:.0f} | {t:.0f} |")


def print_layers(args, data) -> None:
    """Per layer, cnnumpy beside PyTorch: where each one spends its time."""
    for d in args.dtypes:
        np_dt, t_dt = DTYPES[d]
        x, y = data[d][:2]
        names, f, b = layer_table(np_dt, x, y, args.batch_size, args.profile_batches)
        tf, tb = torch_layer_table(t_dt, x, y, args.batch_size, args.profile_batches)
        print()
        print(
            f"Per layer, {d}, ms per batch of {args.batch_size} "
            f"(mean of {args.profile_batches} batches):"
        )
        print()
        print("| layer | cnnumpy fwd | cnnumpy bwd | PyTorch fwd | PyTorch bwd |")
        print("|---|---:|---:|---:|---:|")
        for k, name in enumerate(names):
            print(f"| {name} | {f[k]:.2f} | {b[k]:.2f} | {tf[k]:.2f} | {tb[k]:.2f} |")
        print(
            f"| total | {f.sum():.2f} | {b.sum():.2f} | {tf.sum():.2f} | {tb.sum():.2f} |"
        )


def print_naive(args, data, train) -> None:
    name = args.dtypes[0]
    x, y = data[name][:2]
    n = args.naive_batches * args.batch_size
    model = cnnumpy_lenet5(DTYPES[name][0], seed=0, impl="naive")
    naive = timed(cnnumpy_epoch, model, x[:n], y[:n], args.batch_size) / n * args.images
    fast = statistics.median(train["cnnumpy", name])
    ref = statistics.median(train["torch", name])
    print()
    print(
        f"One training epoch of {args.images:,} images, {name} (naive: {args.naive_batches} batches timed, extrapolated):"
    )
    print()
    print("| implementation | s per epoch | vs PyTorch |")
    print("|---|---:|---:|")
    print(
        f"| cnnumpy naive loops (`impl='naive'`) | {naive:,.0f} | {naive / ref:,.0f}x |"
    )
    print(f"| cnnumpy im2col | {fast:.2f} | {fast / ref:.2f}x |")
    print(f"| PyTorch {torch.__version__} | {ref:.2f} | 1.00x |")


def main() -> int:
    args = parse_args()
    torch.set_num_threads(args.threads)
    cnnumpy.set_num_threads(args.threads)
    threadpool_limits(limits=args.threads)
    if args.memory_probe:
        memory_probe(*args.memory_probe, args.images, args.batch_size)
        return 0
    blas = ", ".join(
        " ".join(
            str(i[k]) for k in ("internal_api", "version", "architecture") if i.get(k)
        )
        + f" x{i['num_threads']}"
        for i in threadpool_info()
    )
    print(f"# cnnumpy vs PyTorch {torch.__version__}; NumPy {np.__version__} ({blas})")
    print(f"# {platform.machine()}, {os.cpu_count()} cores, {args.threads} threads")
    print(f"# command: python benchmarks/lenet.py {' '.join(sys.argv[1:])}".rstrip())
    print()
    rng = np.random.default_rng(0)
    data = {}
    for name in args.dtypes:
        n = max(args.images, args.infer_images)  # training takes the first --images
        x = rng.standard_normal((n, 1, 28, 28), dtype=DTYPES[name][0])
        y = rng.integers(0, 10, n)
        data[name] = (x, y, torch.from_numpy(x), torch.from_numpy(y))
    train, infer = run_rounds(args, data)
    print_speed(args, train, infer)
    if not args.no_memory:
        print_memory(args)
    if args.profile_batches:
        print_layers(args, data)
    if args.naive_batches:
        print_naive(args, data, train)
    return 0


if __name__ == "__main__":
    sys.exit(main())
