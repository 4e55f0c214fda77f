"""The one training loop. It does not know which model it trains.

A model (:class:`aekit.models.Model`) supplies ``loss_terms(x, y) -> {name: (N,) tensor}`` and the
terms' weights (``objective_weights(step)``: warm-up schedules live with the model); the trainer
sums the weighted means, steps Adam, logs every term and the model's ``epoch_diagnostics``,
validates each epoch, keeps the best weights and stops early. Whatever watches training (the run
directory's checkpoints, TensorBoard and MLflow loggers, your own code) is a callback
(:mod:`aekit.training.callbacks`).

Fast path (DESIGN.md): the training set lives as one tensor on the device and a batch is an index
slice of it; metrics accumulate on the device and are read (a host sync) only every
``log_every`` steps (where the callbacks' ``on_step`` runs) and at the end of an epoch. Data larger
than memory comes as a streamed split (:class:`aekit.data.NpyRows`) whose batches are read from its
file while the model trains. Under ``torchrun`` (:mod:`aekit.training.distributed`) each rank
trains on its slice of every global batch and ``DistributedDataParallel`` averages the gradients;
the metrics are summed across ranks before anyone reads them. Options that trade generality for
speed (docs/performance.md): fused Adam and channels-last conv models by default; bfloat16 /
float16 autocast and torch.compile on request.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from aekit.config import TrainConfig
from aekit.errors import ConfigError, DataError, TrainingDivergedError
from aekit.models.base import Model
from aekit.parts import noise
from aekit.training import distributed
from aekit.training.callbacks import Callback, EpochCallback, as_callback, end_all
from aekit.training.checkpoint import load_state_into, optimizer_tensors, restore_optimizer

log = logging.getLogger(__name__)
_CONVS = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
# A loss this many times its first batch's (in magnitude, at least 1) has run away: training diverged.
EXPLODED = 1e6


@dataclass
class TrainState:
    """Counters that let an interrupted run continue exactly where it stopped."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimiser steps taken
    best_valid: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0  # epochs since the validation loss last improved
    train_seconds: float = 0.0
    stopped_early: bool = False  # set by patience, or by a callback to stop after the current epoch


def resolve_device(name: str) -> torch.device:
    """``auto`` gives CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but no CUDA device is available. Use --device cpu.")
    return torch.device(name)


def _mixed_precision(precision: str, device: torch.device) -> tuple[Callable[[], Any], Any]:
    """The autocast context of a training step and, for float16, its loss scaler.

    Only the training step runs in reduced precision: weights, optimiser state, losses and every
    evaluation stay in float32. bfloat16 keeps float32's exponent range, so it needs no scaling."""
    if precision == "fp32":
        return contextlib.nullcontext, None
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision fp16 needs a CUDA device; on the CPU use --precision bf16.")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    return functools.partial(torch.autocast, device_type=device.type, dtype=dtype), scaler


def epoch_postfix(record: dict[str, Any], shown: tuple[str, ...] = ()) -> dict[str, Any]:
    """The progress bar's postfix after an epoch, from the epoch's ``record``: the epoch, the training
    and validation losses, the validation figures named in ``shown`` (the model's
    ``progress_metrics``, those of its ``epoch_diagnostics`` worth watching) and the throughput."""
    postfix: dict[str, Any] = {
        "epoch": record["epoch"],
        "loss": f"{record['train/loss']:.4g}",
        "valid": f"{record.get('valid/loss', float('nan')):.4g}",
    }
    for name in shown:
        if f"valid/{name}" in record:  # without a validation split there are no diagnostics
            postfix[name] = f"{record[f'valid/{name}']:.4g}"
    postfix["samples_s"] = f"{record['samples_per_s']:.0f}"
    return postfix


class _Objective(torch.nn.Module):
    """The model's loss terms as a module's forward pass: what DistributedDataParallel wraps."""

    def __init__(self, model: Model):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        return self.model.loss_terms(x, y)


