"""``cnnumpy train``: the flags of `TrainConfig`, a progress bar, Ctrl-C handling."""

from __future__ import annotations

import argparse
import functools
import sys
from dataclasses import fields, replace

from cnnumpy import data, distributed
from cnnumpy.cli._args import (
    PROG,
    add_threads,
    folder,
    fraction,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    readable_file,
    unit_float,
)
from cnnumpy.cli._progress import (
    EpochBar,
    StopOnInterrupt,
    catch_interrupt,
    download_bar,
    plots_missing,
)
from cnnumpy.distributed import local
from cnnumpy.functional import set_num_threads
from cnnumpy.models import MODELS
from cnnumpy.nn import IMPLS
from cnnumpy.training.config import (
    AUGMENTS,
    DTYPES,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
    resume_config,
)
from cnnumpy.training.run import train_run

__all__ = ["add_train"]

DEFAULTS = {f.name: f.default for f in fields(TrainConfig)}


def run_train(args: argparse.Namespace) -> int:
    """``cnnumpy train``: a `TrainConfig` from the flags, then `train_run`.

    Under ``mpiexec -n N``, or with ``--processes N`` (no MPI needed: N
    processes of this machine, `cnnumpy.distributed.local`), the N ranks train
    one model (`cnnumpy.distributed`), each with its share of the machine's
    cores unless ``--threads`` says otherwise; rank 0 alone prints and writes
    the run folder.
    """
    comm = distributed.world()
    if args.processes > 1 and comm.size == 1:
        if distributed.launched_by_mpi():
            raise ValueError(
                f"--processes must be 1 under mpiexec (its -n says how many "
                f"ranks), got {args.processes}"
            )
        # Ranks 1..N-1 run this same command line; this process is rank 0.
        comm = local.start(args.processes, functools.partial(_rank, args.argv))
        status = 1
        try:
            status = _train(args, comm)
        finally:
            status = local.finish(comm, status)
        return status
    return _train(args, comm)


def _rank(argv: list[str], comm: distributed.Communicator) -> int:
    """A rank that ``--processes`` spawned: the same command, as that rank."""
    from cnnumpy.cli import main

    return main(argv)


def _train(args: argparse.Namespace, comm: distributed.Communicator) -> int:
    if comm.size > 1 and args.threads is None:
        set_num_threads(comm.default_threads())
    root = comm.is_root
    given = {
        f.name: getattr(args, f.name)
        for f in fields(TrainConfig)
        if getattr(args, f.name, None) is not None
    }
    if args.resume is not None:
        config = resume_config(given.pop("resume"), **given)
    else:
        config = TrainConfig(**{**DEFAULTS, **given})
    if config.plots and (why := plots_missing()) is not None:
        if root:
            print(f"{PROG}: {why}", file=sys.stderr)
        config = replace(config, plots=False)
    shown = not args.quiet and root
    ranks = comm if comm.size > 1 else None
    stopper = StopOnInterrupt(ranks)
    with catch_interrupt(stopper, announce=root):
        result = train_run(
            config,
            callbacks=[*([EpochBar()] if shown else []), stopper],
            progress=download_bar() if shown else None,
            comm=ranks,
        )
    last = result.out / "last.npz"
    if result.interrupted:
        if root:
            print(
                f"Interrupted at epoch {result.state.epoch + 1}, batch "
                f"{result.state.batch}/{result.state.batches}: saved {last}\n"
                f"Continue with: {_command(comm)} --resume {last}"
            )
        return 128 + stopper.signum  # as a shell reports a process ended by it
    if not root:
        return 0
    assert result.test is not None  # set whenever the run was not interrupted
    config = result.config
    if result.state.epoch < config.epochs:
        print(
            f"Stopped early after epoch {result.state.epoch} of {config.epochs}: "
            f"no better {'validation' if config.val_fraction else 'training'} loss "
            f"for {config.patience} epochs (--patience)"
        )
    source = config.dataset if config.data_dir is None else config.data_dir
    print(
        f"Test accuracy: {result.test.accuracy:.2%} (loss {result.test.loss:.4f}) "
        f"on {len(result.test.predictions):,} images of {source}"
    )
    if not args.quiet:
        print(f"Run folder: {result.out}")
        for path in result.files:
            print(f"  {path.name}")
    return 0


def _command(comm: distributed.Communicator) -> str:
    """The command that started this run, for the resume hint."""
    if comm.launcher == "processes":
        return f"cnnumpy train --processes {comm.size}"
    return f"mpiexec -n {comm.size} cnnumpy train" if comm.size > 1 else "cnnumpy train"


