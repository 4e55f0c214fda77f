"""Latent heads: what the encoder emits and how a code is drawn from it."""

from __future__ import annotations

import torch
from torch import nn

from aekit.nets import activation


class DeterministicLatent(nn.Module):
    """A linear map from features to the code h (optionally through an activation)."""

    stochastic = False

    def __init__(self, in_features: int, latent_dim: int, act: str = "none"):
        super().__init__()
        self.latent_dim = latent_dim
        self.proj = nn.Linear(in_features, latent_dim)
        self.act = activation(act)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return ``(code, stats)``; a deterministic code has no posterior statistics."""
        h = self.act(self.proj(features)).float()  # float32 codes even under mixed precision
        return h, {"mean": h}


class GaussianLatent(nn.Module):
    """Mean and log-variance heads; the code is drawn by reparameterisation z = mean + std * eps."""

    stochastic = True

    def __init__(self, in_features: int, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim
        self.proj = nn.Linear(in_features, 2 * latent_dim)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # float32 statistics even under mixed precision: exp(logvar) and the KL need the range.
        mean, logvar = self.proj(features).float().chunk(2, dim=1)  # (N, K) each
        # Reparameterisation (Kingma & Welling 2014): the noise is an input, so gradients reach
        # mean and logvar through an ordinary product and sum.
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        return z, {"mean": mean, "logvar": logvar}
