"""Free energies of an energy-based model, per sample: the table that ``aekit energy`` writes."""

from __future__ import annotations

from typing import Any

import torch

from aekit.errors import CapabilityError, ConfigError
from aekit.models.base import Model

BATCH = 512  # samples per inference batch


@torch.no_grad()
def free_energy_table(
    model: Model, x: torch.Tensor, *, inverse_temperature: float | None = None, seed: int = 0
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """``({"f_inf": (N,), "f_beta": (N,)}, codes (N, K))`` for the samples ``x``.

    ``f_inf`` is the zero-temperature free energy min_z E(x, z); ``f_beta`` (with an inverse
    temperature b) is ``-(1/b) log mean_z exp(-b E(x, z))``, over a regular grid spanning the codes'
    range plus one unit for a 1-D or 2-D latent (so it converges to f_inf as b grows), else over
    4,096 draws from N(0, I). ``seed`` fixes the random restarts and latent draws.
    """
    if not model.capabilities.energy_based:
        raise CapabilityError(
            f"energy needs an energy-based latent model; this run is a '{model.name}' model. "
            "Train one with --model latent-ebm."
        )
    if inverse_temperature is not None and not inverse_temperature > 0:
        raise ConfigError(f"--inverse-temperature must be > 0, got {inverse_temperature}.")
    model.eval()
    torch.manual_seed(seed)  # the random restarts of the minimisation
    batches = [x[i : i + BATCH] for i in range(0, len(x), BATCH)]
    columns = {"f_inf": torch.cat([model.free_energy(b) for b in batches])}
    codes = torch.cat([model.encode(b).detach() for b in batches])
    if inverse_temperature is not None:
        k = model.latent_dim
        options: dict[str, Any] = {"n": 4096}
        if k <= 2:  # a grid over the codes' range (+-1): the estimate converges to F_inf as beta grows
            options = {"grid": (float(codes.min()) - 1, float(codes.max()) + 1, 2001 if k == 1 else 101)}
        columns["f_beta"] = torch.cat([model.free_energy(b, inverse_temperature, **options) for b in batches])
    return columns, codes
