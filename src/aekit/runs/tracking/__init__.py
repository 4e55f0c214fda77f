"""Experiment tracking: a run's training logged to TensorBoard (:mod:`~aekit.runs.tracking.tensorboard`)
and MLflow (:mod:`~aekit.runs.tracking.mlflow`), as training callbacks attached from the run's
configuration (``train.tensorboard``, ``train.mlflow``; docs/tracking.md).

Both are optional extras; :func:`require_trackers` names the install command of a missing one before
anything is trained. The options live in config.yaml, so ``--resume`` keeps logging to the same
TensorBoard directory and the same MLflow run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from aekit.config import RunConfig, TrainConfig
from aekit.data import Dataset
from aekit.runs.tracking.base import RunTracker, require, resolve_tracking_uri, tensorboard_dir
from aekit.runs.tracking.mlflow import RUN_FILE, MLflowLogger, mlflow_client
from aekit.runs.tracking.tensorboard import EVENT_FILES, N_IMAGES, TensorBoardLogger


def resolve_tracking(config: RunConfig) -> RunConfig:
    """``config`` with its MLflow URI's local path made absolute (see :func:`resolve_tracking_uri`)."""
    uri = config.train.mlflow
    return (
        config if uri is None or resolve_tracking_uri(uri) == uri else config.replace(mlflow=resolve_tracking_uri(uri))
    )


def require_trackers(train: TrainConfig) -> None:
    """Raise MissingDependencyError for the package of a logger the config asks for and that is missing
    (and ConfigError for an MLflow store that MLflow refuses), before any data is loaded or trained on."""
    if train.tensorboard:
        require("tensorboard")
    if train.mlflow:
        mlflow_client(train.mlflow)


def clear_tracking(run_dir: Path, train: TrainConfig) -> None:
    """Forget what an earlier run in ``run_dir`` (replaced by --overwrite) logged: its MLflow run id, and
    the event files of a TensorBoard directory inside the run directory."""
    (run_dir / RUN_FILE).unlink(missing_ok=True)
    if train.tensorboard:
        events = tensorboard_dir(run_dir, train.tensorboard)
        if events.resolve().is_relative_to(run_dir.resolve()):
            for file in events.glob(EVENT_FILES):
                file.unlink()


def open_trackers(
    run_dir: Path,
    config: RunConfig,
    dataset: Dataset,
    denormalize: Callable[[torch.Tensor], torch.Tensor],
    history: Sequence[dict[str, Any]] = (),
) -> list[RunTracker]:
    """The loggers ``config.train`` asks for; ``history``: the epochs already done (a resumed run)."""
    train = config.train
    trackers: list[RunTracker] = []
    if train.tensorboard:
        images = labels = None
        if dataset.kind == "image":  # a fixed batch: validation images, else training ones
            split = "valid" if len(dataset.valid) else "train"
            x, y = dataset.split(split)
            images, labels = x[:N_IMAGES], None if y is None else y[:N_IMAGES]
        trackers.append(TensorBoardLogger(tensorboard_dir(run_dir, train.tensorboard), images=images, labels=labels,
                                          denormalize=denormalize, history=history))  # fmt: skip
    if train.mlflow:
        trackers.append(MLflowLogger(train.mlflow, run_dir, config, history=history))
    return trackers


__all__ = [
    "MLflowLogger",
    "RunTracker",
    "TensorBoardLogger",
    "clear_tracking",
    "open_trackers",
    "require_trackers",
    "resolve_tracking",
    "resolve_tracking_uri",
]
