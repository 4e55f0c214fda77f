"""Pictures of a latent-variable energy model (:class:`aekit.models.LatentEBM`) on 2-D data (seed 000).

The decoder's curve against the data and the true ellipse, the free energy over the data plane, and
the energy of a few observations as a function of the latent. Each function writes one PNG atomically
(through :mod:`aekit.figures.canvas`: Agg figures, never pyplot) and returns its path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from aekit.data.base import Dataset
from aekit.errors import ConfigError
from aekit.figures.canvas import PathLike, figure, floats, save_figure, subsample

_MARGIN = 1.0  # latent units added on each side of the codes in view


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _points(data: Any) -> np.ndarray:
    """Data as ``(N, 2)`` floats: a Dataset gives its training split."""
    x = floats(data.train if isinstance(data, Dataset) else data)
    if x.ndim != 2 or x.shape[1] != 2 or not len(x):
        raise ConfigError(f"These plots need 2-D data of shape (N, 2); got shape {x.shape}. Use the ellipse data.")
    return x


def _check(model: Any, max_latent: int) -> None:
    if tuple(model.sample_shape) != (2,) or not 1 <= model.latent_dim <= max_latent:
        need = "a 1-D latent" if max_latent == 1 else "a 1-D or 2-D latent"
        raise ConfigError(
            f"This plot needs a model of 2-D data with {need}; this one has samples of shape "
            f"{tuple(model.sample_shape)} and latent_dim {model.latent_dim}. Train e.g. --data ellipse --latent-dim 1."
        )


def _tensor(x: np.ndarray, model: torch.nn.Module) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float32, device=_device(model))


def _code_range(model: Any, y: np.ndarray) -> tuple[float, float]:
    """A latent interval holding the inferred codes (and the encoder's guesses) of ``y``, plus a margin."""
    yt = _tensor(y, model)
    codes = [model.encode(yt)]
    guess = model.initial_guess(yt)
    if guess is not None:
        codes.append(guess)
    z = torch.cat(codes).cpu()
    return float(z.min()) - _MARGIN, float(z.max()) + _MARGIN


def plot_decoder_curve(
    model: Any, data: Any, path: PathLike, *, true_w: tuple[float, float] | None = (2.0, 1.0)
) -> Path:
    """Data points, the learned curve ``Dec(z)`` over the codes' range, and the true ellipse (dashed).

    ``data`` is ``(N, 2)`` (array or tensor) or a :class:`Dataset` (its training split); ``true_w``
    the ellipse's semi-axes, or None to leave it out. The model needs a 1-D latent."""
    from aekit.data.ellipse import true_curve

    _check(model, 1)
    model.eval()
    y = _points(data)
    shown = y[subsample(len(y))]
    lo, hi = _code_range(model, shown)
    z = torch.linspace(lo + _MARGIN / 2, hi - _MARGIN / 2, 1000, device=_device(model))[:, None]
    with torch.no_grad():
        curve = model.decode(z).cpu().numpy()
    fig = figure(7, 5, layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(shown[:, 0], shown[:, 1], s=5, c="tab:blue", alpha=0.4, lw=0, label="data")
    # The curve is drawn as points coloured by z (the colour bar), so its legend entry names those points.
    points = ax.scatter(curve[:, 0], curve[:, 1], c=z[:, 0].cpu().numpy(), s=3, cmap="viridis", zorder=3,
                        label="Dec(z), coloured by z")  # fmt: skip
    fig.colorbar(points, ax=ax, label="z")
    if true_w is not None:
        true = true_curve(400, w1=true_w[0], w2=true_w[1])
        ax.plot(*np.vstack([true, true[:1]]).T, "k--", lw=1.2, label=f"true ellipse w = {tuple(true_w)}")
    ax.set(aspect="equal", xlabel="y1", ylabel="y2")
    ax.legend(loc="upper right", fontsize=8, markerscale=3)
    ax.set_title(f"Decoder curve for z in [{lo + _MARGIN / 2:.2f}, {hi - _MARGIN / 2:.2f}]")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_energy_landscape(
    model: Any,
    path: PathLike,
    *,
    inverse_temperature: float | None = None,
    extent: tuple[float, float, float, float] | None = None,
    grid: int = 200,
    data: Any = None,
) -> Path:
    """Heatmap with contours of ``F_inf(y)`` (or ``F_beta(y)`` at ``inverse_temperature``) over the data plane.

    ``extent = (x0, x1, y0, y1)`` defaults to the data's bounding box (or the decoder's curve) padded by
    25%; ``grid`` points per axis. For a 1-D / 2-D latent F_beta is computed over a regular latent grid
    covering the codes of ``data`` (else [-3, 3] per axis), so it is defined up to the constant of
    :meth:`LatentEBM.free_energy`. ``data`` ``(N, 2)`` is overlaid."""
    _check(model, 2)
    if not (isinstance(grid, int) and grid >= 2):
        raise ConfigError(f"grid must be an integer >= 2 (points per axis), got {grid!r}.")
    model.eval()
    y = None if data is None else _points(data)
    device = _device(model)
    if y is not None:
        lo, hi = _code_range(model, y[subsample(len(y))])
    else:
        lo, hi = -3.0, 3.0
    if extent is None:
        if y is None:
            axis = torch.linspace(lo, hi, 64, device=device)
            with torch.no_grad():
                y_ref = model.decode(torch.cartesian_prod(*[axis] * model.latent_dim).view(-1, model.latent_dim))
            ref = y_ref.cpu().numpy()
        else:
            ref = y
        (x0, y0), (x1, y1) = ref.min(0), ref.max(0)
        pad_x, pad_y = 0.25 * (x1 - x0) + 1e-3, 0.25 * (y1 - y0) + 1e-3
        extent = (x0 - pad_x, x1 + pad_x, y0 - pad_y, y1 + pad_y)
    gx, gy = np.meshgrid(np.linspace(extent[0], extent[1], grid), np.linspace(extent[2], extent[3], grid))
    plane = _tensor(np.stack([gx.ravel(), gy.ravel()], 1), model)
    latent_grid = (lo, hi, 512 if model.latent_dim == 1 else 64)
    if (
        inverse_temperature is None
    ):  # the best point of a coarse latent grid is one more start: F_inf needs the global minimum
        axis = torch.linspace(lo, hi, 128 if model.latent_dim == 1 else 24, device=device)
        candidates = torch.cartesian_prod(*[axis] * model.latent_dim).view(-1, model.latent_dim)
        energy, name = model.free_energy_inf(plane, candidates=candidates), "F_inf(y)"
    else:
        beta = inverse_temperature
        energy, name = model.free_energy(plane, beta, grid=latent_grid), f"F_beta(y), beta = {beta:g}"
    f = energy.view(grid, grid).cpu().numpy()
    fig = figure(7, 5, layout="constrained")
    ax = fig.add_subplot()
    # Far from the data the energy grows quadratically; saturating the top 10% keeps the valleys legible.
    top = float(np.percentile(f, 90)) if np.ptp(f) > 0 else float(f.max()) + 1
    image = ax.imshow(f, origin="lower", extent=extent, aspect="auto", cmap="magma_r", vmax=top)
    ax.contour(gx, gy, f, levels=np.linspace(f.min(), top, 12), colors="white", linewidths=0.6, alpha=0.7)
    fig.colorbar(image, ax=ax, label=name)
    if y is not None:
        shown = y[subsample(len(y))]
        ax.scatter(shown[:, 0], shown[:, 1], s=3, c="tab:cyan", alpha=0.5, lw=0, label="data")
        ax.legend(loc="upper right", fontsize=8)
    ax.set(title=f"Free energy {name} over the data plane", xlabel="y1", ylabel="y2")
    return save_figure(fig, path)


def plot_latent_energy(model: Any, y: Any, path: PathLike, *, max_points: int = 4) -> Path:
    """``E(y, z)`` as a function of z for the first ``max_points`` observations ``y`` ``(N, 2)``.

    A 1-D latent gives one curve per observation, a 2-D latent one heatmap each; the inferred z^ is
    marked with a star and the encoder's guess z~ (when the model has an encoder) with a circle."""
    _check(model, 2)
    model.eval()
    ys = _points(y)[:max_points]
    yt = _tensor(ys, model)
    z_hat = model.encode(yt)
    z_tilde = model.initial_guess(yt)
    lo, hi = _code_range(model, ys)
    k, points = model.latent_dim, 400 if model.latent_dim == 1 else 80
    axis = torch.linspace(lo, hi, points, device=yt.device)
    zs = torch.cartesian_prod(*[axis] * k).view(-1, k)  # (M, K)
    with torch.no_grad():
        energy = torch.stack([model.energy(row.expand(len(zs), 2), zs) for row in yt]).cpu().numpy()  # (n, M)
        e_hat = model.energy(yt, z_hat).cpu().numpy()
        e_tilde = None if z_tilde is None else model.energy(yt, z_tilde).cpu().numpy()
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    if k == 1:
        fig = figure(7, 4.5, layout="constrained")
        ax = fig.add_subplot()
        for i, row in enumerate(ys):
            c = colours[i % len(colours)]
            ax.plot(axis.cpu().numpy(), energy[i], c=c, lw=1.2, label=f"y = ({row[0]:.2f}, {row[1]:.2f})")
            ax.plot(float(z_hat[i, 0]), e_hat[i], "*", c=c, ms=12, mec="k")
            if e_tilde is not None:
                ax.plot(float(z_tilde[i, 0]), e_tilde[i], "o", c=c, ms=7, mfc="none", mew=1.5)
        ax.set_xlabel("z")
        ax.set_ylabel("E(y, z)")
        ax.legend(fontsize=8, title="★ z^ (inferred)" + ("   ○ z~ (encoder)" if z_tilde is not None else ""))
        ax.grid(alpha=0.3)
    else:
        fig = figure(3.6 * len(ys) + 0.8, 3.6, layout="constrained")
        axes = fig.subplots(1, len(ys), squeeze=False)[0]
        # E - min E on a log scale shows the valleys; one colour scale is shared by all panels.
        excess = np.log(energy - energy.min(1, keepdims=True) + 1e-3)
        scale = {"vmin": excess.min(), "vmax": excess.max(), "cmap": "magma_r", "origin": "lower"}
        for i, (ax, row) in enumerate(zip(axes, ys, strict=True)):
            image = ax.imshow(excess[i].reshape(points, points).T, extent=(lo, hi, lo, hi), **scale)
            ax.plot(*z_hat[i].cpu().numpy(), "*", c="cyan", ms=12, mec="k")
            if z_tilde is not None:
                ax.plot(*z_tilde[i].cpu().numpy(), "o", c="cyan", ms=7, mfc="none", mew=1.5)
            ax.set_title(f"y = ({row[0]:.2f}, {row[1]:.2f})", fontsize=9)
            ax.set(xlabel="z1", ylabel="z2")
        fig.colorbar(image, ax=list(axes), label="log(E - min E)")
    fig.suptitle(
        "Energy of observations over the latent: ★ z^ inferred" + (", ○ z~ encoder" if z_tilde is not None else "")
    )
    return save_figure(fig, path)
