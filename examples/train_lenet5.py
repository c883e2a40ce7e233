"""The training loop that ``cnnumpy train`` runs for you, written out (NumPy only).

Trains LeNet-5 on the default data set, the MNIST sample (4,000 training and
1,000 test digits), and reports accuracy on its test digits after every epoch.
``--limit N`` trains on N of the training digits, drawn at random; ``--data
DIR`` reads any folder with MNIST's four IDX files instead. Every step of
`cnnumpy.training.fit` is here in plain sight: shuffle, forward, loss,
backward, optimizer step; the command line adds validation, checkpoints and
plots.

    python examples/train_lenet5.py [--epochs 2] [--data DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from cnnumpy import nn, optim
from cnnumpy.data import load_dataset, normalization_stats
from cnnumpy.models import lenet5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--data", metavar="DIR", help="a folder of IDX files")
    parser.add_argument("--limit", type=int, help="train on N random digits")
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    if args.limit is not None and args.limit < 10:
        parser.error(f"--limit must be >= 10, got {args.limit}")
    try:
        if args.data is None:
            train_set, test_set = load_dataset("mnist-sample")
        else:
            train_set, test_set = load_dataset("mnist", data_dir=args.data)
    except (OSError, ValueError) as err:
        parser.error(str(err))
    rng = np.random.default_rng(0)
    if args.limit is not None:  # a random N: the sample is sorted by class
        train_set = train_set.subset(
            np.sort(rng.permutation(len(train_set))[: args.limit])
        )
    mean, std = normalization_stats(train_set)  # the training part's statistics
    x_train = train_set.normalized(mean, std).images  # (N, 1, 28, 28) float32
    x_test = test_set.normalized(mean, std).images
    y_train, y_test = train_set.labels, test_set.labels

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
