"""Run directories: train into one, resume one, load one back (the files: :mod:`aekit.runs.layout`).

A run directory is enough to reload, evaluate, sample or export the model. Every file is written
atomically, so an interrupted run leaves a consistent directory that ``--resume`` continues.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aekit.config import CUSTOM, RunConfig, from_dict, save_yaml
from aekit.data import Dataset, NpyRows, in_memory, keep_classes, load_dataset, normalize_dataset
from aekit.data.arrays import value_range
from aekit.errors import CheckpointError, ConfigError, DataError, RunInterrupted
from aekit.evaluation.metrics import evaluate, psnr_range
from aekit.fsutil import atomic_write_text, remove_stale_temporaries
from aekit.models import Model, build_model
from aekit.models.base import device_of
from aekit.parts.likelihoods import resolve_likelihood
from aekit.runs.artifacts import write_artifacts
from aekit.runs.layout import (
    CHECKPOINT,
    COMMAND,
    CONFIG,
    DATA_INFO,
    METRICS,
    NETWORKS,
    SUMMARY,
    WEIGHTS,
    api_command,
    clear_run_dir,
    dumps,
    read_command,
    read_config,
    read_json,
    read_metrics,
)
from aekit.runs.lock import LOCK, RunLock
from aekit.runs.priors import attach_saved_prior
from aekit.runs.tracking import clear_tracking, open_trackers, require_trackers, resolve_tracking
from aekit.training import distributed
from aekit.training.callbacks import Callback, EpochCallback
from aekit.training.checkpoint import check_checkpoint, load_state_into, load_tensors, save_tensors
from aekit.training.trainer import Trainer, resolve_device

log = logging.getLogger(__name__)


@dataclass
class Run:
    """A trained model with its configuration and data description, backed by a run directory."""

    path: Path
    config: RunConfig
    model: Model
    data_info: dict[str, Any]

    # --- the model's uses, on numpy arrays or tensors in the data's own units -------------------

    def encode(self, x: Any, y: Any = None) -> torch.Tensor:
        """Codes ``(N, K)`` of samples ``x`` (posterior means for a VAE); ``y``: labels of a conditional model."""
        return self._batched(self.model.encode, self._prepare(x), self.labels_for_model(y))

    def decode(self, z: Any, y: Any = None) -> torch.Tensor:
        """Decoded samples for codes ``z``, in the data's units."""
        z = torch.as_tensor(z, dtype=torch.float32)
        return self.denormalize(self._batched(self.model.decode, z, self.labels_for_model(y)))

    def reconstruct(self, x: Any, y: Any = None) -> torch.Tensor:
        """Reconstructions of ``x``, in the data's units."""
        return self.denormalize(self._batched(self.model.reconstruct, self._prepare(x), self.labels_for_model(y)))

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, label: int | None = None, prior: str = "learned") -> torch.Tensor:
        """``n`` new samples from the prior (NotGenerativeError for a model that has none).

        A conditional model draws class ``label`` (required for it). ``prior="uniform"`` decodes
        independent uniform codes of a VQ-VAE: what its samples look like without a learned prior."""
        if n < 1:
            raise ConfigError(f"The number of samples must be at least 1, got {n}.")
        self.model.eval()
        generator = torch.Generator(device=device_of(self.model)).manual_seed(seed)
        y = None
        if label is not None or self.model.capabilities.conditional:
            if label is None or not self.model.capabilities.conditional or not 0 <= label < self.model.num_classes:
                raise ConfigError(self._label_help(label))
            y = torch.full((n,), label, dtype=torch.long)
        return self.denormalize(self.model.sample(n, generator=generator, y=y, prior=prior).cpu())

    def _label_help(self, label: int | None) -> str:
        if not self.model.capabilities.conditional:
            return f"--label {label} needs a conditional model (train with --condition-on labels); this one is not."
        k = self.model.num_classes
        return f"This model is conditioned on labels: pass --label L with L in 0..{k - 1} (got {label})."

    def load_data(self, spec: str | None = None) -> Dataset:
        """The run's data set (or ``spec``), split, normalised and binarised exactly as in training."""
        if spec is None and self.data_info.get("source") == "passed":
            raise DataError(
                f"This run was trained on data passed to aekit.train(dataset=...) ('{self.config.data.data}'), "
                "which its directory does not hold. Pass the data again (run.evaluate(x), aekit eval RUN --data "
                "FILE), or load a file or named data set with run.load_data(SPEC)."
            )
        return load_config_data(self.config, spec, self.data_info.get("normalization") or None)

    def load_rows(self, spec: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Every sample of the file or folder ``spec``, in its own order and not split, normalised with
        the run's statistics (new data to encode or score); labels where the source has them (CSV: the
        run's label column). A file with fixed splits (.npz with x_train...) gives them one after another."""
        d = self.config.data
        data = load_dataset(
            spec, valid_fraction=0.0, test_fraction=0.0, normalize=d.normalize,
            normalization=self.data_info.get("normalization") or {}, label_column=d.label_column,
            mnist_train=d.mnist_train, storage="memory",
        )  # fmt: skip
        parts = [(data.train, data.train_labels), (data.valid, data.valid_labels), (data.test, data.test_labels)]
        parts = [(x, y) for x, y in parts if len(x)]
        x = torch.cat([in_memory(x) for x, _ in parts])
        labels = torch.cat([y for _, y in parts]) if all(y is not None for _, y in parts) else None
        check_sample_shape(x, self.model.sample_shape, f"this run (the data in '{spec}')")
        return x, labels

    def evaluate(self, x: Any, y: torch.Tensor | None = None, **kwargs: Any) -> dict[str, Any]:
        """Test metrics (see :mod:`aekit.evaluation.metrics`) of already-normalised samples ``x``."""
        bounds = self.check_data(x, "the evaluation data")
        if bounds is not None:  # the check scanned the data already: psnr needs no second pass
            kwargs.setdefault("data_range", psnr_range(*bounds))
        return evaluate(self.model, x, y=self.labels_for_model(y), **kwargs)

    # --- helpers ---------------------------------------------------------------------------------

    def _prepare(self, x: Any) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float32)
        norm = self.data_info.get("normalization") or {}
        if norm:
            x = (x - torch.tensor(norm["mean"])) / torch.tensor(norm["std"])
        check_sample_shape(x, self.model.sample_shape, "this run")
        return x

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        norm = self.data_info.get("normalization") or {}
        return x * torch.tensor(norm["std"]) + torch.tensor(norm["mean"]) if norm else x

    def check_data(self, x: Any, what: str = "the data") -> tuple[float, float] | None:
        """Raise DataError when ``x`` (normalised) has the wrong shape, non-finite values, or values the
        model's likelihood cannot take; return the data's (min, max) when it was scanned for them."""
        bounds = check_sample_shape(x, self.model.sample_shape, what)
        self.model.check_data(x, what, bounds)
        return bounds

    def labels_for_model(self, y: Any) -> torch.Tensor | None:
        """The labels a conditional model needs (checked against its classes); None for other models."""
        if not self.model.capabilities.conditional:
            return None
        if y is None:
            raise DataError(self._label_help(None).replace("--label L", "labels y"))
        y = torch.as_tensor(y, dtype=torch.long)
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.model.num_classes):
            raise DataError(f"Labels must lie in 0..{self.model.num_classes - 1}, got {int(y.min())}..{int(y.max())}.")
        return y

    @torch.no_grad()
    def _batched(self, fn: Any, x: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 1024) -> torch.Tensor:
        self.model.eval()
        device = device_of(self.model)
        out = []
        for i in range(0, len(x), batch_size):
            yb = None if y is None else y[i : i + batch_size].to(device)
            out.append(fn(x[i : i + batch_size].to(device), yb).cpu())
        return torch.cat(out)


