"""resnet20's convolutions one by one: each distinct shape, both libraries.

:func:`conv_layers` finds every distinct convolution of a model with one
forward pass; :func:`time_convs` times each one's forward and backward in
cnnumpy and in its PyTorch twin, in interleaved rounds, and
:func:`print_convs` prints them side by side with their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from _common import LIBS, set_threads
from _twin import torch_twin
from cnnumpy import models, nn


def parse_input(text: str) -> tuple[int, int]:
    """'3x32x32' -> (3, 32): channels and the side of a square image."""
    try:
        c, h, w = (int(v) for v in text.split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must look like 3x32x32, got {text!r}"
        ) from None
    if h != w or min(c, h) < 1:
        raise argparse.ArgumentTypeError(f"must be CxSxS with S, C >= 1, got {text!r}")
    return c, h


# --- every distinct convolution ------------------------------------------------------


def conv_layers(model: nn.Module, x_shape: tuple[int, ...]) -> list[tuple]:
    """Each distinct convolution of ``model`` for inputs of ``x_shape``.

    One forward pass records each Conv2d's input shape; returns
    ``(first name, count, conv, input shape)`` in the order met.
    """
    seen: dict[tuple, list] = {}
    convs = [(n, m) for n, m in _named_modules(model) if isinstance(m, nn.Conv2d)]
    for name, conv in convs:

        def spy(x, conv=conv, name=name, forward=conv.forward):
            key = (conv.in_channels, conv.out_channels, conv.kernel_size,
                   conv.stride, conv.padding, x.shape[1:], name == "conv1")  # fmt: skip
            seen.setdefault(key, [name, 0, conv, x.shape])[1] += 1
            return forward(x)

        conv.forward = spy
    try:
        model.eval()
        model(np.zeros((1, *x_shape[1:]), np.float32))
    finally:
        for _, conv in convs:
            del conv.forward
    return [tuple(v) for v in seen.values()]


def _named_modules(m: nn.Module, prefix: str = ""):
    for name, child in m.named_children():
        full = f"{prefix}.{name}" if prefix else name
        yield full, child
        yield from _named_modules(child, full)


def time_convs(inp: str, args: argparse.Namespace) -> list[dict]:
    """Forward and backward ms per call of each distinct convolution, both libraries."""
    c, s = parse_input(inp)
    model = models.resnet20(in_channels=c, input_size=s, rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    rows = []
    for name, count, conv, shape in conv_layers(model, (1, c, s, s)):
        x = rng.standard_normal((args.conv_batch, *shape[1:]), dtype=np.float32)
        twin = torch_twin(conv)
        stem = name == "conv1"  # the data needs no gradient
        conv.train()
        conv.input_grad = not stem
        y = conv(x)
        dy = rng.standard_normal(y.shape, dtype=np.float32)
        tx, tdy = torch.from_numpy(x).requires_grad_(not stem), torch.from_numpy(dy)
        times = {(lib, n): ([], []) for lib in LIBS for n in args.threads}

        def ours(conv=conv, x=x, dy=dy) -> tuple[float, float]:
            conv.zero_grad()
            t0 = time.perf_counter()
            conv(x)
            t1 = time.perf_counter()
            conv.backward(dy)
            return t1 - t0, time.perf_counter() - t1

        def theirs(twin=twin, tx=tx, tdy=tdy) -> tuple[float, float]:
            twin.zero_grad()
            tx.grad = None
            t0 = time.perf_counter()
            out = twin(tx)
            t1 = time.perf_counter()
            out.backward(tdy)
            return t1 - t0, time.perf_counter() - t1

        run = {"cnnumpy": ours, "torch": theirs}
        for r in range(args.rounds + 1):  # round 0 warms up
            for n in args.threads if r % 2 else args.threads[::-1]:
                set_threads(n)
                for lib in LIBS if r % 2 else LIBS[::-1]:
                    for _ in range(args.conv_repeats):
                        f, b = run[lib]()
                        if r:
                            times[lib, n][0].append(f)
                            times[lib, n][1].append(b)
        cin, cout, k = conv.in_channels, conv.out_channels, conv.kernel_size[0]
        out_side = y.shape[2]
        stride = f" /{conv.stride[0]}" if conv.stride[0] > 1 else ""
        rows.append({
            "name": name, "count": count,
            "shape": f"{cin}->{cout}, {k}x{k}{stride}, {s_(shape)}->{out_side}x{out_side}",
            "times": times,
        })  # fmt: skip
    return rows


def s_(shape: tuple) -> str:
    return f"{shape[2]}x{shape[3]}"


def print_convs(inp: str, rows: list[dict], args: argparse.Namespace) -> None:
    med = statistics.median
    for n in args.threads:
        print()
        print(
            f"Each distinct convolution of resnet20 for {inp} inputs, float32, batch "
            f"{args.conv_batch}, {n} thread{'s' * (n > 1)}: ms per call, medians of "
            f"{args.rounds} rounds x {args.conv_repeats} calls; 'count' is how many "
            "of resnet20's convolutions have this shape (the stem computes no input "
            "gradient):"
        )
        print()
        print(
            "| convolution | count | shape | cnnumpy fwd | cnnumpy bwd | PyTorch fwd "
            "| PyTorch bwd | cnnumpy fwd+bwd | PyTorch fwd+bwd | cnnumpy / PyTorch |"
        )
        print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        total = dict.fromkeys(LIBS, 0.0)
        for row in rows:
            cells, both = [], {}
            for lib in LIBS:
                f, b = row["times"][lib, n]
                cells += [med(f) * 1e3, med(b) * 1e3]
                both[lib] = med([p + q for p, q in zip(f, b)]) * 1e3
                total[lib] += both[lib] * row["count"]
            ratio = both["cnnumpy"] / both["torch"]
            print(
                f"| {row['name']} | {row['count']} | {row['shape']} | "
                + " | ".join(f"{v:.2f}" for v in cells)
                + f" | {both['cnnumpy']:.2f} | {both['torch']:.2f} | {ratio:.2f}x |"
            )
        ratio = total["cnnumpy"] / total["torch"]
        print(
            f"| all {sum(r['count'] for r in rows)} convolutions (count x fwd+bwd) "
            f"| | | | | | | {total['cnnumpy']:.2f} | {total['torch']:.2f} | {ratio:.2f}x |"
        )
        worst = max(rows, key=lambda r: _ratio(r, n))
        print()
        print(
            f"Convolutions at most 1.0x PyTorch ({inp}, {n} thread{'s' * (n > 1)}): "
            f"{sum(_ratio(r, n) <= 1 for r in rows)} of {len(rows)}; the slowest "
            f"is {worst['name']} at {_ratio(worst, n):.2f}x."
        )


def _ratio(row: dict, n: int) -> float:
    sums = {
        lib: statistics.median([p + q for p, q in zip(*row["times"][lib, n])])
        for lib in LIBS
    }
    return sums["cnnumpy"] / sums["torch"]
