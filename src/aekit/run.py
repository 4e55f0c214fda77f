"""Run directories: train into one, resume one, load one back.

A run directory holds everything a run made and is enough to reload, evaluate, sample or export
the model::

    config.yaml              the resolved configuration
    data.json                the data's name, kind, sample shape and normalisation
    model.safetensors        the best weights (lowest validation loss)
    checkpoint.safetensors   the latest weights, optimiser and RNG state, for --resume
    metrics.jsonl            one JSON record per epoch
    summary.json             training summary and test-set metrics
    plots/*.png, report.html

Every file is written atomically, so an interrupted run leaves a consistent directory that
``--resume`` continues.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from aekit.checkpoint import load_state_into, load_tensors, save_tensors
from aekit.config import RunConfig, from_dict, load_yaml, save_yaml
from aekit.data import Dataset, NpyRows, load_dataset
from aekit.errors import CheckpointError, ConfigError, DataError
from aekit.evaluate import evaluate
from aekit.fsutil import atomic_write_text
from aekit.likelihoods import resolve_likelihood
from aekit.models import Autoencoder, build_model
from aekit.trainer import Trainer, resolve_device

CONFIG, DATA_INFO, WEIGHTS, CHECKPOINT = (
    "config.yaml",
    "data.json",
    "model.safetensors",
    "checkpoint.safetensors",
)
METRICS, SUMMARY, REPORT = "metrics.jsonl", "summary.json", "report.html"


@dataclass
class Run:
    """A trained model with its configuration and data description, backed by a run directory."""

    path: Path
    config: RunConfig
    model: Autoencoder
    data_info: dict[str, Any]

    # --- the model's uses, on numpy arrays or tensors in the data's own units -------------------

    def encode(self, x: Any, y: Any = None) -> torch.Tensor:
        """Codes ``(N, K)`` of samples ``x`` (posterior means for a VAE); ``y``: labels of a conditional model."""
        return self._batched(self.model.encode, self._prepare(x), self._labels(y))

    def decode(self, z: Any, y: Any = None) -> torch.Tensor:
        """Decoded samples for codes ``z``, in the data's units."""
        z = torch.as_tensor(z, dtype=torch.float32)
        return self.denormalize(self._batched(self.model.decode, z, self._labels(y)))

    def reconstruct(self, x: Any, y: Any = None) -> torch.Tensor:
        """Reconstructions of ``x``, in the data's units."""
        return self.denormalize(self._batched(self.model.reconstruct, self._prepare(x), self._labels(y)))

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, label: int | None = None) -> torch.Tensor:
        """``n`` new samples from the prior (raises NotGenerativeError for a plain AE).

        A conditional model draws class ``label`` (required for it)."""
        self.model.eval()
        device = next(self.model.parameters()).device
        generator = torch.Generator(device=device).manual_seed(seed)
        y = None
        if label is not None or self.model.num_classes:
            if label is None or not 0 <= label < max(self.model.num_classes, 1) or not self.model.num_classes:
                raise ConfigError(self._label_help(label))
            y = torch.full((n,), label, dtype=torch.long)
        return self.denormalize(self.model.sample(n, generator=generator, y=y).cpu())

    def _label_help(self, label: int | None) -> str:
        k = self.model.num_classes
        if not k:
            return f"--label {label} needs a conditional model (train with --condition-on labels); this one is not."
        return f"This model is conditioned on labels: pass --label L with L in 0..{k - 1} (got {label})."

    def load_data(self, spec: str | None = None) -> Dataset:
        """The run's data set (or ``spec``), split, normalised and binarised exactly as in training."""
        return load_config_data(self.config, spec, self.data_info.get("normalization") or None)

    def evaluate(self, x: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any) -> dict[str, Any]:
        """Test metrics (see :mod:`aekit.evaluate`) of already-normalised samples ``x``."""
        check_sample_shape(x, self.model.sample_shape, "evaluate")
        self.model.likelihood.check_data(x, "the evaluation data")
        return evaluate(self.model, x, y=self._labels(y), **kwargs)

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

    def _labels(self, y: Any) -> torch.Tensor | None:
        if not self.model.num_classes:
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
        device = next(self.model.parameters()).device
        out = []
        for i in range(0, len(x), batch_size):
            args = [x[i : i + batch_size].to(device)]
            if y is not None:
                args.append(y[i : i + batch_size].to(device))
            out.append(fn(*args).cpu())
        return torch.cat(out)