def check_sample_shape(x: torch.Tensor, shape: tuple[int, ...], what: str) -> tuple[float, float] | None:
    """Raise DataError for samples of the wrong shape or with non-finite values; return the (min, max) of
    an in-memory, non-empty ``x`` (the finiteness check finds them), else None."""
    if tuple(x.shape[1:]) != tuple(shape):
        raise DataError(
            f"Expected samples of shape {tuple(shape)} for {what}, got an array of shape {tuple(x.shape)}. "
            f"Pass a batch shaped (N, {', '.join(map(str, shape))})."
        )
    # A streamed split was scanned when opened. NaN shows in the range, and so does an infinity.
    if not isinstance(x, torch.Tensor) or not x.numel():
        return None
    bounds = value_range(x)
    if not all(map(math.isfinite, bounds)):
        raise DataError(f"The data passed to {what} holds NaN or infinite values; remove or impute them first.")
    return bounds


# --- training ------------------------------------------------------------------------------------


def train(
    config: RunConfig | Mapping[str, Any] | None = None,
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    dataset: Dataset | None = None,
    report: bool = True,
    encoder: nn.Module | None = None,
    decoder: nn.Module | None = None,
    command: str | None = None,
    callbacks: list[Callback | EpochCallback] | None = None,
    **overrides: Any,
) -> Run:
    """Train a model and write its run directory; return the loaded :class:`Run`.

    ``config`` is a :class:`RunConfig` or a dict of (flat or grouped) keys; ``overrides`` are keys
    such as ``model="ae"``, ``latent_dim=2``, ``epochs=10``. ``dataset`` replaces loading
    ``config.data.data`` (useful for in-memory data from Python); the data options apply to it as to
    loaded data (tabular data is standardised unless ``normalize="none"`` or it carries a
    normalisation). ``encoder`` and ``decoder`` are your own networks in place of the family's (see
    :func:`aekit.build_model`); the run directory records their classes, and :func:`load_run` needs
    them passed again. ``command`` is recorded in
    ``command.txt`` as what made the run (``aekit train`` passes its command line); by default the
    call itself, e.g. ``aekit.train(model='vae', epochs=2)``. ``callbacks`` watch training
    (:class:`aekit.training.Callback`, or functions ``fn(trainer, record, improved)`` called after each epoch);
    the loggers the config asks for (``tensorboard=``, ``mlflow=``) follow them.
    """
    if command is None:
        given = {"out": out, "overwrite": overwrite or None, "dataset": dataset, "report": None if report else False,
                 "encoder": encoder, "decoder": decoder, "callbacks": callbacks}  # fmt: skip
        args = () if config is None else (config,)
        command = api_command("aekit.train", *args, **overrides, **{k: v for k, v in given.items() if v is not None})
    if isinstance(config, Mapping):  # one set of keys: a preset named in either applies to both
        config, overrides = from_dict({**config, **overrides}), {}
    config = resolve_tracking((config or RunConfig()).replace(**overrides).validate())
    require_trackers(config.train)  # a missing optional package fails now, not after the data is loaded
    here = distributed.join(distributed.device_for(resolve_device(config.train.device)))  # torchrun: the group
    distributed.check_batch_size(config.train.batch_size, here)
    passed = dataset is not None
    if dataset is None:
        dataset = load_config_data(config)
    else:  # the data options apply to data passed in memory as to data loaded by name
        config = config.replace(data=dataset.name)  # what config.yaml records; data.json says it was passed
        d = config.data
        if d.classes or d.exclude_classes:
            dataset = keep_classes(dataset, d.classes, d.exclude_classes)
        if not dataset.normalization:
            dataset = normalize_dataset(dataset, d.normalize)
        dataset = binarize_dataset(dataset, d.binarize, d.binarize_seed)
    model_options = set(config.model.field_names())
    if "likelihood" in model_options:
        splits = (dataset.train, dataset.valid, dataset.test)
        config = config.replace(likelihood=resolve_likelihood(config.model.likelihood, *splits))
    if "condition_on" in model_options and config.model.condition_on == "labels":
        if dataset.train_labels is None:
            raise DataError(
                f"--condition-on labels needs labelled data, and '{dataset.name}' has no labels. Use data with "
                "labels (digits, mnist, an image folder with class subfolders, --label-column for CSV)."
            )
        config = config.replace(num_classes=int(dataset.train_labels.max()) + 1)
    torch.manual_seed(config.train.seed)  # the initial weights depend on the seed alone
    model = build_model(config.model, dataset.sample_shape, encoder=encoder, decoder=decoder)
    config = dataclasses.replace(config, model=model.config)  # arch 'custom' with your own networks
    for split in ("train", "valid", "test"):
        model.check_data(getattr(dataset, split), f"the {split} split of '{dataset.name}'")
    # Under torchrun: every rank trains the same thing on the same data, and rank 0 alone writes.
    distributed.check_agreement("the configuration", distributed.digest(save_yaml(config)))
    distributed.check_agreement("the data", _data_digest(dataset))
    path, lock = _lock_on_main(lambda: _claim_run_dir(out, config, overwrite))
    try:
        info = {
            "name": dataset.name,
            "kind": dataset.kind,
            "sample_shape": list(dataset.sample_shape),
            "normalization": dataset.normalization,
            "has_labels": dataset.train_labels is not None,
            "sizes": {s: len(getattr(dataset, s)) for s in ("train", "valid", "test")},
            "storage": "stream" if isinstance(dataset.train, NpyRows) else "memory",
            # passed: given to aekit.train(dataset=...), which the run cannot load again by itself
            "source": "passed" if passed else "named",
        }
        if dataset.feature_names is not None:
            info["feature_names"] = list(dataset.feature_names)
        if here.main:  # the command first: a run stopped during start-up says how to start it again
            atomic_write_text(path / COMMAND, command + "\n")
            atomic_write_text(path / CONFIG, save_yaml(config))
            atomic_write_text(path / DATA_INFO, dumps(info, indent=2))
        if here.main and (encoder is not None or decoder is not None):
            networks = {name: _describe(net) for name, net in (("encoder", encoder), ("decoder", decoder)) if net}
            atomic_write_text(path / NETWORKS, dumps(networks, indent=2))
        trainer = Trainer(model, config.train, callbacks=callbacks, batch_transform=_batch_transform(config))
        run = Run(path, config, model, info)
        return _fit(run, trainer, dataset, history=[], report=report)
    finally:
        if lock is not None:
            lock.release()


