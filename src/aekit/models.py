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
import torch.nn.functional as F
from torch import nn

from aekit.config import ModelConfig
from aekit.corruption import Corruption
from aekit.errors import NotGenerativeError
from aekit.latents import DeterministicLatent, GaussianLatent
from aekit.likelihoods import build_likelihood
from aekit.losses import gaussian_kl_per_dim
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
    num_classes : > 0 makes the model conditional on integer labels ``y``: their one-hot code is
        appended to the encoder's features (q(z | x, y)) and to the decoder's input (p(x | z, y)),
        so ``latent`` takes ``F + num_classes`` features and ``decoder`` ``K + num_classes`` inputs.
    free_bits : nats per latent dimension; in training, a dimension whose batch-mean KL is below
        it is not pushed further down (Kingma et al. 2016), against posterior collapse.
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
        num_classes: int = 0,
        free_bits: float = 0.0,
        config: ModelConfig | None = None,
    ):
        super().__init__()
        self.encoder, self.latent, self.decoder, self.likelihood = encoder, latent, decoder, likelihood
        self.sample_shape = tuple(sample_shape)
        self.beta = beta
        self.corruption = corruption
        self.penalties = nn.ModuleList(penalties)
        self.num_classes = num_classes
        self.free_bits = free_bits
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

    def loss_terms(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Named loss terms, each ``(N,)`` in nats (or penalty units) per sample.

        ``recon`` compares the decoder's output with the clean ``x`` even when the encoder saw a
        corrupted copy; ``kl`` appears for a stochastic latent (with free bits applied in training
        mode), one term per penalty otherwise. ``y`` holds the labels of a conditional model.
        """
        return self.loss_parts(x, y)[0]

    def loss_parts(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
        """:meth:`loss_terms`, with the posterior statistics and the decoder's output at the drawn
        code: evaluation reads all three from one encoder pass."""
        x_in = self.corruption(x) if self.corruption is not None else x
        z, stats = self.latent(self._with_labels(self.encoder(x_in), y))
        params = self.decoder(self._with_labels(z, y))
        terms = {"recon": self.likelihood.nll(x, params)}
        if self.is_generative:
            kl = gaussian_kl_per_dim(stats["mean"], stats["logvar"])  # (N, K)
            if self.free_bits > 0 and self.training:
                # Same batch mean as sum_j max(free_bits, mean_n KL_nj), and no gradient through the
                # dimensions below the floor: their per-sample deviations cancel in the mean.
                batch_mean = kl.mean(0, keepdim=True)
                kl = torch.where(batch_mean < self.free_bits, kl - batch_mean + self.free_bits, kl)
            terms["kl"] = kl.sum(1)
        for penalty in self.penalties:
            terms[penalty.name] = penalty(self, x_in, stats["mean"])
        return terms, stats, params

    def posterior(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The encoder's output statistics: ``mean`` (the code), and ``logvar`` for a VAE."""
        _, stats = self.latent(self._with_labels(self.encoder(x), y))
        return stats

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The code of each sample: h for an AE, the posterior mean for a VAE. ``(N, K)``."""
        return self.posterior(x, y)["mean"]

    def decoder_output(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The likelihood's parameters (logits or means) for codes ``z``."""
        return self.decoder(self._with_labels(z, y))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The likelihood's mean for codes ``z`` ``(N, K)``: probabilities or real values."""
        return self.likelihood.mean(self.decoder_output(z, y))

    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Decode the code of ``x`` (the posterior mean for a VAE)."""
        return self.decode(self.encode(x, y), y)

    def _with_labels(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Append the one-hot labels of a conditional model; unconditional models ignore ``y``."""
        if not self.num_classes:
            return h
        if y is None:
            from aekit.errors import DataError

            raise DataError(
                f"This model is conditioned on labels ({self.num_classes} classes) and needs them: pass "
                "labels y (Python) or use data with labels; to sample a class use --label L."
            )
        return torch.cat([h, F.one_hot(y.long(), self.num_classes).to(h.dtype)], 1)

    def sample(self, n: int, generator: torch.Generator | None = None, y: torch.Tensor | None = None) -> torch.Tensor:
        """Draw ``n`` codes from the prior N(0, I) and decode them to the likelihood's mean.

        A conditional model decodes with labels ``y`` ``(n,)``, drawing p(x | z, y)."""
        if not self.is_generative:
            name = self.config.model if self.config else "deterministic"
            raise NotGenerativeError(
                f"A '{name}' model cannot generate samples: a plain autoencoder learns no distribution "
                "over its codes, so there is nothing to sample from (most points of its code space decode "
                "to nonsense). Train a generative model instead, e.g. --model vae."
            )
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return self.decode(z, None if y is None else y.to(device))


def build_model(config: ModelConfig, sample_shape: Sequence[int]) -> nn.Module:
    """Build the model a configuration describes (its likelihood must be resolved, not ``auto``)."""
    from aekit.penalties import build_penalties

    config = config.validate()
    if config.likelihood == "auto":
        raise ValueError("resolve the likelihood before building the model (see resolve_likelihood)")
    shape = tuple(sample_shape)
    if config.latent == "vq":
        return _build_vqvae(config, shape)
    if config.latent == "optimized":
        from aekit.latent_ebm import LatentEBM

        return LatentEBM(
            shape,
            config.latent_dim,
            use_encoder=config.use_encoder,
            hidden=config.hidden,
            activation=config.activation,
            arch=config.arch,
            likelihood=build_likelihood(config.likelihood, shape, config.obs_std, config.learn_obs_std),
            infer_steps=config.infer_steps,
            step_size=config.step_size,
            reg=config.reg,
            reg_weight=config.reg_weight,
            d_weight=config.d_weight,
            init=None if config.init == "auto" else config.init,
            config=config,
        )
    if config.condition_on == "labels" and config.num_classes < 2:
        raise ValueError("set num_classes (from the data) before building a conditional model")
    classes = config.num_classes if config.condition_on == "labels" else 0
    encoder = build_encoder(config.arch, shape, config.hidden, config.activation)
    features = encoder.out_features + classes
    if config.latent == "gaussian":
        latent: nn.Module = GaussianLatent(features, config.latent_dim)
    else:
        latent = DeterministicLatent(features, config.latent_dim, config.code_activation)
    decoder = build_decoder(config.arch, config.latent_dim + classes, shape, config.hidden, config.activation)
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
        num_classes=classes,
        free_bits=config.free_bits,
        config=config,
    )


def _build_vqvae(config: ModelConfig, shape: tuple[int, ...]) -> nn.Module:
    from aekit.errors import ConfigError
    from aekit.vqvae import VQVAE

    if len(shape) != 3:
        raise ConfigError(
            f"A VQ-VAE quantises convolutional code maps and needs image data (C, H, W); this data has sample "
            f"shape {shape}."
        )
    return VQVAE(
        shape,
        num_codes=config.num_codes,
        code_dim=config.code_dim,
        channels=config.hidden[-1] if config.hidden else 128,
        res_blocks=config.res_blocks,
        downsample=config.downsample,
        beta=config.beta,
        use_ema=config.use_ema,
        ema_decay=config.ema_decay,
        restart_after=config.restart_after,
        likelihood=build_likelihood(config.likelihood, shape, config.obs_std, config.learn_obs_std),
        config=config,
    )
