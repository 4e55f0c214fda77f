"""Encoder and decoder networks, sized by options and shaped by the data.

An encoder maps a batch of samples to a flat feature vector ``(N, F)``; a latent head (see
:mod:`aekit.parts.latents`) turns features into a code. A decoder maps a code ``(N, K)`` back to the
sample shape, with ``out_channels`` parameters per data element (one for a Bernoulli's logits or a
Gaussian's mean). Any input shape works: conv stages record the spatial sizes they produce and the
decoder retraces them exactly, so 8x8, 28x28 or 37x53 inputs all round-trip.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from aekit.errors import ConfigError


def activation(name: str) -> nn.Module:
    """The activation module called ``name`` (``none`` gives the identity)."""
    table = {
        "relu": nn.ReLU,
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "elu": nn.ELU,
        "gelu": nn.GELU,
        "leaky_relu": nn.LeakyReLU,
        "none": nn.Identity,
    }
    return table[name]()


def _mlp(widths: list[int], act: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for w_in, w_out in itertools.pairwise(widths):
        layers += [nn.Linear(w_in, w_out), activation(act)]
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """Flatten, then ``Linear -> activation`` for each width in ``hidden`` (none: features = input)."""

    def __init__(self, sample_shape: tuple[int, ...], hidden: tuple[int, ...], act: str):
        super().__init__()
        self.in_features = math.prod(sample_shape)
        self.net = _mlp([self.in_features, *hidden], act)
        self.out_features = hidden[-1] if hidden else self.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))  # (N, F)


class MLPDecoder(nn.Module):
    """``Linear -> activation`` for each width in reversed ``hidden``, then a linear output layer."""

    def __init__(self, latent_dim: int, sample_shape: tuple[int, ...], hidden: tuple[int, ...], act: str):
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        widths = [latent_dim, *reversed(hidden)]
        self.net = _mlp(widths, act)
        self.out = nn.Linear(widths[-1], math.prod(sample_shape))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(z)).view(-1, *self.sample_shape)


def _conv_sizes(size: tuple[int, int], stages: int) -> list[tuple[int, int]]:
    """Spatial sizes after each stride-2 conv with kernel 3 and padding 1: ceil(s / 2)."""
    sizes = [size]
    for _ in range(stages):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


class ConvEncoder(nn.Module):
    """Stride-2 ``Conv2d(3x3) -> activation`` stages with the given channels, then flatten."""

    def __init__(self, sample_shape: tuple[int, ...], channels: tuple[int, ...], act: str):
        super().__init__()
        if len(sample_shape) != 3:
            raise ConfigError(
                f"arch 'conv' needs image data (C, H, W); this data has sample shape {tuple(sample_shape)}. "
                "Use --arch mlp for tabular data."
            )
        c, h, w = sample_shape
        self.sizes = _conv_sizes((h, w), len(channels))
        layers: list[nn.Module] = []
        for c_in, c_out in zip([c, *channels[:-1]], channels, strict=True):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), activation(act)]
        self.net = nn.Sequential(*layers)
        self.out_features = channels[-1] * math.prod(self.sizes[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)  # (N, C_last * h * w)


class ConvDecoder(nn.Module):
    """Linear to the smallest feature map, then transposed convs retracing the encoder's sizes."""

    def __init__(self, latent_dim: int, sample_shape: tuple[int, ...], channels: tuple[int, ...], act: str):
        super().__init__()
        c, h, w = sample_shape
        sizes = _conv_sizes((h, w), len(channels))
        self.start_shape = (channels[-1], *sizes[-1])
        self.fc = nn.Sequential(nn.Linear(latent_dim, math.prod(self.start_shape)), activation(act))
        layers: list[nn.Module] = []
        rev = list(reversed(channels))
        for i, (c_in, c_out) in enumerate(zip(rev, [*rev[1:], rev[-1]], strict=True)):
            small, big = sizes[-1 - i], sizes[-2 - i]
            # A stride-2 transposed conv gives 2s - 1; output_padding adds the row/column that
            # ceil(s / 2) dropped for odd sizes, so the decoder lands exactly on the input size.
            pad = (big[0] - (2 * small[0] - 1), big[1] - (2 * small[1] - 1))
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=pad),
                activation(act),
            ]
        self.net = nn.Sequential(*layers)
        self.out = nn.Conv2d(rev[-1], c, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(-1, *self.start_shape)  # (N, C_last, h, w)
        return self.out(self.net(x))  # (N, C, H, W)


def build_encoder(arch: str, sample_shape: tuple[int, ...], hidden: tuple[int, ...], act: str) -> nn.Module:
    if arch == "conv":
        return ConvEncoder(sample_shape, hidden, act)
    return MLPEncoder(sample_shape, hidden, act)


def build_decoder(
    arch: str, latent_dim: int, sample_shape: tuple[int, ...], hidden: tuple[int, ...], act: str
) -> nn.Module:
    if arch == "conv":
        return ConvDecoder(latent_dim, sample_shape, hidden, act)
    return MLPDecoder(latent_dim, sample_shape, hidden, act)
