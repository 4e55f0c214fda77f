"""Latent kinds: what the encoder's features become, and the distribution each kind owns.

A latent kind is one :class:`Latent` subclass, registered by name (``latent: gaussian``). It owns:

- the code: :meth:`Latent.forward` turns features into a :class:`Code` (what the decoder gets in
  training, and the point code that ``encode`` returns);
- its regulariser R: named per-sample terms (:meth:`Latent.regularizer`) and their weights;
- its prior p(z), where it has one: sampling, log-density, marginal quantiles;
- its posterior q(z | x), where codes are distributions: draws with their log-density, spread.
- what an exported encoder emits (:meth:`Latent.export_outputs`), computed without random ops.

Callers (the importance-weighted bound, sampling, traversals, bubbles, latent plots) use these
methods; none of them assumes a Gaussian. Capabilities a kind lacks raise
:class:`~aekit.errors.CapabilityError` (:class:`~aekit.errors.NotGenerativeError` for sampling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from aekit.errors import CapabilityError, ConfigError, NotGenerativeError
from aekit.parts import noise
from aekit.parts.jacobian import mean_jacobian_norm
from aekit.parts.nets import activation
from aekit.registry import register_latent

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@dataclass
class Code:
    """A latent's output for a batch.

    z : what the decoder receives in training: a posterior draw, the quantised map, or the code itself.
    mean : ``(N, K)`` the point code that ``encode`` returns (posterior mean, h, or the flat pre-quantisation map).
    params : further per-sample tensors the latent's terms and metrics need (``logvar``, ``indices``, ...).
    """

    z: torch.Tensor
    mean: torch.Tensor
    params: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of an exported graph (``aekit export``), per sample: the batch axis comes first
    and is not listed in ``shape``.

    role : what the values are. ``data`` marks samples in the data's units: the run's normalisation applies
        to them and to nothing else. The built-in parts also use ``code``, ``logvar``, ``indices``, ``labels``.
    range : inclusive bounds of the values, or None for any real value.
    """

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32
    role: str = "code"
    range: tuple[float, float] | None = None
    description: str = ""


