"""Callbacks: code that watches training (loggers, the run directory, your own) through the trainer's hooks.

A :class:`Callback` overrides the hooks it needs; each does nothing by default. The trainer calls them
in the order the callbacks were given:

- ``on_train_begin(trainer)``: before the first epoch of :meth:`Trainer.fit` (a resumed run too:
  ``trainer.state`` then holds the epochs and steps already done);
- ``on_step(trainer, step, logs)``: every ``trainer.log_every`` optimiser steps, at the one host sync
  the loop makes anyway (it reads the running sums for the progress bar). ``logs`` maps ``loss`` (the
  objective) and each of the model's loss terms to its mean per sample over the steps since the last
  call, or since the epoch began;
- ``on_epoch_end(trainer, record, improved)``: after each epoch's validation. ``record`` is the epoch's
  line of metrics.jsonl (``epoch``, ``step``, ``train/*``, ``valid/*``, ``lr``, ``samples_per_s``,
  ``epoch_seconds``); ``improved`` says whether the validation loss reached a new best;
- ``on_exception(trainer, error)``: training raised (``KeyboardInterrupt`` included); the error is
  raised again once every callback has seen it and ended;
- ``on_train_end(trainer, state)``: once, however training ended (the last epoch, early stopping, an
  error), to every callback whose ``on_train_begin`` ran: the place to flush and close.

A callback stops training by setting ``trainer.state.stopped_early = True`` (from ``on_step`` or
``on_epoch_end``): the current epoch completes (validated, recorded, checkpointed) and no other starts,
as with ``patience``. A plain function ``fn(trainer, record, improved)`` is accepted wherever a callback
is, as an ``on_epoch_end`` hook.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from aekit.errors import ConfigError

log = logging.getLogger(__name__)

# The hooks' ``trainer`` is the aekit.Trainer, ``state`` its TrainState: typed Any because the trainer
# imports this module (an import back would be a cycle).
EpochCallback = Callable[[Any, dict[str, Any], bool], None]


class Callback:
    """Hooks into :meth:`aekit.Trainer.fit`; override the ones you need (see the module's docstring)."""

    def on_train_begin(self, trainer: Any) -> None:
        """Before the first epoch (of this call to ``fit``)."""

    def on_step(self, trainer: Any, step: int, logs: dict[str, float]) -> None:
        """Every ``trainer.log_every`` steps: ``logs`` are per-sample means since the last call."""

    def on_epoch_end(self, trainer: Any, record: dict[str, Any], improved: bool) -> None:
        """After each epoch's validation, with the epoch's record (a line of metrics.jsonl)."""

    def on_exception(self, trainer: Any, error: BaseException) -> None:
        """Training raised ``error`` (``KeyboardInterrupt`` included); ``on_train_end`` follows."""

    def on_train_end(self, trainer: Any, state: Any) -> None:
        """Once, however training ended: flush and close here."""


class EpochEndFunction(Callback):
    """A plain function ``fn(trainer, record, improved)`` called after each epoch."""

    def __init__(self, fn: EpochCallback):
        self.fn = fn

    def on_epoch_end(self, trainer: Any, record: dict[str, Any], improved: bool) -> None:
        self.fn(trainer, record, improved)

    def __repr__(self) -> str:
        return f"EpochEndFunction({getattr(self.fn, '__qualname__', self.fn)!r})"


def as_callback(callback: Callback | EpochCallback) -> Callback:
    """``callback`` itself, or a plain function wrapped as an ``on_epoch_end`` hook."""
    if isinstance(callback, Callback):
        return callback
    if callable(callback):
        return EpochEndFunction(callback)
    raise ConfigError(
        f"A callback must be an aekit.training.Callback or a function fn(trainer, record, improved), got "
        f"{type(callback).__name__}. Subclass aekit.training.Callback and override its hooks."
    )


def end_all(trainer: Any, callbacks: Iterable[Callback], state: Any, error: BaseException | None) -> None:
    """Call ``on_exception`` (when training raised ``error``) and ``on_train_end`` on every callback, even
    when one of them fails: a logger that fails must not keep the others from closing their files. When
    training succeeded, the first failure is raised once all have run; when it failed, its error is the
    one that propagates and the callbacks' failures are logged."""
    failures: list[tuple[Callable[..., None], Exception]] = []
    for callback in callbacks:
        calls: list[tuple[Callable[..., None], Any]] = [(callback.on_train_end, state)]
        if error is not None:
            calls.insert(0, (callback.on_exception, error))
        for hook, argument in calls:
            try:
                hook(trainer, argument)
            except Exception as err:
                failures.append((hook, err))
    raised = failures[0][1] if failures and error is None else None
    for hook, err in failures:
        if err is not raised:
            log.error("%s failed as training ended: %r", hook.__qualname__, err)
    if raised is not None:
        raise raised


__all__ = ["Callback", "EpochCallback", "EpochEndFunction", "as_callback", "end_all"]
