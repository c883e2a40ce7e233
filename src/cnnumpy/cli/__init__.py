"""The ``cnnumpy`` command line.

    cnnumpy --version
    cnnumpy train [--model lenet5] [--dataset mnist-sample] [--epochs 5] ...
    cnnumpy evaluate runs/.../best.npz
    cnnumpy predict runs/.../best.npz digit.png
    cnnumpy export runs/.../best.npz model.onnx
    cnnumpy summary --model lenet5
    cnnumpy explain im2col --input 1,3,4,4 --kernel 2,3,2,2

Each subcommand is one ``add_<name>(commands)`` function that declares its
arguments and sets ``run``, the function that carries it out. A run function
turns the arguments into the library's calls (a frozen `TrainConfig` for
``train``) and prints what they return; it does no arithmetic. Bad input ends
with exit status 2 and one line on stderr, ``cnnumpy: error: ...``: whatever
the failure (bad input, a file too large or malformed, a diverging run, memory
running out, deep recursion), never a traceback. Warnings raised while a
command runs are held back: printed one line each after a success, dropped
after a failure, so that the error stands alone.

Exit status: 0 success, 2 any error (a diverging run included), 130 Ctrl-C,
141 when the reader of the output left early (``| head``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings

from cnnumpy._version import __version__
from cnnumpy.cli._args import EXIT_INTERRUPTED, PROG, Parser
from cnnumpy.cli._ranks import fail, parse_once
from cnnumpy.cli.evaluate import add_evaluate
from cnnumpy.cli.explain import add_explain
from cnnumpy.cli.export import add_export
from cnnumpy.cli.inspect import add_inspect
from cnnumpy.cli.predict import add_predict
from cnnumpy.cli.summary import add_summary
from cnnumpy.cli.train import add_train
from cnnumpy.distributed import RanksDisagreeError
from cnnumpy.functional import set_num_threads
from cnnumpy.training.checkpoint import CheckpointError

__all__ = ["build_parser", "main"]

EXIT_BROKEN_PIPE = 141  # as a shell reports a process ended by SIGPIPE


def build_parser() -> argparse.ArgumentParser:
    """The ``cnnumpy`` parser: one ``add_<command>`` call per subcommand."""
    parser = Parser(
        prog=PROG, description="Convolutional neural networks in NumPy alone."
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_train(commands)
    add_evaluate(commands)
    add_predict(commands)
    add_export(commands)
    add_summary(commands)
    add_explain(commands)
    add_inspect(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (2 on bad input)."""
    try:
        args = parse_once(lambda: build_parser().parse_args(argv))
    except SystemExit as stop:  # argparse's own errors and --help
        return stop.code if isinstance(stop.code, int) else 2
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for --processes
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(message)s")
    if getattr(args, "threads", None) is not None:
        set_num_threads(args.threads)
    # The filters stay as they are (a test's "error" filter too); only where a
    # warning is shown changes.
    with warnings.catch_warnings(record=True) as caught:
        try:
            status = args.run(args)
        except BrokenPipeError:  # the reader left (`| head`): stop quietly
            # Python's documented recipe: no second error when stdout is flushed
            # at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_BROKEN_PIPE
        except KeyboardInterrupt:  # a second Ctrl-C, or one outside training
            return fail(EXIT_INTERRUPTED, f"\n{PROG}: interrupted")
        except Exception as err:  # one line; under mpiexec it ends every rank
            _close_bars()
            return fail(2, f"{PROG}: error: {_one_line(err)}")
    for message in dict.fromkeys(str(w.message) for w in caught):
        print(f"{PROG}: warning: {' '.join(message.split())}", file=sys.stderr)
    return status


def _close_bars() -> None:
    """Clear the progress bars an error left drawn, so it stands on its own line."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.close()


# Errors whose message says it all; others are named by their type.
_PLAIN = (
    ValueError,
    TypeError,
    ImportError,
    OSError,
    CheckpointError,
    RanksDisagreeError,
)


def _one_line(err: BaseException) -> str:
    """``err`` as one line of text, whatever the library or Python said."""
    text = " ".join(str(err).split())
    if isinstance(err, _PLAIN) and text:
        return text
    if isinstance(err, MemoryError):
        return f"out of memory{': ' + text if text else ''}"
    if isinstance(err, RecursionError):
        return f"input nested too deeply ({text})"
    if isinstance(err, FloatingPointError) and text:
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
