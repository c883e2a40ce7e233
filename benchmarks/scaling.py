"""Data-parallel scaling: images/s of a LeNet-5 training epoch, by processes and threads.

Runs, in each of ``--rounds`` interleaved rounds, one epoch of every setting,
each in fresh processes started by ``mpiexec`` (the MPICH of the ``mpi``
extra), and reports medians:

- cnnumpy: 1 process with 1 thread, 1 process with 2 threads, 2 ranks with 1
  thread each (``cnnumpy.training.fit(..., comm=...)``, as ``mpiexec -n 2
  cnnumpy train`` runs);
- PyTorch: 1 process with 1 thread, DistributedDataParallel on its gloo
  backend with 2 ranks of 1 thread each (on this machine), and 1 process
  with 2 threads;
- cnnumpy again: 2 ranks of 1 thread each started without MPI, as
  ``cnnumpy train --processes 2`` starts them (`cnnumpy.distributed.local`).

Every setting trains the same LeNet-5 on the same ``--images`` random 1x28x28
images with the same global batch (each rank takes its half of every batch),
Adam 1e-3. The time is the epoch's wall time on rank 0, after a few warm-up
batches and a barrier; process start-up is not counted. Then a cost model:
what one step's gradient all-reduce would cost between machines, and the
per-rank batch below which it costs more than the computing.

Run::

    python benchmarks/scaling.py                # about 3 minutes on 2 cores
    python benchmarks/scaling.py --images 400 --rounds 1 --warmup 1  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import cnnumpy

SETTINGS = [  # (name, library, ranks, threads per rank)
    ("cnnumpy, 1 process, 1 thread", "cnnumpy", 1, 1),
    ("cnnumpy, 1 process, 2 threads", "cnnumpy", 1, 2),
    ("cnnumpy, 2 ranks x 1 thread", "cnnumpy", 2, 1),
    ("PyTorch, 1 process, 1 thread", "torch", 1, 1),
    ("PyTorch DDP (gloo), 2 ranks x 1 thread", "torch", 2, 1),
    ("PyTorch, 1 process, 2 threads", "torch", 1, 2),
    ("cnnumpy, --processes 2 (no MPI), 1 thread each", "cnnumpy-local", 2, 1),
]
# A link's latency per message in the cost model: TCP over Ethernet, RDMA.
LINKS = [("10 Gb/s", 10e9, 20e-6), ("100 Gb/s", 100e9, 2e-6)]


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=positive_int, default=20_000)
    p.add_argument("--batch-size", type=positive_int, default=100, help="global")
    p.add_argument("--rounds", type=positive_int, default=5)
    p.add_argument("--warmup", type=positive_int, default=5, help="batches")
    p.add_argument("--timeout", type=positive_int, default=300, help="s per run")
    p.add_argument("--worker", choices=["cnnumpy", "torch"], help=argparse.SUPPRESS)
    p.add_argument("--threads", type=positive_int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--local", type=positive_int, default=1, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def random_data(images: int) -> tuple[np.ndarray, np.ndarray]:
    """The same images and labels in every process (seed 0)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((images, 1, 28, 28), dtype=np.float32)
    return x, rng.integers(0, 10, size=images)


# --- the workers: one epoch, images/s on stdout (rank 0) ---------------------------


def cnnumpy_worker(args: argparse.Namespace, comm=None) -> float:
    """One epoch on the ranks of mpiexec, of ``comm`` (``--local``), or alone."""
    from cnnumpy import data, distributed, models, optim
    from cnnumpy.training import fit

    cnnumpy.set_num_threads(args.threads)
    comm = distributed.world() if comm is None else comm
    ranks = comm if comm.size > 1 else None
    x, y = random_data(args.images)
    train = data.Dataset(x, y, tuple("0123456789"), "random")
    model = models.create_model("lenet5", rng=np.random.default_rng(0))
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    warm = train.subset(np.arange(min(len(train), args.warmup * args.batch_size)))
    fit(model, optimizer, warm, epochs=1, batch_size=args.batch_size, comm=ranks)
    comm.allreduce(np.zeros(1))  # a barrier
    start = time.perf_counter()
    fit(model, optimizer, train, epochs=1, batch_size=args.batch_size, comm=ranks)
    return time.perf_counter() - start


