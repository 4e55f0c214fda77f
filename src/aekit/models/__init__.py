"""The model families and the one function that builds any of them.

Every model implements :class:`Model` (the contract: loss terms and their weights, encode / decode /
reconstruct, sampling, test metrics, diagnostics, and the :class:`Capabilities` it declares). A
family is a configuration class and a builder registered in :data:`aekit.registry.FAMILIES`; the
built-in ones register themselves when this package is imported:

======================  ===========================================  ==================================
family                  presets (``--model``)                        model
======================  ===========================================  ==================================
``ae``                  ae, linear-ae, sparse-ae, dae, cae           :class:`Autoencoder`, deterministic code
``vae``                 vae, beta-vae                                :class:`Autoencoder`, Gaussian code
``vq-vae``              vq-vae                                       :class:`VQVAE` (an Autoencoder), quantised code
``latent-ebm``          latent-ebm                                   :class:`LatentEBM`, optimised code
======================  ===========================================  ==================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from torch import nn

from aekit.config import CUSTOM, ModelConfig, RunConfig, from_dict, model_config
from aekit.errors import ConfigError
from aekit.models.ae import AutoencoderConfig
from aekit.models.autoencoder import Autoencoder
from aekit.models.base import Capabilities, Evaluation, ExportSpec, GraphSpec, MethodGraph, Model, Posterior
from aekit.models.latent_ebm import LatentEBM, LatentEBMConfig
from aekit.models.vae import VAEConfig
from aekit.models.vqvae import VQVAE, VQVAEConfig
from aekit.registry import family_of

__all__ = [
    "VQVAE",
    "Autoencoder",
    "AutoencoderConfig",
    "Capabilities",
    "Evaluation",
    "ExportSpec",
    "GraphSpec",
    "LatentEBM",
    "LatentEBMConfig",
    "MethodGraph",
    "Model",
    "Posterior",
    "VAEConfig",
    "VQVAEConfig",
    "build_model",
]


def build_model(
    config: ModelConfig | str,
    sample_shape: Sequence[int],
    *,
    encoder: nn.Module | None = None,
    decoder: nn.Module | None = None,
    **options: Any,
) -> Model:
    """Build the model a configuration (or a ``--model`` preset name with ``options``) describes.

    ``encoder`` and ``decoder`` are your own networks in place of the family's built-in ones: the
    configuration's ``arch`` becomes ``custom``, and the shapes are checked here, once. The
    likelihood must be resolved (``bernoulli``, ``gaussian``, ...), not ``auto``.

    Examples
    --------
    >>> model = build_model("vae", (1, 8, 8), latent_dim=2, likelihood="bernoulli")
    >>> model.capabilities.generative
    True
    """
    if isinstance(config, str):
        config = model_config(config, **options)
    elif options:
        config = from_dict(options, base=RunConfig(model=config)).model
    config = config.validate()
    custom = encoder is not None or decoder is not None
    has_arch = "arch" in config.field_names()
    if custom and has_arch and config.arch != CUSTOM:
        config = dataclasses.replace(config, arch=CUSTOM)
    if not custom and has_arch and config.arch == CUSTOM:
        raise ConfigError(
            f"This '{config.model}' model was configured with your own networks (arch 'custom'): pass them again, "
            "build_model(config, shape, encoder=..., decoder=...)."
        )
    if "likelihood" in config.field_names() and config.likelihood == "auto":
        raise ConfigError(
            "likelihood 'auto' is resolved from the training data; to build a model directly, name it: "
            "likelihood='bernoulli' for data in [0, 1], 'gaussian' for real values."
        )
    return family_of(config.model).build(config, tuple(sample_shape), encoder, decoder)
