"""LeNet-5 in cnnumpy and in PyTorch, side by side, in one process.

Measures, at each of ``--threads`` (both libraries and NumPy's BLAS set
alike; default 1 and 2), in interleaved rounds (median of ``--rounds``; within
a round's epoch the libraries take turns every ``--turn-batches`` batches;
inference: median of ``--rounds`` x ``--infer-repeats`` alternating passes):

- one training epoch (``--images`` random 1x28x28 images, batch ``--batch-size``,
  Adam 1e-3, cross-entropy) in float32 and in float64, for both libraries;
- inference on ``--infer-images`` images, batch ``--infer-batch``;
- the ratio cnnumpy / PyTorch and images per second at each thread count, side
  by side, and each library's speed-up from the fewest to the most threads;
- the peak resident memory of one training epoch, each library in a fresh
  subprocess: peak RSS minus the RSS after imports, so it counts the data set;
- per layer, forward and backward milliseconds per step, cnnumpy beside
  PyTorch, and the training loop's cost outside the layers (``zero_grad``, the
  loss, the optimizer step, the glue), at the most threads;
- the naive reference loops on ``--naive-batches`` batches, extrapolated to an epoch;
- each library's fastest way to use 2 cores, in interleaved turns too: cnnumpy
  on 2 processes of 1 thread (as ``cnnumpy train --processes 2``) beside
  PyTorch on 1 process with 2 threads (``--no-processes`` skips it).

The output starts with the machine (CPU, SIMD flags, NumPy's BLAS and its
kernel, PyTorch's backend); ``--record FILE`` also files it into a results
file as its newest run. PyTorch's network is built from cnnumpy's (same
structure and weights). Run::

    python benchmarks/lenet.py                     # the figures of results-lenet.md
    python benchmarks/lenet.py --images 5000 --rounds 3 --naive-batches 0  # quick
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from collections.abc import Callable

import numpy as np
import torch

from _common import (
    DTYPES,
    Case,
    cnnumpy_trainer,
    positive,
    print_speed,
    reset_peak,
    run_probe,
    run_rounds,
    set_threads,
    status_mb,
    thread_counts,
    timed,
    torch_trainer,
)
from _machine import Tee, machine_lines, record_run
from _processes import make_data, print_processes
from _profile import print_profile, profile_steps
from _twin import torch_twin
from cnnumpy import nn

# --- the network -----------------------------------------------------------------------


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


def both_lenet5(dtype: type) -> Callable[[int], tuple[nn.Sequential, torch.nn.Module]]:
    """``build(seed)``: cnnumpy's LeNet-5 and its PyTorch twin (same weights)."""

    def build(seed: int) -> tuple[nn.Sequential, torch.nn.Module]:
        model = cnnumpy_lenet5(dtype, seed)
        return model, torch_twin(model)

    return build


# --- peak memory, one library and dtype per fresh process ---------------------------


def memory_probe(lib: str, dtype: str, images: int, batch: int) -> None:
    """Print this process's peak RSS growth over one epoch, data set included."""
    base = status_mb("VmRSS")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((images, 1, 28, 28), dtype=DTYPES[dtype][0])
    y = rng.integers(0, 10, images)
    model, twin = both_lenet5(DTYPES[dtype][0])(0)
    reset_peak()  # forget any temporaries of making the data
    if lib == "cnnumpy":
        cnnumpy_trainer(model, "adam")(x, y, batch)
    else:
        del model
        torch_trainer(twin, "adam")(torch.from_numpy(x), torch.from_numpy(y), batch)
    peak = status_mb("VmHWM")
    print(f"{peak - base:.1f} {x.nbytes / 2**20:.1f}")


def print_memory(args) -> None:
    print()
    print(
        "Peak resident memory of one training epoch (fresh process, data set included):"
    )
    print()
    print("| dtype | data set MB | cnnumpy MB | PyTorch MB |")
    print("|---|---:|---:|---:|")
    for name in args.dtypes:
        peaks = {}
        for lib in ("cnnumpy", "torch"):
            cmd = [sys.executable, __file__, "--memory-probe", lib, name]
            cmd += ["--images", str(args.images), "--batch-size", str(args.batch_size)]
            cmd += ["--threads", str(args.threads[-1])]
            peaks[lib], data_mb = run_probe(cmd)
        print(
            f"| {name} | {data_mb:.0f} | {peaks['cnnumpy']:.0f} | {peaks['torch']:.0f} |"
        )