# Options --resume may change: how long to train and how training is watched, not what is trained.
RESUME_OPTIONS = ("epochs", "progress", "log_every", "tensorboard", "mlflow")


def resume(
    path: str | Path,
    *,
    epochs: int | None = None,
    report: bool = True,
    progress: bool | None = None,
    encoder: nn.Module | None = None,
    decoder: nn.Module | None = None,
    callbacks: list[Callback | EpochCallback] | None = None,
    **options: Any,
) -> Run:
    """Continue an interrupted (or finished) run from its last checkpoint, up to ``epochs``.

    ``options`` may also set ``log_every``, ``tensorboard`` and ``mlflow`` (the rest of the configuration
    is the run's); the loggers of the run's configuration continue where they stopped: the same
    TensorBoard directory, the same MLflow run. ``callbacks`` as in :func:`train`."""
    unknown = sorted(set(options) - set(RESUME_OPTIONS))
    if unknown:
        raise ConfigError(
            f"resume continues a run with its saved configuration; it cannot change {', '.join(unknown)}. "
            f"It may change: {', '.join(RESUME_OPTIONS)}."
        )
    path = Path(path)
    if not_started(path):
        raise CheckpointError(not_started_message(path, "has no checkpoint to resume"))
    run = load_run(path, weights=None, encoder=encoder, decoder=decoder)
    distributed.join(distributed.device_for(resolve_device(run.config.train.device)))  # torchrun: the group
    _, lock = _lock_on_main(lambda: RunLock(path).acquire())
    try:
        if lock is not None:
            remove_stale_temporaries(path)  # a killed write's leftovers; no other writer holds the lock
        overrides = {k: v for k, v in {"epochs": epochs, "progress": progress, **options}.items() if v is not None}
        run.config = resolve_tracking(run.config.replace(**overrides))
        require_trackers(run.config.train)
        tensors, meta = load_tensors(run.path / CHECKPOINT)
        trainer = Trainer(
            run.model, run.config.train, callbacks=callbacks, batch_transform=_batch_transform(run.config)
        )
        check_checkpoint(tensors, meta, run.path / CHECKPOINT, trainer)
        trainer.load_state_tensors(tensors, meta)
        distributed.check_agreement("the checkpoint", distributed.digest(trainer.state.step, meta.get("trainer")))
        if trainer.world.main:
            atomic_write_text(run.path / CONFIG, save_yaml(run.config))
        history = read_metrics(run.path)[: trainer.state.epoch]
        return _fit(run, trainer, run.load_data(), history=history, report=report)
    finally:
        if lock is not None:
            lock.release()


