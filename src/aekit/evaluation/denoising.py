"""Denoising: corrupt clean data, restore it with the model, and score both against the clean data."""

from __future__ import annotations

import math

import torch

from aekit.models.base import Model, device_of
from aekit.parts.corruption import corrupt


def denoise(
    model: Model, x: torch.Tensor, kind: str, level: float, *, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """Corrupt ``x`` (seeded), restore it with the model; return corrupted, restored and their MSEs.

    ``mse_corrupted`` and ``mse_restored`` are mean squared errors per element against the clean
    ``x``; their ratio is how much the model removed.
    """
    model.eval()
    device = device_of(model)
    generator = torch.Generator().manual_seed(seed)
    noisy = corrupt(x.cpu(), kind, level, generator=generator)
    with torch.no_grad():
        restored = torch.cat(
            [model.reconstruct(noisy[i : i + 1024].to(device)).cpu() for i in range(0, len(noisy), 1024)]
        )
    mse_c = float((noisy - x.cpu()).square().mean())
    mse_r = float((restored - x.cpu()).square().mean())
    return noisy, restored, {"mse_corrupted": mse_c, "mse_restored": mse_r,
                             "improvement": mse_c / mse_r if mse_r > 0 else math.inf}  # fmt: skip
