"""Gated PixelCNN: an autoregressive prior over VQ-VAE code maps (van den Oord et al. 2016, seed 003).

p(c) = prod_{i,j} p(c_ij | codes before (i, j) in raster order), each factor a categorical over K
codes. Masked convolutions keep every output from seeing its own position or later ones:

- a *vertical* stack sees the rows strictly above: its first layer masks the kernel's bottom row
  (its own row), and every later layer then only mixes positions that already obey that rule;
- a *horizontal* stack sees the current row up to the current column: type A masks (first layer)
  exclude the current position itself, type B masks (later layers) include it.

The vertical stack feeds the horizontal one at every layer, which removes the "blind spot" of the
original PixelCNN (van den Oord et al. 2016, "Conditional image generation with PixelCNN decoders",
section 2.2). Activations are gated, tanh(a) * sigmoid(b), and the horizontal stack is residual
(except in the first layer, where the residual would pass the current code through).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from aekit.errors import ConfigError


class MaskedConv2d(nn.Conv2d):
    """A conv whose weight is multiplied by a fixed 0/1 ``mask`` buffer (same shape as the kernel).

    Only type A masks zero anything (the stacks' kernels already stop at the current row and
    column), so an all-ones mask is skipped: a plain conv, no product re-taken at every forward.
    """

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int], mask: torch.Tensor):
        super().__init__(c_in, c_out, kernel)
        self.register_buffer("mask", mask.expand_as(self.weight).clone(), persistent=False)
        self.has_zeros = not bool(mask.all())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.mask if self.has_zeros else self.weight, self.bias)


def _gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    """One gated layer with vertical and horizontal stacks; ``mask_type`` ``A`` (first) or ``B``."""

    def __init__(self, channels: int, kernel: int, mask_type: str):
        super().__init__()
        self.k = kernel // 2
        # Vertical: kernel (k + 1, kernel) over rows i - k .. i (input padded on top only).
        v_mask = torch.ones(self.k + 1, kernel)
        # Horizontal: kernel (1, k + 1) over columns j - k .. j (input padded on the left only).
        h_mask = torch.ones(1, self.k + 1)
        if mask_type == "A":
            v_mask[-1] = 0  # not the current row: the vertical stack stays strictly above
            h_mask[:, -1] = 0  # not the current position
        self.residual = mask_type == "B"
        self.vertical = MaskedConv2d(channels, 2 * channels, (self.k + 1, kernel), v_mask)
        self.horizontal = MaskedConv2d(channels, 2 * channels, (1, self.k + 1), h_mask)
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = nn.Conv2d(channels, channels, 1)

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = self.k
        v_pre = self.vertical(F.pad(v, (k, k, k, 0)))  # (N, 2C, h, w): rows <= i, all nearby columns
        h_pre = self.horizontal(F.pad(h, (k, 0, 0, 0)))  # (N, 2C, h, w): row i, columns <= j
        # The vertical features at row i carry only rows < i (see the module docstring), so they
        # can join the horizontal stack without the one-row shift the paper uses.
        h_new = self.h_out(_gate(h_pre + self.v_to_h(v_pre)))
        return _gate(v_pre), h + h_new if self.residual else h_new


def layers_to_cover(code_shape: tuple[int, int], kernel: int = 3) -> int:
    """The fewest gated layers whose receptive field covers an ``(h, w)`` code map (at least 1).

    Each layer reaches ``kernel // 2`` rows further up and as many columns further left and right,
    so every position sees all those before it once ``layers * (kernel // 2) >= max(h, w) - 1``.
    """
    h, w = code_shape
    return max(1, math.ceil((max(h, w) - 1) / max(1, kernel // 2)))


def default_layers(code_shape: tuple[int, int], kernel: int = 3) -> int:
    """8 gated layers, or more where the code map needs them to be covered (:func:`layers_to_cover`).

    Not fewer on small maps: depth beyond what covers the map still buys likelihood (4x4 maps of 16
    codes: 3 layers, which cover them, 1.95 test bits per code; 8 layers 1.92), and a step on a small
    map is cheap anyway.
    """
    return max(8, layers_to_cover(code_shape, kernel))


class GatedPixelCNN(nn.Module):
    """Gated PixelCNN over code maps ``(N, h, w)`` of integers in [0, ``num_codes``).

    Parameters
    ----------
    num_codes : K, the number of distinct codes (>= 2).
    channels : width of both stacks.
    layers : gated layers (the first is type A, the rest type B); :func:`layers_to_cover` gives the
        fewest that let every position see all the positions before it, :func:`default_layers` the
        default of ``aekit train-prior``.
    kernel : odd kernel width (>= 3); the receptive field grows by ``kernel // 2`` per layer.
    """

    def __init__(self, num_codes: int, channels: int = 64, layers: int = 8, kernel: int = 3):
        super().__init__()
        if num_codes < 2:
            raise ConfigError(f"num_codes (K) must be >= 2 for a prior over codes, got {num_codes}.")
        if channels < 1 or layers < 1:
            raise ConfigError(f"channels and layers must be >= 1, got channels={channels}, layers={layers}.")
        if kernel < 3 or kernel % 2 == 0:
            raise ConfigError(f"kernel must be an odd integer >= 3, got {kernel}.")
        self.config = {"num_codes": num_codes, "channels": channels, "layers": layers, "kernel": kernel}
        self.num_codes = num_codes
        self.embedding = nn.Embedding(num_codes, channels)
        self.layers = nn.ModuleList(GatedLayer(channels, kernel, "A" if i == 0 else "B") for i in range(layers))
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, num_codes, 1)
        )

    def _logits_last(self, indices: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, h, w, K)``, codes last: the head's 1x1 convs run as matrix products on
        channels-last rows, and the softmax over K reads contiguous memory (cheaper than a conv
        and a strided softmax on small maps; the same numbers)."""
        x = self.embedding(indices).permute(0, 3, 1, 2)  # (N, h, w, C) -> (N, C, h, w)
        v = h = x
        for layer in self.layers:
            v, h = layer(v, h)
        x = h.permute(0, 2, 3, 1)  # (N, h, w, C)
        for module in self.head:
            x = F.linear(x, module.weight.flatten(1), module.bias) if isinstance(module, nn.Conv2d) else module(x)
        return x

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K, h, w)``; those at (i, j) depend only on codes before (i, j) in raster order."""
        return self._logits_last(indices).permute(0, 3, 1, 2)

    def nll(self, indices: torch.Tensor) -> torch.Tensor:
        """-log p(code map) in nats, summed over positions: ``(N,)``."""
        logits = self._logits_last(indices)  # (N, h, w, K)
        nll = F.cross_entropy(logits.flatten(0, 2), indices.flatten(), reduction="none")  # (N * h * w,)
        return nll.view(indices.shape).flatten(1).sum(1)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        shape: tuple[int, int] = (7, 7),
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """Draw ``n`` code maps ``(n, h, w)``, one position at a time in raster order.

        ``temperature`` < 1 sharpens each conditional (fewer, more typical codes); 1 samples the model.
        """
        if temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {temperature}.")
        device = self.embedding.weight.device
        codes = torch.zeros(n, *shape, dtype=torch.long, device=device)
        for i in range(shape[0]):
            for j in range(shape[1]):
                probs = torch.softmax(self._logits_last(codes)[:, i, j] / temperature, dim=1)  # (n, K)
                codes[:, i, j] = torch.multinomial(probs, 1, generator=generator)[:, 0]
        return codes


def bits_per_code(nll: Any, h: int, w: int) -> Any:
    """Convert nats per code map to bits per code: ``nll / (h * w * ln 2)`` (float or tensor)."""
    return nll / (h * w * math.log(2))


# A step on a small code map is a few dozen tiny kernels. Split across threads, each kernel waits
# for its slowest thread: on an idle 2-core machine two threads still save a little (digits, 2x2
# maps: 6.6 s against 8.5 s for the whole command), but when other processes hold the cores a step
# takes 10-30 times as long (the same fit: minutes). Up to this many code positions per batch, the
# fit runs on one thread; 0 turns the rule off.
SMALL_STEP_POSITIONS = 4096


@contextlib.contextmanager
def threads_for(device: torch.device, positions: int) -> Iterator[None]:
    """One intra-op thread on the CPU while ``positions`` (codes per batch) is small; restored after."""
    before = torch.get_num_threads()
    if device.type == "cpu" and positions <= SMALL_STEP_POSITIONS and before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.no_grad()
def mean_nll(prior: GatedPixelCNN, maps: torch.Tensor, batch_size: int = 512) -> float:
    """Mean -log p(code map) in nats over ``maps`` ``(N, h, w)``, in eval mode (restored after)."""
    device, was_training = prior.embedding.weight.device, prior.training
    prior.eval()
    total = sum(prior.nll(maps[i : i + batch_size].to(device)).sum() for i in range(0, len(maps), batch_size))
    prior.train(was_training)
    return float(total) / len(maps)


def train_prior(
    prior: GatedPixelCNN,
    code_maps: torch.Tensor,
    *,
    epochs: int = 50,
    batch_size: int = 256,
    lr: float = 2e-3,
    patience: int = 3,
    valid: torch.Tensor | None = None,
    progress: bool = True,
    seed: int = 0,
    log_every: int = 25,
) -> list[dict[str, float]]:
    """Fit ``prior`` to ``code_maps`` ``(N, h, w)`` by maximum likelihood with Adam.

    The maps move to the prior's device; ``seed`` fixes the batch order. With ``valid`` maps, the
    prior ends with the weights of its best epoch on them, and training stops once ``patience``
    epochs in a row have not improved on it (0: run all ``epochs``). Returns one record per epoch
    run: ``train/nll`` and ``valid/nll`` (nats per map, ``valid`` only when given) and their
    ``bits_per_code``.
    """
    device = prior.embedding.weight.device
    train = code_maps.to(device, torch.long)
    valid = None if valid is None or not len(valid) else valid.to(device, torch.long)
    h, w = train.shape[1:]
    n, bs = len(train), min(batch_size, len(train))
    steps = math.ceil(n / bs)
    optimizer = torch.optim.Adam(prior.parameters(), lr=lr)
    shuffle = torch.Generator().manual_seed(seed)
    records: list[dict[str, float]] = []
    best_nll, best_epoch, best_state = math.inf, 0, None
    prior.train()
    with threads_for(device, bs * h * w), tqdm(total=epochs * steps, disable=not progress, unit="step",
                                               dynamic_ncols=True) as bar:  # fmt: skip
        for epoch in range(1, epochs + 1):
            total = torch.zeros((), device=device)
            perm = torch.randperm(n, generator=shuffle).to(device)
            for i in range(steps):
                nll = prior.nll(train[perm[i * bs : (i + 1) * bs]])  # (B,)
                loss = nll.mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += nll.detach().sum()
                bar.update(1)
                if (i + 1) % log_every == 0:  # the only host sync inside an epoch
                    bar.set_postfix(epoch=epoch, nats_per_map=f"{float(total) / min((i + 1) * bs, n):.4g}")
            record = {"epoch": epoch, "train/nll": float(total) / n}
            if valid is not None:
                record["valid/nll"] = mean_nll(prior, valid, 1024)
            for key in [k for k in record if k.endswith("/nll")]:
                record[key.replace("/nll", "/bits_per_code")] = bits_per_code(record[key], h, w)
            bar.set_postfix(epoch=epoch, nats_per_map=f"{record['train/nll']:.4g}")
            records.append(record)
            if valid is None:
                continue
            # Early stopping on the validation NLL: a prior over few maps overfits within a few
            # epochs (its validation NLL climbs while the training NLL keeps falling).
            if record["valid/nll"] < best_nll:
                best_nll, best_epoch = record["valid/nll"], epoch
                best_state = {k: v.detach().clone() for k, v in prior.state_dict().items()}
            elif patience and epoch - best_epoch >= patience:
                break
    if best_state is not None:
        prior.load_state_dict(best_state)
    prior.eval()
    return records
