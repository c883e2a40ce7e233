"""Where a training step spends its time: per layer, and outside the layers.

For each library, two kinds of step alternate over the same batches:

- the plain step, as a user's loop runs it (``zero_grad``, forward, loss,
  backward, optimizer step), timed whole;
- the same step taken apart: each top-level child's forward and backward
  timed on its own, and ``zero_grad``, the loss's forward and backward and
  the optimizer step timed directly.

The plain step minus the layers is what the loop costs outside them (the
pieces timed directly, plus the glue and the allocation between them: the
"rest"). PyTorch's layers are timed on detached copies of their inputs, so
each backward runs alone; the autograd engine's own work between layers then
falls partly into the layer times, and the rest can come out below zero.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from _common import LIBS, NAMES, OPTIMIZERS
from cnnumpy import nn

PIECES = ("zero_grad", "loss forward", "loss backward", "optimizer step")


@dataclass
class Profile:
    """Per-step times in seconds, one entry per timed step."""

    names: list[str]
    fwd: list[list[float]] = field(default_factory=list)  # [step][child]
    bwd: list[list[float]] = field(default_factory=list)
    pieces: list[list[float]] = field(default_factory=list)  # [step][PIECES]
    plain: list[float] = field(default_factory=list)


class _Cnnumpy:
    def __init__(self, model: nn.Module, recipe: str) -> None:
        self.model = model
        model.train()
        model.input_grad = False
        self.criterion = nn.CrossEntropyLoss()
        self.opt = OPTIMIZERS[recipe][1](model.parameters())
        self.children = [m for _, m in model.named_children()]
        # What Sequential decides: no input gradient up to the first weights.
        self.first = next(
            (i for i, m in enumerate(self.children) if next(m.parameters(), None)),
            len(self.children),
        )

    def plain(self, x: np.ndarray, y: np.ndarray) -> None:
        self.opt.zero_grad()
        self.criterion(self.model(x), y)
        self.model.backward(self.criterion.backward())
        self.opt.step()

    def apart(self, x: np.ndarray, y: np.ndarray) -> tuple[list, list, list]:
        clock = time.perf_counter
        t = clock()
        self.opt.zero_grad()
        pieces = [clock() - t]
        fwd, bwd = [], [0.0] * len(self.children)
        h = x
        for m in self.children:
            t = clock()
            h = m(h)
            fwd.append(clock() - t)
        t = clock()
        self.criterion(h, y)
        pieces.append(clock() - t)
        t = clock()
        g = self.criterion.backward()
        pieces.append(clock() - t)
        for k in reversed(range(len(self.children))):
            m = self.children[k]
            m.input_grad = k > self.first
            t = clock()
            g = m.backward(g)
            bwd[k] = clock() - t
            if g is None:
                break
        t = clock()
        self.opt.step()
        pieces.append(clock() - t)
        return fwd, bwd, pieces


class _Torch:
    def __init__(self, model: torch.nn.Module, recipe: str) -> None:
        self.model = model
        model.train()
        self.criterion = torch.nn.CrossEntropyLoss()
        self.opt = OPTIMIZERS[recipe][2](model.parameters())
        self.children = list(model.children())

    def plain(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.opt.zero_grad()
        self.criterion(self.model(x), y).backward()
        self.opt.step()

    def apart(self, x: torch.Tensor, y: torch.Tensor) -> tuple[list, list, list]:
        clock = time.perf_counter
        t = clock()
        self.opt.zero_grad()
        pieces = [clock() - t]
        fwd, inputs, outputs = [], [], []
        h = x
        for k, m in enumerate(self.children):
            h = h.detach().requires_grad_(k > 0)
            t = clock()
            out = m(h)
            fwd.append(clock() - t)
            inputs.append(h)
            outputs.append(out)
            h = out
        logits = h.detach().requires_grad_(True)
        t = clock()
        loss = self.criterion(logits, y)
        pieces.append(clock() - t)
        t = clock()
        loss.backward()
        pieces.append(clock() - t)
        g, bwd = logits.grad, [0.0] * len(self.children)
        for k in reversed(range(len(self.children))):
            t = clock()
            outputs[k].backward(g)
            bwd[k] = clock() - t
            g = inputs[k].grad
        t = clock()
        self.opt.step()
        pieces.append(clock() - t)
        return fwd, bwd, pieces


def profile_steps(
    models: tuple[nn.Module, torch.nn.Module],
    x: np.ndarray,
    y: np.ndarray,
    batch: int,
    steps: int,
    recipe: str,
    turn: int = 5,
) -> dict[str, Profile]:
    """``steps`` plain and ``steps`` taken-apart steps per library, in turns.

    The libraries take turns every ``turn`` steps of each kind (the order
    alternating), so both see the same stretches of the machine; two warm-up
    steps of each kind come first and are not kept.
    """
    runners = {
        "cnnumpy": _Cnnumpy(models[0], recipe),
        "torch": _Torch(models[1], recipe),
    }
    data = {"cnnumpy": (x, y), "torch": (torch.from_numpy(x), torch.from_numpy(y))}
    names = [f"{name}: {type(m).__name__}" for name, m in models[0].named_children()]
    out = {lib: Profile(names) for lib in LIBS}
    last = max(len(x) - batch, 0)
    done = -2  # warm-up
    while done < steps:
        k = min(turn, steps - done) if done >= 0 else 2
        for lib in LIBS if (done // turn) % 2 else LIBS[::-1]:
            run, (xs, ys), prof = runners[lib], data[lib], out[lib]
            for s in range(done, done + k):
                i = (s * batch) % (last + 1) if last else 0
                xb, yb = xs[i : i + batch], ys[i : i + batch]
                t = time.perf_counter()
                run.plain(xb, yb)
                dt = time.perf_counter() - t
                f, b, p = run.apart(xb, yb)
                if s >= 0:
                    prof.plain.append(dt)
                    prof.fwd.append(f)
                    prof.bwd.append(b)
                    prof.pieces.append(p)
        done += k
    return out


def _ms(values: list[float]) -> float:
    return statistics.median(values) * 1e3


def print_profile(profiles: dict[str, Profile], title: str) -> None:
    """The per-layer table, then the table and line of the loop's overhead."""
    c = profiles["cnnumpy"]
    steps = len(c.plain)
    print()
    print(f"Per layer, {title}, ms per step (median of {steps} steps):")
    print()
    print("| layer | cnnumpy fwd | cnnumpy bwd | PyTorch fwd | PyTorch bwd |")
    print("|---|---:|---:|---:|---:|")
    cols = {}
    for lib, p in profiles.items():
        cols[lib] = (np.array(p.fwd), np.array(p.bwd))
    for k, name in enumerate(c.names):
        cells = [_ms(list(cols[lib][j][:, k])) for lib in LIBS for j in (0, 1)]
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in cells) + " |")
    sums = [_ms(list(cols[lib][j].sum(axis=1))) for lib in LIBS for j in (0, 1)]
    print("| all layers | " + " | ".join(f"{v:.2f}" for v in sums) + " |")

    rows: dict[str, dict[str, float]] = {lib: {} for lib in LIBS}
    for lib, p in profiles.items():
        layers = np.array(p.fwd).sum(axis=1) + np.array(p.bwd).sum(axis=1)
        r = rows[lib]
        r["step"] = _ms(p.plain)
        r["layers"] = _ms(list(layers))
        r["outside"] = r["step"] - r["layers"]
        pieces = np.array(p.pieces)
        for j, piece in enumerate(PIECES):
            r[piece] = _ms(list(pieces[:, j]))
        r["rest"] = r["outside"] - sum(r[piece] for piece in PIECES)
    labels = [
        ("step", "training step, plain loop"),
        ("layers", "layers, forward + backward (timed one by one)"),
        ("outside", "**outside the layers: step - layers**"),
        *((piece, f"of which {piece} (timed directly)") for piece in PIECES),
        ("rest", "of which the rest: glue, allocation (step - layers - the above)"),
    ]
    print()
    print(f"The training loop outside the layers, {title}, ms per step (medians):")
    print()
    print("| | cnnumpy ms | PyTorch ms | cnnumpy / PyTorch |")
    print("|---|---:|---:|---:|")
    for key, label in labels:
        a, b = rows["cnnumpy"][key], rows["torch"][key]
        ratio = f"{a / b:.2f}x" if b > 0 and a >= 0 else ""
        print(f"| {label} | {a:.2f} | {b:.2f} | {ratio} |")
    a, b = rows["cnnumpy"]["outside"], rows["torch"]["outside"]
    print()
    print(
        f"Overhead per training step outside the layers ({title}): "
        f"{NAMES['cnnumpy']} {a:.2f} ms, {NAMES['torch']} {b:.2f} ms "
        f"(target: cnnumpy's at most PyTorch's: {'met' if a <= b else 'not met'})."
    )
