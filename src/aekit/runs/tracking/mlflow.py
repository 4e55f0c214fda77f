"""MLflow tracking (``aekit train --mlflow URI``; needs ``pip install 'aekit[mlflow]'``).

One MLflow run per run directory, named after it: the run's configuration as parameters (flattened:
``model.latent_dim``, ``train.lr``...), every number of each epoch's metrics.jsonl record as a metric
with ``step = epoch``, and once training ends the test metrics (``test/*``) and the run directory as
artifacts (all of it but ``checkpoint.safetensors``, the resume state; the artifacts load with
``aekit.load_run`` once downloaded). The MLflow run ends FINISHED, KILLED (interrupted) or FAILED.

The client is MLflow's own, bound to the given URI: aekit neither reads ``MLFLOW_TRACKING_URI`` nor
touches the active run of MLflow's fluent API. ``MLFLOW_EXPERIMENT_NAME`` (or ``MLFLOW_EXPERIMENT_ID``)
chooses the experiment, as in MLflow; else MLflow's ``Default``. The MLflow run's id is kept in the run
directory (mlflow.json), so ``--resume`` continues the same MLflow run at the same URI.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aekit.config import RunConfig
from aekit.errors import ConfigError
from aekit.fsutil import atomic_write_text
from aekit.runs.layout import CHECKPOINT, MLFLOW_RUN
from aekit.runs.tracking.base import RunTracker, require

RUN_FILE = MLFLOW_RUN  # in the run directory: the MLflow run it logs to, for --resume
MAX_PARAMS = 100  # per log_batch call (MLflow's limit)
DEFAULT_EXPERIMENT = "Default"


def mlflow_client(uri: str) -> Any:
    """MLflow's client bound to ``uri``; a store MLflow refuses to open is a ConfigError."""
    require("mlflow")
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return MlflowClient(tracking_uri=uri)
    except MlflowException as err:
        # e.g. MLflow 3's refusal of the file store unless MLFLOW_ALLOW_FILE_STORE=true
        raise ConfigError(f"MLflow cannot open the tracking store '{uri}' given to --mlflow: {err.message}") from None


def experiment_id(client: Any) -> str:
    """The experiment of ``MLFLOW_EXPERIMENT_ID`` or ``MLFLOW_EXPERIMENT_NAME`` (created when missing), else
    MLflow's default one."""
    if os.environ.get("MLFLOW_EXPERIMENT_ID"):
        return os.environ["MLFLOW_EXPERIMENT_ID"]
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
    experiment = client.get_experiment_by_name(name)
    return experiment.experiment_id if experiment is not None else client.create_experiment(name)


def flat_params(config: RunConfig) -> dict[str, str]:
    """The configuration as MLflow parameters: ``section.option`` -> its value as text (lists as JSON)."""
    params = {}
    for section, values in config.to_dict().items():
        if isinstance(values, dict):
            for name, value in values.items():
                shown = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
                params[f"{section}.{name}"] = shown
    return params


def numbers(values: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, float]:
    """The numeric entries of a record (metrics.jsonl line, summary) that MLflow can take as metrics."""
    return {
        k: float(v)
        for k, v in values.items()
        if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


class MLflowLogger(RunTracker):
    """Log a run directory's training to the MLflow tracking store at ``uri`` (see the module's docstring).

    ``history`` holds the epoch records of a resumed run: those the MLflow run lacks (all of them for a
    new MLflow run, e.g. ``--mlflow`` added on resume) are logged first, so its curves start at epoch 1.
    """

    def __init__(self, uri: str, run_dir: str | Path, config: RunConfig, *, history: Sequence[dict[str, Any]] = ()):
        self.uri, self.run_dir, self.config, self.history = uri, Path(run_dir), config, history
        self.client: Any = None
        self.run_id: str | None = None
        self.status = "FINISHED"

    def on_train_begin(self, trainer: Any) -> None:
        self.client = mlflow_client(self.uri)
        self.status = "FINISHED"
        resumed = trainer.state.epoch > 0 and self._saved_run()
        if resumed:
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            self._new_run()
        if trainer.state.epoch:  # the epochs done before this call, where the MLflow run lacks them
            done = self._last_logged_epoch() if resumed else 0
            for record in self.history:
                if done < record["epoch"] <= trainer.state.epoch:
                    self._log_epoch(record)

    def on_epoch_end(self, trainer: Any, record: dict[str, Any], improved: bool) -> None:
        self._log_epoch(record)

    def on_exception(self, trainer: Any, error: BaseException) -> None:
        self.status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"

    def on_train_end(self, trainer: Any, state: Any) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, self.status)

    def on_run_end(self, path: Path, summary: dict[str, Any]) -> None:
        """The test metrics (at the last epoch's step) and the run directory's files as artifacts."""
        self._log_metrics({f"test/{k}": v for k, v in numbers(summary.get("test") or {}).items()}, summary["epochs"])
        for item in sorted(self.run_dir.iterdir()):
            if item.is_dir():
                self.client.log_artifacts(self.run_id, str(item), artifact_path=item.name)
            elif item.name != CHECKPOINT:  # the resume state: three times the weights, and only for --resume
                self.client.log_artifact(self.run_id, str(item))

    # --- helpers ---------------------------------------------------------------------------------------

    def _saved_run(self) -> bool:
        """Whether mlflow.json names an MLflow run at this URI that still exists (then it is continued)."""
        from mlflow.exceptions import MlflowException

        file = self.run_dir / RUN_FILE
        if not file.is_file():
            return False
        try:
            saved = json.loads(file.read_text())
            if not isinstance(saved, dict) or not isinstance(saved.get("run_id"), str):
                return False  # hand-edited: a new MLflow run rather than a crash
            if saved.get("tracking_uri") != self.uri:
                return False
            self.client.get_run(saved["run_id"])
        except (OSError, ValueError, KeyError, MlflowException):
            return False  # unreadable, or deleted from the store: a new MLflow run
        self.run_id = saved["run_id"]
        return True

    def _new_run(self) -> None:
        from mlflow.entities import Param

        tags = {"aekit.run_dir": str(self.run_dir.resolve()), "aekit.model": self.config.model.model,
                "aekit.data": self.config.data.data}  # fmt: skip
        run = self.client.create_run(experiment_id(self.client), tags=tags, run_name=self.run_dir.name)
        self.run_id = run.info.run_id
        params = [Param(k, v) for k, v in flat_params(self.config).items()]
        for i in range(0, len(params), MAX_PARAMS):
            self.client.log_batch(self.run_id, params=params[i : i + MAX_PARAMS])
        saved = {"tracking_uri": self.uri, "run_id": self.run_id, "experiment_id": run.info.experiment_id}
        atomic_write_text(self.run_dir / RUN_FILE, json.dumps(saved, indent=2))

    def _last_logged_epoch(self) -> int:
        history = self.client.get_metric_history(self.run_id, "train/loss")
        return max((m.step for m in history), default=0)

    def _log_epoch(self, record: dict[str, Any]) -> None:
        self._log_metrics(numbers(record, skip=("epoch", "step")), record["epoch"])

    def _log_metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in values.items()]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)


__all__ = ["RUN_FILE", "MLflowLogger", "experiment_id", "flat_params", "mlflow_client"]
