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

Every file is checked when it is read (:func:`read_json`, :func:`read_metrics`, :func:`read_config`): a
damaged or hand-edited one is a :class:`CheckpointError` that names the file and the field, never a
traceback from deep inside the model. The JSON files are written strictly (:func:`dumps`): a NaN or
infinite number as ``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

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
        try:
            values = load_yaml(path / CONFIG)
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"it cannot be read ({err})") from None
        if not isinstance(values.get("model"), dict):
            raise ConfigError("it has no model section (a mapping of the model's options)")
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
    """A JSON file of the run directory, checked against what aekit writes there (data.json field by
    field; the others must be JSON objects); a corrupt or damaged one is a :class:`CheckpointError`."""
    try:
        # A JSON nested thousands deep exhausts the parser's recursion: damaged too.
        value = json.loads((path / name).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:
        raise CheckpointError(f"The run directory '{path}' is damaged: {name} cannot be read ({err}).") from None
    check = _CHECKS.get(name)
    if check is not None:
        check(value, lambda message: _damaged(path, name, message))
    return value


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The epoch records of a run (empty before the first epoch ends). A value written as ``null`` (a NaN
    or infinite number) reads as NaN; a line that is not an epoch record is a :class:`CheckpointError`."""
    path = Path(path)
    file = path / METRICS
    if not file.is_file():
        return []
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError) as err:
        raise CheckpointError(f"The run directory '{path}' is damaged: {METRICS} cannot be read ({err}).") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as err:
            raise _damaged(path, METRICS, f"line {number} is not JSON ({err})") from None
        if not isinstance(record, dict):
            raise _damaged(path, METRICS, f"line {number} must hold a JSON object, got {_shown(record)}")
        for key in ("epoch", "step"):  # the loggers place each record by them
            if not _is_int(record.get(key)) or record[key] < 0:
                shown = _shown(record.get(key))
                raise _damaged(path, METRICS, f"line {number} field '{key}' must be an integer >= 0 (got {shown})")
        records.append({k: math.nan if v is None else v for k, v in record.items()})
    return records


# --- checking what was read --------------------------------------------------------------------------

DATA_KINDS = ("image", "tabular")
STORAGES = ("memory", "stream")
SPLITS = ("train", "valid", "test")
DATA_FIELDS = ("name", "kind", "sample_shape", "normalization", "has_labels", "sizes", "storage")  # and feature_names


def _damaged(path: Path, name: str, message: str) -> CheckpointError:
    return CheckpointError(f"The run directory '{path}' is damaged: {name} {message}. Restore the file or retrain.")


def _shown(value: Any, limit: int = 80) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ints(value: Any, least: int) -> bool:
    """Whether ``value`` is a list of integers >= ``least``."""
    return isinstance(value, list) and all(_is_int(v) and v >= least for v in value)


def _floats(value: Any, length: int | None, positive: bool = False) -> bool:
    """Whether ``value`` is a list of ``length`` finite (and positive) numbers."""
    return (
        isinstance(value, list)
        and len(value) == length
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
        and (not positive or all(v > 0 for v in value))
    )


def _check_object(value: Any, damaged: Callable[[str], CheckpointError]) -> None:
    if not isinstance(value, dict):
        raise damaged(f"must hold a JSON object, got {'null' if value is None else type(value).__name__}")


def _check_data_info(info: Any, damaged: Callable[[str], CheckpointError]) -> None:
    """data.json as :func:`aekit.runs.run.train` writes it (and aekit 0.1.0 wrote it)."""
    _check_object(info, damaged)
    missing = [k for k in DATA_FIELDS if k not in info]
    if missing:
        raise damaged(f"lacks the field '{missing[0]}'")

    def field(key: str, ok: bool, what: str) -> None:
        if not ok:
            raise damaged(f"field '{key}' must be {what} (got {_shown(info.get(key))})")

    field("name", isinstance(info["name"], str), "a string")
    field("kind", info["kind"] in DATA_KINDS, f"one of {', '.join(map(repr, DATA_KINDS))}")
    shape = info["sample_shape"]
    field("sample_shape", _ints(shape, least=1) and len(shape) > 0, "a non-empty list of positive integers")
    field("has_labels", isinstance(info["has_labels"], bool), "true or false")
    sizes = info["sizes"]
    sizes_ok = isinstance(sizes, dict) and set(sizes) == set(SPLITS) and _ints(list(sizes.values()), least=0)
    field("sizes", sizes_ok, 'the sizes of the splits, {"train": N, "valid": N, "test": N} with N >= 0')
    field("storage", info["storage"] in STORAGES, f"one of {', '.join(map(repr, STORAGES))}")
    width = shape[0] if len(shape) == 1 else None  # tabular data: one feature per column
    norm = info["normalization"]
    if norm is not None and norm != {}:  # only tabular data is standardised: a mean and a std per feature
        norm_ok = info["kind"] == "tabular" and isinstance(norm, dict) and set(norm) == {"mean", "std"}
        norm_ok = norm_ok and _floats(norm["mean"], width) and _floats(norm["std"], width, positive=True)
        field("normalization", norm_ok, f"{{}} or, for tabular data, {{\"mean\": [...], \"std\": [...]}} with "
              f"{width or 'one per feature'} finite means and positive stds")  # fmt: skip
    names = info.get("feature_names")
    if names is not None:
        names_ok = isinstance(names, list) and len(names) == width and all(isinstance(n, str) for n in names)
        field("feature_names", names_ok, f"a list of {width or 'one per feature'} strings")


def _check_networks(value: Any, damaged: Callable[[str], CheckpointError]) -> None:
    _check_object(value, damaged)
    for key, net in value.items():
        if not isinstance(net, dict):
            raise damaged(f'field \'{key}\' must be an object {{"class": ..., "parameters": ...}} (got {_shown(net)})')


# What read_json checks in each file; the JSON files not named here are read as they are.
_CHECKS: dict[str, Callable[[Any, Callable[[str], CheckpointError]], None]] = {
    DATA_INFO: _check_data_info,
    NETWORKS: _check_networks,
    SUMMARY: _check_object,
    PRIOR_INFO: _check_object,
    MLFLOW_RUN: _check_object,
}


# --- writing strict JSON -----------------------------------------------------------------------------


def strict_json(obj: Any, found: list[str] | None = None) -> Any:
    """A copy of ``obj`` that is strict JSON: NaN and infinite floats become None (``null``), tuples
    lists, numpy scalars and arrays Python values. Python's ``json`` would write ``NaN`` and ``Infinity``,
    which are not JSON and which jq, JavaScript and most readers reject. The dotted paths of the
    replaced values (``test.mse``, ``kl_per_dim[3]``) are appended to ``found`` when it is given."""
    return _strict(obj, "", [] if found is None else found)


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`strict_json` ``(obj)``: never NaN or Infinity (``null`` in their place)."""
    return json.dumps(strict_json(obj), allow_nan=False, **kwargs)


def _strict(obj: Any, path: str, found: list[str]) -> Any:
    if isinstance(obj, (np.generic, np.ndarray)):
        obj = obj.tolist()
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        found.append(path or "(value)")
        return None
    if isinstance(obj, dict):
        return {k: _strict(v, f"{path}.{k}" if path else str(k), found) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v, f"{path}[{i}]", found) for i, v in enumerate(obj)]
    return obj


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
