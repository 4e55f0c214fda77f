"""The ``aekit`` script: the command line, with Ctrl-C answered in one line from the first import on.

Importing the command line loads torch (seconds); an interruption then would otherwise print a
traceback, because :func:`aekit.cli.main` is not running yet to catch it.
"""

from __future__ import annotations

import os
import sys

INTERRUPTED = 130  # 128 + SIGINT, the shell's convention


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aekit`` script and ``python -m aekit``; returns the exit status."""
    try:
        from aekit.cli import main as cli_main
    except KeyboardInterrupt:
        print("aekit: interrupted.", file=sys.stderr)
        sys.stderr.flush()
        # Not a return: when the interrupt lands in code an extension runs through the C API (torch's
        # start-up does), CPython marks it unhandled even though it was caught here and, at exit, kills
        # itself with SIGINT instead of exiting 130. Nothing has been written yet, so nothing is lost.
        os._exit(INTERRUPTED)
    return cli_main(argv)
