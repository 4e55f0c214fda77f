"""The variational family: the VAE and beta-VAE (Kingma & Welling 2014; Higgins et al. 2017; seeds 001-004).

One :class:`~aekit.models.Autoencoder` with a probabilistic latent (Gaussian by default): the
encoder emits the posterior q(z | x), a code is drawn by reparameterisation, and R is
``beta * KL(q(z|x) || p(z))``. The unweighted bound (beta = 1) is the ELBO; the importance-weighted
bound tightens it (Burda et al. 2016). Options against posterior collapse: free bits, KL warm-up.

``iwae`` (Burda et al. 2016) trains on that bound itself: with ``iw_k`` = k > 1 draws per input the
objective is -log (1/k) sum_i p(x, z_i) / q(z_i | x), tighter than the ELBO, which it equals at k = 1;
the model and its evaluation are the VAE's.

A model conditioned on labels (p(x | z, y), q(z | x, y): Sohn et al. 2015) gets free bits by default:
its decoder is handed the label, which explains most of what an image looks like, so without a floor
the KL pushes q(z | x, y) onto the prior before the decoder learns to read z, and every sample of a
label comes out alike.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
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
from aekit.models.base import Evaluation
from aekit.registry import LATENTS, register_family


@dataclass(frozen=True)
class VAEConfig(ConditionOptions, CorruptionOptions, LikelihoodOptions, NetworkOptions, ModelConfig):
    """Options of the variational autoencoders (vae, beta-vae, iwae)."""

    latent: str = "gaussian"  # the latent kind: gaussian (mean and log-variance), or a registered probabilistic one
    beta: float | None = None  # weight of the KL term (beta-VAE when > 1) [1]
    # nats per latent dimension below which the KL is not pushed down (Kingma 2016); unset: 0.2 for a model
    # conditioned on labels (its samples of one label would otherwise all look alike), 0 otherwise
    free_bits: float | None = None
    kl_warmup: int = 0  # training steps over which the KL weight rises linearly from 0 to beta
    # draws per input in the training objective: k > 1 trains on the k-sample importance-weighted bound
    # (Burda et al. 2016), 1 on the ELBO [1]
    iw_k: int | None = None

    family: ClassVar[str] = "vae"
    presets: ClassVar[dict[str, dict[str, Any]]] = {"vae": {}, "beta-vae": {"beta": 4.0}, "iwae": {"iw_k": 5}}
    fallbacks: ClassVar[dict[str, Any]] = {"beta": 1.0, "iw_k": 1}

    def _check(self) -> None:
        latent = LATENTS.get(self.latent)
        if not latent.probabilistic:
            raise ConfigError(
                f"The '{self.model}' model needs a probabilistic latent (codes drawn from q(z|x)); the "
                f"'{self.latent}' latent is not one. Use --latent gaussian, or --model ae for point codes."
            )
        non_negative("beta", self.beta)
        if self.free_bits is not None:
            non_negative("free_bits", self.free_bits)
        if self.kl_warmup < 0:
            raise ConfigError(f"kl_warmup must be >= 0 steps, got {self.kl_warmup}.")
        if isinstance(self.iw_k, bool) or not isinstance(self.iw_k, int) or self.iw_k < 1:
            raise ConfigError(f"iw_k must be an integer >= 1 (draws per input), got {self.iw_k!r}.")
        if self.iw_k > 1:
            changed = [f"beta {self.beta}"] if self.beta != 1 else []
            changed += [f"kl_warmup {self.kl_warmup}"] if self.kl_warmup else []
            changed += [f"free_bits {self.free_bits}"] if self.free_bits else []
            if changed:
                raise ConfigError(
                    f"The importance-weighted bound (iw_k {self.iw_k}) has no KL term to weigh, warm up or floor, "
                    f"but {', '.join(changed)} is set. Drop it, or train on the ELBO with --iw-k 1."
                )


# Free bits of a conditional model (Kingma et al. 2016), nats per latent dimension: on the digits at the
# defaults (20 dimensions) the KL rises from ~0.6 to ~3.6 nats and samples of one label spread about half
# as far apart as the label's images (a third without), at ~1.3 nats of test bound. A KL warm-up alone
# (Bowman et al. 2016) only delays the collapse: the KL falls back once its weight reaches beta.
CONDITIONAL_FREE_BITS = 0.2


def default_free_bits(config: VAEConfig) -> float:
    """``free_bits`` when it is not given: :data:`CONDITIONAL_FREE_BITS` for a model conditioned on labels
    and trained on the ELBO, else 0."""
    return CONDITIONAL_FREE_BITS if config.condition_on == "labels" and config.iw_k == 1 else 0.0


class ImportanceWeightedAutoencoder(Autoencoder):
    """The VAE trained on the k-sample importance-weighted bound (Burda et al. 2016), k = ``config.iw_k``:
    one term, ``neg_iw_bound`` = -log (1/k) sum_i w_i with w_i = p(x, z_i) / q(z_i | x), per sample. Its
    gradient weighs each draw by its normalised weight, so the encoder may spread q wider than the ELBO
    allows. Everything else (evaluation, sampling, export) is the VAE's."""

    def objective_weights(self, step: int | None = None) -> dict[str, float]:
        return {"neg_iw_bound": 1.0}

    def loss_terms(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        k = self.config.iw_k
        x_in = self.corruption(x) if self.corruption is not None else x  # a denoising IWAE scores the clean x
        log_w = self._weights_of(self._code(x_in, y), x, y)(k, None)  # (k, N)
        return {"neg_iw_bound": math.log(k) - torch.logsumexp(log_w, dim=0)}

    def evaluation(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Evaluation:
        # The VAE's pass (its recon and KL give the ELBO metrics, its scores), with the training bound as
        # the loss term; the ELBO's terms move to the statistics that test_metrics and the scores read.
        out = super().evaluation(x, y)
        merged = {**out.terms, **out.stats}
        return Evaluation(self.loss_terms(x, y), out.code, out.recon, merged)

    def scores_of(self, out: Evaluation) -> dict[str, torch.Tensor]:
        return self._scores(out.stats, out.stats)


def build(
    config: VAEConfig, sample_shape: tuple[int, ...], encoder: nn.Module | None = None, decoder: nn.Module | None = None
) -> Autoencoder:
    if config.free_bits is None:  # resolved here, once the condition is final; the run records the number
        config = dataclasses.replace(config, free_bits=default_free_bits(config))
    kind = ImportanceWeightedAutoencoder if config.iw_k > 1 else Autoencoder
    return build_flat_autoencoder(config, sample_shape, encoder, decoder, model_class=kind)


register_family(VAEConfig, build)