def check_sample_shape(x: torch.Tensor, shape: tuple[int, ...], what: str) -> None:
    if tuple(x.shape[1:]) != tuple(shape):
        raise DataError(
            f"Expected samples of shape {tuple(shape)} for {what}, got an array of shape {tuple(x.shape)}. "
            f"Pass a batch shaped (N, {', '.join(map(str, shape))})."
        )
    if isinstance(x, torch.Tensor) and not torch.isfinite(x).all():  # a streamed split was scanned when opened
        raise DataError(f"The data passed to {what} holds NaN or infinite values; remove or impute them first.")


# --- training ------------------------------------------------------------------------------------


def train(
    config: RunConfig | dict[str, Any] | None = None,
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    dataset: Dataset | None = None,
    report: bool = True,
    **overrides: Any,
) -> Run:
    """Train a model and write its run directory; return the loaded :class:`Run`.

    ``config`` is a :class:`RunConfig` or a dict of (flat or grouped) keys; ``overrides`` are keys
    such as ``model="ae"``, ``latent_dim=2``, ``epochs=10``. ``dataset`` replaces loading
    ``config.data.data`` (useful for in-memory data from Python).
    """
    if isinstance(config, dict):
        config = from_dict(config)
    config = (config or RunConfig()).replace(**overrides).validate()
    if dataset is None:
        dataset = load_config_data(config)
    else:
        dataset = binarize_dataset(dataset, config.data.binarize, config.data.binarize_seed)
    likelihood = resolve_likelihood(config.model.likelihood, dataset.train)
    config = config.replace(likelihood=likelihood)
    if config.model.condition_on == "labels":
        if dataset.train_labels is None:
            raise DataError(
                f"--condition-on labels needs labelled data, and '{dataset.name}' has no labels. Use data with "
                "labels (digits, mnist, an image folder with class subfolders, --label-column for CSV)."
            )
        config = config.replace(num_classes=int(dataset.train_labels.max()) + 1)
    torch.manual_seed(config.train.seed)  # the initial weights depend on the seed alone
    model = build_model(config.model, dataset.sample_shape)
    for split in ("train", "valid", "test"):
        model.likelihood.check_data(getattr(dataset, split), f"the {split} split of '{dataset.name}'")
    path = _new_run_dir(out, config, overwrite)
    info = {
        "name": dataset.name,
        "kind": dataset.kind,
        "sample_shape": list(dataset.sample_shape),
        "normalization": dataset.normalization,
        "has_labels": dataset.train_labels is not None,
        "sizes": {s: len(getattr(dataset, s)) for s in ("train", "valid", "test")},
        "storage": "stream" if isinstance(dataset.train, NpyRows) else "memory",
    }
    atomic_write_text(path / CONFIG, save_yaml(config))
    atomic_write_text(path / DATA_INFO, json.dumps(info, indent=2))
    trainer = Trainer(model, config.train, batch_transform=_batch_transform(config))
    run = Run(path, config, model, info)
    return _fit(run, trainer, dataset, history=[], report=report)


def resume(path: str | Path, *, epochs: int | None = None, report: bool = True, progress: bool | None = None) -> Run:
    """Continue an interrupted (or finished) run from its last checkpoint, up to ``epochs``."""
    run = load_run(path, weights=None)
    overrides: dict[str, Any] = {}
    if epochs is not None:
        overrides["epochs"] = epochs
    if progress is not None:
        overrides["progress"] = progress
    run.config = run.config.replace(**overrides)
    tensors, meta = load_tensors(run.path / CHECKPOINT)
    trainer = Trainer(run.model, run.config.train, batch_transform=_batch_transform(run.config))
    trainer.load_state_tensors(tensors, meta)
    atomic_write_text(run.path / CONFIG, save_yaml(run.config))
    history = read_metrics(run.path)[: trainer.state.epoch]
    return _fit(run, trainer, run.load_data(), history=history, report=report)


