"""``cnnumpy export CKPT OUT.onnx``: a checkpoint as an ONNX model."""

from __future__ import annotations

import argparse

from cnnumpy.cli._args import readable_file
from cnnumpy.onnx import OPSET, OPSETS, export
from cnnumpy.training import load_trained

__all__ = ["add_export"]


def run_export(args: argparse.Namespace) -> int:
    """``cnnumpy export CKPT OUT``."""
    trained = load_trained(args.checkpoint)
    path = export(trained, args.output, opset=args.opset)
    C, H, W = trained.input_shape
    print(
        f"{path}: opset {args.opset}; input 'pixels' uint8 (N, {C}, {H}, {W}), "
        f"output 'logits' (N, {len(trained.class_names)})"
    )
    return 0


def add_export(commands: argparse._SubParsersAction) -> None:
    """``cnnumpy export CKPT OUT``: a checkpoint as an ONNX model."""
    p = commands.add_parser(
        "export",
        help="write a checkpoint as an ONNX model (needs cnnumpy[onnx])",
        description="Write the checkpoint's model as an ONNX graph. It takes uint8 "
        "pixels (N, C, H, W), as cnnumpy predict reads images, normalises them "
        "in its first nodes and gives one logit per class; the class names are "
        "in its metadata.",
    )
    p.add_argument("checkpoint", type=readable_file, metavar="CKPT")
    p.add_argument("output", metavar="OUT.onnx")
    p.add_argument("--opset", type=int, choices=OPSETS, default=OPSET)
    p.set_defaults(run=run_export)