# --- driver ------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=50_000)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--infer-images", type=int, default=10_000)
    p.add_argument("--infer-batch", type=int, default=1_000)
    p.add_argument(
        "--threads",
        type=thread_counts,
        default=[1, 2],
        help="comma list of thread counts, each measured in every round (default: 1,2)",
    )
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
    p.add_argument(
        "--profile-batches",
        type=int,
        default=50,
        help="steps per library of the per-layer and overhead tables (default: 50)",
    )
    p.add_argument("--no-memory", action="store_true", help="skip the memory probes")
    p.add_argument(
        "--no-processes",
        action="store_true",
        help="skip the table of cnnumpy on 2 processes beside PyTorch on 2 threads",
    )
    p.add_argument(
        "--record",
        metavar="FILE",
        help="also put this run's output into FILE (a results file) as its newest run",
    )
    p.add_argument(
        "--memory-probe", nargs=2, metavar=("LIB", "DTYPE"), help=argparse.SUPPRESS
    )
    args = p.parse_args()
    positive(
        p, args, "images", "batch_size", "infer_images", "infer_batch", "rounds",
        "turn_batches", "infer_repeats",
    )  # fmt: skip
    for name in ("naive_batches", "profile_batches"):
        if getattr(args, name) < 0:
            p.error(
                f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}"
            )
    args.dtypes = args.dtypes.split(",")
    if not set(args.dtypes) <= set(DTYPES):
        p.error(f"--dtypes must be a comma list of {sorted(DTYPES)}, got {args.dtypes}")
    args.recipe = "adam"
    return args


def print_layers(args, cases: list[Case]) -> None:
    """Per layer and outside the layers, cnnumpy beside PyTorch, at the most threads."""
    set_threads(args.threads[-1])
    for case in cases:
        profiles = profile_steps(
            case.build(0), case.x, case.y, args.batch_size, args.profile_batches, "adam"
        )
        print_profile(
            profiles,
            f"{case.name}, batch {args.batch_size}, {args.threads[-1]} threads",
        )


def print_naive(args, cases: list[Case], train) -> None:
    case = cases[0]
    n = args.naive_batches * args.batch_size
    n_threads = args.threads[-1]
    set_threads(n_threads)
    model = cnnumpy_lenet5(DTYPES[case.name][0], seed=0, impl="naive")
    trainer = cnnumpy_trainer(model, "adam")
    naive = timed(trainer, case.x[:n], case.y[:n], args.batch_size) / n * args.images
    fast = statistics.median(train["cnnumpy", case.name, n_threads])
    ref = statistics.median(train["torch", case.name, n_threads])
    print()
    print(
        f"One training epoch of {args.images:,} images, {case.name}, {n_threads} "
        f"threads (naive: {args.naive_batches} batches timed, extrapolated):"
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
    if args.memory_probe:
        set_threads(args.threads[-1])
        memory_probe(*args.memory_probe, args.images, args.batch_size)
        return 0
    command = f"python benchmarks/lenet.py {' '.join(sys.argv[1:])}".rstrip()
    tee = Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        print("\n".join(machine_lines(command)))
        print()
        # The same images in a spawned rank of print_processes: make_data's.
        n = max(args.images, args.infer_images)  # training takes the first --images
        cases = [
            Case(name, both_lenet5(DTYPES[name][0]), x, y)
            for name, x, y in make_data(args.dtypes, n)
        ]
        train, infer = run_rounds(cases, args)
        print(
            f"Training epoch: {args.images:,} images, batch {args.batch_size}, Adam 1e-3; "
            f"inference: {args.infer_images:,} images, batch {args.infer_batch}; "
            f"medians of {args.rounds} interleaved rounds; in each, at each thread "
            f"count, the libraries take turns every {args.turn_batches} training "
            f"batches, then make {args.infer_repeats} alternating inference passes each."
        )
        print()
        print_speed(cases, args, train, infer, "dtype")
        if not args.no_processes:
            print_processes(args, cases, cnnumpy_lenet5)
        if not args.no_memory:
            print_memory(args)
        if args.profile_batches:
            print_layers(args, cases)
        if args.naive_batches:
            print_naive(args, cases, train)
    if args.record:
        record_run(args.record, tee.kept.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
