"""The autoencoder: encoder network -> latent -> decoder network -> likelihood, plus optional parts.

In the energy view (seed 000) every model scores an observation y as
``F(y) = C(y, Dec(code)) + R(code)``: C is the likelihood's negative log-likelihood, R the latent's
regulariser (the KL of a Gaussian code, the codebook and commitment terms of a quantised one) plus
penalties on a deterministic code (sparsity, contraction), and a denoising model corrupts the input
the encoder sees. The AE, VAE and VQ-VAE families are all this one class with different parts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from aekit.config import CUSTOM
from aekit.errors import ConfigError, DataError
from aekit.models.base import (
    Capabilities,
    Evaluation,
    ExportSpec,
    GraphSpec,
    MethodGraph,
    Model,
    Posterior,
    device_of,
    dry_run,
    mean_spec,
)
from aekit.parts.corruption import Corruption
from aekit.parts.latents import Code, Latent, TensorSpec
from aekit.parts.likelihoods import build_likelihood
from aekit.parts.nets import build_decoder, build_encoder
from aekit.registry import LATENTS

ACTIVE_THRESHOLD = 0.01  # a unit is active when Cov_x(E_q[z_j]) exceeds it (Burda et al. 2016)


class Autoencoder(Model):
    """Encoder network -> latent -> decoder network -> likelihood.

    Build one from a configuration with :func:`aekit.build_model`, or from parts::

        Autoencoder(encoder, GaussianLatent(features, 16), decoder, Bernoulli(), sample_shape=(1, 28, 28))

    Parameters
    ----------
    encoder : maps a batch ``(N, *sample_shape)`` to features: ``(N, F)`` for a flat latent,
        ``(N, D, h, w)`` maps for a quantised one.
    latent : a :class:`~aekit.parts.Latent`: features -> :class:`~aekit.parts.Code`, and the
        latent's regulariser, prior and posterior.
    decoder : maps the latent's decoder input (codes ``(N, K)``, or quantised maps) to the
        likelihood's parameters, shaped like the data.
    likelihood : a :class:`~aekit.parts.Likelihood`.
    sample_shape : shape of one sample.
    corruption : applied to the encoder's input in training mode only (denoising).
    penalties : :class:`~aekit.parts.Penalty` modules on the code.
    num_classes : > 0 makes the model conditional on integer labels ``y``: their one-hot code is
        appended to the encoder's features (q(z | x, y)) and to the decoder's input (p(x | z, y)),
        so ``latent`` takes ``F + num_classes`` features and ``decoder`` ``K + num_classes`` inputs.
    config : the configuration the parts were built from, when there is one.

    The shapes are checked once, here, by passing two samples through: a mismatch between the
    networks and the data is a :class:`~aekit.errors.ConfigError` that names the culprit.
    """

    def __init__(
        self,
        encoder: nn.Module,
        latent: Latent,
        decoder: nn.Module,
        likelihood: nn.Module,
        *,
        sample_shape: Sequence[int],
        corruption: nn.Module | None = None,
        penalties: Sequence[nn.Module] = (),
        num_classes: int = 0,
        config: Any = None,
    ):
        super().__init__()
        self.encoder, self.latent, self.decoder, self.likelihood = encoder, latent, decoder, likelihood
        self.sample_shape = tuple(sample_shape)
        self.corruption = corruption
        self.penalties = nn.ModuleList(penalties)
        self.num_classes = num_classes
        self.config = config
        check_shapes(self)

    # --- what the model is ---------------------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        latent = self.latent
        return Capabilities(
            generative=latent.has_prior,
            likelihood_bound=latent.probabilistic,
            posterior=latent.probabilistic,
            discrete_codes=latent.discrete,
            needs_prior=latent.discrete,
            conditional=self.num_classes > 0,
        )

    @property
    def latent_dim(self) -> int:
        return int(self.latent.latent_dim)

    @property
    def term_weights(self) -> dict[str, float]:
        return self.objective_weights()

    def objective_weights(self, step: int | None = None) -> dict[str, float]:
        return {"recon": 1.0, **self.latent.term_weights(step), **{p.name: p.weight for p in self.penalties}}

    # --- training --------------------------------------------------------------------------------

    def loss_terms(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``recon`` against the clean ``x`` (even when the encoder saw a corrupted copy), the latent's
        regulariser terms, and one term per penalty; each ``(N,)`` per sample."""
        return self._pass(x, y)[0]

    def _pass(self, x: torch.Tensor, y: torch.Tensor | None, *, with_point: bool = False) -> tuple:
        """One encoder and decoder pass: the terms, the latent's code and the decoder's output at ``code.z``;
        ``with_point`` also the decoder's output at the point code, from the same decoder call (a VAE
        decodes its draw and its posterior mean as one batch of 2N rows)."""
        x_in = self.corruption(x) if self.corruption is not None else x
        code = self.latent(self._with_labels(self.encoder(x_in), y))
        point_input = self.latent.point_input(code) if with_point else code.z
        if point_input is code.z:
            params = point = self.decoder(self._with_labels(code.z, y))
        else:
            both = torch.cat([code.z, point_input])
            params, point = self.decoder(self._with_labels(both, None if y is None else y.repeat(2))).split(len(x))
        terms = {"recon": self.likelihood.nll(x, params), **self.latent.regularizer(code)}
        for penalty in self.penalties:
            terms[penalty.name] = penalty(self, x_in, code.mean)
        return (terms, code, params, point) if with_point else (terms, code, params)

    def epoch_diagnostics(self, x: Any) -> dict[str, float]:
        return self.latent.diagnostics(self, x)

    # --- encoding and decoding -------------------------------------------------------------------

    def _code(self, x: torch.Tensor, y: torch.Tensor | None) -> Code:
        return self.latent(self._with_labels(self.encoder(x), y))

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The point code of each sample: h for an AE, the posterior mean for a VAE, z_e for a VQ-VAE."""
        return self._code(x, y).mean

    def decoder_output(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(self._with_labels(self.latent.decoder_input(z), y))

    def _with_labels(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Append the one-hot labels of a conditional model; unconditional models ignore ``y``."""
        if not self.num_classes:
            return h
        if y is None:
            raise DataError(
                f"This model is conditioned on labels ({self.num_classes} classes) and needs them: pass "
                "labels y (Python) or use data with labels; to sample a class use --label L."
            )
        return torch.cat([h, F.one_hot(y.long(), self.num_classes).to(h.dtype)], 1)

    # --- evaluation ------------------------------------------------------------------------------

    def evaluation(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Evaluation:
        terms, code, _, point = self._pass(x, y, with_point=True)
        recon = self.likelihood.mean(point)
        stats = self.latent.evaluation_stats(code)
        if not self.latent.discrete:  # activation statistics and active units read the codes; maps would be large
            stats["code"] = code.mean
        return Evaluation(terms, code.mean, recon, stats)

    def test_metrics(self, collected: dict[str, torch.Tensor], x: Any, y: torch.Tensor | None = None) -> dict[str, Any]:
        """The latent's metrics; with a likelihood bound also ``neg_elbo`` (recon + KL, whatever beta the
        model was trained with), ``bits_per_dim_elbo`` and ``active_units``."""
        metrics: dict[str, Any] = {}
        if self.capabilities.likelihood_bound:
            recon, kl = (float(collected[k].double().mean()) for k in ("recon", "kl"))
            metrics["kl"] = kl
            metrics["neg_elbo"] = recon + kl
            metrics["bits_per_dim_elbo"] = metrics["neg_elbo"] / (math.prod(self.sample_shape) * math.log(2))
        metrics.update(self.latent.test_metrics(collected, model=self, x=x))
        if self.capabilities.posterior:
            # Burda et al. 2016: a unit is active when its posterior mean varies over the data.
            codes = collected["code"].double()
            # One sample has no variance (torch would warn and give NaN): no unit is seen to vary.
            variance = codes.var(0) if len(codes) > 1 else torch.zeros(codes.shape[1:], dtype=codes.dtype)
            metrics["active_units"] = int((variance > ACTIVE_THRESHOLD).sum())
        return metrics

    def warnings(self, metrics: dict[str, Any]) -> list[str]:
        return self.latent.warnings(metrics)

    @property
    def score_names(self) -> tuple[str, ...]:
        return ("neg_elbo",) * self.capabilities.likelihood_bound + self.latent.score_names

    def scores_of(self, out: Evaluation) -> dict[str, torch.Tensor]:
        """``neg_elbo`` (recon + KL, one posterior draw) with a likelihood bound; the latent's own scores."""
        return self._scores(out.terms, out.stats)

    def sample_scores(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        terms, code, _ = self._pass(x, y)  # one decoder pass: the scores need no reconstruction
        return self._scores(terms, self.latent.evaluation_stats(code))

    def _scores(self, terms: dict[str, torch.Tensor], stats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        scores = {}
        if self.capabilities.likelihood_bound:
            scores["neg_elbo"] = terms["recon"] + terms["kl"]
        return scores | self.latent.sample_scores(terms, stats)

    # --- capabilities ----------------------------------------------------------------------------

    def sample(
        self, n: int, *, generator: torch.Generator | None = None, y: torch.Tensor | None = None,
        prior: str = "learned",
    ) -> torch.Tensor:  # fmt: skip
        device = next(self.parameters()).device
        z = self.latent.sample_prior(n, generator=generator, device=device, prior=prior)
        labels = None if y is None else y.to(device)
        return self.likelihood.mean(self.decoder(self._with_labels(z, labels)))

    def prior_icdf(self, p: torch.Tensor) -> torch.Tensor:
        return self.latent.prior_icdf(p)

    def posterior(self, x: torch.Tensor, y: torch.Tensor | None = None) -> Posterior:
        code = self._code(x, y)
        return Posterior(code.mean, self.latent.posterior_stddev(code))

    def importance_weights(
        self, x: torch.Tensor, y: torch.Tensor | None = None
    ) -> Callable[[int, torch.Generator | None], torch.Tensor]:
        if not self.capabilities.likelihood_bound:
            return super().importance_weights(x, y)
        return self._weights_of(self._code(x, y), x, y)

    def _weights_of(
        self, code: Code, x: torch.Tensor, y: torch.Tensor | None
    ) -> Callable[[int, torch.Generator | None], torch.Tensor]:
        """``draw(k, generator)`` of :meth:`importance_weights` for a code already computed (from ``x``,
        or from a corrupted copy of it) and the data ``x`` the likelihood scores."""
        n = len(x)

        def draw(k: int, generator: torch.Generator | None = None) -> torch.Tensor:
            z, log_q = self.latent.posterior_draws(code, k, generator)  # (k, N, K), (k, N)
            y_rep = None if y is None else y.repeat(k)
            params = self.decoder_output(z.reshape(k * n, -1), y_rep)
            log_lik = -self.likelihood.nll_of_draws(x, params.view(k, n, *params.shape[1:]))
            return log_lik + self.latent.prior_log_prob(z) - log_q

        return draw

    def encode_indices(self, x: torch.Tensor) -> torch.Tensor:
        return self.latent.indices(self.encoder(x))

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        return self.likelihood.mean(self.decoder(self.latent.embed(indices)))

    @property
    def num_codes(self) -> int:
        if not self.latent.discrete:
            return super().num_codes
        return self.latent.num_codes

    @property
    def code_shape(self) -> tuple[int, ...]:
        if not self.latent.discrete:
            return super().code_shape
        return self.latent.code_shape

    def attach_prior(self, prior: nn.Module | None) -> None:
        self.latent.attach_prior(prior)

    # --- export ------------------------------------------------------------------------------------

    def export_spec(self) -> ExportSpec:
        """The encoder: data (and a conditional model's labels) to what the latent exports (h; the posterior's
        mean and log-variance; code indices). The decoder: codes (code indices) to the likelihood's mean."""
        x = TensorSpec("x", self.sample_shape, role="data", description="samples in the data's units")
        labels = ()
        if self.num_classes:
            labels = (TensorSpec("y", (), torch.int64, "labels", (0, self.num_classes - 1), "class labels"),)
        outputs = self.latent.export_outputs()
        names = ", ".join(o.name for o in outputs)
        encoder = GraphSpec(MethodGraph(self, self._exported_code), (x, *labels), outputs,
                            f"data -> {names}; no noise is drawn inside")  # fmt: skip
        if self.latent.discrete:
            decoder = GraphSpec(MethodGraph(self, self.decode_indices), outputs, (mean_spec(self.sample_shape),),
                                "code indices -> the likelihood's mean")  # fmt: skip
        else:
            code = TensorSpec("code", (self.latent_dim,), description="codes: an encoder's point code, or a code "
                              "drawn outside the graph")  # fmt: skip
            decoder = GraphSpec(MethodGraph(self, self.decode), (code, *labels), (mean_spec(self.sample_shape),),
                                "codes -> the likelihood's mean")  # fmt: skip
        return ExportSpec({"encoder": encoder, "decoder": decoder})

    def _exported_code(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        return self.latent.exported_code(self._with_labels(self.encoder(x), y))


def check_shapes(model: Autoencoder) -> None:
    """Pass two samples through the networks once and name the first one whose output does not fit."""
    shape = model.sample_shape
    x = torch.zeros(2, *shape, device=device_of(model))
    y = torch.zeros(2, dtype=torch.long, device=x.device) if model.num_classes else None
    features = dry_run(model.encoder, x, "encoder", "samples")
    code = dry_run(model.latent, model._with_labels(features, y), f"'{model.latent.name}' latent", "features")
    out = dry_run(model.decoder, model._with_labels(code.z, y), "decoder", "codes")
    if tuple(out.shape) != (2, *shape):
        raise ConfigError(
            f"The decoder maps codes to {tuple(out.shape[1:])} per sample, but the data's samples are {shape}: "
            f"make it return a tensor shaped (N, {', '.join(map(str, shape))})."
        )


def build_flat_autoencoder(
    config: Any,
    sample_shape: tuple[int, ...],
    encoder: nn.Module | None,
    decoder: nn.Module | None,
    penalties: Sequence[nn.Module] = (),
    model_class: type[Autoencoder] | None = None,
) -> Autoencoder:
    """An autoencoder with a flat code: the built-in MLP / conv networks or the given ones, the
    configured latent kind, likelihood, input corruption and conditioning (AE and VAE families);
    ``model_class``: a subclass with its own objective (e.g. the IWAE's), else :class:`Autoencoder`."""
    if config.arch == CUSTOM and (encoder is None or decoder is None):
        raise ConfigError("Pass both your encoder and your decoder (encoder=..., decoder=...), or neither.")
    if config.condition_on == "labels" and config.num_classes < 2:
        raise ConfigError("set num_classes (from the data) before building a conditional model")
    classes = config.num_classes if config.condition_on == "labels" else 0
    if encoder is None:
        encoder = build_encoder(config.arch, sample_shape, config.hidden, config.activation)
    features = feature_shape(encoder, sample_shape)
    latent = LATENTS.get(config.latent).from_config(config, (features[0] + classes, *features[1:]))
    if decoder is None:
        decoder = build_decoder(
            config.arch, latent.latent_dim + classes, sample_shape, config.hidden, config.activation
        )
    noise, level = config.corruption()
    return (model_class or Autoencoder)(
        encoder,
        latent,
        decoder,
        build_likelihood(config, sample_shape),
        sample_shape=sample_shape,
        corruption=Corruption(noise, level) if noise != "none" else None,
        penalties=penalties,
        num_classes=classes,
        config=config,
    )


def feature_shape(encoder: nn.Module, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of one sample's encoder output, found by passing two zero samples through it."""
    out = dry_run(encoder, torch.zeros(2, *sample_shape, device=device_of(encoder)), "encoder", "samples")
    if not isinstance(out, torch.Tensor) or out.dim() < 2 or len(out) != 2:
        raise ConfigError(
            f"The encoder must return one tensor (N, ...) with a row per sample; for 2 samples it returned "
            f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}."
        )
    return tuple(out.shape[1:])
