"""Where a second thread pays in a NumPy program, and where a LeNet-5 step uses it.

Two tables, each library-free except for cnnumpy's engine:

1. **Two threads on short NumPy calls.** One thread makes ``--calls`` calls of
   ``a += b`` on float32 arrays of a given size; then two resident threads
   each make as many on arrays of their own, at once. NumPy lets go of the
   GIL inside each call, but a thread must take it back between calls, so two
   threads only overlap where a call is long against that hand-back. The
   speed-up (1-thread time x 2 / 2-thread time; 2.0 is perfect) is measured
   per call length, on this machine.
2. **A LeNet-5 training step on 2 threads** (batch 100, Adam, float32): every
   hand-off of the engine, by op, with its wall time and the CPU time of its
   parts (wall / CPU: 0.5 is a perfect overlap, 1.0 none), and how many of that
   op's hand-offs its gauge kept in the caller (apart from the parts an op
   runs in turn inside another's part, by design). Then the step on 1 and on 2
   threads.
3. **What a hand-off costs.** How long a resident worker, asleep on its queue,
   takes to start a task handed to it; then LeNet-5's layers (batch 100,
   float32) on 1 thread, cut into 2 parts run in turn by the caller, and cut
   into 2 parts handed off (the gauge off): what the engine's gauge chooses
   between, op by op.

Run::

    python benchmarks/threads.py --record benchmarks/results-threads.md
"""

from __future__ import annotations

import argparse
import collections
import functools
import statistics
import sys
import time

import numpy as np

import cnnumpy
from _common import median_time
from _machine import recorded_run
from cnnumpy import functional as F
from cnnumpy import models, nn, optim
from cnnumpy.functional._engine import gauge, threads

SIZES = (2_000, 20_000, 200_000, 2_000_000)  # float32 elements per call