def local_rank(args: argparse.Namespace, comm) -> int:
    """A rank that ``--local`` spawned (`cnnumpy.distributed.local`)."""
    cnnumpy_worker(args, comm)
    return 0


def local_worker(args: argparse.Namespace) -> float:
    """``--local N``: N ranks of this machine, as ``cnnumpy train --processes N``."""
    import functools

    from cnnumpy.distributed import local

    comm = local.start(args.local, functools.partial(local_rank, args))
    status = 1
    try:
        seconds = cnnumpy_worker(args, comm)
        status = 0
    finally:
        status = local.finish(comm, status)
    if status:
        raise SystemExit(status)
    return seconds


def torch_worker(args: argparse.Namespace) -> float:
    import torch
    import torch.distributed as dist

    from cnnumpy.distributed import environment_rank, split_batch

    torch.set_num_threads(args.threads)
    size = int(os.environ.get("PMI_SIZE", "1"))
    rank = environment_rank()
    if size > 1:  # rendezvous through a file: no port to pick
        store = f"file://{os.environ['SCALING_STORE']}"
        dist.init_process_group("gloo", init_method=store, rank=rank, world_size=size)
    torch.manual_seed(0)
    t = torch.nn
    model = t.Sequential(
        t.Conv2d(1, 6, 5, padding=2), t.Tanh(), t.AvgPool2d(2),
        t.Conv2d(6, 16, 5), t.Tanh(), t.AvgPool2d(2), t.Flatten(),
        t.Linear(400, 120), t.Tanh(), t.Linear(120, 84), t.Tanh(), t.Linear(84, 10),
    )  # fmt: skip
    if size > 1:
        model = t.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = t.CrossEntropyLoss()
    x, y = random_data(args.images)
    x, y = torch.from_numpy(x), torch.from_numpy(y)

    def epoch(batches: int) -> None:
        order = torch.from_numpy(np.random.default_rng(1).permutation(len(x)))
        for b in range(batches):
            idx = order[b * args.batch_size : (b + 1) * args.batch_size]
            sizes = split_batch(len(idx), size)
            mine = idx[sum(sizes[:rank]) : sum(sizes[: rank + 1])]
            optimizer.zero_grad()
            criterion(model(x[mine]), y[mine]).backward()
            optimizer.step()

    batches = -(-args.images // args.batch_size)
    epoch(min(args.warmup, batches))
    if size > 1:
        dist.barrier()
    start = time.perf_counter()
    epoch(batches)
    seconds = time.perf_counter() - start
    if size > 1:
        dist.destroy_process_group()
    return seconds


# --- the parent: interleaved rounds, tables ------------------------------------------


def run_setting(args: argparse.Namespace, library: str, ranks: int, threads: int):
    mpiexec = Path(sys.executable).with_name("mpiexec")
    if library == "cnnumpy-local":  # no mpiexec: the script starts the ranks
        prefix, extra, library = [], [f"--local={ranks}"], "cnnumpy"
    else:
        prefix, extra = [str(mpiexec), "-n", str(ranks)], []
    command = [*prefix, sys.executable, __file__, *extra,
               "--worker", library, "--threads", str(threads),
               "--images", str(args.images), "--batch-size", str(args.batch_size),
               "--warmup", str(args.warmup)]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        env["SCALING_STORE"] = str(Path(tmp) / "store")
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=args.timeout
        )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def lenet5_parameters() -> int:
    from cnnumpy import models

    model = models.create_model("lenet5", rng=np.random.default_rng(0))
    return sum(p.data.size for p in model.parameters())


def allreduce_seconds(nbytes: int, ranks: int, bits: float, latency: float) -> float:
    """Ring all-reduce: each rank sends 2 (N-1)/N of the buffer in 2 (N-1) messages."""
    return 2 * (ranks - 1) / ranks * nbytes * 8 / bits + 2 * (ranks - 1) * latency


