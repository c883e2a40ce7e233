"""The parser class and the argument types shared by the subcommands.

Types turn text into values and check what only the command line knows (a
folder exists, a number is positive); the library checks the rest.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROG = "cnnumpy"
EXIT_INTERRUPTED = 130  # as a shell reports a process ended by SIGINT
SHAPE_HELP = "four positive integers separated by commas"
PAIR_HELP = "an integer, or two for height and width: 2 or 2,1"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, ``cnnumpy: error: ...``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{PROG}: error: {message}\n")


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


def _number(text: str, kind: type, ok: Callable[[float], bool], expected: str) -> Any:
    """``kind(text)`` if it parses and passes ``ok``, else an argparse error."""
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def add_threads(parser: argparse.ArgumentParser) -> None:
    """The ``--threads N`` option of the commands that run the engine."""
    parser.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="threads for the engine's ops (default: the usable CPUs)",
    )


def nonnegative_int(text: str) -> int:
    """A whole number >= 0."""
    return _number(text, int, lambda v: v >= 0, "an integer >= 0")


def positive_float(text: str) -> float:
    """A finite number > 0."""
    return _number(text, float, lambda v: 0 < v < math.inf, "a positive number")


def nonnegative_float(text: str) -> float:
    """A finite number >= 0."""
    return _number(text, float, lambda v: 0 <= v < math.inf, "a number >= 0")


def unit_float(text: str) -> float:
    """A number in [0, 1]."""
    return _number(text, float, lambda v: 0 <= v <= 1, "a number in [0, 1]")


def fraction(text: str) -> float:
    """A number in [0, 1)."""
    return _number(text, float, lambda v: 0 <= v < 1, "a number in [0, 1)")


def folder(text: str) -> str:
    """An existing folder."""
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"folder {text!r} does not exist")
    return text


def readable_file(text: str) -> str:
    """An existing file."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"file {text!r} does not exist")
    return text
