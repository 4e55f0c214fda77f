"""The variational family: the VAE and beta-VAE (Kingma & Welling 2014; Higgins et al. 2017; seeds 001-004).

One :class:`~aekit.models.Autoencoder` with a probabilistic latent (Gaussian by default): the
encoder emits the posterior q(z | x), a code is drawn by reparameterisation, and R is
``beta * KL(q(z|x) || p(z))``. The unweighted bound (beta = 1) is the ELBO; the importance-weighted
bound tightens it (Burda et al. 2016). Options against posterior collapse: free bits, KL warm-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn

from aekit.config import (
    ConditionOptions,
    CorruptionOptions,
    LikelihoodOptions,
    ModelConfig,
    NetworkOptions,
    non_negative,
)
from aekit.errors import ConfigError
from aekit.models.autoencoder import Autoencoder, build_flat_autoencoder
from aekit.registry import LATENTS, register_family


@dataclass(frozen=True)
class VAEConfig(ConditionOptions, CorruptionOptions, LikelihoodOptions, NetworkOptions, ModelConfig):
    """Options of the variational autoencoders (vae, beta-vae)."""

    latent: str = "gaussian"  # the latent kind: gaussian (mean and log-variance), or a registered probabilistic one
    beta: float | None = None  # weight of the KL term (beta-VAE when > 1) [1]
    free_bits: float = 0.0  # nats per latent dimension below which the KL is not pushed down (Kingma 2016)
    kl_warmup: int = 0  # training steps over which the KL weight rises linearly from 0 to beta

    family: ClassVar[str] = "vae"
    presets: ClassVar[dict[str, dict[str, Any]]] = {"vae": {}, "beta-vae": {"beta": 4.0}}
    fallbacks: ClassVar[dict[str, Any]] = {"beta": 1.0}

    def _check(self) -> None:
        latent = LATENTS.get(self.latent)
        if not latent.probabilistic:
            raise ConfigError(
                f"The '{self.model}' model needs a probabilistic latent (codes drawn from q(z|x)); the "
                f"'{self.latent}' latent is not one. Use --latent gaussian, or --model ae for point codes."
            )
        non_negative("beta", self.beta)
        non_negative("free_bits", self.free_bits)
        if self.kl_warmup < 0:
            raise ConfigError(f"kl_warmup must be >= 0 steps, got {self.kl_warmup}.")


def build(
    config: VAEConfig, sample_shape: tuple[int, ...], encoder: nn.Module | None = None, decoder: nn.Module | None = None
) -> Autoencoder:
    return build_flat_autoencoder(config, sample_shape, encoder, decoder)


register_family(VAEConfig, build)
