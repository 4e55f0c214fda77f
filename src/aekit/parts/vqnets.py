"""The VQ-VAE's networks: strided convolutions around residual blocks (van den Oord et al. 2017, section 4.1).

The encoder maps an image ``(N, C, H, W)`` to a map ``(N, D, h, w)`` with ``h = H / 2^downsample``
(rounded down at each stage); the decoder mirrors it. Any image size works, odd ones included.
"""

from __future__ import annotations

import torch
from torch import nn

from aekit.errors import ConfigError


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
    row. The decoder restores it with ``output_padding`` (as :class:`aekit.parts.nets.ConvDecoder` does).
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