class Latent(nn.Module):
    """The contract of a latent kind; subclasses override what they support.

    Class attributes declare what the kind is (read by families and models, never sniffed):
    ``feedforward`` (computed from features in one pass; False for codes found by inference),
    ``probabilistic`` (codes are distributions q(z|x) with a prior and a KL: a VAE's latent) and
    ``discrete`` (codes are integer indices into a codebook).
    """

    name: ClassVar[str] = ""  # the registered name, set by register_latent
    feedforward: ClassVar[bool] = True
    probabilistic: ClassVar[bool] = False
    discrete: ClassVar[bool] = False
    latent_dim: int  # width of the point code

    @classmethod
    def from_config(cls, config: Any, features: tuple[int, ...]) -> Latent:
        """Build from a family's options; ``features`` is the shape of one encoder output."""
        raise ConfigError(f"The latent kind '{cls.name}' cannot be built from a configuration.")

    def forward(self, features: torch.Tensor) -> Code:  # pragma: no cover - every kind overrides it
        raise NotImplementedError

    # --- the regulariser R --------------------------------------------------------------------

    def regularizer(self, code: Code) -> dict[str, torch.Tensor]:
        """Named per-sample terms ``(N,)`` of R (none by default)."""
        return {}

    def term_weights(self, step: int | None = None) -> dict[str, float]:
        """Weights of :meth:`regularizer`'s terms at training ``step`` (None: the full weights)."""
        return {}

    def decoder_input(self, z: torch.Tensor) -> torch.Tensor:
        """What the decoder gets for codes ``z`` ``(N, K)`` (e.g. snapped to a codebook)."""
        return z

    def point_input(self, code: Code) -> torch.Tensor:
        """What the decoder gets for the point code ``code.mean``; ``code.z`` itself when the two agree,
        so that evaluation decodes once."""
        return code.z if code.z is code.mean else self.decoder_input(code.mean)

    # --- the prior ------------------------------------------------------------------------------

    @property
    def has_prior(self) -> bool:
        """Whether codes can be drawn from a prior (then the model is generative)."""
        return False

    def sample_prior(
        self, n: int, *, generator: torch.Generator | None = None, device: Any = None, prior: str = "learned"
    ) -> torch.Tensor:
        """``n`` codes from the prior, ready for the decoder. ``prior="uniform"`` applies to discrete codes."""
        if prior != "learned":
            raise ConfigError(
                f"--prior {prior} applies to a latent with discrete codes (a VQ-VAE: independent uniform codes); "
                f"this model's latent is '{self.name}'. Leave --prior at its default."
            )
        raise NotGenerativeError(
            "This model cannot generate samples: a plain autoencoder learns no distribution over its codes, so "
            "there is nothing to sample from (most points of its code space decode to nonsense). Train a "
            "generative model instead, e.g. --model vae."
        )

    def prior_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """``log p(z)`` per code ``(...,)`` over the last dimension."""
        raise CapabilityError(f"The '{self.name}' latent has no prior density.")

    def prior_icdf(self, p: torch.Tensor) -> torch.Tensor:
        """Quantiles of each code dimension's prior marginal at probabilities ``p``."""
        raise CapabilityError(f"The '{self.name}' latent has no continuous prior with quantiles.")

    # --- the posterior --------------------------------------------------------------------------

    def posterior_draws(
        self, code: Code, k: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``k`` draws per sample from q(z | x): ``z`` ``(k, N, K)`` and ``log q(z | x)`` ``(k, N)``."""
        raise CapabilityError(
            f"The '{self.name}' latent gives point codes, not a distribution q(z|x); there is nothing to draw from."
        )

    def posterior_stddev(self, code: Code) -> torch.Tensor:
        """Standard deviation of q(z | x) per dimension ``(N, K)``."""
        raise CapabilityError(
            f"The '{self.name}' latent gives point codes (no posterior spread). Train a model with a "
            "probabilistic latent, e.g. --model vae."
        )

    # --- discrete codes -------------------------------------------------------------------------

    def indices(self, features: torch.Tensor) -> torch.Tensor:
        """Integer code maps of encoder features."""
        raise CapabilityError(f"The '{self.name}' latent has no discrete codes (that is a VQ-VAE's).")

    def embed(self, indices: torch.Tensor) -> torch.Tensor:
        """The decoder's input for integer code maps."""
        raise CapabilityError(f"The '{self.name}' latent has no discrete codes (that is a VQ-VAE's).")

    def attach_prior(self, prior: nn.Module | None) -> None:
        """Attach a prior fitted to the codes after training (discrete codes only)."""
        raise CapabilityError(f"The '{self.name}' latent takes no fitted prior; only discrete codes do (VQ-VAE).")

    def sigmoid_layer(self) -> nn.Linear | None:
        """The layer W when the code is sigmoid(W f + b) (a closed-form Jacobian applies); else None."""
        return None

    # --- export ---------------------------------------------------------------------------------

    def export_outputs(self) -> tuple[TensorSpec, ...]:
        """What an exported encoder emits per sample (``aekit export``): computed by :meth:`exported_code`."""
        raise CapabilityError(self._not_exportable())

    def exported_code(self, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The tensors of :meth:`export_outputs` for encoder features, in that order, by a pass with no
        random op: an exported graph holds none, and any noise is drawn outside it by the user."""
        raise CapabilityError(self._not_exportable())

    def _not_exportable(self) -> str:
        return (
            f"The '{self.name}' latent does not declare what an exported encoder emits, so its model cannot be "
            "exported. Implement Latent.export_outputs and Latent.exported_code (docs/extending.md)."
        )

    # --- evaluation -----------------------------------------------------------------------------

    def evaluation_stats(self, code: Code) -> dict[str, torch.Tensor]:
        """Per-sample statistics (first dimension N) that :meth:`test_metrics` reads, besides the code."""
        return {}

    def test_metrics(self, collected: dict[str, torch.Tensor], *, model: nn.Module, x: Any) -> dict[str, Any]:
        """This kind's test metrics from the whole split's ``collected`` terms and statistics."""
        return {}

    def warnings(self, metrics: dict[str, Any]) -> list[str]:
        """What the test ``metrics`` show to be wrong with this kind of code, each with its fix."""
        return []

    @property
    def score_names(self) -> tuple[str, ...]:
        """The per-sample anomaly scores this kind defines (:meth:`sample_scores`), best-founded first."""
        return ()

    def sample_scores(self, terms: dict[str, torch.Tensor], stats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The scores of :attr:`score_names` per sample ``(N,)``, from one evaluation pass's terms and stats."""
        return {}

    def diagnostics(self, model: nn.Module, x: Any) -> dict[str, float]:
        """Figures logged every epoch on the validation split (e.g. codebook use)."""
        return {}


# --- deterministic codes ---------------------------------------------------------------------------


@register_latent("deterministic")
class DeterministicLatent(Latent):
    """A linear map from features to the code h (optionally through an activation): a plain AE's code."""

    def __init__(self, in_features: int, latent_dim: int, act: str = "none"):
        super().__init__()
        self.latent_dim = latent_dim
        self.activation_name = act
        self.proj = nn.Linear(in_features, latent_dim)
        self.act = activation(act)

    @classmethod
    def from_config(cls, config: Any, features: tuple[int, ...]) -> Latent:
        return cls(_flat(features, cls.name), config.latent_dim, config.code_activation)

    def forward(self, features: torch.Tensor) -> Code:
        h = self.act(self.proj(features)).float()  # float32 codes even under mixed precision
        return Code(h, h)

    def sigmoid_layer(self) -> nn.Linear | None:
        return self.proj if self.activation_name == "sigmoid" else None

    def export_outputs(self) -> tuple[TensorSpec, ...]:
        bounds = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}.get(self.activation_name)
        return (TensorSpec("code", (self.latent_dim,), range=bounds, description="the code h"),)

    def exported_code(self, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self(features).mean,)  # deterministic: forward draws nothing

    def test_metrics(self, collected: dict[str, torch.Tensor], *, model: nn.Module, x: Any) -> dict[str, Any]:
        return {"jacobian_norm": mean_jacobian_norm(model, x), **activation_stats(collected["code"])}


# --- Gaussian codes (the VAE) ----------------------------------------------------------------------


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mean, exp(logvar)) || N(0, I) ), summed over latent dimensions: ``(N,)`` nats.

    Closed form: 0.5 * sum(var - log(var) - 1 + mean^2)   (seed 000, "The penalty term").
    """
    return gaussian_kl_per_dim(mean, logvar).sum(1)


def gaussian_kl_per_dim(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """The same KL before summing over dimensions: ``(N, K)``."""
    return 0.5 * (logvar.exp() - logvar - 1 + mean.square())


@register_latent("gaussian")
class GaussianLatent(Latent):
    """Mean and log-variance heads; the code is drawn by reparameterisation z = mean + std * eps.

    Prior N(0, I); R is ``beta * KL(q(z|x) || p(z))``. ``free_bits`` (nats per dimension, Kingma et
    al. 2016) stops the KL of a dimension from being pushed below it in training, against posterior
    collapse; ``kl_warmup`` steps raise the KL's weight linearly from 0 to beta.
    """

    probabilistic = True

    def __init__(self, in_features: int, latent_dim: int, *, beta: float = 1.0, free_bits: float = 0.0,
                 kl_warmup: int = 0):  # fmt: skip
        super().__init__()
        self.latent_dim = latent_dim
        self.beta, self.free_bits, self.kl_warmup = beta, free_bits, kl_warmup
        self.proj = nn.Linear(in_features, 2 * latent_dim)

    @classmethod
    def from_config(cls, config: Any, features: tuple[int, ...]) -> Latent:
        return cls(_flat(features, cls.name), config.latent_dim, beta=config.beta, free_bits=config.free_bits,
                   kl_warmup=config.kl_warmup)  # fmt: skip

    def forward(self, features: torch.Tensor) -> Code:
        # float32 statistics even under mixed precision: exp(logvar) and the KL need the range.
        mean, logvar = self.proj(features).float().chunk(2, dim=1)  # (N, K) each
        # Reparameterisation (Kingma & Welling 2014): the noise is an input, so gradients reach
        # mean and logvar through an ordinary product and sum.
        z = mean + torch.exp(0.5 * logvar) * noise.randn_like(mean)
        return Code(z, mean, {"logvar": logvar})

    def regularizer(self, code: Code) -> dict[str, torch.Tensor]:
        kl = gaussian_kl_per_dim(code.mean, code.params["logvar"])  # (N, K)
        if self.free_bits > 0 and self.training:
            # Same batch mean as sum_j max(free_bits, mean_n KL_nj), and no gradient through the
            # dimensions below the floor: their per-sample deviations cancel in the mean.
            batch_mean = kl.mean(0, keepdim=True)
            kl = torch.where(batch_mean < self.free_bits, kl - batch_mean + self.free_bits, kl)
        return {"kl": kl.sum(1)}

    def term_weights(self, step: int | None = None) -> dict[str, float]:
        if step is None or not self.kl_warmup:
            return {"kl": self.beta}
        return {"kl": self.beta * min(1.0, step / self.kl_warmup)}

    @property
    def has_prior(self) -> bool:
        return True

    def sample_prior(
        self, n: int, *, generator: torch.Generator | None = None, device: Any = None, prior: str = "learned"
    ) -> torch.Tensor:
        if prior != "learned":
            return super().sample_prior(n, prior=prior)
        return torch.randn(n, self.latent_dim, generator=generator, device=device)

    def prior_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return (-0.5 * z.square() - HALF_LOG_2PI).sum(-1)

    def prior_icdf(self, p: torch.Tensor) -> torch.Tensor:
        return torch.special.ndtri(p)

    def posterior_draws(
        self, code: Code, k: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mean, std = code.mean, torch.exp(0.5 * code.params["logvar"])  # (N, K)
        if generator is None:  # training (the IWAE): per-sample draws, the same in one process as in many
            eps = noise.randn((mean.shape[0], k, mean.shape[1]), device=mean.device).transpose(0, 1)
        else:
            eps = torch.randn((k, *mean.shape), generator=generator, device=mean.device)
        z = mean + std * eps  # (k, N, K)
        log_q = (-0.5 * eps.square() - torch.log(std) - HALF_LOG_2PI).sum(-1)  # (k, N)
        return z, log_q

    def posterior_stddev(self, code: Code) -> torch.Tensor:
        return torch.exp(0.5 * code.params["logvar"])

    def export_outputs(self) -> tuple[TensorSpec, ...]:
        k = (self.latent_dim,)
        return (
            TensorSpec("mean", k, description="mean of q(z|x): the point code"),
            TensorSpec("logvar", k, role="logvar", description="log-variance of q(z|x) per dimension: draw "
                       "z = mean + exp(logvar / 2) * eps, eps ~ N(0, I), outside the graph; the prior is N(0, I)"),
        )  # fmt: skip

    def exported_code(self, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mean, logvar = self.proj(features).float().chunk(2, dim=1)  # forward's heads, without its draw
        return mean, logvar

    def evaluation_stats(self, code: Code) -> dict[str, torch.Tensor]:
        return {"kl_per_dim": gaussian_kl_per_dim(code.mean, code.params["logvar"])}

    def test_metrics(self, collected: dict[str, torch.Tensor], *, model: nn.Module, x: Any) -> dict[str, Any]:
        return {"kl_per_dim": [round(float(v), 5) for v in collected["kl_per_dim"].double().mean(0)]}

    def warnings(self, metrics: dict[str, Any]) -> list[str]:
        # Posterior collapse (Bowman et al. 2016): q(z | x) = p(z) for every x, the decoder ignores z.
        if metrics.get("active_units") != 0:
            return []
        kl = metrics.get("kl")
        return [
            f"The posterior collapsed onto the prior: none of the {self.latent_dim} latent dimensions varies with "
            f"the data (active_units 0{f', KL {kl:.3g} nats' if kl is not None else ''}), so the decoder ignores "
            f"the code. The KL (weight beta {self.beta:g}) costs more than the code saves in reconstruction: lower "
            "--beta, or set --free-bits 0.5 (nats per dimension the KL is not pushed below)."
        ]


def activation_stats(codes: torch.Tensor, threshold: float = 0.01) -> dict[str, object]:
    """Mean activation per unit, and the fraction of near-zero code values (|h| < threshold)."""
    mean = codes.mean(0)
    return {
        "mean_activation": float(mean.mean()),
        "mean_activation_per_unit": [round(float(v), 6) for v in mean],
        "fraction_near_zero": float((codes.abs() < threshold).float().mean()),
    }


def _flat(features: tuple[int, ...], name: str) -> int:
    if len(features) != 1:
        raise ConfigError(
            f"The '{name}' latent takes flat encoder features (N, F); this encoder emits samples of shape "
            f"{tuple(features)}. End the encoder with nn.Flatten()."
        )
    return int(features[0])