def short_calls(calls: int, rounds: int) -> None:
    print(f"\nTwo threads on {calls} calls of `a += b` each (float32), ms:\n")
    print(
        "| elements per call | one call, us | 1 thread | 2 threads, each as many "
        "| speed-up (2.0 = perfect) |"
    )
    print("|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    cnnumpy.set_num_threads(2)
    for size in SIZES:
        pairs = [
            (rng.random(size, dtype=np.float32), rng.random(size, dtype=np.float32))
            for _ in range(2)
        ]
        n = calls if size < 1_000_000 else max(1, calls // 10)
        alone = functools.partial(_adds, *pairs[0], n)
        both = functools.partial(
            threads._hand_off,  # resident workers, as the engine's ops use them
            [alone, functools.partial(_adds, *pairs[1], n)],
        )
        one, two = median_time(alone, rounds), median_time(both, rounds)
        print(
            f"| {size:,} | {one / n * 1e6:.1f} | {one * 1e3:.2f} | {two * 1e3:.2f} "
            f"| {2 * one / two:.2f} |"
        )


def _adds(a: np.ndarray, b: np.ndarray, n: int) -> None:
    for _ in range(n):
        a += b


def lenet_step(steps: int) -> None:
    rng = np.random.default_rng(0)
    model = models.lenet5(rng=rng)
    model.input_grad = False
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loss = nn.CrossEntropyLoss()
    x = rng.standard_normal((100, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 100)

    def step() -> None:
        opt.zero_grad()
        loss(model(x), y)
        model.backward(loss.backward())
        opt.step()

    stats: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0])
    held: collections.Counter = collections.Counter()  # by the gauge
    nested: collections.Counter = collections.Counter()  # inside a part
    hand_off, in_turn = threads._hand_off, threads._in_turn

    def op_name() -> str:
        frame, names = sys._getframe(2), []
        while frame is not None:
            code = frame.f_code
            if "/functional/" in code.co_filename and "_engine" not in code.co_filename:
                names.append(code.co_name)
            frame = frame.f_back
        return "/".join(reversed(names[:2])) or "?"

    def timed_hand_off(tasks, key=None, gauged=False):
        start, cpu0 = time.perf_counter(), time.thread_time()
        told = []
        record = threads._gauges.record
        threads._gauges.record = lambda k, wall, cpu: (
            told.append(cpu),
            record(k, wall, cpu),
        )
        try:
            hand_off(tasks, key, gauged=True)
        finally:
            threads._gauges.record = record
        s = stats[op_name()]
        s[0] += 1
        s[1] += time.perf_counter() - start
        s[2] += told[0] if told else time.thread_time() - cpu0

    def counted_in_turn(tasks):
        inside = getattr(threads._state, "in_part", False)
        (nested if inside else held)[op_name()] += 1
        return in_turn(tasks)

    cnnumpy.set_num_threads(2)
    for _ in range(3 * steps):  # the gauges settle
        step()
    threads._hand_off, threads._in_turn = timed_hand_off, counted_in_turn
    try:
        for _ in range(steps):
            step()
    finally:
        threads._hand_off, threads._in_turn = hand_off, in_turn
    print(
        f"\nLeNet-5 training step (batch 100, Adam, float32) on 2 threads: the "
        f"engine's hand-offs over {steps} steps, per step:\n"
    )
    print(
        "| op | hand-offs | wall ms | CPU ms of the parts | wall / CPU "
        "| kept in the caller by the gauge | run in turn inside a part |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in sorted(
        set(stats) | set(held) | set(nested), key=lambda k: -stats[k][1]
    ):
        n, wall, cpu = stats[name]
        ratio = f"{wall / cpu:.2f}" if cpu else "-"
        print(
            f"| {name} | {n / steps:.1f} | {wall / steps * 1e3:.3f} "
            f"| {cpu / steps * 1e3:.3f} | {ratio} | {held[name] / steps:.1f} "
            f"| {nested[name] / steps:.1f} |"
        )
    times = {}
    for n_threads in (1, 2, 1, 2):
        cnnumpy.set_num_threads(n_threads)
        for _ in range(steps // 4):
            step()
        times.setdefault(n_threads, []).append(median_time(step, steps))
    one, two = (statistics.median(times[k]) * 1e3 for k in (1, 2))
    print(
        f"\nStep, median of {steps} (two alternations): 1 thread {one:.2f} ms, "
        f"2 threads {two:.2f} ms, speed-up {one / two:.2f}x."
    )


def _stamp(times: list[float]) -> None:
    times.append(time.perf_counter())


def hand_off_cost(rounds: int) -> None:
    cnnumpy.set_num_threads(2)
    threads.run([lambda: None, lambda: None], balanced=True)  # a resident worker
    worker = threads._workers[0]
    delays = []
    for _ in range(20 * rounds):
        started: list[float] = []
        time.sleep(0.001)  # the worker goes back to sleep, as between ops
        handed = time.perf_counter()
        worker.tasks.put(functools.partial(_stamp, started))
        worker.done.get()
        delays.append(started[0] - handed)
    delays.sort()
    median, p90 = delays[len(delays) // 2], delays[int(0.9 * len(delays))]
    print(
        f"\nA task handed to a sleeping worker starts after {median * 1e6:.0f} us "
        f"(median of {len(delays)}; 90th percentile {p90 * 1e6:.0f} us)."
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 1, 28, 28)).astype(np.float32)
    w1 = rng.standard_normal((6, 1, 5, 5)).astype(np.float32)
    a1, ctx1 = F.conv2d_forward(x, w1, None, 1, 2)
    h = F.avg_pool2d(F.tanh(a1), 2)
    w2 = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    a2, ctx2 = F.conv2d_forward(h, w2, None)
    dy1 = rng.standard_normal(a1.shape).astype(np.float32)
    dy2 = rng.standard_normal(a2.shape).astype(np.float32)
    ops = {
        "conv1 forward": lambda: F.conv2d_forward(x, w1, None, 1, 2),
        "conv1 backward (weights)": lambda: F.conv2d_backward(dy1, ctx1, False),
        "tanh of conv1's output": lambda: F.tanh(a1),
        "conv2 forward": lambda: F.conv2d_forward(h, w2, None),
        "conv2 backward": lambda: F.conv2d_backward(dy2, ctx2),
    }
    print(
        f"\nLeNet-5's layers, batch 100, float32, ms per call (median of {rounds}):\n"
    )
    print(
        "| op | 1 thread | 2 parts in turn | 2 parts handed off | handed off / 1 thread |"
    )
    print("|---|---:|---:|---:|---:|")
    saved = threads._gauges, gauge.GAUGED
    try:
        for name, op in ops.items():
            cnnumpy.set_num_threads(1)
            one = median_time(op, rounds)
            cnnumpy.set_num_threads(2)
            threads._gauges = gauge.Gauges(hold=10**9)  # parts in the caller
            in_turn = median_time(op, rounds)
            gauge.GAUGED = False  # every part handed off
            handed = median_time(op, rounds)
            threads._gauges, gauge.GAUGED = saved
            print(
                f"| {name} | {one * 1e3:.3f} | {in_turn * 1e3:.3f} "
                f"| {handed * 1e3:.3f} | {handed / one:.2f} |"
            )
    finally:
        threads._gauges, gauge.GAUGED = saved


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--record", metavar="FILE", help="file the run into FILE")
    args = parser.parse_args(argv)
    if not gauge.GAUGED:
        parser.error("needs a per-thread CPU clock (Linux or macOS)")
    with recorded_run("threads.py", argv, args.record):
        short_calls(args.calls, args.rounds)
        lenet_step(args.steps)
        hand_off_cost(args.rounds)


if __name__ == "__main__":
    main()
