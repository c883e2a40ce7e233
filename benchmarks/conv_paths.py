"""The two ways the engine can compute a convolution's input gradient, timed.

``conv2d_backward`` makes ``dx`` either by col2im (``weight2d.T @ dy2d``, folded
back with adds) or, for stride 1, as a forward convolution of ``dy`` with the
rotated kernels; ``conv._by_conv`` picks one by the shape. This script times
both on the shapes of LeNet-5, resnet20 and vgg-bn (float32), on 1 and 2
engine threads, and says which one the engine picks, so the rule can be
checked on any CPU. It also times the weight gradient's product written both
ways round (``dy @ cols.T`` and ``cols @ dy.T``, one thread, BLAS alone). Run::

    python benchmarks/conv_paths.py --record benchmarks/results-conv-paths.md
"""

from __future__ import annotations

import argparse
import functools

import numpy as np

import cnnumpy
from _common import median_time
from _machine import recorded_run
from cnnumpy.functional import _engine
from cnnumpy.functional import conv as C

# (batch, in channels, out channels, size, kernel, padding): where they occur.
SHAPES = (
    (100, 1, 6, 28, 5, 2, "LeNet-5 conv1"),
    (100, 6, 16, 14, 5, 0, "LeNet-5 conv2"),
    (64, 16, 16, 28, 3, 1, "resnet20 stage 1, 1x28x28"),
    (64, 32, 32, 16, 3, 1, "resnet20 stage 2, 3x32x32"),
    (64, 64, 64, 8, 3, 1, "resnet20 stage 3, 3x32x32"),
    (64, 16, 32, 16, 3, 1, "vgg-bn, widening"),
    (64, 3, 16, 32, 3, 1, "a colour stem"),
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--record", metavar="FILE", help="file the run into FILE")
    args = parser.parse_args(argv)
    with recorded_run("conv_paths.py", argv, args.record):
        print(
            "\nInput gradient, float32, ms per call (median of "
            f"{args.rounds}); 'picks' is the engine's choice:\n"
        )
        print(
            "| convolution | shape | threads | col2im | by conv | by conv / col2im | picks |"
        )
        print("|---|---|---:|---:|---:|---:|---|")
        rng = np.random.default_rng(0)
        weight_rows = []
        for n, c, f, size, k, pad, where in SHAPES:
            x = rng.standard_normal((n, c, size, size), dtype=np.float32)
            w = rng.standard_normal((f, c, k, k), dtype=np.float32)
            y, ctx = C.conv2d_forward(x, w, None, 1, pad)
            dy2 = rng.standard_normal((f, y[0, 0].size * n), dtype=np.float32)
            shape = f"{c}->{f}, {k}x{k} pad {pad}, {size}x{size}, batch {n}"
            picks = "by conv" if C._by_conv(ctx) else "col2im"
            paths = (
                functools.partial(C._input_grad, dy2, ctx),
                functools.partial(C._input_grad_by_conv, dy2, ctx),
            )
            for threads in (1, 2):
                cnnumpy.set_num_threads(threads)
                a, b = (1e3 * median_time(fn, args.rounds) for fn in paths)
                print(
                    f"| {where} | {shape} | {threads} | {a:.2f} | {b:.2f} "
                    f"| {b / a:.2f} | {picks} |"
                )
            # The same product on random operands: its speed is the shapes'.
            cols = rng.standard_normal((c * k * k, dy2.shape[1] // 4), dtype=np.float32)
            d = np.ascontiguousarray(dy2[:, : cols.shape[1]])
            with _engine.blas_single_thread():
                slow = 1e3 * median_time(
                    functools.partial(np.dot, d, cols.T), args.rounds
                )
                fast = 1e3 * median_time(
                    functools.partial(np.dot, cols, d.T), args.rounds
                )
            weight_rows.append(
                f"| {where} | {f} x {cols.shape[1]} x {cols.shape[0]} "
                f"| {slow:.3f} | {fast:.3f} | {fast / slow:.2f} |"
            )
        print(
            "\nThe weight gradient's product, one thread, a quarter of the batch "
            "(what one block holds), ms:\n"
        )
        print(
            "| convolution | dy rows x positions x cols rows | dy @ cols.T | cols @ dy.T "
            "(the engine's) | ratio |"
        )
        print("|---|---|---:|---:|---:|")
        print("\n".join(weight_rows))


if __name__ == "__main__":
    main()
