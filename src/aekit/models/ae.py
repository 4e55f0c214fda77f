"""The deterministic autoencoder family: plain (shallow or deep, under- or over-complete), linear,
sparse, denoising and contractive autoencoders (seeds 000 and 002).

One :class:`~aekit.models.Autoencoder` with a deterministic code h; the presets differ only in
their defaults: no hidden layer and no activation (``linear-ae``: with a Gaussian likelihood it
learns the PCA subspace), a sparsity penalty on h (``sparse-ae``), a corrupted input (``dae``) or
the contractive penalty ||dh/dx||_F^2 (``cae``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import nn

from aekit.config import (
    ACTIVATIONS,
    ConditionOptions,
    CorruptionOptions,
    LikelihoodOptions,
    ModelConfig,
    NetworkOptions,
    non_negative,
    positive,
)
from aekit.errors import ConfigError, check_choice
from aekit.models.autoencoder import Autoencoder, build_flat_autoencoder
from aekit.parts.penalties import BUILT_IN, build_penalties
from aekit.registry import LATENTS, PENALTIES, register_family

SPARSITY = ("none", "l1", "l2", "kl")
JACOBIAN = ("auto", "closed_form", "exact", "projection")


@dataclass(frozen=True)
class AutoencoderConfig(ConditionOptions, CorruptionOptions, LikelihoodOptions, NetworkOptions, ModelConfig):
    """Options of the deterministic autoencoders (ae, linear-ae, sparse-ae, dae, cae)."""

    latent: str = "deterministic"  # the latent kind: deterministic (a code h), or a registered one with point codes
    code_activation: str | None = None  # of the code, e.g. sigmoid for a shallow AE [none]
    sparsity: str | None = None  # penalty on the code: l1 | l2 | kl (towards sparsity_target) [none]
    sparsity_weight: float | None = None  # lambda of the sparsity penalty [1e-3]
    sparsity_target: float = 0.05  # rho: target mean activation of each unit (kl only)
    contractive_weight: float | None = None  # lambda of the contractive penalty ||dh/dx||_F^2 [0]
    jacobian: str = "auto"  # how ||dh/dx||_F^2 is computed: closed_form | exact | projection
    jacobian_projections: int = 1  # random projections per sample (projection only)
    # further registered penalties on the code: NAME=WEIGHT pairs, or in YAML {name: {weight: w, ...}}
    penalties: dict[str, Any] = field(default_factory=dict)

    family: ClassVar[str] = "ae"
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "ae": {},
        "linear-ae": {"hidden": (), "activation": "none", "code_activation": "none", "likelihood": "gaussian"},
        "sparse-ae": {"sparsity": "l1", "sparsity_weight": 1e-3},
        "dae": {"noise": "mask", "noise_level": 0.5},
        "cae": {"contractive_weight": 0.1},
    }
    # linear-ae: the last principal directions of digits are 7% apart in variance (the 20th and 21st
    # eigenvalues), so minibatch noise must be annealed away for the code to settle on the PCA
    # subspace (Baldi & Hornik 1989): small batches, a high rate decayed to zero.
    train_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "linear-ae": {"epochs": 200, "lr": 1e-2, "batch_size": 32, "lr_schedule": "cosine"},
    }
    fallbacks: ClassVar[dict[str, Any]] = {
        "code_activation": "none",
        "sparsity": "none",
        "sparsity_weight": 1e-3,
        "contractive_weight": 0.0,
    }

    def _check(self) -> None:
        latent = LATENTS.get(self.latent)
        if latent.probabilistic or latent.discrete or not latent.feedforward:
            raise ConfigError(
                f"The '{self.model}' model has a deterministic code; the '{self.latent}' latent is not one. Use "
                "--model vae for a gaussian latent, vq-vae for a quantised one, latent-ebm for an optimised one."
            )
        check_choice("code_activation", self.code_activation, ACTIVATIONS)
        check_choice("sparsity", self.sparsity, SPARSITY)
        check_choice("jacobian", self.jacobian, JACOBIAN)
        for name in ("sparsity_weight", "contractive_weight"):
            non_negative(name, getattr(self, name))
        if not 0 < self.sparsity_target < 1:
            raise ConfigError(f"sparsity_target (rho) must lie in (0, 1), got {self.sparsity_target}.")
        if self.sparsity == "kl" and self.code_activation != "sigmoid":
            raise ConfigError(
                "sparsity 'kl' compares each unit's mean activation with a target rate, so the code must "
                f"lie in (0, 1); got code_activation '{self.code_activation}'. Add --code-activation sigmoid, "
                "or use --sparsity l1."
            )
        positive("jacobian_projections", self.jacobian_projections)
        if self.condition_on != "none" and self.contractive_weight > 0:
            raise ConfigError("The contractive penalty is not available for a conditional model; drop one of them.")
        for name, entry in self.penalties.items():
            if name in BUILT_IN:
                raise ConfigError(f"The '{name}' penalty has its own options (--{name}...); leave it out of penalties.")
            PENALTIES.get(name)
            weight = entry.get("weight", 1.0) if isinstance(entry, dict) else entry
            if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
                raise ConfigError(f"The weight of penalty '{name}' must be a finite number >= 0, got {weight!r}.")

    def differentiates_gradients(self) -> bool:
        return self.contractive_weight > 0


def build(
    config: AutoencoderConfig,
    sample_shape: tuple[int, ...],
    encoder: nn.Module | None = None,
    decoder: nn.Module | None = None,
) -> Autoencoder:
    return build_flat_autoencoder(config, sample_shape, encoder, decoder, build_penalties(config))


register_family(AutoencoderConfig, build)
