"""Loss terms as pure functions. Each returns one value per sample, shape ``(N,)``, in nats."""

from __future__ import annotations

import torch


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mean, exp(logvar)) || N(0, I) ), summed over latent dimensions: ``(N,)``.

    Closed form: 0.5 * sum(var - log(var) - 1 + mean^2)   (seed 000, "The penalty term").
    """
    return 0.5 * (logvar.exp() - logvar - 1 + mean.square()).sum(1)


def gaussian_kl_per_dim(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """The same KL before summing over dimensions: ``(N, K)``."""
    return 0.5 * (logvar.exp() - logvar - 1 + mean.square())
