"""``cnnumpy explain``: the engine's ops worked step by step."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from cnnumpy import explain
from cnnumpy.cli._args import PAIR_HELP, SHAPE_HELP, int_or_pair, shape4

__all__ = ["add_explain"]


# --- explain ------------------------------------------------------------------------


def run_explain_conv(args: argparse.Namespace) -> int:
    """``cnnumpy explain im2col|col2im|conv-backward|conv-transpose``."""
    explainer: Callable[..., str] = {
        "im2col": explain.explain_im2col,
        "col2im": explain.explain_col2im,
        "conv-backward": explain.explain_conv_backward,
        "conv-transpose": explain.explain_conv_transpose,
    }[args.topic]
    window = (args.input, args.kernel, args.stride, args.padding, args.dilation)
    more = {}
    if args.topic == "conv-transpose":
        more["output_padding"] = args.output_padding
    if args.topic == "im2col":
        more["layout"] = args.layout
    plot, page = getattr(args, "plot", None), getattr(args, "html", None)
    if (plot or page) and args.layout != "nchw":
        raise ValueError("--plot and --html draw the NCHW layout: leave out --layout")
    text = explainer(*window, **more)  # validates before anything is written
    if plot is not None:
        explain.plot_im2col(plot, *window)
    if page is not None:
        explain.html_im2col(page, *window)
    print(text)
    if plot is not None:
        print(f"\nPlot written to {plot}")
    if page is not None:
        print(f"\nPage written to {page}: open it in a browser and point at an output")
    return 0


def run_explain_pool(args: argparse.Namespace) -> int:
    """``cnnumpy explain pool``."""
    print(
        explain.explain_pool(
            args.input, args.kernel_size, args.stride, args.padding, args.kind
        )
    )
    return 0


def add_explain(commands: argparse._SubParsersAction) -> None:
    """``cnnumpy explain TOPIC``: the engine's ops worked step by step."""
    parser = commands.add_parser(
        "explain",
        help="walk through im2col, col2im, the conv backward pass or pooling",
        description="Print a step-by-step worked example for the given shapes.",
    )
    topics = parser.add_subparsers(dest="topic", required=True, metavar="TOPIC")
    conv_topics = {
        "im2col": "index matrices, column matrix and the product, for arange inputs",
        "col2im": "the overlap map and a fold back onto the input grid",
        "conv-backward": "dW = dout2d @ cols.T, dX_col = W2d.T @ dout2d, col2im; "
        "dx again as a full convolution with the rotated kernel",
        "conv-transpose": "ConvTranspose2d as the adjoint of Conv2d: "
        "cols = W2d.T @ x2d, folded by col2im; <conv2d(z), x> = <z, y>",
    }
    for name, help_text in conv_topics.items():
        topic = topics.add_parser(name, help=help_text, description=help_text)
        topic.add_argument(
            "--input", type=shape4, required=True, metavar="N,C,H,W", help=SHAPE_HELP
        )
        kernel = "C,F,kH,kW" if name == "conv-transpose" else "F,C,kH,kW"
        topic.add_argument(
            "--kernel", type=shape4, required=True, metavar=kernel, help=SHAPE_HELP
        )
        for flag, default in (("--stride", 1), ("--padding", 0), ("--dilation", 1)):
            topic.add_argument(
                flag,
                type=int_or_pair,
                default=default,
                metavar=flag[2].upper(),
                help=PAIR_HELP + " (default: %(default)s)",
            )
        if name == "conv-transpose":
            topic.add_argument(
                "--output-padding",
                type=int_or_pair,
                default=0,
                metavar="OP",
                help=PAIR_HELP + ", below the stride or dilation (default: 0)",
            )
        if name == "im2col":
            topic.add_argument(
                "--layout",
                choices=("nchw", "nhwc"),
                default="nchw",
                help="nhwc: channels-last, --input is N,H,W,C; windows gathered "
                "by np.take from flat indices (default: %(default)s)",
            )
            topic.add_argument(
                "--plot",
                metavar="FILE.png",
                help="also draw one receptive field and its column (needs matplotlib)",
            )
            topic.add_argument(
                "--html",
                metavar="FILE.html",
                help="also write one self-contained page where pointing at an "
                "output cell highlights its receptive field, column and product",
            )
        topic.set_defaults(run=run_explain_conv)
    pool = topics.add_parser(
        "pool", help="max or average pooling: windows, winners, routing"
    )
    pool.add_argument(
        "--input", type=shape4, required=True, metavar="N,C,H,W", help=SHAPE_HELP
    )
    pool.add_argument(
        "--kernel-size", type=int_or_pair, required=True, metavar="K", help=PAIR_HELP
    )
    pool.add_argument(
        "--stride", type=int_or_pair, metavar="S", help="like K (default: K)"
    )
    pool.add_argument(
        "--padding",
        type=int_or_pair,
        default=0,
        metavar="P",
        help=PAIR_HELP + " (default: 0)",
    )
    pool.add_argument("--kind", choices=("max", "avg"), required=True)
    pool.set_defaults(run=run_explain_pool)
