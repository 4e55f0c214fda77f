"""Penalties R(h) on a deterministic code: sparsity (seed 002), contraction (seed 000), and yours.

A penalty is one :class:`Penalty` subclass registered by name. It has a ``weight`` (lambda) and
``forward(model, x_in, code) -> (N,)``, one value per sample; the model adds it to its loss terms
under the penalty's name and the trainer multiplies it by the weight. The built-in penalties read
their own options (``--sparsity l1 --sparsity-weight 1e-3``); any other registered penalty is
switched on by the ``penalties`` option: ``{name: weight}`` or ``{name: {weight: w, option: v}}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from aekit.errors import ConfigError
from aekit.parts.jacobian import jacobian_frobenius_sq
from aekit.registry import PENALTIES, register_penalty


class Penalty(nn.Module):
    """The contract of a penalty: ``name`` (the loss term), ``weight`` and ``forward``."""

    name: ClassVar[str] = ""  # set by register_penalty

    def __init__(self, weight: float = 1.0):
        super().__init__()
        if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
            raise ConfigError(f"The weight of the penalty '{self.name}' must be a finite number >= 0, got {weight!r}.")
        self.weight = float(weight)

    @classmethod
    def from_config(cls, config: Any) -> Penalty | None:
        """This penalty as a configuration asks for it, or None when it is off.

        By default: the entry under the penalty's name in the ``penalties`` option, a weight or a
        mapping of constructor keywords with ``weight``."""
        entry = config.penalties.get(cls.name)
        if entry is None:
            return None
        options = dict(entry) if isinstance(entry, Mapping) else {"weight": entry}
        try:
            return cls(**options)
        except TypeError as err:
            raise ConfigError(
                f"The penalty '{cls.name}' does not take these options {sorted(options)}: {err}"
            ) from None

    def forward(self, model: nn.Module, x_in: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover

    def extra_repr(self) -> str:
        return f"weight={self.weight}"


def build_penalties(config: Any) -> list[Penalty]:
    """Every registered penalty that ``config`` switches on, in registration order."""
    return [p for _, cls in PENALTIES.items() if (p := cls.from_config(config)) is not None]


@register_penalty("sparsity")
class Sparsity(Penalty):
    """Sparsity of the code h.

    - ``l1``: sum_j |h_j| per sample; ``l2``: sum_j h_j^2 per sample.
    - ``kl``: sum_j KL(rho || rho_hat_j), where rho_hat_j is unit j's mean activation over the
      batch (Ng's sparse autoencoder); the batch-level value is given to every sample, so its
      mean over the batch is the penalty itself. Needs codes in (0, 1) (a sigmoid code).
    """

    def __init__(self, kind: str = "l1", weight: float = 1e-3, target: float = 0.05):
        super().__init__(weight)
        self.kind, self.target = kind, target

    @classmethod
    def from_config(cls, config: Any) -> Penalty | None:
        if config.sparsity == "none" or config.sparsity_weight <= 0:
            return None
        return cls(config.sparsity, config.sparsity_weight, config.sparsity_target)

    def forward(self, model: nn.Module, x_in: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        if self.kind == "l1":
            return code.abs().sum(1)
        if self.kind == "l2":
            return code.square().sum(1)
        rho, rho_hat = self.target, code.mean(0).clamp(1e-6, 1 - 1e-6)  # (K,)
        kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
        return kl.sum().expand(len(code))


@register_penalty("contractive")
class Contractive(Penalty):
    """lambda * ||dh/dx||_F^2 at the (possibly corrupted) encoder input."""

    def __init__(self, weight: float = 0.1, method: str = "auto", projections: int = 1):
        super().__init__(weight)
        self.method, self.projections = method, projections

    @classmethod
    def from_config(cls, config: Any) -> Penalty | None:
        if config.contractive_weight <= 0:
            return None
        return cls(config.contractive_weight, config.jacobian, config.jacobian_projections)

    def forward(self, model: nn.Module, x_in: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        return jacobian_frobenius_sq(model, x_in, self.method, self.projections)


BUILT_IN = ("sparsity", "contractive")  # switched on by their own options, not by `penalties`
