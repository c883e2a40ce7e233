"""resnet20 in cnnumpy and in PyTorch, side by side, in one process.

Measures, float32, at each of ``--threads`` (both libraries and NumPy's BLAS
set alike; default 2), in interleaved rounds (medians of ``--rounds``):

- every distinct convolution of resnet20 (3x3 at 16, 32 and 64 channels, the
  strided 3x3 that start stages 2 and 3, their 1x1 shortcuts, the stem),
  forward plus backward at batch ``--conv-batch``, for each input of
  ``--inputs`` (1x28x28 as Fashion-MNIST, 3x32x32 as CIFAR-10): milliseconds
  per call and the ratio, then the sum over all of resnet20's convolutions;
- a training epoch of ``--images`` random images of each input, batch
  ``--batch-size``, with ``--optimizer`` (SGD with momentum by default, the
  CIFAR ResNet recipe), the libraries taking turns every ``--turn-batches``
  batches; the ratio, images per second, each round's ratio;
- per top-level layer (stem, stages, head) and outside the layers, the
  milliseconds of a training step, cnnumpy beside PyTorch;
- the peak resident memory of training on a data set of the real size
  (60,000 images for 1x28x28, 50,000 for 3x32x32), each library in a fresh
  process: peak RSS minus the RSS after imports, against the data set size.

PyTorch's network is built from cnnumpy's (same structure and weights). The
output starts with the machine; ``--record FILE`` also files it into a
results file as its newest run. Run::

    python benchmarks/resnet.py                     # results-resnet.md's figures
    python benchmarks/resnet.py --inputs 3x32x32 --images 1280 --rounds 3  # quick
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys

import numpy as np
import torch

from _common import (
    LIBS,
    OPTIMIZERS,
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
    torch_trainer,
)
from _convs import parse_input, print_convs, time_convs
from _machine import Tee, machine_lines, record_run
from _profile import print_profile, profile_steps
from _twin import torch_twin
from cnnumpy import models, nn

# The data sets each input stands for, and their training-set sizes.
DATASETS = {"1x28x28": ("Fashion-MNIST", 60_000), "3x32x32": ("CIFAR-10", 50_000)}
MEMORY_TARGET_MB = 300  # issue 20: at most the data set plus this


def build(inp: str):
    """``build(seed)``: resnet20 for input ``inp`` and its PyTorch twin."""
    c, s = parse_input(inp)

    def make(seed: int) -> tuple[nn.Sequential, torch.nn.Module]:
        model = models.resnet20(
            in_channels=c, input_size=s, rng=np.random.default_rng(seed)
        )
        return model, torch_twin(model)

    return make


# --- peak memory, one library and input per fresh process ---------------------------


def memory_probe(lib: str, inp: str, images: int, batch: int, batches: int) -> None:
    """Print peak RSS growth, data set size and model size, in MiB.

    ``batches`` shuffled batches of a data set of ``images`` images, gathered
    by index as a data loader does, with the run's optimizer.
    """
    base = status_mb("VmRSS")
    c, s = parse_input(inp)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((images, c, s, s), dtype=np.float32)
    y = rng.integers(0, 10, images)
    model, twin = build(inp)(0)
    model_mb = sum(v.nbytes for v in model.state_dict().values()) / 2**20
    order = rng.permutation(images)[: batches * batch]
    reset_peak()  # forget any temporaries of making the data
    if lib == "cnnumpy":
        del twin
        train = cnnumpy_trainer(model, "sgd")
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            train(x[idx], y[idx], batch)
    else:
        del model
        train = torch_trainer(twin, "sgd")
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        for i in range(0, len(order), batch):
            idx = torch.from_numpy(order[i : i + batch])
            train(tx[idx], ty[idx], batch)
    peak = status_mb("VmHWM")
    print(f"{peak - base:.1f} {x.nbytes / 2**20:.1f} {model_mb:.1f}")


def print_memory(args: argparse.Namespace) -> None:
    print()
    print(
        f"Peak resident memory of training resnet20 ({args.memory_batches} batches "
        f"of {args.batch_size}, {args.optimizer}) on a data set of the real size, "
        "each library in a fresh process, data set included (target: at most the "
        f"data set plus {MEMORY_TARGET_MB} MB):"
    )
    print()
    print(
        "| input | data set | data set MB | model MB | cnnumpy MB | PyTorch MB "
        "| cnnumpy over the data set MB | PyTorch over the data set MB |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    verdicts = []
    for inp in args.inputs:
        name, images = DATASETS.get(inp, ("random", args.images))
        images = args.memory_images or images
        peaks = {}
        for lib in LIBS:
            cmd = [sys.executable, __file__, "--memory-probe", lib, inp]
            cmd += [
                "--memory-images",
                str(images),
                "--batch-size",
                str(args.batch_size),
            ]
            cmd += ["--memory-batches", str(args.memory_batches)]
            cmd += ["--threads", str(args.threads[-1]), "--optimizer", args.optimizer]
            peaks[lib], data_mb, model_mb = run_probe(cmd)
        over = {lib: peaks[lib] - data_mb for lib in LIBS}
        print(
            f"| {inp} | {name}, {images:,} images | {data_mb:.0f} | {model_mb:.1f} "
            f"| {peaks['cnnumpy']:.0f} | {peaks['torch']:.0f} "
            f"| {over['cnnumpy']:.0f} | {over['torch']:.0f} |"
        )
        met = "met" if over["cnnumpy"] <= MEMORY_TARGET_MB else "not met"
        verdicts.append(f"{inp} {over['cnnumpy']:.0f} MB ({met})")
    print()
    print(
        f"cnnumpy's peak over the data set (target: at most {MEMORY_TARGET_MB} MB): "
        + "; ".join(verdicts)
        + "."
    )


# --- driver ------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--inputs",
        default="1x28x28,3x32x32",
        help="comma list of input shapes CxSxS (default: 1x28x28,3x32x32)",
    )
    p.add_argument("--threads", type=thread_counts, default=[2],
                   help="comma list of thread counts (default: 2)")  # fmt: skip
    p.add_argument("--rounds", type=int, default=5, help="timed rounds (default: 5)")
    p.add_argument("--conv-batch", type=int, default=64)
    p.add_argument("--conv-repeats", type=int, default=5,
                   help="calls per library, convolution and round (default: 5)")  # fmt: skip
    p.add_argument("--images", type=int, default=2_560,
                   help="images of the timed training epoch (default: 2,560)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--turn-batches", type=int, default=5,
                   help="training batches per turn (default: 5)")  # fmt: skip
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="sgd")
    p.add_argument("--profile-batches", type=int, default=20,
                   help="steps per library of the per-layer tables; 0 skips (default: 20)")  # fmt: skip
    p.add_argument("--memory-batches", type=int, default=20)
    p.add_argument("--memory-images", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--no-memory", action="store_true", help="skip the memory probes")
    p.add_argument(
        "--no-convs", action="store_true", help="skip the convolution tables"
    )
    p.add_argument("--record", metavar="FILE",
                   help="also put this run's output into FILE as its newest run")  # fmt: skip
    p.add_argument("--memory-probe", nargs=2, metavar=("LIB", "INPUT"),
                   help=argparse.SUPPRESS)  # fmt: skip
    args = p.parse_args()
    positive(
        p, args, "rounds", "conv_batch", "conv_repeats", "images", "batch_size",
        "turn_batches", "memory_batches",
    )  # fmt: skip
    if args.profile_batches < 0:
        p.error(f"--profile-batches must be >= 0, got {args.profile_batches}")
    args.inputs = args.inputs.split(",")
    for inp in args.inputs:
        try:
            parse_input(inp)
        except argparse.ArgumentTypeError as e:
            p.error(f"--inputs: {e}")
    args.recipe = args.optimizer
    args.warmup_batches = 2
    args.infer_images = 0  # training only
    return args


def main() -> int:
    args = parse_args()
    if args.memory_probe:
        set_threads(args.threads[-1])
        lib, inp = args.memory_probe
        memory_probe(lib, inp, args.memory_images, args.batch_size, args.memory_batches)
        return 0
    command = f"python benchmarks/resnet.py {' '.join(sys.argv[1:])}".rstrip()
    tee = Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        print("\n".join(machine_lines(command)))
        if not args.no_convs:
            for inp in args.inputs:
                print_convs(inp, time_convs(inp, args), args)
        rng = np.random.default_rng(0)
        cases = []
        for inp in args.inputs:
            c, s = parse_input(inp)
            x = rng.standard_normal((args.images, c, s, s), dtype=np.float32)
            cases.append(Case(inp, build(inp), x, rng.integers(0, 10, args.images)))
        train, _ = run_rounds(cases, args)
        print()
        print(
            f"resnet20 training epoch, float32: {args.images:,} random images, batch "
            f"{args.batch_size}, {OPTIMIZERS[args.optimizer][0]}; medians of "
            f"{args.rounds} interleaved rounds; in each, the libraries take turns "
            f"every {args.turn_batches} batches:"
        )
        print()
        print_speed(cases, args, train, {}, "input")
        print_full_epoch(cases, args, train)
        if args.profile_batches:
            set_threads(args.threads[-1])
            case = cases[-1]
            profiles = profile_steps(
                case.build(0), case.x, case.y, args.batch_size,
                args.profile_batches, args.optimizer,
            )  # fmt: skip
            print_profile(
                profiles,
                f"resnet20, {case.name}, batch {args.batch_size}, "
                f"{args.threads[-1]} threads",
            )
        if not args.no_memory:
            print_memory(args)
    if args.record:
        record_run(args.record, tee.kept.getvalue())
    return 0


def print_full_epoch(cases: list[Case], args: argparse.Namespace, train: dict) -> None:
    print()
    print("A full epoch of the data set each input stands for, extrapolated:")
    print()
    print("| input | data set | threads | cnnumpy s | PyTorch s |")
    print("|---|---|---:|---:|---:|")
    for case in cases:
        name, images = DATASETS.get(case.name, ("random", args.images))
        for n in args.threads:
            c, t = (
                statistics.median(train[lib, case.name, n]) * images / args.images
                for lib in LIBS
            )
            print(
                f"| {case.name} | {name}, {images:,} images | {n} | {c:.0f} | {t:.0f} |"
            )


if __name__ == "__main__":
    sys.exit(main())
