"""The ``cnnumpy`` command's entry point: Ctrl-C is one line from the first moment.

Importing the command line takes a moment (NumPy and the library); a Ctrl-C
then would end in a traceback. This module imports nothing heavy itself, so
it can catch it.
"""

import sys


def main() -> int:
    """Import and run `cnnumpy.cli.main`; a Ctrl-C while importing exits 130."""
    try:
        from cnnumpy.cli import main as cli_main
    except KeyboardInterrupt:
        print("\ncnnumpy: interrupted", file=sys.stderr)
        return 130  # as a shell reports a process ended by SIGINT
    return cli_main()