def cost_model(args: argparse.Namespace, seconds_per_image: float) -> list[str]:
    """When a step's all-reduce between machines costs more than its computing."""
    params = lenet5_parameters()
    nbytes = 4 * (params + 2)  # float32 gradients, the loss and the count
    lines = [
        "",
        f"Cost model (LeNet-5, {params:,} parameters): {nbytes:,} bytes of "
        "float32 gradients per rank per step. A ring all-reduce over N ranks "
        "sends 2(N-1)/N of them per rank in 2(N-1) messages; computing takes "
        f"{seconds_per_image * 1e6:.0f} us per image (1 process, 1 thread, above). "
        "Communication dominates when a rank's part of the batch is below "
        "all-reduce time / time per image.",
        "",
        "| link | latency | all-reduce, 2 ranks | 8 ranks | 64 ranks "
        "| per-rank batch below which communication dominates (64 ranks) "
        f"| ranks before that, global batch {args.batch_size} | global batch 1,000 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, bits, latency in LINKS:

        def cost(n: int, bits: float = bits, latency: float = latency) -> float:
            return allreduce_seconds(nbytes, n, bits, latency)

        def max_ranks(batch: int) -> int:
            """Most ranks whose part of ``batch`` still computes longer than it sends."""
            n = 1
            while n < batch and batch / (n + 1) * seconds_per_image >= cost(n + 1):
                n += 1
            return n

        lines.append(
            f"| {name} | {latency * 1e6:.0f} us | {cost(2) * 1e3:.2f} ms "
            f"| {cost(8) * 1e3:.2f} ms | {cost(64) * 1e3:.2f} ms "
            f"| {cost(64) / seconds_per_image:.0f} images "
            f"| {max_ranks(args.batch_size)} | {max_ranks(1000)} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.worker is not None:
        work = cnnumpy_worker if args.worker == "cnnumpy" else torch_worker
        if args.local > 1:
            work = local_worker
        seconds = work(args)
        from cnnumpy.distributed import environment_rank

        if environment_rank() == 0:
            print(json.dumps({"seconds": seconds}), flush=True)
        if args.worker == "torch":
            # gloo's threads can make the C++ runtime abort ("terminate called
            # without an active exception") while the interpreter tears down;
            # the result is out, so leave without the teardown.
            sys.stderr.flush()
            os._exit(0)
        return
    import torch

    print(f"# cnnumpy {cnnumpy.__version__} vs PyTorch {torch.__version__}; "
          f"NumPy {np.__version__}; {platform.machine()}, {os.cpu_count()} cores")  # fmt: skip
    print(f"# command: python benchmarks/scaling.py {' '.join(sys.argv[1:])}".rstrip())
    times: dict[str, list[float]] = {name: [] for name, *_ in SETTINGS}
    for r in range(args.rounds):
        for name, library, ranks, threads in SETTINGS:
            times[name].append(run_setting(args, library, ranks, threads))
        print(f"# round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    rate = {n: args.images / statistics.median(t) for n, t in times.items()}
    base = rate[SETTINGS[0][0]]
    print(
        f"\nTraining epoch: {args.images:,} random 1x28x28 images, global batch "
        f"{args.batch_size}, float32, Adam 1e-3; images/s of rank 0's wall time, "
        f"median of {args.rounds} interleaved rounds.\n"
    )
    print("| setting | images/s | vs cnnumpy 1 process 1 thread | rounds (s) |")
    print("|---|---:|---:|---|")
    for name, *_ in SETTINGS:
        rounds = ", ".join(f"{s:.2f}" for s in times[name])
        print(f"| {name} | {rate[name]:,.0f} | {rate[name] / base:.2f}x | {rounds} |")
    two = rate[SETTINGS[2][0]]
    print(
        f"\n2 ranks x 1 thread against: 1 process, 1 thread {two / base:.2f}x "
        f"(target >= 1.3x); 1 process, 2 threads {two / rate[SETTINGS[1][0]]:.2f}x "
        f"(target >= 1x); PyTorch DDP {two / rate[SETTINGS[4][0]]:.2f}x (target >= 1x)"
    )
    print(
        f"\nThe same 2 cores, each library its fastest way: cnnumpy's 2 ranks take "
        f"{rate[SETTINGS[5][0]] / two:.2f}x the time of PyTorch's 1 process on 2 "
        f"threads (MPI); without MPI (--processes 2), "
        f"{rate[SETTINGS[5][0]] / rate[SETTINGS[6][0]]:.2f}x."
    )
    for line in cost_model(args, 1 / base):
        print(line)


if __name__ == "__main__":
    main()
