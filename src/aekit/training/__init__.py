"""Training: the one loop (:mod:`~aekit.training.trainer`), the callbacks that watch it
(:mod:`~aekit.training.callbacks`) and its checkpoints (:mod:`~aekit.training.checkpoint`)."""

from aekit.training.callbacks import Callback
from aekit.training.trainer import Trainer, TrainState

__all__ = ["Callback", "TrainState", "Trainer"]