class RunDirectory(Callback):
    """Writes each epoch into the run directory: its record to metrics.jsonl, the weights when the
    validation loss improved, the full training state to checkpoint.safetensors (for --resume).

    The checkpoint goes last: it is what --resume starts from, so a kill between the writes leaves
    a run that resumes from the epoch before and redoes this one (metrics.jsonl is cut to the
    checkpoint's epoch on resume, and the weights of the redone epoch are the same)."""

    def __init__(self, run: Run, history: list[dict[str, Any]], saved: int = 0):
        self.run, self.history = run, history
        self.saved = saved  # the epoch checkpoint.safetensors holds (0: none)

    def on_epoch_end(self, trainer: Trainer, record: dict[str, Any], improved: bool) -> None:
        path = self.run.path
        self.history.append(record)
        atomic_write_text(path / METRICS, "".join(dumps(r) + "\n" for r in self.history))
        if improved:
            save_tensors(path / WEIGHTS, trainer.model.state_dict(), _weights_meta(self.run))
        tensors, meta = trainer.state_tensors()
        save_tensors(path / CHECKPOINT, tensors, meta)
        self.saved = trainer.state.epoch


def _fit(run: Run, trainer: Trainer, dataset: Dataset, *, history: list[dict], report: bool) -> Run:
    """Train, then write the summary, plots and report.

    The callbacks run in this order: the caller's (one may stop training, and the checkpoint records it),
    the run directory's, then the loggers of the config (which see each epoch once it is saved)."""
    path, main = run.path, trainer.world.main
    trackers = open_trackers(path, run.config, dataset, run.denormalize, list(history)) if main else []
    directory = RunDirectory(run, history, saved=trainer.state.epoch)
    trainer.callbacks += [directory, *trackers] if main else []
    try:
        state = trainer.fit(dataset.train, dataset.valid, dataset.train_labels, dataset.valid_labels)
    except KeyboardInterrupt:
        if not directory.saved:
            raise RunInterrupted(not_started_message(path, "was interrupted")) from None
        raise RunInterrupted(
            f"Training was interrupted; the run directory holds epoch {directory.saved} and is consistent. "
            f"Continue with: aekit train --resume {path}"
        ) from None
    if not main:  # rank 0 evaluates and writes the summary and report; this rank's model is trained alike
        return run
    try:
        return _finish(run, trainer, dataset, state, history, report, trackers)
    except KeyboardInterrupt:
        raise RunInterrupted(
            f"Interrupted after training, while writing the summary and report of '{path}'. The trained model "
            f"is saved; write them with: aekit train --resume {path}"
        ) from None


