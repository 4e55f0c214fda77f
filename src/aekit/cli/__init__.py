"""The ``aekit`` command line. Each module holds one group of commands, each handler beside its parser:

- :mod:`~aekit.cli.train`: train, sweep-beta
- :mod:`~aekit.cli.evaluate`: eval, pca-check, denoise, disentanglement
- :mod:`~aekit.cli.codes`: encode, reconstruct
- :mod:`~aekit.cli.generate`: sample, train-prior
- :mod:`~aekit.cli.latent`: traverse, interpolate, bubbles, manifold
- :mod:`~aekit.cli.energy`: energy
- :mod:`~aekit.cli.score`: score
- :mod:`~aekit.cli.embed`: embed
- :mod:`~aekit.cli.compare`: compare
- :mod:`~aekit.cli.export`: export
- :mod:`~aekit.cli.reproduce`: reproduce

Handlers parse, call the library and print; the work itself lives in the library. Every user error
is an :class:`aekit.errors.AekitError`: it is printed without a traceback and the command exits
with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from aekit import __version__
from aekit.cli import codes, compare, embed, energy, evaluate, export, generate, latent, reproduce, score, train
from aekit.cli.common import Parser
from aekit.errors import AekitError, ConfigError, RunInterrupted
from aekit.fsutil import storage_error
from aekit.training import distributed

SPLITS = ("train", "valid", "test", "all")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command; ``argv`` lets ``train`` show the options of the model it names."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = Parser(prog="aekit", description="Train, evaluate and use autoencoders.")
    parser.add_argument("--version", action="version", version=f"aekit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=argparse.ArgumentParser)
    command = next((a for a in argv if not a.startswith("-")), None)
    train.add_parsers(sub, argv if command in ("train", None) else [])
    evaluate.add_parsers(sub)
    codes.add_parsers(sub)
    generate.add_parsers(sub)
    latent.add_parsers(sub)
    energy.add_parsers(sub)
    score.add_parsers(sub)
    embed.add_parsers(sub)
    compare.add_parsers(sub)
    export.add_parsers(sub)
    reproduce.add_parsers(sub)
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a message comes (it may be replaced after the handler
    is made: a caller's redirect, a test's capture), not the stream of the moment it was made."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # StreamHandler.__init__ sets it; sys.stderr is read on each use
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aekit`` command; returns the exit status."""
    log = logging.getLogger("aekit")  # progress of slow one-off steps, such as fetching MNIST
    if not log.handlers:
        log.addHandler(_StderrHandler())
        log.setLevel(logging.INFO)
    try:
        args = build_parser(argv).parse_args(argv)
        if getattr(args, "split", None) not in (None, *SPLITS):
            raise ConfigError(f"Unknown split '{args.split}'. Choose one of: {', '.join(SPLITS)}.")
        return args.handler(args)
    except (AekitError, OSError) as err:
        if not isinstance(err, AekitError):  # an operating-system refusal no check above foresaw
            err = storage_error(err, err.filename or "a file", "read or write")
        here = distributed.world()
        print(f"aekit: error{f' (rank {here.rank})' if here.rank else ''}: {err}", file=sys.stderr)
        return err.exit_status
    except KeyboardInterrupt:  # outside training (start-up, evaluation, report): nothing half-written
        print("aekit: interrupted.", file=sys.stderr)
        return RunInterrupted.exit_status
    finally:
        distributed.leave()  # under torchrun: leave the process group cleanly, error or not


if __name__ == "__main__":
    sys.exit(main())
