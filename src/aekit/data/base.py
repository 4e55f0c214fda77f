"""The in-memory data set every source produces."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Dataset:
    """Train / valid / test splits held as float32 tensors.

    Images are ``(N, C, H, W)`` in [0, 1]; tabular data is ``(N, D)``. Labels, when the source
    has them, are int64 ``(N,)`` tensors aligned with the samples, else ``None``.

    ``kind`` is ``"image"`` or ``"tabular"``; it decides which plots suit the data.
    ``normalization`` records what was applied to tabular data (``{"mean": [...], "std": [...]}``)
    so that new data can be transformed the same way; it is empty when nothing was applied.

    Synthetic sources with known generative factors (dSprites) also give int64 ``(N, n_factors)``
    factor indices per split in ``*_factors``, with ``factor_sizes`` (values per factor) and
    ``factor_names``; they are ``None`` elsewhere.

    ``feature_names`` name the columns of tabular data when the source has a header (CSV); else ``None``.
    """

    name: str
    kind: str
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    train_labels: torch.Tensor | None = None
    valid_labels: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None
    normalization: dict = field(default_factory=dict)
    train_factors: torch.Tensor | None = None
    valid_factors: torch.Tensor | None = None
    test_factors: torch.Tensor | None = None
    factor_sizes: tuple[int, ...] | None = None
    factor_names: tuple[str, ...] | None = None
    feature_names: tuple[str, ...] | None = None

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.train.shape[1:])

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(x, labels)`` of the split called ``train``, ``valid`` or ``test``."""
        if name not in ("train", "valid", "test"):
            from aekit.errors import ConfigError

            raise ConfigError(f"Unknown split '{name}'. Choose one of: train, valid, test.")
        return getattr(self, name), getattr(self, f"{name}_labels")

    @property
    def value_range(self) -> tuple[float, float]:
        return float(self.train.min()), float(self.train.max())