def _finish(
    run: Run, trainer: Trainer, dataset: Dataset, state: Any, history: list[dict], report: bool, trackers: list
) -> Run:
    """The test-set evaluation, summary.json, the figures and report after training."""
    path = run.path
    weights, _ = load_tensors(path / WEIGHTS)
    load_state_into(run.model, weights, path / WEIGHTS)
    test = {}
    if len(dataset.test):
        test = run.evaluate(dataset.test, dataset.test_labels, iw_samples=0)
    # samples_per_s is the overall rate: every epoch trains on the whole split, and state.train_seconds
    # sums all epochs, resumed ones included (the last epochs' rates alone leave out the slow first ones).
    samples = len(dataset.train) * state.epoch
    summary = {
        "model": run.config.model.model,
        "data": dataset.name,
        "epochs": state.epoch,
        "best_epoch": state.best_epoch,
        "best_valid_loss": state.best_valid,
        "stopped_early": state.stopped_early,
        "time_limit_reached": bool(run.config.train.time_limit)
        and state.train_seconds >= 60 * run.config.train.time_limit,
        "steps": state.step,
        "train_seconds": round(state.train_seconds, 3),
        "samples_per_s": round(samples / state.train_seconds, 1) if state.train_seconds else 0.0,
        "device": str(trainer.device),
        "world_size": trainer.world.size,  # processes that trained it (torchrun), each on its share of the batch
        "parameters": sum(p.numel() for p in run.model.parameters()),
        "test": test,
        # what the test metrics show to be wrong (a collapsed posterior or codebook), each with its fix
        "warnings": run.model.warnings(test) if test else [],
    }
    atomic_write_text(path / SUMMARY, dumps(summary, indent=2))
    for warning in summary["warnings"]:
        log.warning("Warning: %s", warning)
    if report:
        write_artifacts(run, dataset, history, summary)
    for tracker in trackers:
        tracker.on_run_end(path, summary)
    return run


