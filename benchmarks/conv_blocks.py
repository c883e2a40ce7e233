"""How big a block of columns the convolution unfolds and multiplies at a time.

``conv2d_forward`` and the weight gradient unfold the input a block of output
positions at a time (at most ``conv.BLOCK_ELEMENTS`` elements of columns) and
make one BLAS call per block. This script times LeNet-5's two convolutions,
forward and backward, with several block sizes, on one engine thread (BLAS
held to one thread too), in float32 and float64, at batch 100 (training) and
1,000 (inference): the sizes are taken in turn within each round, and the
table gives the medians over rounds. A second table times resnet20's
convolutions (batch 128, float32) with the engine's block and one four times
larger, on 1 and 2 threads. A third times the thin product of the first
convolution alone, ``(6 x 25) @ (25 x n)``, against ``n``: how fast BLAS is on
one block's product, whatever the engine does around it. Run::

    python benchmarks/conv_blocks.py --record benchmarks/results-conv-blocks.md
"""

from __future__ import annotations

import argparse
import functools
import statistics

import numpy as np

import cnnumpy
from _common import median_time, thread_counts
from _machine import recorded_run
from cnnumpy.functional import _engine
from cnnumpy.functional import conv as C
from cnnumpy.functional.im2col import nchw

# (name, in channels, out channels, size, kernel, padding, input gradient)
CONVS = (
    ("conv1", 1, 6, 28, 5, 2, False),  # LeNet-5's first layer takes data
    ("conv2", 6, 16, 14, 5, 0, True),
)
BLOCKS = (1 << 15, 1 << 16, 1 << 17, 1 << 18, 1 << 19)  # elements of columns
THIN = (1000, 2800, 5600, 8400, 11200, 19600, 40000)  # n of (6 x 25) @ (25 x n)
# resnet20's 3x3 convolutions, 'same' padding: (channels, size) per stage, and
# the first one's stem from a colour image.
RESNET = ((16, 16, 28), (32, 32, 14), (64, 64, 7), (3, 16, 32))


def _cases(batch: int, dtype: np.dtype, rng: np.random.Generator) -> list:
    """(label, call) pairs: each convolution's forward and backward."""
    cases = []
    for name, c, f, size, k, pad, input_grad in CONVS:
        x = rng.standard_normal((batch, c, size, size)).astype(dtype)
        w = rng.standard_normal((f, c, k, k)).astype(dtype)
        b = rng.standard_normal(f).astype(dtype)
        y, ctx = C.conv2d_forward(x, w, b, 1, pad)
        # dy stored as the engine stores its arrays, (F, out_h, out_w, N)
        dy = nchw(rng.standard_normal((f, *y.shape[2:], batch)).astype(dtype))
        cases.append(
            (f"{name} fwd", functools.partial(C.conv2d_forward, x, w, b, 1, pad))
        )
        cases.append(
            (f"{name} bwd", functools.partial(C.conv2d_backward, dy, ctx, input_grad))
        )
    return cases


def resnet_table(
    args: argparse.Namespace, rng: np.random.Generator, block: int
) -> None:
    batch = min(args.batches[-1], 128)
    print(
        f"\nresnet20's convolutions, batch {batch}, float32, forward + backward, "
        f"ms per call (median over {args.rounds} rounds of the median of "
        f"{args.calls} calls), the engine's block against one 4x larger:\n"
    )
    print("| convolution | threads | block | 4x block | 4x / block |")
    print("|---|---:|---:|---:|---:|")
    try:
        for c, f, size in RESNET:
            x = rng.standard_normal((batch, c, size, size)).astype(np.float32)
            w = rng.standard_normal((f, c, 3, 3)).astype(np.float32)
            y, ctx = C.conv2d_forward(x, w, None, 1, 1)
            dy = nchw(rng.standard_normal((f, size, size, batch)).astype(np.float32))

            def step(x=x, w=w, dy=dy, ctx=ctx) -> None:
                C.conv2d_forward(x, w, None, 1, 1)
                C.conv2d_backward(dy, ctx)

            for threads in (1, 2):
                cnnumpy.set_num_threads(threads)
                times: dict[int, list[float]] = {block: [], 4 * block: []}
                for _ in range(args.rounds):
                    for b in times:
                        C.BLOCK_ELEMENTS = b
                        times[b].append(median_time(step, args.calls))
                one, four = (1e3 * statistics.median(times[b]) for b in times)
                print(
                    f"| {c}->{f}, {size}x{size} | {threads} | {one:.2f} | {four:.2f} "
                    f"| {four / one:.2f} |"
                )
    finally:
        C.BLOCK_ELEMENTS = block
        cnnumpy.set_num_threads(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20, help="timed calls per median")
    parser.add_argument(
        "--batches", type=thread_counts, default=[100, 1000], help="comma list"
    )
    parser.add_argument("--record", metavar="FILE", help="file the run into FILE")
    args = parser.parse_args(argv)
    with recorded_run("conv_blocks.py", argv, args.record):
        cnnumpy.set_num_threads(1)
        rng = np.random.default_rng(0)
        default = C.BLOCK_ELEMENTS
        print(
            f"\nLeNet-5's convolutions, one thread, ms per call (median over "
            f"{args.rounds} rounds of the median of {args.calls} calls); block "
            f"in elements of columns; * marks the engine's (BLOCK_ELEMENTS = {default}):\n"
        )
        try:
            for batch in args.batches:
                for dtype in (np.float32, np.float64):
                    cases = _cases(batch, np.dtype(dtype), rng)
                    times = {b: [[] for _ in cases] for b in BLOCKS}
                    for _ in range(args.rounds):
                        for block in BLOCKS:
                            C.BLOCK_ELEMENTS = block
                            for i, (_, fn) in enumerate(cases):
                                times[block][i].append(median_time(fn, args.calls))
                    labels = " | ".join(label for label, _ in cases)
                    print(f"\nbatch {batch}, {np.dtype(dtype).name}:\n")
                    print(f"| block | {labels} | sum |")
                    print("|---:|" + "---:|" * (len(cases) + 1))
                    for block in BLOCKS:
                        ms = [1e3 * statistics.median(t) for t in times[block]]
                        mark = "*" if block == default else ""
                        cells = " | ".join(f"{t:.3f}" for t in ms)
                        print(f"| {block:,}{mark} | {cells} | {sum(ms):.3f} |")
        finally:
            C.BLOCK_ELEMENTS = default
        resnet_table(args, rng, default)
        print(
            "\nThe first convolution's product alone, (6 x 25) @ (25 x n), BLAS on "
            "one thread, billions of multiply-adds per second:\n"
        )
        print("| n | multiply-adds | float32 | float64 |")
        print("|---:|---:|---:|---:|")
        with _engine.blas_single_thread():
            for n in THIN:
                rates = []
                for dtype in (np.float32, np.float64):
                    a = rng.standard_normal((6, 25)).astype(dtype)
                    b = rng.standard_normal((25, n)).astype(dtype)
                    out = np.empty((6, n), dtype)
                    t = median_time(functools.partial(np.matmul, a, b, out=out), 200)
                    rates.append(6 * 25 * n / t / 1e9)
                print(f"| {n:,} | {6 * 25 * n:,} | {rates[0]:.1f} | {rates[1]:.1f} |")


if __name__ == "__main__":
    main()
