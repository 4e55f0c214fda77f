"""aekit: the autoencoder family, trained, compared and inspected from one library and CLI.

Quick start::

    import aekit
    run = aekit.train(model="vae", data="digits", latent_dim=8, epochs=100, out="runs/vae")
    codes = run.encode(x)            # (N, K)
    images = run.sample(16)          # from the prior
    run = aekit.load_run("runs/vae")
"""

from aekit.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from aekit.data import Dataset, load_dataset
from aekit.errors import AekitError, CheckpointError, ConfigError, DataError, NotGenerativeError
from aekit.evaluate import evaluate
from aekit.models import Autoencoder, build_model
from aekit.run import Run, load_run, resume, train
from aekit.trainer import Trainer

__version__ = "0.1.0"

__all__ = [
    "AekitError",
    "Autoencoder",
    "CheckpointError",
    "ConfigError",
    "DataConfig",
    "DataError",
    "Dataset",
    "ModelConfig",
    "NotGenerativeError",
    "Run",
    "RunConfig",
    "TrainConfig",
    "Trainer",
    "build_model",
    "evaluate",
    "load_dataset",
    "load_run",
    "resume",
    "train",
]
