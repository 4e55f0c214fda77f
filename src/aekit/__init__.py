"""aekit: the autoencoder family, trained, compared and inspected from one library and CLI.

Quick start::

    import aekit
    run = aekit.train(model="vae", data="digits", latent_dim=8, epochs=100, out="runs/vae")
    codes = run.encode(x)            # (N, K)
    images = run.sample(16)          # from the prior
    run = aekit.load_run("runs/vae")

The package is layered, each layer using only those below it: the parts (:mod:`aekit.parts`), the
model families (:mod:`aekit.models`), training (:mod:`aekit.training`), evaluation
(:mod:`aekit.evaluation`), figures and reports (:mod:`aekit.figures`), run directories
(:mod:`aekit.runs`), analyses of runs (:mod:`aekit.analyses`) and the command line
(:mod:`aekit.cli`); data sets (:mod:`aekit.data`) and configuration (:mod:`aekit.config`) sit beside
them. docs/architecture.md draws the picture; docs/extending.md shows how to add a latent kind, a
penalty, a likelihood or a family.
"""

__version__ = "0.2.0"

import importlib
from typing import TYPE_CHECKING, Any

from aekit.errors import (
    AekitError,
    CapabilityError,
    CheckpointError,
    ConfigError,
    DataError,
    MissingDependencyError,
    NotGenerativeError,
    RunInterrupted,
    RunLockedError,
    StorageError,
    TrainingDivergedError,
)

# The rest loads on first use (PEP 562): ``import aekit`` does not import torch, so the ``aekit``
# script's entry point (aekit.console) runs before the heavy imports and can answer Ctrl-C in them.
_LAZY = {
    "parts": "aekit.parts",
    "score_run": "aekit.analyses.anomaly",
    "compare_runs": "aekit.analyses.compare",
    "DataConfig": "aekit.config",
    "ModelConfig": "aekit.config",
    "RunConfig": "aekit.config",
    "TrainConfig": "aekit.config",
    "load_yaml": "aekit.config",
    "model_config": "aekit.config",
    "Dataset": "aekit.data",
    "load_dataset": "aekit.data",
    "evaluate": "aekit.evaluation.metrics",
    "score_samples": "aekit.evaluation.scores",
    "VQVAE": "aekit.models",
    "Autoencoder": "aekit.models",
    "AutoencoderConfig": "aekit.models",
    "Capabilities": "aekit.models",
    "LatentEBM": "aekit.models",
    "LatentEBMConfig": "aekit.models",
    "Model": "aekit.models",
    "VAEConfig": "aekit.models",
    "VQVAEConfig": "aekit.models",
    "build_model": "aekit.models",
    "register_family": "aekit.registry",
    "register_latent": "aekit.registry",
    "register_likelihood": "aekit.registry",
    "register_penalty": "aekit.registry",
    "Run": "aekit.runs",
    "load_run": "aekit.runs",
    "resume": "aekit.runs",
    "train": "aekit.runs",
    "export_onnx": "aekit.runs.export",
    "Callback": "aekit.training",
    "Trainer": "aekit.training",
}

if TYPE_CHECKING:
    from aekit import parts
    from aekit.analyses.anomaly import score_run
    from aekit.analyses.compare import compare_runs
    from aekit.config import DataConfig, ModelConfig, RunConfig, TrainConfig, load_yaml, model_config
    from aekit.data import Dataset, load_dataset
    from aekit.evaluation.metrics import evaluate
    from aekit.evaluation.scores import score_samples
    from aekit.models import (
        VQVAE,
        Autoencoder,
        AutoencoderConfig,
        Capabilities,
        LatentEBM,
        LatentEBMConfig,
        Model,
        VAEConfig,
        VQVAEConfig,
        build_model,
    )
    from aekit.registry import register_family, register_latent, register_likelihood, register_penalty
    from aekit.runs import Run, load_run, resume, train
    from aekit.runs.export import export_onnx
    from aekit.training import Callback, Trainer


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aekit' has no attribute '{name}'")
    value = (
        importlib.import_module(module) if module == f"aekit.{name}" else getattr(importlib.import_module(module), name)
    )
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "VQVAE",
    "AekitError",
    "Autoencoder",
    "AutoencoderConfig",
    "Callback",
    "Capabilities",
    "CapabilityError",
    "CheckpointError",
    "ConfigError",
    "DataConfig",
    "DataError",
    "Dataset",
    "LatentEBM",
    "LatentEBMConfig",
    "MissingDependencyError",
    "Model",
    "ModelConfig",
    "NotGenerativeError",
    "Run",
    "RunConfig",
    "RunInterrupted",
    "RunLockedError",
    "StorageError",
    "TrainConfig",
    "Trainer",
    "TrainingDivergedError",
    "VAEConfig",
    "VQVAEConfig",
    "__version__",
    "build_model",
    "compare_runs",
    "evaluate",
    "export_onnx",
    "load_dataset",
    "load_run",
    "load_yaml",
    "model_config",
    "parts",
    "register_family",
    "register_latent",
    "register_likelihood",
    "register_penalty",
    "resume",
    "score_run",
    "score_samples",
    "train",
]