# --- loading -------------------------------------------------------------------------------------


def load_run(
    path: str | Path,
    *,
    device: str = "cpu",
    weights: str | None = WEIGHTS,
    encoder: nn.Module | None = None,
    decoder: nn.Module | None = None,
) -> Run:
    """Load a run directory: its config, data description and (best) weights.

    A run trained with your own networks needs new instances of them, ``encoder=`` and
    ``decoder=``: a run directory holds weights, never code. Runs of aekit 0.1.0 load too."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"Run directory '{path}' does not exist. Pass the directory 'aekit train' wrote.")
    if not (path / CONFIG).is_file() or not (path / DATA_INFO).is_file():
        raise CheckpointError(
            f"'{path}' is not an aekit run directory: it lacks {CONFIG} or {DATA_INFO}. "
            "Pass the directory 'aekit train' wrote (its path is printed at the end of training)."
        )
    if weights is not None and not (path / weights).is_file() and not_started(path):
        raise CheckpointError(not_started_message(path, "has no trained weights"))
    config = read_config(path)
    info = read_json(path, DATA_INFO)
    custom = "arch" in config.model.field_names() and config.model.arch == CUSTOM
    if custom and (encoder is None and decoder is None):
        classes = read_json(path, NETWORKS) if (path / NETWORKS).is_file() else {}
        named = ", ".join(f"{k} {v.get('class', '?')}" for k, v in classes.items()) or "their classes are not recorded"
        raise CheckpointError(
            f"The run '{path}' was trained with your own networks ({named}). A run directory holds their weights, "
            "never their code, so load it from Python with new instances: "
            "aekit.load_run(path, encoder=MyEncoder(...), decoder=MyDecoder(...))."
        )
    if not custom and (encoder is not None or decoder is not None):
        raise ConfigError(f"The run '{path}' uses the built-in networks; load it without encoder= and decoder=.")
    model = build_model(config.model, tuple(info["sample_shape"]), encoder=encoder, decoder=decoder)
    if weights is not None:
        tensors, meta = load_tensors(path / weights)
        if meta.get("model") != config.model.model:
            raise CheckpointError(
                f"'{path / weights}' holds a '{meta.get('model')}' model but config.yaml describes a "
                f"'{config.model.model}' model. The files come from different runs; retrain or restore them."
            )
        load_state_into(model, tensors, path / weights)
    model.to(resolve_device(device)).eval()
    if weights is not None and model.capabilities.needs_prior:
        attach_saved_prior(model, path)  # after the weights: the prior is not part of them
    return Run(path, config, model, info)


__all__ = ["Run", "load_run", "read_metrics", "resume", "train"]


# --- helpers -------------------------------------------------------------------------------------


def load_config_data(config: RunConfig, spec: str | None = None, normalization: dict | None = None) -> Dataset:
    """The data a config names (or ``spec``), split, normalised and binarised as the config says."""
    d = config.data
    dataset = load_dataset(
        spec or d.data,
        seed=d.split_seed,
        valid_fraction=d.valid_fraction,
        test_fraction=d.test_fraction,
        normalize=d.normalize,
        normalization=normalization,
        label_column=d.label_column,
        mnist_train=d.mnist_train,
        storage=d.storage,
        classes=d.classes,
        exclude_classes=d.exclude_classes,
    )
    return binarize_dataset(dataset, d.binarize, d.binarize_seed)


def binarize_dataset(dataset: Dataset, mode: str, seed: int) -> Dataset:
    """Binarise data in [0, 1] by Bernoulli draws (the MNIST likelihood protocol).

    ``static``: every split drawn once (seeded). ``dynamic``: the training split stays grey and the
    trainer draws a new binarisation per batch; valid and test are drawn once, so every evaluation
    scores the same binary images.
    """
    if mode == "none":
        return dataset
    if isinstance(dataset.train, NpyRows):
        raise ConfigError(
            f"--binarize needs the data in memory, and '{dataset.name}' is streamed from its file. Binarise the "
            "file itself (numpy: x = (rng.random(x.shape) < x)), or use --storage memory."
        )
    lo, hi = dataset.value_range
    if lo < 0 or hi > 1:
        raise DataError(
            f"--binarize needs data in [0, 1] (values are Bernoulli probabilities); '{dataset.name}' ranges "
            f"over [{lo:.4g}, {hi:.4g}]. Use --binarize none."
        )
    generator = torch.Generator().manual_seed(seed)
    splits = {name: torch.bernoulli(getattr(dataset, name), generator=generator) for name in ("valid", "test")}
    splits["train"] = torch.bernoulli(dataset.train, generator=generator) if mode == "static" else dataset.train
    return dataclasses.replace(dataset, **splits)


def _batch_transform(config: RunConfig) -> Any:
    return torch.bernoulli if config.data.binarize == "dynamic" else None


def _weights_meta(run: Run) -> dict[str, Any]:
    return {"model": run.config.model.model, "config": run.config.to_dict(), "data": run.data_info}


def _describe(net: nn.Module) -> dict[str, Any]:
    cls = type(net)
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "parameters": sum(p.numel() for p in net.parameters())}


def _data_digest(dataset: Dataset) -> str:
    """A fingerprint of the data every rank loaded: its name, shape, split sizes and first rows."""
    sizes = [len(getattr(dataset, s)) for s in ("train", "valid", "test")]
    head = torch.as_tensor(dataset.train[:64]) if len(dataset.train) else None
    return distributed.digest(dataset.name, tuple(dataset.sample_shape), sizes, head)


def _claim_run_dir(out: str | Path | None, config: RunConfig, overwrite: bool) -> RunLock:
    """Lock the run directory for a new run and empty it of an earlier run's files.

    A directory whose run never finished an epoch (no checkpoint: killed or interrupted during
    start-up or its first epoch) holds nothing to keep, so it is reused without --overwrite."""
    if out is None:
        stem = Path(config.data.data).stem or "data"
        out = Path("runs") / f"{config.model.model}-{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out '{path}' is a file, not a directory. Choose another path.")
    lock = RunLock(path).acquire()  # creates the directory; from here no other writer gets in
    try:
        if any(p.name != LOCK for p in path.iterdir()):
            if not_started(path):
                clear_run_dir(path)
            elif not overwrite:
                raise ConfigError(
                    f"Run directory '{path}' already exists and is not empty. Choose another --out, "
                    f"continue it with --resume {path}, or replace it with --overwrite."
                )
            elif not (path / CONFIG).is_file():
                raise ConfigError(
                    f"--overwrite refuses to clear '{path}': it is not an aekit run directory (no {CONFIG})."
                )
            else:
                clear_run_dir(path)
        remove_stale_temporaries(path)
        clear_tracking(path, config.train)
    except BaseException:
        lock.release()
        raise
    return lock


def _lock_on_main(take: Callable[[], RunLock]) -> tuple[Path, RunLock | None]:
    """Rank 0 takes the run directory's lock (the other ranks of a torchrun launch write nothing);
    every rank gets the path, and when rank 0 fails every rank raises its error."""
    held: list[RunLock] = []

    def main_rank() -> str:
        held.append(take())
        return str(held[0].path)

    path = Path(distributed.from_main(main_rank))
    return path, (held[0] if held else None)


def not_started(path: Path) -> bool:
    """A run directory whose training never finished an epoch: a config but no checkpoint."""
    return (path / CONFIG).is_file() and not (path / CHECKPOINT).is_file()


def not_started_message(path: Path, what: str) -> str:
    command = read_command(path)
    again = f": {command}" if command and command.startswith("aekit ") else ""
    return (
        f"The run '{path}' {what}: its training stopped before the first epoch was saved, so nothing was kept. "
        f"Start it again by running the same command{again} (it reuses the directory; no --overwrite needed)."
    )
