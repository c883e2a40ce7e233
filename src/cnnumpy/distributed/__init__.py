"""Data-parallel training over MPI, or on one machine without it: one model, N ranks.

Each rank holds the whole model and the whole data set. Every global batch
is cut into N near-equal parts (`split_batch`: 100 images over 3 ranks are
34/33/33); each rank runs forward and backward on its part, and
`GradientAllreduce` sums the gradients, weighted by the parts' sizes, so that
every rank holds the whole batch's gradient and takes the same optimizer
step. Shuffling and initial weights come from the seed, so the ranks start and
stay equal: N ranks train the same model as one process, to rounding.

``cnnumpy.training.fit(..., comm=comm)`` and ``mpiexec -n N cnnumpy train``
(or ``cnnumpy train --processes N``, whose ranks `cnnumpy.distributed.local`
starts on this machine without MPI) do all this; a loop of one's own takes
five calls. Run it with ``mpiexec -n 2 python loop.py``, or ``python
loop.py`` for one process::

    import numpy as np
    from cnnumpy import data, distributed, models, nn, optim

    comm = distributed.world()  # the ranks of mpiexec, or this process alone
    train, _ = data.load_dataset("mnist-sample")
    train = train.normalized(*data.normalization_stats(train))
    model = models.create_model("lenet5", rng=np.random.default_rng(0))
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    allreduce = distributed.GradientAllreduce(model.parameters(), comm)
    criterion = nn.CrossEntropyLoss()
    for x, y in data.DataLoader(train, batch_size=100, shuffle=True, seed=0):
        part = comm.part(len(y))  # this rank's share of the batch
        loss = criterion(model(x[part]), y[part])
        optimizer.zero_grad()
        model.backward(criterion.backward())
        (loss_sum,) = allreduce(len(y[part]) / len(y), loss * len(y[part]))
        optimizer.step()
        if comm.is_root:  # rank 0 alone prints
            print(f"loss {loss_sum / len(y):.4f}")

mpi4py is imported only by `world` under an MPI launcher (or by building a
`Communicator` from an mpi4py communicator): importing this package needs
NumPy alone. Under ``mpiexec``, an exception on one rank leaves the others
waiting in their next collective; ``mpiexec -n 2 python -m mpi4py loop.py``
aborts them all instead, as ``cnnumpy train`` does.
"""

from cnnumpy.distributed.comm import Communicator, split_batch, world
from cnnumpy.distributed.gradients import (
    GradientAllreduce,
    RanksDisagreeError,
    check_weights_agree,
    root_only,
    weights_checksum,
)
from cnnumpy.distributed.launch import environment_rank, launched_by_mpi

__all__ = [
    "Communicator",
    "GradientAllreduce",
    "RanksDisagreeError",
    "check_weights_agree",
    "environment_rank",
    "launched_by_mpi",
    "root_only",
    "split_batch",
    "weights_checksum",
    "world",
]
