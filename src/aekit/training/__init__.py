"""Training: the one loop (:mod:`~aekit.training.trainer`) and its checkpoints (:mod:`~aekit.training.checkpoint`)."""

from aekit.training.trainer import Trainer, TrainState

__all__ = ["TrainState", "Trainer"]
