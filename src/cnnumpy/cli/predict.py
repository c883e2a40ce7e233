"""``cnnumpy predict CKPT IMAGE...``: the top classes of each image."""

from __future__ import annotations

import argparse

from cnnumpy import data, onnx
from cnnumpy.cli._args import add_threads, positive_int, readable_file
from cnnumpy.training import load_trained

__all__ = ["add_predict"]


def run_predict(args: argparse.Namespace) -> int:
    """``cnnumpy predict CKPT IMAGE...``."""
    if args.checkpoint.lower().endswith(".onnx"):
        trained = onnx.load_trained(args.checkpoint)
    else:
        trained = load_trained(args.checkpoint)
    C, H, W = trained.input_shape
    loaded = [
        (path, data.load_images([path], size=(H, W), channels=C))
        for path in args.images
    ]
    for path, images in loaded:
        for i, top in enumerate(trained.top_classes(images, args.top)):
            name = path if len(images) == 1 else f"{path}[{i}]"
            guesses = ", ".join(f"{label} ({p:.1%})" for label, p in top)
            print(f"{name}: {guesses}")
    return 0


def add_predict(commands: argparse._SubParsersAction) -> None:
    """``cnnumpy predict CKPT IMAGE...``: the top classes of each image."""
    p = commands.add_parser(
        "predict",
        help="classify PNG/JPEG images or an IDX file with a checkpoint or .onnx",
        description="Print the top classes with probabilities for each image. "
        "CKPT is a checkpoint or an ONNX model (*.onnx, needs cnnumpy[onnx]). "
        "Images are read in colour for a colour model (CIFAR-10), in grey for a "
        "grey one, converting if need be; grey photos of dark digits on light "
        "paper are inverted to MNIST's light on dark.",
    )
    p.add_argument("checkpoint", type=readable_file, metavar="CKPT")
    p.add_argument("images", type=readable_file, nargs="+", metavar="IMAGE")
    p.add_argument("--top", type=positive_int, default=3, metavar="K")
    add_threads(p)
    p.set_defaults(run=run_predict)
