"""The training loop that ``cnnumpy train`` runs for you, written out (NumPy only).

Reads the MNIST test set shipped beside the checkout (``../shared/data/mnist-t10k``,
10,000 digits), trains LeNet-5 on the first 8,000 and reports accuracy on the last
2,000 (``--limit N`` uses the first N digits, split the same way). Every step of
`cnnumpy.train.fit` is here in plain sight: shuffle, forward, loss, backward,
optimizer step; the command line adds validation, checkpoints and plots.

    python examples/train_lenet5.py [--epochs 2] [--data DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from cnnumpy import nn, optim
from cnnumpy.data import read_idx
from cnnumpy.models import lenet5

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--limit", type=int, default=10_000, help="use the first N digits (80%% train)"
    )
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    if not 10 <= args.limit <= 10_000:
        parser.error(f"--limit must be in [10, 10000], got {args.limit}")
    images = args.data / "t10k-images-idx3-ubyte.gz"
    labels = args.data / "t10k-labels-idx1-ubyte.gz"
    if not images.is_file() or not labels.is_file():
        parser.error(f"--data {args.data} must hold {images.name} and {labels.name}")

    x = read_idx(images)[: args.limit, None].astype(np.float32) / 255  # (N, 1, 28, 28)
    y = read_idx(labels)[: args.limit].astype(np.int64)
    n_train = len(x) * 4 // 5
    mean, std = x[:n_train].mean(), x[:n_train].std()  # the training part's statistics
    x = (x - mean) / std
    x_train, y_train = x[:n_train], y[:n_train]
    x_test, y_test = x[n_train:], y[n_train:]

    rng = np.random.default_rng(0)
    model = lenet5(rng=rng)
    model.input_grad = False  # the input is data: no gradient needed for it
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    batch = 100
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = rng.permutation(len(x_train))
        start, total = time.perf_counter(), 0.0
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            optimizer.zero_grad()
            total += criterion(model(x_train[idx]), y_train[idx]) * len(idx)
            model.backward(criterion.backward())
            optimizer.step()
        seconds = time.perf_counter() - start
        model.eval()
        pred = np.concatenate(
            [model(x_test[i : i + 1000]).argmax(1) for i in range(0, len(x_test), 1000)]
        )
        print(
            f"epoch {epoch}: train loss {total / len(x_train):.4f}, "
            f"test accuracy {np.mean(pred == y_test):.2%} "
            f"({len(x_train) / seconds:,.0f} images/s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
