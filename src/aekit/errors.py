"""The one exception family for user errors.

Every error a user can cause (bad option, bad data, bad checkpoint, asking a model for something it
cannot do) is an :class:`AekitError`.
Its message says what was wrong, with which input, and how to fix it. The CLI prints the
message without a traceback and exits with the error's ``exit_status``: 2 for a mistake in the
input or the environment, 3 when training diverged, 130 when interrupted.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AekitError(Exception):
    """Base class of every error aekit reports as one message (the command line exits with
    ``exit_status``: 2 for a mistake in the input)."""

    exit_status = 2


class ConfigError(AekitError, ValueError):
    """An option or configuration value is unknown, malformed or out of range."""


class DataError(AekitError, ValueError):
    """A data set could not be found, read, or does not suit the chosen model."""


class CheckpointError(AekitError):
    """A run directory or checkpoint is missing, corrupt, or belongs to another model."""


class CapabilityError(AekitError):
    """The model was asked for something its declared capabilities exclude (see ``Model.capabilities``)."""


class NotGenerativeError(CapabilityError):
    """The model cannot generate samples (a plain autoencoder, or a VQ-VAE without a fitted prior)."""


class StorageError(AekitError, OSError):
    """The operating system refused a file operation (read-only or full disk, no permission, a path
    through a file); the message names the path and the fix, and the previous files are intact."""


class RunLockedError(AekitError):
    """Another process is writing to the run directory; the message names it (pid, host, command)."""


class TrainingDivergedError(AekitError):
    """Training produced a non-finite loss or non-finite weights; the run keeps its last good checkpoint."""

    exit_status = 3


class RunInterrupted(AekitError):
    """The user interrupted a command (Ctrl-C); the message says what was kept."""

    exit_status = 130


class MissingDependencyError(AekitError, ImportError):
    """An optional package a feature needs is not installed; the message names the install command."""


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean 'x'?' when ``name`` is close to one of ``choices``, else ''."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def check_choice(option: str, value: str, choices: Iterable[str]) -> str:
    """Raise :class:`ConfigError` unless ``value`` is one of ``choices``; return it."""
    choices = list(choices)
    if value not in choices:
        raise ConfigError(
            f"Unknown {option} '{value}'.{suggest(str(value), choices)} Choose one of: {', '.join(choices)}."
        )
    return value