class Trainer:
    """Train ``model`` with Adam according to ``config``.

    ``callbacks`` (:class:`~aekit.training.callbacks.Callback`, or plain functions
    ``fn(trainer, record, improved)`` called after each epoch) watch training; the run directory is
    one (it writes metrics and checkpoints). ``log_every``: steps between reads of the running loss
    (the progress bar and the callbacks' ``on_step``); default ``config.log_every``.
    """

    def __init__(
        self,
        model: Model,
        config: TrainConfig,
        *,
        callbacks: list[Callback | EpochCallback] | None = None,
        batch_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        log_every: int | None = None,
    ):
        self.config = config
        self.device = distributed.device_for(resolve_device(config.device))
        self.world = distributed.join(self.device)
        distributed.check_batch_size(config.batch_size, self.world)
        self.channels_last = config.memory_format == "channels_last" or (
            config.memory_format == "auto" and any(isinstance(m, _CONVS) for m in model.modules())
        )
        self.model = model.to(self.device, memory_format=torch.channels_last if self.channels_last else None)
        self.optimizer = torch.optim.Adam(
            model.parameters(),
            lr=config.lr,
            betas=(config.adam_beta1, config.adam_beta2),
            eps=config.adam_eps,
            weight_decay=config.weight_decay,
            # Adam's per-parameter Python loop costs a quarter of a small model's step; foreach batches
            # the element-wise updates over all parameters, fused does the whole update in one kernel.
            foreach=config.adam_impl == "foreach",
            fused=config.adam_impl == "fused" or None,
        )
        self.autocast, self.scaler = _mixed_precision(config.precision, self.device)
        # The training step's forward pass, compiled on request; evaluation stays eager (no second compile).
        loss_terms: Callable[..., dict[str, torch.Tensor]] = model.loss_terms
        if self.world.parallel:
            # Gradients averaged across ranks, overlapped with the backward pass; rank 0's weights and
            # buffers copied to every rank first. The buffers are not synced each step: the quantizer
            # sums its own statistics across ranks. A static graph lets a model leave parameters
            # out of its loss (found on the first step) without a graph search every step.
            loss_terms = torch.nn.parallel.DistributedDataParallel(
                _Objective(model),
                device_ids=[self.device] if self.device.type == "cuda" else None,
                forward_sync_buffers=False,
                static_graph=True,
            )
        self.loss_terms = torch.compile(loss_terms) if config.compile else loss_terms
        self.batch_transform = batch_transform  # e.g. dynamic binarisation: a new draw per batch
        self.callbacks: list[Callback | EpochCallback] = list(callbacks or [])
        self.log_every = config.log_every if log_every is None else log_every
        self.state = TrainState()
        self.shuffle = torch.Generator().manual_seed(config.seed)
        torch.manual_seed(config.seed)

    # --- the loop --------------------------------------------------------------------------------

    def fit(
        self,
        train: torch.Tensor,
        valid: torch.Tensor | None = None,
        train_labels: torch.Tensor | None = None,
        valid_labels: torch.Tensor | None = None,
    ) -> TrainState:
        """Train until ``config.epochs`` epochs are done, ``config.time_limit`` minutes have passed (whole
        epochs: the one that reaches the limit is the last) or early stopping triggers.

        ``train`` and ``valid`` are tensors, or streamed splits (:class:`aekit.data.NpyRows`) for
        data larger than memory. Labels are used only by a conditional model."""
        cfg, model, state = self.config, self.model, self.state
        conditional = model.capabilities.conditional
        if conditional and train_labels is None:
            raise DataError("A conditional model needs labels for its training data; this data set has none.")
        # A streamed split (aekit.data.NpyRows, data larger than memory) stays in its file.
        streamed = not isinstance(train, torch.Tensor)
        x_train = train if streamed else train.to(self.device, torch.float32)
        y_train = train_labels.to(self.device) if conditional else None
        x_valid = None
        if valid is not None and len(valid):
            x_valid = valid if not isinstance(valid, torch.Tensor) else valid.to(self.device, torch.float32)
        y_valid = valid_labels.to(self.device) if conditional and x_valid is not None else None
        n, bs = len(x_train), min(cfg.batch_size, len(x_train))
        steps_per_epoch = math.ceil(n / bs)
        names = ["loss", *model.term_weights]
        callbacks = [as_callback(c) for c in self.callbacks]
        begun: list[Callback] = []  # those whose on_train_begin ran: they get on_train_end
        bar = tqdm(
            total=cfg.epochs * steps_per_epoch,
            initial=min(state.step, cfg.epochs * steps_per_epoch),
            disable=not cfg.progress or not self.world.main,
            unit="step",
            dynamic_ncols=True,
            leave=True,
        )
        error: BaseException | None = None
        self._first_loss: float | None = None
        self._valid_warned = False
        try:
            for callback in callbacks:
                callback.on_train_begin(self)
                begun.append(callback)
            while state.epoch < cfg.epochs and not state.stopped_early and self._progress() < 1:
                model.train()
                start = time.perf_counter()
                # The sums of each term over the samples so far this epoch, and their count (last):
                # the last batch may be smaller than batch_size, and under torchrun each rank holds its own.
                sums = torch.zeros(len(names) + 1, device=self.device)
                logged, logged_seen = [0.0] * len(names), 0.0  # the sums at the last read, for on_step
                self._set_lr()
                for xb, yb, (offset, total) in self._batches(x_train, y_train, bs):
                    with noise.batch_slice(offset, total):  # per-sample draws as one process would draw them
                        if self.batch_transform is not None:
                            xb = self.batch_transform(xb)
                        with self.autocast():
                            terms = self.loss_terms(xb, yb)
                    loss = self.objective(terms)
                    self.optimizer.zero_grad(set_to_none=True)
                    # The ranks' gradients are averaged: weighting each rank's batch mean by its share of
                    # the global batch makes that average the global batch mean, as in one process.
                    scaled = loss * (len(xb) * self.world.size / total) if self.world.parallel else loss
                    if self.scaler is None:
                        scaled.backward()
                        self._clip_gradients()
                        self.optimizer.step()
                    else:
                        self.scaler.scale(scaled).backward()
                        if cfg.clip_grad_norm:
                            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
                        self._clip_gradients()
                        self.scaler.step(self.optimizer)
                        self.scaler.update()
                    state.step += 1
                    with torch.no_grad():
                        sums += torch.stack([loss, *(terms[k].mean() for k in names[1:]), sums.new_ones(())]) * len(xb)
                    bar.update(1)
                    if self._first_loss is None:  # one sync per fit: the scale an exploding loss is measured by
                        *first, first_seen = distributed.all_reduce_sum(sums.clone()).tolist()
                        self._first_loss = first[0] / first_seen
                    if state.step % self.log_every == 0:  # the only host sync inside an epoch
                        *totals, seen = distributed.all_reduce_sum(sums.clone()).tolist()
                        self._check_diverged("the training loss", totals[0] / seen)
                        bar.set_postfix(epoch=state.epoch + 1, loss=f"{totals[0] / seen:.4g}")
                        logs = {
                            k: (t - t0) / (seen - logged_seen) for k, t, t0 in zip(names, totals, logged, strict=True)
                        }
                        logged, logged_seen = totals, seen
                        for callback in callbacks:
                            callback.on_step(self, state.step, logs)
                seconds = time.perf_counter() - start
                *totals, seen = distributed.all_reduce_sum(sums).tolist()
                # Before anything of this epoch is saved: a diverged epoch never reaches the run directory.
                self._check_diverged("the training loss", totals[0] / seen, weights=True)
                record = {"epoch": state.epoch + 1, "step": state.step}
                record.update({f"train/{k}": v / seen for k, v in zip(names, totals, strict=True)})
                if x_valid is not None:
                    record.update({f"valid/{k}": v for k, v in self.evaluate_terms(x_valid, y_valid).items()})
                    self._check_validation(record["valid/loss"])
                    record.update({f"valid/{k}": v for k, v in model.epoch_diagnostics(x_valid).items()})
                    model.train()
                state.epoch += 1
                state.train_seconds += seconds
                record["lr"] = self.optimizer.param_groups[0]["lr"]
                record["samples_per_s"] = seen / seconds
                record["epoch_seconds"] = seconds
                improved = self._track_best(record)
                bar.set_postfix(**epoch_postfix(record, model.progress_metrics))
                for callback in callbacks:
                    callback.on_epoch_end(self, record, improved)
        except BaseException as err:  # KeyboardInterrupt too: the callbacks close their files either way
            error = err
            raise
        finally:
            bar.close()
            end_all(self, begun, state, error)
        return state

    def _batches(
        self, x: torch.Tensor, y: torch.Tensor | None, bs: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, tuple[int, int]]]:
        """One epoch of shuffled ``(x, labels, (offset, total))`` batches: index slices of an in-memory
        tensor, or the blocks of a streamed split moved to the device as they are read.

        Under torchrun every rank draws the same order and keeps its slice of each global batch of
        ``total`` rows, from row ``offset``. A last global batch with fewer rows than ranks is skipped
        (some rank would have none)."""
        here = self.world
        if not isinstance(x, torch.Tensor) and not here.parallel:
            for xb in x.batches(bs, self.shuffle):
                yield self._layout(xb.to(self.device, non_blocking=True)), None, (0, len(xb))
            return
        if not isinstance(x, torch.Tensor):  # each rank reads its own rows of each batch from the file
            for xb, start, total in x.sliced_batches(bs, self.shuffle, lambda total: distributed.shard(total, here)):
                if total >= here.size:
                    yield self._layout(xb.to(self.device, non_blocking=True)), None, (start, total)
            return
        perm = torch.randperm(len(x), generator=self.shuffle).to(self.device)
        for i in range(0, len(x), bs):
            idx = perm[i : i + bs]
            if len(idx) < here.size:
                continue
            start, stop = distributed.shard(len(idx), here)
            total, idx = len(idx), idx[start:stop]
            # Per batch, not the whole split: a channels-last copy of a colour data set would double it.
            yield self._layout(x[idx]), None if y is None else y[idx], (start, total)

    def _clip_gradients(self) -> None:
        if self.config.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_grad_norm, foreach=True)

    def _check_diverged(self, what: str, loss: float, weights: bool = False) -> None:
        """Stop with :class:`TrainingDivergedError` when a loss (read at the host syncs the loop makes
        anyway: no extra sync per step) is not finite or has exploded, or, at the end of an epoch, a
        weight is not finite. The epoch is not saved, so the run directory keeps its last good checkpoint."""
        bad = f"{what} is {loss}" if not math.isfinite(loss) else None
        # A finite loss can still have run away (a learned scale collapsed, weights near overflow):
        # no working model's loss grows a million-fold over its first batch's.
        scale = max(abs(self._first_loss or 0.0), 1.0)
        if bad is None and abs(loss) > EXPLODED * scale:
            bad = f"{what} exploded to {loss:.3g} (the first batch's was {self._first_loss:.4g})"
        if bad is None and weights:
            finite = torch.stack([p.detach().isfinite().all() for p in self.model.parameters()]).all()
            bad = None if bool(finite) else "a weight became non-finite (NaN or infinite)"
        if bad is None:
            return
        state, cfg = self.state, self.config
        kept = (f"the last good checkpoint (epoch {state.epoch}) is kept" if state.epoch
                else "no epoch finished, so nothing was saved and the same command reuses the directory")  # fmt: skip
        raise TrainingDivergedError(
            f"Training diverged in epoch {state.epoch + 1} by step {state.step}: {bad}; {kept}. Try a lower "
            f"--lr (it is {cfg.lr:g}), --clip-grad-norm 1.0, or standardised data (--normalize standard) when "
            "its values are large."
        )

    def _check_validation(self, loss: float) -> None:
        """A validation loss that is not finite while the training loss is (checked just before) comes
        from the valid split, not from training: samples far outside the training data overflow the
        likelihood. Training goes on (such an epoch never counts as an improvement); it is said once."""
        if math.isfinite(loss) or self._valid_warned:
            return
        self._valid_warned = True
        log.warning(
            "The validation loss of epoch %d is %s while the training loss is finite: the valid split holds samples "
            "the model gives no finite likelihood (values far outside the training data?). Training goes on; "
            "such epochs do not count as improvements (the first is kept until an epoch scores a finite loss). Check "
            "the valid split, or standardise the data (--normalize standard).",
            self.state.epoch + 1,
            loss,
        )

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        """Images in the model's memory format (channels last for conv models on the fast path)."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def objective(self, terms: dict[str, torch.Tensor], warmup: bool = True) -> torch.Tensor:
        """The weighted sum of the batch means of the model's loss terms.

        The weights are the model's at the current step (e.g. a KL weight warming up); the validation
        loss always uses the full weights, so epochs stay comparable."""
        weights = self.model.objective_weights(self.state.step if warmup else None)
        return sum(w * terms[k].mean() for k, w in weights.items())

    def _set_lr(self) -> None:
        """The learning rate of the coming epoch under ``lr_schedule``."""
        lr = self.config.lr
        if self.config.lr_schedule == "iwae":
            # Burda et al. 2016: stage i = 0..7 lasts 3^i passes at lr * 10^(-i/7).
            stage, end = 0, 1
            while self.state.epoch >= end and stage < 7:
                stage += 1
                end += 3**stage
            lr = self.config.lr * 10 ** (-stage / 7)
        elif self.config.lr_schedule == "cosine":
            # Loshchilov & Hutter 2017, without restarts: from lr down to 0 over the run's epochs (or its
            # time limit, if that ends it first).
            lr = self.config.lr * (1 + math.cos(math.pi * self._progress())) / 2
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _progress(self) -> float:
        """How far training has gone, from 0 to 1: the larger of the share of epochs done and the share
        of the time limit spent (under torchrun, rank 0's clock decides for every rank)."""
        done = self.state.epoch / self.config.epochs
        if self.config.time_limit:
            spent = self.state.train_seconds / (60 * self.config.time_limit)
            done = max(done, distributed.from_main(lambda: spent))
        return min(done, 1.0)

    @torch.no_grad()
    def evaluate_terms(
        self, x: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 1024
    ) -> dict[str, float]:
        """Mean of each loss term (and the objective) over ``x``, per sample."""
        self.model.eval()
        names = ["loss", *self.model.term_weights]
        sums = torch.zeros(len(names) + 1, device=self.device)
        for i in range(0, len(x), batch_size):
            # Under torchrun each rank evaluates its slice of each batch, drawing what one process would.
            total = min(batch_size, len(x) - i)
            start, stop = distributed.shard(total, self.world)
            if start == stop:
                continue
            xb = x[i + start : i + stop].to(self.device, torch.float32)  # a no-op for data already there
            with noise.batch_slice(start, total):
                terms = self.model.loss_terms(xb, None if y is None else y[i + start : i + stop])
            loss = self.objective(terms, warmup=False)
            sums += torch.stack([loss, *(terms[k].mean() for k in names[1:]), sums.new_ones(())]) * len(xb)
        self.model.train()
        *totals, seen = distributed.all_reduce_sum(sums).tolist()
        return {k: v / seen for k, v in zip(names, totals, strict=True)}

    def _track_best(self, record: dict[str, Any]) -> bool:
        """Update the best-so-far and the early-stopping counter; return whether this epoch improved."""
        state = self.state
        score = record.get("valid/loss", record["train/loss"])
        # A non-finite score (a valid split the model cannot score) never improves, except that the first
        # epoch is kept until one does: the run always has weights to save.
        improved = score < state.best_valid if math.isfinite(score) else state.best_epoch == 0
        if improved:
            best = score if math.isfinite(score) else math.inf
            state.best_valid, state.best_epoch, state.bad_epochs = best, state.epoch, 0
        else:
            state.bad_epochs += 1
            if self.config.patience and state.bad_epochs >= self.config.patience:
                state.stopped_early = True
        return improved

    # --- resumable state -------------------------------------------------------------------------

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Everything needed to resume: weights, optimiser, RNG states and counters."""
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        optim, optim_meta = optimizer_tensors(self.optimizer)
        tensors.update(optim)
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.shuffle"] = self.shuffle.get_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        state = asdict(self.state)
        state["best_valid"] = None if math.isinf(state["best_valid"]) else state["best_valid"]
        meta = {"trainer": state, "optimizer": optim_meta, "world_size": self.world.size}
        if self.scaler is not None:  # float16: the loss scale it has found, so a resumed run keeps it
            meta["scaler"] = self.scaler.state_dict()
        return tensors, meta

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        load_state_into(self.model, model_state, "checkpoint")
        restore_optimizer(self.optimizer, tensors, meta["optimizer"])
        torch.set_rng_state(tensors["rng.torch"])
        self.shuffle.set_state(tensors["rng.shuffle"])
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        if self.scaler is not None and meta.get("scaler"):
            self.scaler.load_state_dict(meta["scaler"])
        state = dict(meta["trainer"])
        state["best_valid"] = math.inf if state["best_valid"] is None else state["best_valid"]
        self.state = TrainState(**state)
