"""A latent EBM's free energies for a data set, written as a table with the pictures that suit it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from aekit.evaluation.energy import free_energy_table
from aekit.figures import energy_plots
from aekit.fsutil import atomic_path


def write_energies(
    run: Any, x: torch.Tensor, out: Path, *, inverse_temperature: float | None = None, seed: int = 0
) -> tuple[dict[str, torch.Tensor], list[Path]]:
    """Write ``out`` (CSV: index, f_inf, f_beta with an inverse temperature, and the codes z_1..z_K of
    the samples ``x`` of ``run``) and, for 2-D data with a 1-D or 2-D latent, the free-energy
    landscape, the energy over the latent and (1-D latent) the decoder's curve beside it.

    Returns the table's columns and the figures written."""
    model = run.model
    columns, codes = free_energy_table(model, x, inverse_temperature=inverse_temperature, seed=seed)
    header = ["index", *columns, *(f"z_{j + 1}" for j in range(codes.shape[1]))]
    rows = [[str(i), *(f"{float(c[i]):.6g}" for c in columns.values()), *(f"{float(v):.6g}" for v in codes[i])]
            for i in range(len(x))]  # fmt: skip
    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
    figures: list[Path] = []
    if tuple(model.sample_shape) == (2,) and model.latent_dim <= 2:
        on_ellipse = run.config.data.data == "ellipse"
        figures.append(energy_plots.plot_energy_landscape(model, out.parent / "energy_landscape.png",
                                                          inverse_temperature=inverse_temperature, data=x))  # fmt: skip
        figures.append(energy_plots.plot_latent_energy(model, x, out.parent / "latent_energy.png"))
        if model.latent_dim == 1:
            figures.append(energy_plots.plot_decoder_curve(model, x, out.parent / "decoder_curve.png",
                                                           true_w=(2.0, 1.0) if on_ellipse else None))  # fmt: skip
    return columns, figures