def _fit(run: Run, trainer: Trainer, dataset: Dataset, *, history: list[dict], report: bool) -> Run:
    path = run.path

    def save_epoch(tr: Trainer, record: dict[str, Any], improved: bool) -> None:
        history.append(record)
        if improved:
            save_tensors(path / WEIGHTS, tr.model.state_dict(), _weights_meta(run))
        tensors, meta = tr.state_tensors()
        save_tensors(path / CHECKPOINT, tensors, meta)
        atomic_write_text(path / METRICS, "".join(json.dumps(r) + "\n" for r in history))

    trainer.callbacks.append(save_epoch)
    try:
        state = trainer.fit(dataset.train, dataset.valid, dataset.train_labels, dataset.valid_labels)
    except KeyboardInterrupt:
        raise CheckpointError(
            f"Training was interrupted after epoch {trainer.state.epoch}. The run directory is consistent; "
            f"continue with: aekit train --resume {path}"
        ) from None
    weights, _ = load_tensors(path / WEIGHTS)
    load_state_into(run.model, weights, path / WEIGHTS)
    test = {}
    if len(dataset.test):
        test = run.evaluate(dataset.test, dataset.test_labels if run.model.num_classes else None, iw_samples=0)
    summary = {
        "model": run.config.model.model,
        "data": dataset.name,
        "epochs": state.epoch,
        "best_epoch": state.best_epoch,
        "best_valid_loss": state.best_valid,
        "stopped_early": state.stopped_early,
        "steps": state.step,
        "train_seconds": round(state.train_seconds, 3),
        "samples_per_s": round(sum(r["samples_per_s"] for r in history[-5:]) / max(len(history[-5:]), 1), 1),
        "device": str(trainer.device),
        "parameters": sum(p.numel() for p in run.model.parameters()),
        "test": test,
    }
    atomic_write_text(path / SUMMARY, json.dumps(summary, indent=2))
    if report:
        from aekit.artifacts import write_artifacts

        write_artifacts(run, dataset, history, summary)
    return run


# --- loading -------------------------------------------------------------------------------------


def load_run(path: str | Path, *, device: str = "cpu", weights: str | None = WEIGHTS) -> Run:
    """Load a run directory: its config, data description and (best) weights."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"Run directory '{path}' does not exist. Pass the directory 'aekit train' wrote.")
    if not (path / CONFIG).is_file() or not (path / DATA_INFO).is_file():
        raise CheckpointError(
            f"'{path}' is not an aekit run directory: it lacks {CONFIG} or {DATA_INFO}. "
            "Pass the directory 'aekit train' wrote (its path is printed at the end of training)."
        )
    try:
        config = from_dict(load_yaml(path / CONFIG))
        info = json.loads((path / DATA_INFO).read_text())
    except (ConfigError, json.JSONDecodeError) as err:
        raise CheckpointError(f"The run directory '{path}' is damaged: {err}") from None
    model = build_model(config.model, tuple(info["sample_shape"]))
    if weights is not None:
        tensors, meta = load_tensors(path / weights)
        if meta.get("model") != config.model.model:
            raise CheckpointError(
                f"'{path / weights}' holds a '{meta.get('model')}' model but config.yaml describes a "
                f"'{config.model.model}' model. The files come from different runs; retrain or restore them."
            )
        load_state_into(model, tensors, path / weights)
    model.to(resolve_device(device)).eval()
    if weights is not None and hasattr(model, "attach_prior"):
        from aekit.priors import attach_saved_prior

        attach_saved_prior(model, path)  # after the weights: the prior is not part of them
    return Run(path, config, model, info)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    file = Path(path) / METRICS
    if not file.is_file():
        return []
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


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


def _new_run_dir(out: str | Path | None, config: RunConfig, overwrite: bool) -> Path:
    if out is None:
        stem = Path(config.data.data).stem or "data"
        out = Path("runs") / f"{config.model.model}-{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out '{path}' is a file, not a directory. Choose another path.")
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"Run directory '{path}' already exists and is not empty. Choose another --out, "
                f"continue it with --resume {path}, or replace it with --overwrite."
            )
        if not (path / CONFIG).is_file():
            raise ConfigError(f"--overwrite refuses to clear '{path}': it is not an aekit run directory (no {CONFIG}).")
        _clear_run_dir(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _clear_run_dir(path: Path) -> None:
    for name in (CONFIG, DATA_INFO, WEIGHTS, CHECKPOINT, METRICS, SUMMARY, REPORT, "prior.safetensors", "prior.json"):
        (path / name).unlink(missing_ok=True)
    plots = path / "plots"
    if plots.is_dir():
        for png in plots.glob("*.png"):
            png.unlink()
