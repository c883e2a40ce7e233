"""The second core as a second process: cnnumpy on 2 ranks beside PyTorch on 2 threads.

``cnnumpy train --processes 2`` trains on two processes of one machine, each
on half of every batch, with one thread each (`cnnumpy.distributed.local`).
This module times that in the interleaved way of ``run_rounds``: one process
(rank 0, this one) runs the timing; a spawned rank 1 follows its commands.
In each round, for each dtype, fresh models of the round's seed train one
epoch, cnnumpy's 2 ranks and PyTorch's 1 process on 2 threads taking turns
every ``--turn-batches`` batches; each library's time is the sum of its turns.
cnnumpy's step is a user's loop over `distributed.GradientAllreduce`, as
``docs/distributed.md`` writes it. While PyTorch trains, rank 1 waits at the
next command: it spins for 2 ms, then naps.
"""

from __future__ import annotations

import argparse
import functools
import statistics
from collections.abc import Callable

import numpy as np

import cnnumpy
from _common import DTYPES, LIBS, NAMES, OPTIMIZERS, set_threads, timed, torch_trainer
from _twin import torch_twin
from cnnumpy import distributed, nn

# Commands from rank 0 to rank 1: (what, case, start, stop, seed).
STOP, BUILD, TRAIN = 0, 1, 2


def make_data(dtypes: list[str], n: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The benchmark's random images and labels: the same in every process."""
    rng = np.random.default_rng(0)
    out = []
    for name in dtypes:
        x = rng.standard_normal((n, 1, 28, 28), dtype=DTYPES[name][0])
        out.append((name, x, rng.integers(0, 10, n)))
    return out


class _Ranks:
    """One rank's side of the data-parallel loop (the same code on both)."""

    def __init__(self, comm: distributed.Communicator, build: Callable, recipe: str):
        self.comm, self.build, self.recipe = comm, build, recipe
        self.criterion = nn.CrossEntropyLoss()

    def fresh(self, dtype: type, seed: int) -> nn.Module:
        model = self.build(dtype, seed)
        model.train()
        model.input_grad = False
        self.model = model
        self.opt = OPTIMIZERS[self.recipe][1](model.parameters())
        self.allreduce = distributed.GradientAllreduce(model.parameters(), self.comm)
        return model

    def train(self, x: np.ndarray, y: np.ndarray, batch: int) -> None:
        for i in range(0, len(x), batch):
            xb, yb = x[i : i + batch], y[i : i + batch]
            part = self.comm.part(len(yb))
            self.opt.zero_grad()
            self.criterion(self.model(xb[part]), yb[part])
            self.model.backward(self.criterion.backward())
            self.allreduce(len(yb[part]) / len(yb))
            self.opt.step()


def _command(comm: distributed.Communicator, cmd: tuple[int, ...] | None) -> np.ndarray:
    """Rank 0's command on both ranks (rank 1 passes None)."""
    buf = np.zeros(5, dtype=np.int64) if cmd is None else np.array(cmd, np.int64)
    return comm.allreduce(buf)


def rank_one(
    comm: distributed.Communicator, dtypes: list[str], n: int, batch: int,
    build: Callable, recipe: str,
) -> int:  # fmt: skip
    """Rank 1: follow rank 0's commands until told to stop."""
    cnnumpy.set_num_threads(1)
    data = make_data(dtypes, n)
    ranks = _Ranks(comm, build, recipe)
    while True:
        what, case, start, stop, seed = (int(v) for v in _command(comm, None))
        if what == STOP:
            return 0
        name, x, y = data[case]
        if what == BUILD:
            ranks.fresh(DTYPES[name][0], seed)
        else:
            ranks.train(x[start:stop], y[start:stop], batch)


def processes_rounds(args: argparse.Namespace, cases: list, build: Callable) -> dict:
    """Epoch times per round: cnnumpy on 2 ranks, PyTorch on 1 process x 2 threads.

    ``cases`` hold `make_data`'s arrays (rank 1 makes its own, the same).
    """
    from cnnumpy.distributed import local

    data = [(case.name, case.x, case.y) for case in cases]
    spawn = functools.partial(
        rank_one, dtypes=args.dtypes, n=len(cases[0].x),
        batch=args.batch_size, build=build, recipe=args.recipe,
    )  # fmt: skip
    comm = local.start(2, spawn)
    times: dict = {(lib, name): [] for lib in LIBS for name, _, _ in data}
    status = 1
    try:
        ranks = _Ranks(comm, build, args.recipe)
        batch, turn = args.batch_size, args.turn_batches * args.batch_size
        for r in range(args.rounds + 1):  # round 0: a short warm-up
            n_images = args.images if r else min(args.images, 10 * batch)
            for case, (name, x, y) in enumerate(data):
                set_threads(2)  # PyTorch's 2 threads (and BLAS's)
                cnnumpy.set_num_threads(1)  # each rank one thread
                _command(comm, (BUILD, case, 0, 0, r))
                model = ranks.fresh(DTYPES[name][0], r)
                twin = torch_twin(model)
                torch_train = torch_trainer(twin, args.recipe)
                tx, ty = cases[case].tx, cases[case].ty

                def cnnumpy_turn(start: int, stop: int) -> None:
                    _command(comm, (TRAIN, case, start, stop, r))  # noqa: B023
                    ranks.train(x[start:stop], y[start:stop], batch)  # noqa: B023

                def torch_turn(start: int, stop: int) -> None:
                    torch_train(tx[start:stop], ty[start:stop], batch)  # noqa: B023

                turns = {"cnnumpy": cnnumpy_turn, "torch": torch_turn}
                order = LIBS if r % 2 else LIBS[::-1]
                spent = dict.fromkeys(LIBS, 0.0)
                for k, start in enumerate(range(0, n_images, turn)):
                    stop = min(start + turn, n_images)
                    for lib in order if k % 2 == 0 else order[::-1]:
                        spent[lib] += timed(turns[lib], start, stop)
                if r:
                    for lib in LIBS:
                        times[lib, name].append(spent[lib])
        _command(comm, (STOP, 0, 0, 0, 0))
        status = 0
    finally:
        status = local.finish(comm, status)
    if status:
        raise SystemExit(f"rank 1 of the --processes table failed (status {status})")
    return times


def print_processes(args: argparse.Namespace, cases: list, build: Callable) -> None:
    """The table: each library's fastest way to use 2 cores, side by side."""
    times = processes_rounds(args, cases, build)
    print()
    print(
        f"The second core as a second process: cnnumpy on 2 processes of 1 thread "
        f"each (as `cnnumpy train --processes 2`; a user's loop with "
        f"`GradientAllreduce`) beside PyTorch on 1 process with 2 threads; a "
        f"training epoch of {args.images:,} images, batch {args.batch_size}, "
        f"turns every {args.turn_batches} batches, medians of {args.rounds} rounds:"
    )
    print()
    rounds = " | ".join(f"round {r + 1}" for r in range(args.rounds))
    print(
        f"| dtype | {NAMES['cnnumpy']}, 2 processes s | {NAMES['torch']}, 2 threads s "
        f"| cnnumpy / PyTorch | {rounds} |"
    )
    print("|---|---:|---:|---:|" + "---:|" * args.rounds)
    for name in args.dtypes:
        c, t = times["cnnumpy", name], times["torch", name]
        ratios = " | ".join(f"{a / b:.2f}x" for a, b in zip(c, t))
        mc, mt = statistics.median(c), statistics.median(t)
        print(f"| {name} | {mc:.2f} | {mt:.2f} | {mc / mt:.2f}x | {ratios} |")
