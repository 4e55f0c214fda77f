"""Observation models p(x | z): the reconstruction cost C of the energy view, in nats.

A likelihood is one :class:`Likelihood` subclass registered by name (``likelihood: bernoulli``).
The decoder emits its parameters shaped like the data (logits, means). Every ``nll`` is per
sample: summed over the dimensions of one sample, shape ``(N,)``.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from aekit.data.arrays import value_range
from aekit.errors import DataError
from aekit.registry import LIKELIHOODS, register_likelihood


class Likelihood(nn.Module):
    """The contract of a likelihood: ``nll``, ``mean``, ``sample`` and the check of data it can model."""

    name: ClassVar[str] = ""  # set by register_likelihood
    # The closed interval of values this likelihood models (its data, and its mean); None: any real value.
    value_range: ClassVar[tuple[float, float] | None] = None

    @classmethod
    def from_config(cls, config: Any, sample_shape: tuple[int, ...]) -> Likelihood:
        """Build from a family's options (``obs_std``, ``learn_obs_std``) for samples of ``sample_shape``."""
        return cls()

    def nll(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """-log p(x | params), summed over each sample's dimensions: ``(N,)`` nats."""
        raise NotImplementedError  # pragma: no cover

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[x | params], in the data's units."""
        raise NotImplementedError  # pragma: no cover

    def nll_of_draws(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """:meth:`nll` of k decoder outputs per sample: ``x`` ``(N, *S)``, ``params`` ``(k, N, *S)`` ->
        ``(k, N)`` (the importance-weighted bound). This default repeats ``x`` k times; the built-in
        likelihoods broadcast it instead."""
        k, n = params.shape[:2]
        x_rep = x.unsqueeze(0).expand(k, *x.shape).reshape(k * n, *x.shape[1:])
        return self.nll(x_rep, params.reshape(k * n, *params.shape[2:])).view(k, n)

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover

    def check_data(self, x: torch.Tensor, what: str = "data", bounds: tuple[float, float] | None = None) -> None:
        """Raise :class:`DataError` when ``x`` holds values this likelihood cannot model; ``bounds``: the
        data's (min, max) when the caller has scanned it already."""


@register_likelihood("bernoulli")
class Bernoulli(Likelihood):
    """Bernoulli likelihood on logits, for data in [0, 1] (binary or grey levels)."""

    value_range = (0.0, 1.0)

    def nll(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """-log p(x | logits), summed over dimensions: ``(N,)`` nats."""
        # The logits form is exact and stable; probabilities would saturate at 0 and 1. Under
        # mixed precision the decoder's output is cast up: the sum over pixels needs float32.
        logits = logits.float()
        if torch.is_grad_enabled():  # training: the fused loss has the cheaper backward pass
            return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        return _softplus_minus_dot(logits.flatten(1), x.flatten(1))  # no gradient: half the time

    def nll_of_draws(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        # A quarter faster than binary_cross_entropy_with_logits on x expanded k times.
        return _softplus_minus_dot(logits.float().flatten(2), x.flatten(1))

    def mean(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits)

    def sample(self, logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(logits), generator=generator)

    def check_data(self, x: torch.Tensor, what: str = "data", bounds: tuple[float, float] | None = None) -> None:
        if not x.numel():  # an empty split (e.g. --valid-fraction 0) has nothing to check
            return
        lo, hi = bounds if bounds is not None else value_range(x)
        if lo < self.value_range[0] or hi > self.value_range[1]:
            raise DataError(
                f"The bernoulli likelihood needs {what} in [0, 1], "
                f"but values range over [{lo:.4g}, {hi:.4g}]. "
                "Use --likelihood gaussian for real-valued data, or rescale the data to [0, 1]."
            )


def _softplus_minus_dot(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """sum_d softplus(l_d) - x_d l_d, the Bernoulli -log p, for logits ``(N, D)`` -> ``(N,)`` or
    ``(k, N, D)`` -> ``(k, N)``, and ``x`` ``(N, D)``: as exact in float32 as the fused loss, and without
    its temporaries (for k draws, the x l sums are one batched dot product: x is never repeated)."""
    x = x.to(logits.dtype)
    dot = (logits * x).sum(1) if logits.dim() == 2 else torch.einsum("knd,nd->kn", logits, x)
    return F.softplus(logits).sum(-1) - dot


@register_likelihood("gaussian")
class Gaussian(Likelihood):
    """Diagonal Gaussian likelihood with a fixed, or learned per-dimension, standard deviation."""

    def __init__(self, sample_shape: tuple[int, ...], std: float = 1.0, learn_std: bool = False):
        super().__init__()
        log_std = torch.full(sample_shape, math.log(std))
        if learn_std:
            self.log_std = nn.Parameter(log_std)
        else:
            self.register_buffer("log_std", log_std)

    @classmethod
    def from_config(cls, config: Any, sample_shape: tuple[int, ...]) -> Likelihood:
        return cls(sample_shape, config.obs_std, config.learn_obs_std)

    def nll(self, x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """-log N(x; mean, std^2), summed over dimensions: ``(N,)`` nats."""
        z = (x - mean.float()) * torch.exp(-self.log_std)
        per_dim = 0.5 * z.square() + self.log_std + 0.5 * math.log(2 * math.pi)
        return per_dim.flatten(1).sum(1)

    def nll_of_draws(self, x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        z = (x.unsqueeze(0) - mean.float()) * torch.exp(-self.log_std)  # broadcast over the k draws
        per_dim = 0.5 * z.square() + self.log_std + 0.5 * math.log(2 * math.pi)
        return per_dim.flatten(2).sum(2)

    def mean(self, mean: torch.Tensor) -> torch.Tensor:
        return mean

    def sample(self, mean: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + noise * torch.exp(self.log_std)

    def check_data(self, x: torch.Tensor, what: str = "data", bounds: tuple[float, float] | None = None) -> None:
        """Any finite real value is valid."""


def build_likelihood(config: Any, sample_shape: tuple[int, ...]) -> Likelihood:
    """The likelihood a (resolved) configuration names, for samples of ``sample_shape``."""
    return LIKELIHOODS.get(config.likelihood).from_config(config, tuple(sample_shape))


def likelihood_named(name: str, sample_shape: tuple[int, ...], *, obs_std: float = 1.0,
                     learn_obs_std: bool = False) -> Likelihood:  # fmt: skip
    """A likelihood by its registered name, e.g. ``likelihood_named("gaussian", (784,), obs_std=0.1)``."""
    options = SimpleNamespace(likelihood=name, obs_std=obs_std, learn_obs_std=learn_obs_std)
    return build_likelihood(options, sample_shape)


def resolve_likelihood(name: str, train: torch.Tensor, *others: torch.Tensor) -> str:
    """``auto`` picks bernoulli when the training data lies in [0, 1], else gaussian.

    ``others`` (the valid and test splits) must lie in [0, 1] too for bernoulli: the model scores them
    as well, and a training split alone can mislead (one standardised sample is all zeros)."""
    if name != "auto":
        return name
    ranges = [value_range(x) for x in (train, *others) if len(x)]
    return "bernoulli" if all(lo >= 0 and hi <= 1 for lo, hi in ranges) else "gaussian"
