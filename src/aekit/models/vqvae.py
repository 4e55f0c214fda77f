"""The VQ-VAE family: a convolutional autoencoder with a vector-quantised code map (van den Oord et al. 2017, seed 003).

An :class:`~aekit.models.Autoencoder` whose latent is a :class:`~aekit.parts.VectorQuantizer`: the
encoder maps an image to a map ``z_e`` ``(N, D, h, w)``, every position snaps to its nearest of K
codebook vectors, and the decoder maps the quantised map back to the likelihood's parameters.
Training minimises ``recon + codebook + commitment_weight * commitment`` (no codebook term with EMA
updates).

The quantised map is a grid of integers, and the model learns nothing about which grids are
likely: decoding independent uniform codes (``sample(prior="uniform")``) gives noise. Sampling
needs an autoregressive prior over code maps (:mod:`aekit.parts.pixelcnn`), fitted after the
VQ-VAE (``aekit train-prior``) and attached with ``attach_prior``; only then is the model generative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn

from aekit.config import CUSTOM, LikelihoodOptions, ModelConfig, positive
from aekit.errors import ConfigError, check_choice
from aekit.models.autoencoder import Autoencoder, feature_shape
from aekit.parts.likelihoods import Likelihood, build_likelihood, likelihood_named
from aekit.parts.quantizer import CODEBOOK_INITS, VectorQuantizer
from aekit.parts.vqnets import VQDecoder, VQEncoder, stage_sizes
from aekit.registry import register_family


class VQVAE(Autoencoder):
    """The VQ-VAE of van den Oord et al. 2017, assembled from its parts.

    Parameters
    ----------
    sample_shape : ``(C, H, W)`` of one image; any size, odd ones included.
    num_codes : K, codebook size.
    code_dim : D, size of each codebook vector (channels of the code map).
    channels : width of the encoder and decoder.
    res_blocks : residual blocks in each of encoder and decoder.
    downsample : stride-2 stages; the code map is ``H / 2^downsample`` by ``W / 2^downsample`` (floored).
    commitment_weight : weight of the commitment term (the paper's beta).
    use_ema, ema_decay, restart_after : see :class:`~aekit.parts.VectorQuantizer`.
    codebook_init, codebook_warmup : how the codebook starts (the quantiser's ``init`` and
        ``warmup_steps``): ``kmeans`` (k-means of the first training batch's encoder outputs, refitted
        at steps 1, 2, 4, ... of a warm-up of ``codebook_warmup`` steps), ``sample`` (a sample of
        them) or ``uniform``.
    likelihood : ``bernoulli`` (data in [0, 1]), ``gaussian`` (unit variance) or a likelihood module.
    encoder, decoder : your own networks instead of the residual stacks: the encoder must emit
        ``code_dim`` channels, the decoder take them back to the image.
    config : the configuration the model was built from, when there is one.

    ``encode`` returns the continuous pre-quantisation map ``z_e`` flattened to ``(N, D*h*w)``, so
    scatter plots and traversals work, and ``latent_dim`` is that width; ``decode`` quantises
    whatever it gets, so ``decode(encode(x)) == reconstruct(x)``. The integer codes are
    ``encode_indices`` ``(N, h, w)`` and ``decode_indices``.
    """

    def __init__(
        self,
        sample_shape: Sequence[int],
        *,
        num_codes: int = 512,
        code_dim: int = 64,
        channels: int = 128,
        res_blocks: int = 2,
        downsample: int = 2,
        commitment_weight: float = 0.25,
        use_ema: bool = False,
        ema_decay: float = 0.99,
        restart_after: int = 20,
        codebook_init: str = "kmeans",
        codebook_warmup: int = 32,
        likelihood: str | Likelihood = "bernoulli",
        encoder: nn.Module | None = None,
        decoder: nn.Module | None = None,
        config: Any = None,
    ):
        shape = tuple(sample_shape)
        if len(shape) != 3:
            raise ConfigError(
                f"A VQ-VAE quantises convolutional code maps and needs image data (C, H, W); this data has sample "
                f"shape {shape}. Use another model for tabular data."
            )
        if channels < 1 or res_blocks < 0 or downsample < 0:
            raise ConfigError(
                f"channels must be >= 1, res_blocks and downsample >= 0; got channels={channels}, "
                f"res_blocks={res_blocks}, downsample={downsample}."
            )
        c, h, w = shape
        sizes = stage_sizes((h, w), downsample)
        if encoder is None:
            encoder = VQEncoder(c, channels, code_dim, res_blocks, downsample)
        features = feature_shape(encoder, shape)
        if len(features) != 3 or features[0] != code_dim:
            raise ConfigError(
                f"A VQ-VAE's encoder must emit code maps (N, code_dim={code_dim}, h, w); this one emits "
                f"{tuple(features)} per sample."
            )
        latent = VectorQuantizer(num_codes, code_dim, commitment_weight=commitment_weight, use_ema=use_ema,
                                 decay=ema_decay, restart_after=restart_after, init=codebook_init,
                                 warmup_steps=codebook_warmup, code_shape=features[1:])  # fmt: skip
        if decoder is None:
            decoder = VQDecoder(code_dim, channels, c, res_blocks, sizes)
        if isinstance(likelihood, str):
            likelihood = likelihood_named(likelihood, shape)
        super().__init__(encoder, latent, decoder, likelihood, sample_shape=shape, config=config)

    @property
    def progress_metrics(self) -> tuple[str, ...]:
        return ("perplexity",)  # codebook use: near 1 means collapse, K is every code used equally


@dataclass(frozen=True)
class VQVAEConfig(LikelihoodOptions, ModelConfig):
    """Options of the VQ-VAE (vq-vae)."""

    arch: str = "resnet"  # resnet: strided convs around residual blocks (custom: your own networks, from Python)
    channels: int = 128  # width of the encoder and decoder (the residual blocks have this many channels)
    res_blocks: int = 2  # residual blocks at the lowest resolution, in each of encoder and decoder
    downsample: int = 2  # stride-2 stages (28x28 -> 7x7 code maps with 2)
    num_codes: int = 512  # codebook size K
    code_dim: int = 64  # dimension D of each code vector
    commitment_weight: float = 0.25  # weight of the commitment term ||z_e - sg[e]||^2 (the paper's beta)
    use_ema: bool = False  # update the codebook by exponential moving averages, not by a loss
    ema_decay: float = 0.99  # decay of the codebook's moving averages (use_ema only)
    restart_after: int = 20  # steps after which an unused code is re-seeded from encoder outputs
    codebook_init: str = "kmeans"  # kmeans | sample (of early batches' encoder outputs) | uniform (random)
    codebook_warmup: int = 32  # steps in which the codebook is refitted at 1, 2, 4, ... and unused codes restarted

    family: ClassVar[str] = "vq-vae"
    presets: ClassVar[dict[str, dict[str, Any]]] = {"vq-vae": {}}
    renamed: ClassVar[dict[str, str]] = {"beta": "commitment_weight", "hidden": "channels"}

    def _check(self) -> None:
        check_choice("arch", self.arch, ("resnet", CUSTOM))
        check_choice("codebook_init", self.codebook_init, CODEBOOK_INITS)
        if self.num_codes < 2:
            raise ConfigError(f"num_codes (K) must be at least 2 for a codebook to choose from, got {self.num_codes}.")
        for name in ("code_dim", "channels", "restart_after"):
            positive(name, getattr(self, name))
        if self.res_blocks < 0 or self.downsample < 0:
            raise ConfigError(f"res_blocks and downsample must be >= 0, got {self.res_blocks} and {self.downsample}.")
        if self.codebook_warmup < 0:
            raise ConfigError(f"codebook_warmup must be >= 0 (0: fit the codebook once), got {self.codebook_warmup}.")
        if not 0 < self.ema_decay < 1:
            raise ConfigError(f"ema_decay must lie in (0, 1), got {self.ema_decay}.")
        if not self.commitment_weight >= 0:
            raise ConfigError(f"commitment_weight must be >= 0, got {self.commitment_weight}.")


def build(
    config: VQVAEConfig,
    sample_shape: tuple[int, ...],
    encoder: nn.Module | None = None,
    decoder: nn.Module | None = None,
) -> VQVAE:
    if config.arch == CUSTOM and (encoder is None or decoder is None):
        raise ConfigError("Pass both your encoder and your decoder (encoder=..., decoder=...), or neither.")
    return VQVAE(
        sample_shape,
        num_codes=config.num_codes,
        code_dim=config.code_dim,
        channels=config.channels,
        res_blocks=config.res_blocks,
        downsample=config.downsample,
        commitment_weight=config.commitment_weight,
        use_ema=config.use_ema,
        ema_decay=config.ema_decay,
        restart_after=config.restart_after,
        codebook_init=config.codebook_init,
        codebook_warmup=config.codebook_warmup,
        likelihood=build_likelihood(config, sample_shape),
        encoder=encoder,
        decoder=decoder,
        config=config,
    )


register_family(VQVAEConfig, build)
