"""The run directory's files, its format version, and reading the files of earlier releases.

::

    config.yaml              the resolved configuration (format 2: the model section holds its family's options)
    data.json                the data's name, kind, sample shape and normalisation
    networks.json            only for a model built from your own networks: their classes
    model.safetensors        the best weights (lowest validation loss)
    checkpoint.safetensors   the latest weights, optimiser and RNG state, for --resume
    metrics.jsonl            one JSON record per epoch
    summary.json             training summary and test-set metrics
    command.txt              the command that made the run (aekit train ..., or the aekit.train(...) call)
    prior.safetensors, prior.json   a VQ-VAE's PixelCNN prior (aekit train-prior)
    mlflow.json              the MLflow run it logs to (--mlflow), so --resume continues that run
    tensorboard/             TensorBoard event files (--tensorboard, by default)
    plots/*.png, report.html

aekit 0.1.0 wrote format 1: one flat model section with every option of every model, the VQ-VAE's
commitment weight as ``beta`` and its width as ``hidden``, and ``kl_warmup`` among the training
options. :func:`read_config` converts it on load; the weights are unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aekit.config import FORMAT, RunConfig, from_dict, load_yaml
from aekit.errors import CheckpointError, ConfigError
from aekit.registry import family_of

CONFIG, DATA_INFO, NETWORKS = "config.yaml", "data.json", "networks.json"
WEIGHTS, CHECKPOINT = "model.safetensors", "checkpoint.safetensors"
METRICS, SUMMARY, REPORT = "metrics.jsonl", "summary.json", "report.html"
PRIOR_WEIGHTS, PRIOR_INFO = "prior.safetensors", "prior.json"
COMMAND = "command.txt"
MLFLOW_RUN = "mlflow.json"
PLOTS = "plots"
RUN_FILES = (CONFIG, DATA_INFO, NETWORKS, WEIGHTS, CHECKPOINT, METRICS, SUMMARY, REPORT, PRIOR_WEIGHTS, PRIOR_INFO,
             COMMAND, MLFLOW_RUN)  # fmt: skip


def read_config(path: Path) -> RunConfig:
    """The run's configuration, converted from an earlier release's format when needed."""
    try:
        values = load_yaml(path / CONFIG)
        version = values.pop("format", 1)
        if not isinstance(version, int) or version < 1:
            raise ConfigError(f"its format is {version!r}, not a version number")
        if version > FORMAT:
            raise CheckpointError(
                f"The run directory '{path}' was written by a newer aekit (config.yaml format {version}; this aekit "
                f"reads up to {FORMAT}). Upgrade aekit: pip install -U aekit."
            )
        if version == 1:
            values = convert_v1(values, path)
        return from_dict(values)
    except ConfigError as err:
        raise CheckpointError(f"The run directory '{path}' cannot be loaded from its config.yaml: {err}") from None


def convert_v1(values: dict[str, Any], path: Path) -> dict[str, Any]:
    """A 0.1.0 config (format 1) in today's terms: each option in its family's section or dropped.

    0.1.0 refused the options that do not apply to a model or ignored them, so dropping them
    changes nothing the run did."""
    model = dict(values.get("model") or {})
    train = dict(values.get("train") or {})
    preset = str(model.get("model", "vae"))
    family = family_of(preset)
    fields = set(family.config.field_names())
    if family.name == "vq-vae":
        model["commitment_weight"] = model.pop("beta", 0.25)
        hidden = model.pop("hidden", None) or [128]
        model["channels"] = int(hidden[-1])
        model["arch"] = "resnet"  # 0.1.0's VQ-VAE always had the residual stacks; its arch key meant nothing
    if family.name == "vae" and "kl_warmup" in train:
        model["kl_warmup"] = train.pop("kl_warmup")
    train.pop("kl_warmup", None)  # a KL warm-up of a model without a KL did nothing
    latent = model.get("latent")
    expected = {"ae": "deterministic", "vae": "gaussian"}.get(family.name)
    if expected is not None and latent not in (None, expected):
        raise CheckpointError(
            f"The run directory '{path}' (aekit 0.1.0) combines model '{preset}' with a '{latent}' latent, which "
            f"this release does not convert. Retrain it with --model {'vae' if latent == 'gaussian' else 'ae'}."
        )
    return {
        "model": {k: v for k, v in model.items() if k in fields},
        "data": values.get("data") or {},
        "train": train,
    }


def read_json(path: Path, name: str) -> Any:
    """A JSON file of the run directory; a corrupt one is a :class:`CheckpointError`."""
    try:
        return json.loads((path / name).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"The run directory '{path}' is damaged: {name} cannot be read ({err}).") from None


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The epoch records of a run (empty before the first epoch ends)."""
    file = Path(path) / METRICS
    if not file.is_file():
        return []
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


def clear_run_dir(path: Path) -> None:
    """Remove what a run writes (and nothing else) from ``path``."""
    for name in RUN_FILES:
        (path / name).unlink(missing_ok=True)
    plots = path / PLOTS
    if plots.is_dir():
        for png in plots.glob("*.png"):
            png.unlink()


def read_command(path: Path) -> str | None:
    """The command that made the run, or None for a run directory that does not record it."""
    file = path / COMMAND
    if not file.is_file():
        return None
    return file.read_text(encoding="utf-8").strip() or None


def api_command(function: str, *args: Any, **kwargs: Any) -> str:
    """A Python call as it would be typed, e.g. ``aekit.train(model='vae', epochs=2)``: what a run made
    from Python records as its command. Objects without a short literal form show as ``<ClassName>``."""
    shown = [_literal(a) for a in args] + [f"{k}={_literal(v)}" for k, v in kwargs.items()]
    return f"{function}({', '.join(shown)})"


def _literal(value: Any) -> str:
    if isinstance(value, Path):
        return repr(str(value))
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, (bool, int, float, str)) for v in value):
        return repr(value)
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return "{" + ", ".join(f"{k!r}: {_literal(v)}" for k, v in value.items()) + "}"
    return f"<{type(value).__name__}>"
