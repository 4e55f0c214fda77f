"""VQ-VAE: a convolutional autoencoder with a vector-quantised code map (van den Oord et al. 2017, seed 003).

The encoder maps an image ``(N, C, H, W)`` to a map ``z_e`` ``(N, D, h, w)`` with ``h = H / 2^downsample``
(rounded down at each stage); :class:`~aekit.quantizer.VectorQuantizer` snaps every position to its
nearest of K codebook vectors; the decoder maps the quantised map back to the likelihood's
parameters per pixel. Training minimises ``recon + codebook + beta * commitment`` (the codebook term
is absent with EMA codebook updates).

The quantised map is a grid of integers, and the model learns nothing about which grids are
likely: decoding independent uniform codes (:meth:`VQVAE.sample_uniform`) gives noise. Sampling
needs an autoregressive prior over code maps (:mod:`aekit.pixelcnn`), fitted after the VQ-VAE and
attached with :meth:`VQVAE.attach_prior`; only then is the model generative.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from aekit.errors import ConfigError, NotGenerativeError, check_choice
from aekit.likelihoods import build_likelihood
from aekit.quantizer import VectorQuantizer, code_counts, usage_stats

# --- networks ------------------------------------------------------------------------------------


class ResBlock(nn.Module):
    """``x + Conv1x1(ReLU(Conv3x3(ReLU(x))))``, the residual block of van den Oord et al. 2017, section 4.1."""

    def __init__(self, channels: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, channels, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


def stage_sizes(size: tuple[int, int], downsample: int) -> list[tuple[int, int]]:
    """Spatial sizes after each stride-2 conv with kernel 4 and padding 1: floor(s / 2).

    An odd size loses no pixel: the last output position's 4-wide window still reaches the last
    row. The decoder restores it with ``output_padding`` (as :class:`aekit.nets.ConvDecoder` does).
    """
    sizes = [size]
    for _ in range(downsample):
        h, w = sizes[-1]
        sizes.append((h // 2, w // 2))
    if min(sizes[-1]) < 1:
        raise ConfigError(
            f"downsample={downsample} halves images of size {size[0]}x{size[1]} below one pixel. "
            f"Use a downsample count of at most {min(size).bit_length() - 1}."
        )
    return sizes


def _widths(channels: int, downsample: int) -> list[int]:
    """Channels after each stride-2 stage: half width until the last (the paper's two-stage layout)."""
    return [max(channels // 2, 1)] * (downsample - 1) + [channels] if downsample else []


class VQEncoder(nn.Module):
    """Stride-2 4x4 convs, a 3x3 conv, residual blocks, then a 1x1 conv to ``code_dim`` channels."""

    def __init__(self, in_channels: int, channels: int, code_dim: int, res_blocks: int, downsample: int):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for width in _widths(channels, downsample):
            layers += [nn.Conv2d(c, width, 4, stride=2, padding=1), nn.ReLU()]
            c = width
        layers.append(nn.Conv2d(c, channels, 3, padding=1))
        layers += [ResBlock(channels) for _ in range(res_blocks)]
        layers += [nn.ReLU(), nn.Conv2d(channels, code_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (N, D, h, w)


class VQDecoder(nn.Module):
    """Mirror of :class:`VQEncoder`: 3x3 conv, residual blocks, stride-2 transposed convs to ``out_channels``."""

    def __init__(self, code_dim: int, channels: int, out_channels: int, res_blocks: int, sizes: list[tuple[int, int]]):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(code_dim, channels, 3, padding=1)]
        layers += [ResBlock(channels) for _ in range(res_blocks)]
        layers.append(nn.ReLU())
        downsample = len(sizes) - 1
        widths = list(reversed(_widths(channels, downsample)))  # (channels, channels/2, ...)
        outs = [*widths[1:], out_channels]
        for i, (c_in, c_out) in enumerate(zip(widths, outs, strict=True)):
            small, big = sizes[-1 - i], sizes[-2 - i]
            # Kernel 4, stride 2, padding 1 gives 2s; output_padding adds the odd row/column back.
            pad = (big[0] - 2 * small[0], big[1] - 2 * small[1])
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, output_padding=pad))
            if i < downsample - 1:
                layers.append(nn.ReLU())
        if not downsample:
            layers.append(nn.Conv2d(channels, out_channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, z_q: torch.Tensor) -> torch.Tensor:
        return self.net(z_q)  # (N, C, H, W)


# --- the model -----------------------------------------------------------------------------------


class VQVAE(nn.Module):
    """VQ-VAE with the :class:`~aekit.models.Autoencoder` interface, so the trainer and run directory use it as is.

    Parameters
    ----------
    sample_shape : ``(C, H, W)`` of one image; any size, odd ones included.
    num_codes : K, codebook size.
    code_dim : D, size of each codebook vector (channels of the code map).
    channels : width of the encoder and decoder.
    res_blocks : residual blocks in each of encoder and decoder.
    downsample : stride-2 stages; the code map is ``H / 2^downsample`` by ``W / 2^downsample`` (floored).
    beta : weight of the commitment term.
    use_ema, ema_decay, restart_after : see :class:`~aekit.quantizer.VectorQuantizer`.
    likelihood : ``bernoulli`` (data in [0, 1]), ``gaussian`` (unit variance) or a likelihood module.
    config : the configuration the model was built from, when there is one.

    ``encode`` returns the continuous pre-quantisation map ``z_e`` flattened to ``(N, D*h*w)``, so
    scatter plots and traversals work, and ``latent_dim`` is that width; ``decode`` quantises
    whatever it gets, so ``decode(encode(x)) == reconstruct(x)``. The integer codes are
    :meth:`encode_indices` ``(N, h, w)`` and :meth:`decode_indices`.
    """

    num_classes = 0  # unconditional

    def __init__(
        self,
        sample_shape: Sequence[int],
        *,
        num_codes: int = 512,
        code_dim: int = 64,
        channels: int = 128,
        res_blocks: int = 2,
        downsample: int = 2,
        beta: float = 0.25,
        use_ema: bool = False,
        ema_decay: float = 0.99,
        restart_after: int = 100,
        likelihood: str | nn.Module = "bernoulli",
        config: Any = None,
    ):
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        if len(self.sample_shape) != 3:
            raise ConfigError(
                f"A VQ-VAE needs image data (C, H, W); this data has sample shape {self.sample_shape}. "
                "Use another model for tabular data."
            )
        if channels < 1 or res_blocks < 0 or downsample < 0:
            raise ConfigError(
                f"channels must be >= 1, res_blocks and downsample >= 0; got channels={channels}, "
                f"res_blocks={res_blocks}, downsample={downsample}."
            )
        c, h, w = self.sample_shape
        sizes = stage_sizes((h, w), downsample)
        self.code_shape: tuple[int, int] = sizes[-1]
        self.config = config
        self.encoder = VQEncoder(c, channels, code_dim, res_blocks, downsample)
        # Named ``latent`` like the Autoencoder's latent head, so code that inspects ``model.latent`` works.
        self.latent = VectorQuantizer(
            num_codes, code_dim, commitment_weight=beta, use_ema=use_ema, decay=ema_decay, restart_after=restart_after
        )
        self.decoder = VQDecoder(code_dim, channels, c, res_blocks, sizes)
        if isinstance(likelihood, str):
            check_choice("likelihood", likelihood, ("bernoulli", "gaussian"))
            likelihood = build_likelihood(likelihood, self.sample_shape, 1.0, False)
        self.likelihood = likelihood
        self.prior: nn.Module | None = None

    # --- description ---------------------------------------------------------------------------

    @property
    def quantizer(self) -> VectorQuantizer:
        return self.latent

    @property
    def num_codes(self) -> int:
        return self.latent.num_codes

    @property
    def code_dim(self) -> int:
        return self.latent.code_dim

    @property
    def latent_dim(self) -> int:
        """Width of :meth:`encode`'s output: ``code_dim * h * w``."""
        return self.code_dim * self.code_shape[0] * self.code_shape[1]

    @property
    def is_generative(self) -> bool:
        """True once a prior over code maps is attached; the VQ-VAE alone cannot sample."""
        return self.prior is not None

    @property
    def term_weights(self) -> dict[str, float]:
        """Weight of each loss term; no ``codebook`` term when EMA updates the codebook."""
        weights = {"recon": 1.0}
        if not self.latent.use_ema:
            weights["codebook"] = 1.0
        weights["commitment"] = self.latent.commitment_weight
        return weights

    # --- training ------------------------------------------------------------------------------

    def loss_terms(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``recon`` (nats), ``codebook`` and ``commitment`` (squared distances), each ``(N,)`` per sample.

        In training mode this also advances the quantiser's EMA statistics and dead-code restarts.
        """
        q = self.latent(self.encoder(x))
        terms = {"recon": self.likelihood.nll(x, self.decoder(q.z_q))}
        if q.codebook is not None:
            terms["codebook"] = q.codebook
        terms["commitment"] = q.commitment
        return terms

    # --- encoding and decoding -----------------------------------------------------------------

    def posterior(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``{"mean": z_e}`` with the pre-quantisation map flattened to ``(N, D*h*w)``."""
        return {"mean": self.encoder(x).flatten(1)}

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The continuous code ``z_e`` of each sample, flattened: ``(N, D*h*w)``."""
        return self.posterior(x)["mean"]

    def encode_indices(self, x: torch.Tensor) -> torch.Tensor:
        """The code map of each sample: ``(N, h, w)`` long in [0, K)."""
        return self.latent.encode_indices(self.encoder(x))

    def _as_map(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            return z.view(-1, self.code_dim, *self.code_shape)  # (N, D*h*w) -> (N, D, h, w)
        return z

    def decoder_output(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The likelihood's parameters for codes ``z`` (flat or ``(N, D, h, w)``), after quantising them."""
        return self.decoder(self.latent.lookup(self.latent.encode_indices(self._as_map(z))))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The likelihood's mean for codes ``z`` (flat or map), each position snapped to its nearest code."""
        return self.likelihood.mean(self.decoder_output(z))

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """The likelihood's mean for code maps ``(N, h, w)``."""
        return self.likelihood.mean(self.decoder(self.latent.lookup(indices)))

    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Decode the quantised code of ``x``."""
        return self.decode_indices(self.encode_indices(x))

    @torch.no_grad()
    def code_maps(self, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Code maps ``(N, h, w)`` of a whole data set, in batches, on the CPU: a prior's training data."""
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        maps = [
            self.encode_indices(x[i : i + batch_size].to(device, torch.float32)).cpu()
            for i in range(0, len(x), batch_size)
        ]
        self.train(was_training)
        return torch.cat(maps)

    def code_usage(self, x: torch.Tensor, batch_size: int = 1024) -> dict[str, float]:
        """Codebook ``perplexity`` (K at best) and ``usage`` (fraction of codes used) over the samples ``x``."""
        stats = usage_stats(code_counts(self.code_maps(x, batch_size), self.num_codes))
        return {k: float(v) for k, v in stats.items()}

    # --- sampling ------------------------------------------------------------------------------

    def attach_prior(self, prior: nn.Module | None) -> None:
        """Attach a prior over code maps (e.g. :class:`~aekit.pixelcnn.GatedPixelCNN`), or detach with None.

        The prior becomes the submodule ``prior``: load the VQ-VAE's own weights before attaching it.
        """
        if prior is not None and getattr(prior, "num_codes", self.num_codes) != self.num_codes:
            raise ConfigError(
                f"The prior models {prior.num_codes} codes but this VQ-VAE has {self.num_codes}; "
                "fit the prior on this model's code maps (aekit train-prior RUN_DIR)."
            )
        self.prior = prior

    def sample(self, n: int, generator: torch.Generator | None = None, y: torch.Tensor | None = None) -> torch.Tensor:
        """Draw ``n`` code maps from the attached prior and decode them to the likelihood's mean."""
        if self.prior is None:
            raise NotGenerativeError(
                "A VQ-VAE cannot sample on its own: its codes are a grid of discrete indices and it learns no "
                "distribution over them, so independent codes decode to noise. Fit an autoregressive prior on "
                "its code maps first: run aekit train-prior RUN_DIR, then sample again."
            )
        indices = self.prior.sample(n, shape=self.code_shape, generator=generator)
        return self.decode_indices(indices)

    def sample_uniform(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode code maps whose codes are drawn independently and uniformly: why a prior is needed."""
        device = self.latent.codebook.device
        indices = torch.randint(self.num_codes, (n, *self.code_shape), generator=generator, device=device)
        return self.decode_indices(indices)
