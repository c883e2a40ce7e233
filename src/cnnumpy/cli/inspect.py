"""``cnnumpy inspect CKPT IMAGE... --out DIR``: what a trained network looks at."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cnnumpy import data
from cnnumpy.cli._args import add_threads, positive_int, readable_file
from cnnumpy.inspect import inspect_images
from cnnumpy.training import load_trained

__all__ = ["add_inspect"]


def run_inspect(args: argparse.Namespace) -> int:
    """``cnnumpy inspect CKPT IMAGE... --out DIR``."""
    trained = load_trained(args.checkpoint)
    C, H, W = trained.input_shape
    names, batches = [], []
    for path in args.images:
        images = data.load_images([path], size=(H, W), channels=C)
        stem = Path(path).name.split(".")[0] or "image"
        many = len(images) > 1
        names += [f"{stem}-{i}" if many else stem for i in range(len(images))]
        batches.append(images)
    images = np.concatenate(batches)
    if len(images) > args.limit:
        print(
            f"Inspecting the first {args.limit} of {len(images)} images "
            "(--limit K for more)."
        )
    k = args.limit
    summary = inspect_images(trained, images[:k], args.out, names[:k], args.top)
    print(summary, end="")
    print(f"Pictures and summary.txt written to {args.out}")
    return 0


def add_inspect(commands: argparse._SubParsersAction) -> None:
    """``cnnumpy inspect CKPT IMAGE... --out DIR``: pictures of what a model sees."""
    p = commands.add_parser(
        "inspect",
        help="feature maps, saliency and Grad-CAM pictures of a trained model",
        description="For each image write NAME-feature-maps.png (every conv and "
        "pooling layer and residual block), NAME-saliency.png (gradient of the top "
        "class's logit with respect to the pixels) and NAME-grad-cam.png (Grad-CAM "
        "on the last convolution, or the last residual block, over the image) to "
        "DIR, and a summary (top classes, how active each layer is) to "
        "DIR/summary.txt and the screen.",
    )
    p.add_argument("checkpoint", type=readable_file, metavar="CKPT")
    p.add_argument("images", type=readable_file, nargs="+", metavar="IMAGE")
    p.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="folder for the PNGs"
    )
    p.add_argument("--top", type=positive_int, default=3, metavar="K")
    p.add_argument(
        "--limit",
        type=positive_int,
        default=16,
        metavar="K",
        help="inspect at most the first K images (an IDX file may hold "
        "thousands; three PNGs each); default 16",
    )
    add_threads(p)
    p.set_defaults(run=run_inspect)
