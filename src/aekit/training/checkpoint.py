"""Weights and training state in safetensors files (never pickle), written atomically.

``model.safetensors`` holds the best weights and, in its metadata, which model they belong to.
``checkpoint.safetensors`` holds everything needed to resume: the latest weights, the optimiser
state, the random number generator states and the trainer's counters, in one file so that they
can never disagree.
"""

from __future__ import annotations

import json
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
        save_file(tensors, str(tmp), metadata=meta)
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
    meta = {k: json.loads(v) for k, v in raw.items() if k not in ("format", "format_version")}
    return tensors, meta


def load_state_into(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str | Path) -> None:
    """Load ``state`` into ``module``; name the mismatch when they come from different models."""
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
    module.load_state_dict(state)


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