def add_train(commands: argparse._SubParsersAction) -> None:
    """``cnnumpy train``: train a model, write checkpoints, metrics and plots."""
    p = commands.add_parser(
        "train",
        help="train a model (LeNet-5 on the MNIST sample by default)",
        description="Train a model and write best.npz, last.npz, metrics.json, "
        "history.csv and plots to the run folder. Under mpiexec -n N (the mpi "
        "extra), or with --processes N on one machine (no MPI needed), N "
        "processes train one model, each on its part of every batch with its "
        "share of its machine's CPUs (unless --threads).",
    )
    d = DEFAULTS
    p.add_argument("--model", choices=sorted(MODELS), help=f"(default: {d['model']})")
    p.add_argument(
        "--dataset", choices=data.DATASETS, help=f"(default: {d['dataset']})"
    )
    p.add_argument(
        "--data",
        dest="data_dir",
        type=folder,
        metavar="DIR",
        help="folder with the four IDX files (train/t10k images/labels), or "
        "with CIFAR-10's binary batches or archive (--dataset cifar10)",
    )
    p.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="where downloads are kept (default: $XDG_CACHE_HOME/cnnumpy or "
        "~/.cache/cnnumpy)",
    )
    p.add_argument(
        "--no-download",
        dest="download",
        action="store_const",
        const=False,
        help="never download; fail if the data set is not on disk",
    )
    p.add_argument(
        "--epochs",
        type=positive_int,
        metavar="N",
        help=f"total epochs, counting resumed ones (default: {d['epochs']})",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        metavar="B",
        help=f"(default: {d['batch_size']})",
    )
    p.add_argument(
        "--lr", type=positive_float, metavar="LR", help=f"(default: {d['lr']})"
    )
    p.add_argument(
        "--optimizer", choices=OPTIMIZERS, help=f"(default: {d['optimizer']})"
    )
    p.add_argument(
        "--momentum",
        type=fraction,
        metavar="M",
        help=f"for sgd (default: {d['momentum']})",
    )
    p.add_argument(
        "--nesterov",
        action="store_const",
        const=True,
        help="Nesterov momentum (sgd)",
    )
    p.add_argument(
        "--weight-decay",
        type=nonnegative_float,
        metavar="WD",
        help="weight decay of conv and linear weights, never of biases and "
        "batch-norm parameters; decoupled with adamw (default: 0)",
    )
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        help="learning rate schedule: step and cosine step per epoch, onecycle "
        "(max rate --lr, momentum cycled 0.85-0.95) per batch (default: step "
        "with --lr-step, else constant)",
    )
    p.add_argument(
        "--lr-step",
        type=positive_int,
        metavar="N",
        help="multiply the learning rate by --lr-gamma every N epochs (StepLR)",
    )
    p.add_argument(
        "--lr-gamma",
        type=positive_float,
        metavar="G",
        help=f"factor of --lr-step (default: {d['lr_gamma']})",
    )
    p.add_argument(
        "--warmup-epochs",
        type=nonnegative_int,
        metavar="N",
        help="linear warm-up from 1%% of --lr over N epochs; with onecycle, its "
        "rising part (default: 0; onecycle: 30%% of the run)",
    )
    p.add_argument(
        "--label-smoothing",
        type=unit_float,
        metavar="S",
        help="label smoothing of the training loss (default: 0)",
    )
    p.add_argument(
        "--augment",
        choices=AUGMENTS,
        help="random crops after padding, horizontal flips (not for digits), "
        "both, or none (default)",
    )
    p.add_argument(
        "--crop-padding",
        type=nonnegative_int,
        metavar="P",
        help="pixels of black added on each side before a random crop "
        "(default: 2 for 28x28 images, 4 for 32x32)",
    )
    p.add_argument(
        "--seed", type=nonnegative_int, metavar="S", help=f"(default: {d['seed']})"
    )
    p.add_argument(
        "--val-fraction",
        type=fraction,
        metavar="F",
        help="part of the training set held out for validation "
        f"(default: {d['val_fraction']})",
    )
    p.add_argument(
        "--patience",
        type=positive_int,
        metavar="N",
        help="stop early after N epochs without a better validation loss",
    )
    p.add_argument("--dtype", choices=DTYPES, help=f"(default: {d['dtype']})")
    p.add_argument(
        "--impl",
        choices=IMPLS,
        help="im2col (fast, default) or naive (the reference loops: feel the "
        "difference in images/s)",
    )
    p.add_argument("--out", metavar="RUN_DIR", help="run folder (default: runs/<new>)")
    p.add_argument(
        "--resume", type=readable_file, metavar="CKPT", help="continue from last.npz"
    )
    p.add_argument(
        "--no-plots", dest="plots", action="store_const", const=False, help="skip plots"
    )
    p.add_argument("--quiet", action="store_true", help="print only the test accuracy")
    add_threads(p)
    p.add_argument(
        "--processes",
        type=positive_int,
        default=1,
        metavar="N",
        help="train on N processes of this machine, each on its part of every "
        "batch (default: 1). A second process uses a second core better than "
        "a second thread: see benchmarks/scaling.py",
    )
    p.set_defaults(run=run_train)
