"""Weights and training state in safetensors files (never pickle), written atomically.

``model.safetensors`` holds the best weights and, in its metadata, which model they belong to.
``checkpoint.safetensors`` holds everything needed to resume: the latest weights, the optimiser
state, the random number generator states and the trainer's counters, in one file so that they
can never disagree.

Loading checks what it reads: a file that is truncated, not JSON in its metadata, or holds NaN or
infinite weights is refused by :func:`load_tensors`, and :func:`check_checkpoint` checks that a
checkpoint holds everything resuming reads, with the types it needs. Either names the file and the
field in a :class:`CheckpointError`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from itertools import chain
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from aekit.errors import CheckpointError
from aekit.fsutil import atomic_path

FORMAT = "aekit"
FORMAT_VERSION = "1"


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    """Save tensors with JSON-encoded metadata, atomically."""
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION}
    meta.update({k: json.dumps(v) for k, v in metadata.items()})
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        try:
            save_file(tensors, str(tmp), metadata=meta)
        except SafetensorError as err:
            # safetensors reports a failed write (a full disk) as its own error: pass it on as the operating
            # system's, which atomic_path turns into a StorageError naming the cause.
            code = re.search(r"os error (\d+)", str(err))
            if code is None:
                raise
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1)))) from None
    return Path(path)


def load_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load tensors and decoded metadata; a missing, corrupt or foreign file is a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint '{path}' does not exist. Is this the right run directory?")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"'{path}' is not a readable safetensors checkpoint ({err}). The file is corrupt or truncated; "
            "retrain, or resume from a run directory whose checkpoint is intact."
        ) from None
    if raw.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is a safetensors file but not an aekit checkpoint.")
    meta = {}
    for key, text in raw.items():
        if key in ("format", "format_version"):
            continue
        try:
            meta[key] = json.loads(text)
        except (ValueError, RecursionError) as err:
            raise CheckpointError(
                f"'{path}' is damaged: its metadata '{key}' is not JSON ({err}). Retrain, or restore the file."
            ) from None
    check_finite(tensors, path)
    return tensors, meta


def check_finite(tensors: dict[str, torch.Tensor], source: str | Path) -> None:
    """Raise CheckpointError when a floating tensor holds NaN or an infinity (one pass over each)."""
    floats = [(k, t) for k, t in tensors.items() if t.is_floating_point()]
    if not floats:
        return
    finite = torch.stack([torch.isfinite(t).all() for _, t in floats])  # one host sync for the whole file
    if bool(finite.all()):
        return
    bad = [k for (k, _), ok in zip(floats, finite.tolist(), strict=True) if not ok]
    names = ", ".join(f"'{k}'" for k in bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    raise CheckpointError(
        f"'{source}' holds non-finite values in {names}; the run diverged or the file was edited: retrain, or "
        "resume from an intact checkpoint."
    )


def load_state_into(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str | Path) -> None:
    """Load ``state`` into ``module``; name the mismatch when they come from different models."""
    _check_fits(module, state, source)
    module.load_state_dict(state)


def _check_fits(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str | Path) -> None:
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(
            part
            for part in (
                f"missing {missing[:3]}" if missing else "",
                f"unexpected {unexpected[:3]}" if unexpected else "",
                f"shape mismatch for {wrong[:3]}" if wrong else "",
            )
            if part
        )
        raise CheckpointError(
            f"The weights in '{source}' do not fit this model ({detail}). They were saved by a model with "
            "another configuration; load them with the config.yaml of the run that made them."
        )


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimiser's state dict into tensors and JSON-able values."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, state in sd["state"].items():
        for name, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{idx}.{name}"] = value
            else:
                scalars.setdefault(str(idx), {})[name] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for idx, values in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


# --- checking a checkpoint before resuming from it ---------------------------------------------------

RNG_STATES = ("rng.torch", "rng.shuffle")  # CPU generators: the global one and the batch order's
ADAM_STATE = ("step", "exp_avg", "exp_avg_sq")  # what torch.optim.Adam keeps per parameter once it has stepped
ADAM_SETTINGS = ("lr", "betas", "eps", "weight_decay")  # those torch does not fill in when a group lacks them
SCALER_FIELDS = ("scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker")
NULLABLE_COUNTERS = ("best_valid",)  # None while no epoch has improved on infinity


def check_checkpoint(tensors: dict[str, torch.Tensor], meta: dict[str, Any], path: str | Path, trainer: Any) -> None:
    """Raise :class:`CheckpointError`, naming the file and the field, unless ``tensors`` and ``meta`` (as
    :func:`load_tensors` read them from ``path``) hold everything ``trainer.load_state_tensors`` reads,
    with the names, types and shapes it needs: the model's weights, the optimiser's state and settings
    (the inverse of :func:`optimizer_tensors`), the random number generators' states, the trainer's
    counters and, for float16 training, the loss scaler's state. ``trainer`` is the
    :class:`~aekit.training.trainer.Trainer` about to load it: its model, optimiser and counters say
    what is expected."""

    def damaged(what: str) -> CheckpointError:
        return CheckpointError(f"'{path}' is damaged: {what}. Resume from an intact checkpoint, or retrain.")

    _check_fits(trainer.model, {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}, path)
    cpu_state = torch.get_rng_state()
    for key in RNG_STATES:
        t = tensors.get(key)
        if t is None:
            raise damaged(f"it lacks the tensor '{key}' (a random number generator's state)")
        if t.dtype != torch.uint8 or t.shape != cpu_state.shape:
            raise damaged(f"the tensor '{key}' must be {cpu_state.numel()} bytes (uint8), got {_described(t)}")
    cuda = tensors.get("rng.cuda")
    if cuda is not None and (cuda.dtype != torch.uint8 or cuda.dim() != 1):
        raise damaged(f"the tensor 'rng.cuda' must be a vector of bytes (uint8), got {_described(cuda)}")
    _check_counters(meta.get("trainer"), trainer.state, damaged)
    _check_optimizer(tensors, meta.get("optimizer"), trainer.optimizer, damaged)
    scaler = meta.get("scaler")
    if trainer.scaler is not None and scaler:
        if not isinstance(scaler, dict):
            raise damaged(f"its metadata 'scaler' must be an object, got {_json(scaler)}")
        for key in SCALER_FIELDS:
            if not _finite_number(scaler.get(key)):
                raise damaged(f"its metadata 'scaler.{key}' must be a number, got {_json(scaler.get(key))}")


def _check_counters(saved: Any, state: Any, damaged: Any) -> None:
    """The trainer's counters: every field of its state (a dataclass), of its default's type."""
    if saved is None:
        raise damaged("its metadata lacks 'trainer' (the trainer's counters)")
    if not isinstance(saved, dict):
        raise damaged(f"its metadata 'trainer' (the trainer's counters) must be an object, got {_json(saved)}")
    fields = {f.name: type(getattr(state, f.name)) for f in dataclasses.fields(state)}
    unknown = sorted(set(saved) - set(fields))
    if unknown:
        raise damaged(f"its metadata 'trainer' holds the unknown field '{unknown[0]}'")
    for name, kind in fields.items():
        if name not in saved:
            raise damaged(f"its metadata 'trainer' lacks the field '{name}'")
        value = saved[name]
        if kind is bool:
            ok, what = isinstance(value, bool), "true or false"
        elif kind is int:
            ok, what = _int(value) and value >= 0, "an integer >= 0"
        else:
            ok = _finite_number(value) or (value is None and name in NULLABLE_COUNTERS)
            what = "a finite number" + (" or null" if name in NULLABLE_COUNTERS else "")
        if not ok:
            raise damaged(f"its metadata 'trainer.{name}' must be {what}, got {_json(value)}")


def _check_optimizer(
    tensors: dict[str, torch.Tensor], saved: Any, optimizer: torch.optim.Optimizer, damaged: Any
) -> None:
    """What :func:`restore_optimizer` reads: the groups' settings and parameter indices, and each
    parameter's Adam state, shaped like the parameter it belongs to."""
    if saved is None:
        raise damaged("its metadata lacks 'optimizer' (the optimiser's settings)")
    if not isinstance(saved, dict):
        raise damaged(f"its metadata 'optimizer' must be an object, got {_json(saved)}")
    live = optimizer.param_groups
    groups = saved.get("param_groups")
    if not isinstance(groups, list) or len(groups) != len(live) or not all(isinstance(g, dict) for g in groups):
        raise damaged(f"its metadata 'optimizer.param_groups' must be a list of {len(live)} object(s)")
    for i, (group, own) in enumerate(zip(groups, live, strict=True)):
        where = f"optimizer.param_groups[{i}]"
        params = group.get("params")
        if not isinstance(params, list) or len(params) != len(own["params"]) or not all(map(_int, params)):
            raise damaged(f"its metadata '{where}.params' must list {len(own['params'])} parameter indices")
        for key, value in own.items():
            if key == "params" or (key not in group and key not in ADAM_SETTINGS):
                continue  # a setting of a newer torch: torch fills in its default
            if key not in group or not _same_kind(group[key], value):
                raise damaged(f"its metadata '{where}.{key}' must be like {_json(value)}, got {_json(group.get(key))}")
    ids = list(chain.from_iterable(g["params"] for g in groups))
    if len(set(ids)) != len(ids):
        raise damaged("its metadata 'optimizer.param_groups' lists a parameter index twice")
    # torch maps the saved indices onto the live parameters in this order (Optimizer.load_state_dict).
    shapes = dict(zip(ids, (p.shape for g in live for p in g["params"]), strict=True))
    scalars = saved.get("scalars", {})
    if not isinstance(scalars, dict) or not all(isinstance(v, dict) for v in scalars.values()):
        raise damaged(f"its metadata 'optimizer.scalars' must be an object of objects, got {_json(scalars)}")
    state: dict[int, dict[str, Any]] = {}
    entries = [(k, v) for k, v in tensors.items() if k.startswith("optim.")]
    entries += [(f"optim.{i}.{n}", v) for i, d in scalars.items() for n, v in d.items()]
    for key, value in entries:
        parts = key.split(".", 2)
        if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) not in shapes:
            raise damaged(f"the optimiser state '{key}' belongs to no parameter of 'optimizer.param_groups'")
        state.setdefault(int(parts[1]), {})[parts[2]] = value
    amsgrad = any(g.get("amsgrad") for g in groups)
    needed = (*ADAM_STATE, "max_exp_avg_sq") if amsgrad else ADAM_STATE
    for idx, values in state.items():
        for name in needed:
            value = values.get(name)
            if name == "step":  # a 0-d float tensor (a plain number from older torch)
                ok = _finite_number(value) or (
                    torch.is_tensor(value) and value.dim() == 0 and value.is_floating_point()
                )
                what = "a number"
            else:
                ok = torch.is_tensor(value) and value.is_floating_point() and value.shape == shapes[idx]
                what = f"a floating tensor of shape {tuple(shapes[idx])}"
            if not ok:
                shown = "missing" if value is None else _described(value) if torch.is_tensor(value) else _json(value)
                raise damaged(f"the optimiser state 'optim.{idx}.{name}' must be {what}, got {shown}")


def _same_kind(saved: Any, own: Any) -> bool:
    """Whether a saved optimiser setting has the type of the live optimiser's (JSON made tuples lists)."""
    if own is None or isinstance(own, bool):
        return saved is None or isinstance(saved, bool)
    if isinstance(own, (int, float)):
        return _finite_number(saved)
    if isinstance(own, (tuple, list)):
        return isinstance(saved, list) and len(saved) == len(own) and all(map(_finite_number, saved))
    return type(saved) is type(own)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _json(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _described(t: torch.Tensor) -> str:
    return f"{str(t.dtype).removeprefix('torch.')} of shape {tuple(t.shape)}"
