"""``cnnumpy summary``: a model's layers, output shapes and parameters."""

from __future__ import annotations

import argparse

import numpy as np

from cnnumpy.cli._args import positive_int
from cnnumpy.models import MODELS, create_model, summary

__all__ = ["add_summary"]


def run_summary(args: argparse.Namespace) -> int:
    """``cnnumpy summary``."""
    model = create_model(
        args.model,
        num_classes=args.num_classes,
        in_channels=args.in_channels,
        input_size=args.input_size,
        rng=np.random.default_rng(0),
    )
    shape = (args.in_channels, args.input_size, args.input_size)
    print(summary(model, shape, args.model))
    return 0


def add_summary(commands: argparse._SubParsersAction) -> None:
    """``cnnumpy summary [--model NAME]``: layers, output shapes, parameters."""
    p = commands.add_parser("summary", help="print a model's layers and parameters")
    p.add_argument("--model", choices=sorted(MODELS), default="lenet5")
    p.add_argument("--num-classes", type=positive_int, default=10, metavar="K")
    p.add_argument("--in-channels", type=positive_int, default=1, metavar="C")
    p.add_argument("--input-size", type=positive_int, default=28, metavar="S")
    p.set_defaults(run=run_summary)
