"""One autoencoder class composed of parts; the presets are configurations of it.

In the energy view (seed 000) every model scores an observation y as
``F(y) = C(y, Dec(code)) + R(code)``: C is the likelihood's negative log-likelihood, R the KL of a
Gaussian code and/or penalties on a deterministic one (sparsity, contraction), and a denoising
model corrupts the input the encoder sees. :meth:`Autoencoder.loss_terms` returns the named
per-sample terms and :attr:`Autoencoder.term_weights` their weights; the trainer sums them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from aekit.config import ModelConfig
from aekit.corruption import Corruption
from aekit.errors import NotGenerativeError
from aekit.latents import DeterministicLatent, GaussianLatent
from aekit.likelihoods import build_likelihood
from aekit.losses import gaussian_kl
from aekit.nets import build_decoder, build_encoder


class Autoencoder(nn.Module):
    """Encoder network -> latent head -> decoder network -> likelihood, plus optional parts.

    Build one from a configuration with :func:`build_model`, or from your own modules::

        Autoencoder(encoder, latent, decoder, likelihood, sample_shape=(1, 28, 28))

    Parameters
    ----------
    encoder : maps a batch ``(N, *sample_shape)`` to features ``(N, F)``.
    latent : maps features to ``(code, stats)``; ``stats["mean"]`` is the code used for encoding,
        and a stochastic latent (``latent.stochastic``) also gives ``stats["logvar"]``.
    decoder : maps codes ``(N, K)`` to the likelihood's parameters, shaped like the data.
    likelihood : has ``nll(x, params) -> (N,)``, ``mean(params)`` and ``sample(params)``.
    sample_shape : shape of one sample.
    beta : weight of the KL term of a stochastic latent.
    corruption : applied to the encoder's input in training mode only (denoising).
    penalties : modules with ``name``, ``weight`` and ``forward(model, x_in, code) -> (N,)``.
    config : the :class:`ModelConfig` the parts were built from, when there is one.
    """

    def __init__(
        self,
        encoder: nn.Module,
        latent: nn.Module,
        decoder: nn.Module,
        likelihood: nn.Module,
        *,
        sample_shape: Sequence[int],
        beta: float = 1.0,
        corruption: nn.Module | None = None,
        penalties: Sequence[nn.Module] = (),
        config: ModelConfig | None = None,
    ):
        super().__init__()
        self.encoder, self.latent, self.decoder, self.likelihood = encoder, latent, decoder, likelihood
        self.sample_shape = tuple(sample_shape)
        self.beta = beta
        self.corruption = corruption
        self.penalties = nn.ModuleList(penalties)
        self.config = config

    # --- what the model computes ---------------------------------------------------------------

    @property
    def is_generative(self) -> bool:
        """Whether codes can be drawn from a prior (a VAE can; a plain AE has none)."""
        return bool(getattr(self.latent, "stochastic", False))

    @property
    def latent_dim(self) -> int:
        return int(self.latent.latent_dim)

    @property
    def term_weights(self) -> dict[str, float]:
        """Weight of each loss term in the training objective."""
        weights = {"recon": 1.0}
        if self.is_generative:
            weights["kl"] = self.beta
        weights.update({p.name: p.weight for p in self.penalties})
        return weights

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named loss terms, each ``(N,)`` in nats (or penalty units) per sample.

        ``recon`` compares the decoder's output with the clean ``x`` even when the encoder saw a
        corrupted copy; ``kl`` appears for a stochastic latent, one term per penalty otherwise.
        """
        x_in = self.corruption(x) if self.corruption is not None else x
        z, stats = self.latent(self.encoder(x_in))
        terms = {"recon": self.likelihood.nll(x, self.decoder(z))}
        if self.is_generative:
            terms["kl"] = gaussian_kl(stats["mean"], stats["logvar"])
        for penalty in self.penalties:
            terms[penalty.name] = penalty(self, x_in, stats["mean"])
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
            name = self.config.model if self.config else "deterministic"
            raise NotGenerativeError(
                f"A '{name}' model cannot generate samples: a plain autoencoder learns no distribution "
                "over its codes, so there is nothing to sample from (most points of its code space decode "
                "to nonsense). Train a generative model instead, e.g. --model vae."
            )
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return self.decode(z)


def build_model(config: ModelConfig, sample_shape: Sequence[int]) -> Autoencoder:
    """Build the model a configuration describes (its likelihood must be resolved, not ``auto``)."""
    from aekit.penalties import build_penalties

    config = config.validate()
    if config.likelihood == "auto":
        raise ValueError("resolve the likelihood before building the model (see resolve_likelihood)")
    shape = tuple(sample_shape)
    encoder = build_encoder(config.arch, shape, config.hidden, config.activation)
    if config.latent == "gaussian":
        latent: nn.Module = GaussianLatent(encoder.out_features, config.latent_dim)
    else:
        latent = DeterministicLatent(encoder.out_features, config.latent_dim, config.code_activation)
    decoder = build_decoder(config.arch, config.latent_dim, shape, config.hidden, config.activation)
    likelihood = build_likelihood(config.likelihood, shape, config.obs_std, config.learn_obs_std)
    corruption = Corruption(config.noise, config.noise_level) if config.noise != "none" else None
    return Autoencoder(
        encoder,
        latent,
        decoder,
        likelihood,
        sample_shape=shape,
        beta=config.beta,
        corruption=corruption,
        penalties=build_penalties(config, encoder, latent),
        config=config,
    )
