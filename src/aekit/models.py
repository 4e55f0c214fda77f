"""One autoencoder class composed of parts; the presets (``ae``, ``vae``) are configurations of it.

In the energy view (seed 000) every model scores an observation y as
``F(y) = C(y, Dec(code)) + R(code)``: here C is the likelihood's negative log-likelihood and R the
KL of a Gaussian code (zero for a deterministic one). :meth:`Autoencoder.loss_terms` returns the
named per-sample terms and :attr:`Autoencoder.term_weights` their weights; the trainer sums them.
"""

from __future__ import annotations

import torch
from torch import nn

from aekit.config import ModelConfig
from aekit.errors import NotGenerativeError
from aekit.latents import DeterministicLatent, GaussianLatent
from aekit.likelihoods import build_likelihood
from aekit.losses import gaussian_kl
from aekit.nets import build_decoder, build_encoder


class Autoencoder(nn.Module):
    """Encoder network -> latent head -> decoder network -> likelihood.

    Parameters
    ----------
    config:
        The model configuration; ``config.likelihood`` must already be resolved (not ``auto``).
    sample_shape:
        Shape of one sample: ``(C, H, W)`` for images, ``(D,)`` for tabular data.
    """

    def __init__(self, config: ModelConfig, sample_shape: tuple[int, ...]):
        super().__init__()
        if config.likelihood == "auto":
            raise ValueError("resolve the likelihood before building the model (see resolve_likelihood)")
        self.config = config
        self.sample_shape = tuple(sample_shape)
        self.encoder = build_encoder(config.arch, self.sample_shape, config.hidden, config.activation)
        features = self.encoder.out_features
        if config.model == "vae":
            self.latent: nn.Module = GaussianLatent(features, config.latent_dim)
        else:
            self.latent = DeterministicLatent(features, config.latent_dim)
        self.decoder = build_decoder(
            config.arch, config.latent_dim, self.sample_shape, config.hidden, config.activation
        )
        self.likelihood = build_likelihood(
            config.likelihood, self.sample_shape, config.obs_std, config.learn_obs_std
        )

    # --- what the model computes ---------------------------------------------------------------

    @property
    def is_generative(self) -> bool:
        """Whether codes can be drawn from a prior (a VAE can; a plain AE has none)."""
        return bool(self.latent.stochastic)

    @property
    def term_weights(self) -> dict[str, float]:
        """Weight of each loss term in the training objective."""
        weights = {"recon": 1.0}
        if self.latent.stochastic:
            weights["kl"] = self.config.beta
        return weights

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named loss terms, each ``(N,)`` in nats per sample: ``recon`` (and ``kl`` for a VAE)."""
        z, stats = self.latent(self.encoder(x))
        terms = {"recon": self.likelihood.nll(x, self.decoder(z))}
        if self.latent.stochastic:
            terms["kl"] = gaussian_kl(stats["mean"], stats["logvar"])
        return terms

    def posterior(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The encoder's output statistics: ``mean`` (the code), and ``logvar`` for a VAE."""
        _, stats = self.latent(self.encoder(x))
        return stats

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code of each sample: h for an AE, the posterior mean for a VAE. ``(N, K)``."""
        return self.posterior(x)["mean"]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The likelihood's mean for codes ``z`` ``(N, K)``: probabilities or real values."""
        return self.likelihood.mean(self.decoder(z))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the code of ``x`` (the posterior mean for a VAE)."""
        return self.decode(self.encode(x))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` codes from the prior N(0, I) and decode them to the likelihood's mean."""
        if not self.is_generative:
            raise NotGenerativeError(
                f"A '{self.config.model}' model cannot generate samples: a plain autoencoder learns no "
                "distribution over its codes, so there is nothing to sample from (most points of its code "
                "space decode to nonsense). Train a generative model instead, e.g. --model vae."
            )
        device = next(self.parameters()).device
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=device)
        return self.decode(z)


def build_model(config: ModelConfig, sample_shape: tuple[int, ...]) -> Autoencoder:
    """Build the model a (validated, likelihood-resolved) config describes."""
    return Autoencoder(config.validate(), sample_shape)
