"""TensorBoard logging (``aekit train --tensorboard [DIR]``; needs ``pip install 'aekit[tensorboard]'``).

Every scalar sits on one axis, the optimiser step, so the step-interval curves and the epoch records
line up: ``train_step/*`` (the objective and each loss term, per sample, over the last ``log_every``
steps), then at each epoch's last step every number of its metrics.jsonl record under the same name
(``train/*``, ``valid/*``, ``lr``, ``samples_per_s``, ``epoch_seconds``, ``epoch``). Image data also
gets two grids per epoch: ``images/reconstructions`` (a fixed batch of validation images, each row of
originals above its reconstructions) and, for a generative model, ``images/samples`` (prior samples
from the same seed every epoch, so the grids show how the model changes).

A resumed run writes a new event file in the same directory, from the checkpoint's step: events that
the interrupted run logged after it are hidden (TensorBoard's purge step), so each step shows once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from aekit.models.base import Model, device_of, seeded
from aekit.runs.tracking.base import RunTracker, require

EVENT_FILES = "events.out.tfevents.*"
MIN_SIDE = 32  # smaller images (digits are 8x8) are drawn at an integer multiple of their size
N_IMAGES = 16  # images per grid
COLUMNS = 8


class TensorBoardLogger(RunTracker):
    """Log training to a TensorBoard directory ``log_dir`` (see the module's docstring for the tags).

    ``images`` is a fixed batch ``(N, C, H, W)`` of data in the model's units (normalised as in
    training; ``labels`` for a conditional model) whose reconstructions are drawn after each epoch;
    ``denormalize`` maps the model's units back to the data's, in [0, 1] for images. ``history`` holds
    the epoch records of a resumed run: written when ``log_dir`` has no events yet (``--tensorboard``
    added on resume), so its curves start at epoch 1.
    """

    def __init__(
        self,
        log_dir: str | Path,
        *,
        images: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        denormalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
        history: Sequence[dict[str, Any]] = (),
    ):
        self.log_dir = Path(log_dir)
        if images is not None and (images.dim() != 4 or images.shape[1] not in (1, 3)):
            images = None  # TensorBoard draws grey or RGB images only
        n = 0 if images is None else min(N_IMAGES, len(images))
        self.columns = min(COLUMNS, n)
        n = n - n % self.columns if n else 0  # whole rows
        self.images = None if not n else images[:n].float()
        self.labels = None if labels is None or not n else labels[:n]
        self.denormalize = denormalize or (lambda x: x)
        self.history = history
        self.writer: Any = None

    def on_train_begin(self, trainer: Any) -> None:
        require("tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        fresh = not any(self.log_dir.glob(EVENT_FILES))
        # Hide what an interrupted run logged after its checkpoint (and, in a reused directory, what an
        # earlier run logged): TensorBoard drops earlier events at or after the purge step.
        self.writer = SummaryWriter(str(self.log_dir), purge_step=trainer.state.step + 1)
        if fresh:
            for record in self.history:
                if record["epoch"] <= trainer.state.epoch:
                    self._scalars(record)

    def on_step(self, trainer: Any, step: int, logs: dict[str, float]) -> None:
        for name, value in logs.items():
            self.writer.add_scalar(f"train_step/{name}", value, step)

    def on_epoch_end(self, trainer: Any, record: dict[str, Any], improved: bool) -> None:
        self._scalars(record)
        if self.images is not None:
            self._image_grids(trainer.model, record["step"])
        self.writer.flush()

    def on_train_end(self, trainer: Any, state: Any) -> None:
        if self.writer is not None:
            self.writer.close()

    def _scalars(self, record: dict[str, Any]) -> None:
        for name, value in record.items():
            if name != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(name, value, record["step"])

    @torch.no_grad()
    def _image_grids(self, model: Model, step: int) -> None:
        """Reconstructions of the fixed batch and prior samples, drawn without touching training's
        random state (a seeded stream of their own) and in evaluation mode (no input corruption)."""
        device = device_of(model)
        caps = model.capabilities
        was_training = model.training
        model.eval()
        try:
            with seeded(0, device):
                x = self.images.to(device)
                y = self.labels.to(device) if caps.conditional and self.labels is not None else None
                recon = model.reconstruct(x, y)
                rows = torch.stack([self._shown(x), self._shown(recon)], dim=1)  # (rows, 2, columns, C, H, W)
                self.writer.add_image("images/reconstructions", image_grid(rows.flatten(0, 2), self.columns), step)
                if caps.generative:
                    n = len(x)
                    labels = torch.arange(n, device=device) % model.num_classes if caps.conditional else None
                    samples = self._shown(model.sample(n, y=labels)).flatten(0, 1)
                    self.writer.add_image("images/samples", image_grid(samples, self.columns), step)
        finally:
            model.train(was_training)

    def _shown(self, x: torch.Tensor) -> torch.Tensor:
        """Images in the data's units, clamped to [0, 1], as rows ``(rows, columns, C, H, W)``."""
        x = self.denormalize(x.float().cpu()).clamp(0, 1)
        return x.view(-1, self.columns, *x.shape[1:])


def image_grid(images: torch.Tensor, columns: int, pad: int = 2) -> torch.Tensor:
    """``(N, C, H, W)`` images in [0, 1] as one ``(C, H', W')`` grid, ``columns`` wide, on a grey ground;
    small images enlarged by an integer factor (nearest neighbour) so that they are visible."""
    n, c, h, w = images.shape
    scale = max(1, MIN_SIDE // max(h, w))
    images = images.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    h, w = h * scale, w * scale
    rows = math.ceil(n / columns)
    grid = torch.full((c, rows * (h + pad) + pad, columns * (w + pad) + pad), 0.5)
    for i, image in enumerate(images):
        r, k = divmod(i, columns)
        grid[:, pad + r * (h + pad) : (r + 1) * (h + pad), pad + k * (w + pad) : (k + 1) * (w + pad)] = image
    return grid


__all__ = ["TensorBoardLogger", "image_grid"]
