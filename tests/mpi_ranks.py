"""What each rank runs in tests/test_distributed.py: ``mpiexec -n N python this OUT``.

Trains LeNet-5 for 20 steps (2 epochs of 190 images in batches of 20) in
float64 and float32 with ``fit(comm=...)``, evaluates on 101 images, and rank
0 writes the weights and results to OUT/ranks.npz. Then checks that a weight
changed on one rank is caught, and reports each rank's default threads.
A module of tests/ without tests: pytest imports it (doctests) and runs nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from cnnumpy import data, distributed, models, optim
from cnnumpy.training import evaluate, fit

STEPS_DATA = (190, 101)  # training images, evaluation images
BATCH, EPOCHS = 20, 2


def splits(dtype: str) -> tuple[data.Dataset, data.Dataset]:
    full, _ = data.load_dataset("mnist-sample")
    n_train, n_eval = STEPS_DATA
    chosen = np.random.default_rng(1).permutation(len(full))  # all ten digits
    train = full.subset(chosen[:n_train])
    held = full.subset(chosen[n_train : n_train + n_eval])
    mean, std = data.normalization_stats(train)
    return train.normalized(mean, std, dtype), held.normalized(mean, std, dtype)


def train(dtype: str, comm: distributed.Communicator | None) -> dict[str, np.ndarray]:
    """Weights and results after 20 steps; the same inputs on every rank."""
    train_set, held = splits(dtype)
    model = models.create_model("lenet5", rng=np.random.default_rng(0), dtype=dtype)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    state = fit(
        model, optimizer, train_set, epochs=EPOCHS, batch_size=BATCH, val=held,
        seed=0, comm=comm,
    )  # fmt: skip
    result = evaluate(model, held, batch_size=32, comm=comm)
    out = {f"{dtype}/{k}": v for k, v in model.state_dict().items()}
    out[f"{dtype}/confusion"] = result.confusion_matrix
    out[f"{dtype}/predictions"] = result.predictions
    out[f"{dtype}/loss"] = np.array(result.loss)
    out[f"{dtype}/history"] = np.array(
        [[h["train_loss"], h["val_loss"], h["val_accuracy"]] for h in state.history]
    )
    return out


def main(out: Path) -> None:
    comm = distributed.world()
    results = {"world_size": np.array(comm.size)}
    for dtype in ("float64", "float32"):
        results.update(train(dtype, comm))
    # One rank's weights one bit off: every rank must stop with the error.
    model = models.create_model("lenet5", rng=np.random.default_rng(0))
    if comm.rank == comm.size - 1 and comm.size > 1:
        model.fc3.bias.data[0] = np.nextafter(model.fc3.bias.data[0], np.float32(1))
    try:
        distributed.check_weights_agree(model.parameters(), comm, "in the test")
        caught = ""
    except distributed.RanksDisagreeError as err:
        caught = str(err)
    flags = np.array([comm.rank, comm.default_threads(), comm.local_size, bool(caught)])
    everyone = np.zeros((comm.size, 4), dtype=np.int64)
    comm._comm.Allgather(flags.astype(np.int64), everyone)
    if comm.is_root:
        results["ranks"] = everyone
        results["caught"] = np.array(caught)
        np.savez(out / "ranks.npz", **results)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
