"""The ``cnnumpy`` command line.

    cnnumpy explain im2col --input 1,3,4,4 --kernel 2,3,2,2
    cnnumpy explain pool --input 1,1,4,4 --kernel-size 2 --kind max

Each subcommand is one ``add_<name>(commands)`` function that declares its
arguments and sets ``run``, the function that carries it out. A run function
parses nothing and computes nothing: it calls the library and prints what it
returns. Bad input ends with exit status 2 and one line on stderr,
``cnnumpy: error: ...``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from cnnumpy import explain, plots

__all__ = ["build_parser", "main"]

PROG = "cnnumpy"
SHAPE_HELP = "four positive integers separated by commas"
PAIR_HELP = "an integer, or two for height and width: 2 or 2,1"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, ``cnnumpy: error: ...``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{PROG}: error: {message}\n")


# --- argument types: text to values, nothing more ------------------------------------


def _ints(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas, got {text!r}"
        ) from None


def shape4(text: str) -> tuple[int, int, int, int]:
    """``'N,C,H,W'`` as 4 positive ints."""
    values = _ints(text)
    if len(values) != 4 or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"expected 4 positive integers separated by commas, got {text!r}"
        )
    a, b, c, d = values
    return a, b, c, d


def int_or_pair(text: str) -> int | tuple[int, int]:
    """``'2'`` as 2, ``'2,1'`` as (2, 1); the library checks the range."""
    values = _ints(text)
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise argparse.ArgumentTypeError(
        f"expected 1 or 2 integers (2 or 2,1), got {text!r}"
    )


# --- explain ------------------------------------------------------------------------


def run_explain_conv(args: argparse.Namespace) -> int:
    """``cnnumpy explain im2col|col2im|conv-backward``."""
    explainer: Callable[..., str] = {
        "im2col": explain.explain_im2col,
        "col2im": explain.explain_col2im,
        "conv-backward": explain.explain_conv_backward,
    }[args.topic]
    window = (args.input, args.kernel, args.stride, args.padding, args.dilation)
    text = explainer(*window)  # validates before anything is written
    plot = getattr(args, "plot", None)
    if plot is not None:
        plots.plot_im2col(plot, *window)
    print(text)
    if plot is not None:
        print(f"\nPlot written to {plot}")
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
        "conv-backward": "dW = dout2d @ cols.T, dX_col = W2d.T @ dout2d, col2im",
    }
    for name, help_text in conv_topics.items():
        topic = topics.add_parser(name, help=help_text, description=help_text)
        topic.add_argument(
            "--input", type=shape4, required=True, metavar="N,C,H,W", help=SHAPE_HELP
        )
        topic.add_argument(
            "--kernel", type=shape4, required=True, metavar="F,C,kH,kW", help=SHAPE_HELP
        )
        for flag, default in (("--stride", 1), ("--padding", 0), ("--dilation", 1)):
            topic.add_argument(
                flag,
                type=int_or_pair,
                default=default,
                metavar=flag[2].upper(),
                help=PAIR_HELP + " (default: %(default)s)",
            )
        if name == "im2col":
            topic.add_argument(
                "--plot",
                metavar="FILE.png",
                help="also draw one receptive field and its column (needs matplotlib)",
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


# --- the parser ---------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``cnnumpy`` parser: one ``add_<command>`` call per subcommand."""
    parser = _Parser(
        prog=PROG, description="Convolutional neural networks in NumPy alone."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_explain(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (2 on bad input)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # argparse's own errors and --help
        return stop.code if isinstance(stop.code, int) else 2
    try:
        return args.run(args)
    except (ValueError, TypeError, ImportError, OSError) as err:
        message = " ".join(str(err).split())  # one line, whatever the library said
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
