"""``cnnumpy evaluate CKPT``: accuracy, per-class accuracy, confusion matrix."""

from __future__ import annotations

import argparse

from cnnumpy import data
from cnnumpy.cli._args import add_threads, folder, readable_file
from cnnumpy.cli._progress import download_bar
from cnnumpy.training import load_trained

__all__ = ["add_evaluate"]


def run_evaluate(args: argparse.Namespace) -> int:
    """``cnnumpy evaluate CKPT``."""
    trained = load_trained(args.checkpoint)
    name = args.dataset or trained.dataset
    data_dir = args.data_dir
    if args.dataset is None and data_dir is None:  # where it was trained
        saved = trained.checkpoint.get("config")
        data_dir = saved.get("data_dir") if isinstance(saved, dict) else None
    test = data.load_test_set(
        name,
        data_dir=data_dir,
        cache_dir=args.cache_dir,
        download=args.download,
        progress=download_bar(),
    )
    result = trained.evaluate(test)
    source = name if data_dir is None else data_dir
    print(f"{args.checkpoint} on the test split of {source} ({len(test):,} images)")
    print(result.report(trained.class_names))
    return 0


def add_evaluate(commands: argparse._SubParsersAction) -> None:
    """``cnnumpy evaluate CKPT``: accuracy, per-class accuracy, confusion matrix."""
    p = commands.add_parser(
        "evaluate",
        help="test a checkpoint: accuracy, per-class accuracy, confusion matrix",
    )
    p.add_argument("checkpoint", type=readable_file, metavar="CKPT")
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--dataset",
        choices=data.DATASETS,
        help="(default: the data set it was trained on)",
    )
    source.add_argument("--data", dest="data_dir", type=folder, metavar="DIR")
    p.add_argument("--cache-dir", metavar="DIR")
    p.add_argument("--no-download", dest="download", action="store_false")
    add_threads(p)
    p.set_defaults(run=run_evaluate)
