"""Train LeNet-5 on real MNIST digits with cnnumpy's core API alone (NumPy only).

Reads the MNIST test set shipped beside the checkout (``../shared/data/mnist-t10k``,
10,000 digits), trains on the first 8,000 and reports accuracy on the last 2,000
(``--limit N`` uses the first N digits, split the same way).
The full data pipeline and the ``cnnumpy`` command line are tracked in issue 3.

    python examples/train_lenet5.py [--epochs 2] [--data DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import gzip
import struct
import sys
import time
from pathlib import Path

import numpy as np

from cnnumpy import nn, optim

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip): big-endian magic 0x000008TT + one uint32 per dimension."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header promises {dims}, found {data.size} bytes")
    return data.reshape(dims)


def lenet5(rng: np.random.Generator) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2, rng=rng),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5, rng=rng),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120, rng=rng),
        nn.Tanh(),
        nn.Linear(120, 84, rng=rng),
        nn.Tanh(),
        nn.Linear(84, 10, rng=rng),
    )


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
    model = lenet5(rng)
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
