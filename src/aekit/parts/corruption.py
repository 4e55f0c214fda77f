"""Input corruption for denoising autoencoders (seeds 000 and 002).

The encoder sees a corrupted input; the reconstruction cost compares the output with the clean
input, so the model must learn to undo the noise rather than copy its input.
"""

from __future__ import annotations

import torch
from torch import nn

from aekit.errors import ConfigError, check_choice
from aekit.parts import noise

KINDS = ("gaussian", "salt_pepper", "mask")


def corrupt(x: torch.Tensor, kind: str, level: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Return a corrupted copy of ``x``.

    - ``gaussian``: add N(0, level^2) noise to every element.
    - ``salt_pepper``: set a fraction ``level`` of the elements to 0 or 1 (equally likely), the
      extremes of data in [0, 1].
    - ``mask``: set a fraction ``level`` of the elements to 0 ("pixel deletion", up to 90% in seed 002).
    """
    check_choice("noise", kind, KINDS)
    if kind == "gaussian":
        if level < 0:
            raise ConfigError(f"The gaussian noise level (sigma) must be >= 0, got {level}.")
        return x + level * noise.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    if not 0 <= level <= 1:
        raise ConfigError(f"The fraction of corrupted elements must lie in [0, 1], got {level}.")
    hit = noise.rand(x.shape, generator=generator, device=x.device) < level
    if kind == "mask":
        return x.masked_fill(hit, 0.0)
    salt = noise.rand(x.shape, generator=generator, device=x.device) < 0.5
    return torch.where(hit, salt.to(x.dtype), x)


class Corruption(nn.Module):
    """Corrupts its input in training mode only; evaluation sees clean data."""

    def __init__(self, kind: str, level: float):
        super().__init__()
        self.kind, self.level = kind, level

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return corrupt(x, self.kind, self.level) if self.training else x

    def extra_repr(self) -> str:
        return f"kind={self.kind}, level={self.level}"
