"""Pictures of a latent space: traversals, interpolations, posterior bubbles, the decoded manifold and
a sweep over the KL weight. Each function draws arrays it is given (computed by
:mod:`aekit.analyses.latent_space`) into one PNG and returns its path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.collections import EllipseCollection
from matplotlib.patches import Circle, Rectangle

from aekit.errors import ConfigError, DataError
from aekit.figures.canvas import PathLike, class_colours, figure, floats, save_figure, subsample, to_numpy
from aekit.figures.plots import feature_label

_MAX_FEATURES = 8  # tabular pictures draw one line per feature, the first ones only


def check_values(values: Any, name: str) -> np.ndarray:
    v = np.asarray(to_numpy(values), dtype=np.float64).reshape(-1)
    if not len(v) or not np.all(np.isfinite(v)):
        raise ConfigError(f"{name} must be a non-empty sequence of finite numbers, got {values!r}.")
    return v


def plot_traversal(
    grid: Any,
    path: PathLike,
    values: Sequence[float] | np.ndarray,
    *,
    dims: Sequence[int] | None = None,
    title: str | None = None,
) -> Path:
    """Write a traversal from :func:`traverse`: one row per latent dimension, one column per value.

    Images ``(K, V, C, H, W)`` become a labelled grid; tabular samples ``(K, V, D)`` one panel per latent
    dimension with each feature's decoded value against the dimension's value. ``dims`` names the rows.
    """
    g, v = to_numpy(grid), check_values(values, "values")
    if g.ndim not in (3, 5) or g.shape[1] != len(v):
        raise DataError(f"grid must be (K, V, C, H, W) or (K, V, D) with V = {len(v)} values; got {g.shape}.")
    names = [f"z{d + 1}" for d in (dims if dims is not None else range(len(g)))]
    shape = "row" if g.ndim == 5 else "panel"
    title = title or f"Latent traversal: each {shape} sweeps one dimension, the others stay fixed"
    if g.ndim == 3:
        return _plot_curves(g, v, path, titles=[f"varying {n}" for n in names], xlabel="z value", title=title)
    return _draw_tiles(g, path, col_labels=[f"{x:.3g}" for x in v], row_labels=names, title=title,
                       axis_names=("value of the varied dimension", "latent dimension varied"))  # fmt: skip


def plot_interpolation(
    samples: Any, path: PathLike, *, ends: tuple[str, str] = ("start", "end"), title: str | None = None
) -> Path:
    """Write an interpolation from :func:`interpolate` as one row; the two end images are framed in red.

    ``ends`` labels the end columns (e.g. ``("test #3", "test #17")``); inner columns show t in (0, 1).
    Tabular samples ``(S, D)`` give each feature's decoded value against t instead.
    """
    s = to_numpy(samples)
    if s.ndim not in (2, 4) or len(s) < 2:
        raise DataError(f"samples must be (S, C, H, W) or (S, D) with S >= 2; got shape {s.shape}.")
    t = np.linspace(0, 1, len(s))
    title = title or f"Interpolation from {ends[0]} to {ends[1]}"
    if s.ndim == 2:
        return _plot_curves(s[None], t, path, titles=[""], xlabel=f"t ({ends[0]} at 0, {ends[1]} at 1)", title=title)
    labels = [ends[0], *(f"{x:.2f}" for x in t[1:-1]), ends[1]]
    return _draw_tiles(s[None], path, col_labels=labels, row_labels=[""], title=title, framed=(0, len(s) - 1),
                       axis_names=("t: position between the ends", ""))  # fmt: skip


def plot_bubbles(mean: Any, stddev: Any, path: PathLike, *, labels: Any = None, title: str | None = None) -> Path:
    """Write posteriors ``(N, 2)`` of a 2-D latent as bubbles (Canziani, NYU Deep Learning, VAE notes, Fig. 8).

    Each ellipse is centred on a posterior mean with semi-axes of one standard deviation, and coloured
    by label; the dashed unit circle is one standard deviation of the prior N(0, I). The KL term pulls
    the bubbles towards it, the reconstruction term pushes them apart.
    """
    mu, sd = floats(mean), floats(stddev)
    if mu.ndim != 2 or mu.shape[1] != 2 or sd.shape != mu.shape:
        raise DataError(f"mean and stddev must both have shape (N, 2); got {mu.shape} and {sd.shape}.")
    colour, handles = label_colours(None if labels is None else to_numpy(labels))
    fig = figure(7.5, 6.2, layout="constrained")
    ax = fig.add_subplot()
    ax.add_collection(EllipseCollection(2 * sd[:, 0], 2 * sd[:, 1], np.zeros(len(mu)), units="xy", offsets=mu,
                                        offset_transform=ax.transData, facecolors=colour, edgecolors=colour,
                                        alpha=0.12, linewidths=0.8))  # fmt: skip
    ax.scatter(mu[:, 0], mu[:, 1], c=colour, s=8, lw=0, zorder=3)
    ax.add_patch(Circle((0, 0), 1.0, fill=False, ls="--", lw=1.5, color="0.2", zorder=4))
    reach = max(1.0, float(np.max(np.abs(mu) + sd))) * 1.05
    ax.set(xlim=(-reach, reach), ylim=(-reach, reach), xlabel="z1", ylabel="z2", aspect="equal")
    handles = [*(handles or []), Circle((0, 0), 1, fill=False, ls="--", color="0.2", label="N(0, I), 1 sd")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9)
    ax.set_title(
        f"{title or f'Posterior bubbles: mean ± 1 sd of q(z|x) for {len(mu)} samples'}\n"
        f"median sd = {np.median(sd):.2g}, median |mean| = {np.median(np.linalg.norm(mu, axis=1)):.2g}",
        fontsize=11,
    )
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_manifold(images: Any, z1: Any, z2: Any, path: PathLike, *, title: str) -> Path:
    """Write images ``(n, n, C, H, W)`` decoded from a grid over a 2-D latent: row i holds z2[i], column j z1[j].

    z2 should grow upwards (its largest value in the top row), as in a scatter plot."""
    z1, z2 = to_numpy(z1), to_numpy(z2)
    n = len(z1)
    step = max(1, n // 8)  # label every few ticks so that the numbers do not collide
    # round() turns the float noise of a grid point at zero (1.7e-16) into 0; "+ 0.0" turns -0.0 into 0.
    cols, rows = (
        [f"{round(v, 6) + 0.0:.2g}" if i % step == 0 else "" for i, v in enumerate(a.tolist())] for a in (z1, z2)
    )
    return _draw_tiles(images, path, col_labels=cols, row_labels=rows, title=title, axis_names=("z1", "z2"))


def plot_beta_sweep(panels: Sequence[tuple[float, Any, Any, dict]], path: PathLike, *, latent_dim: int) -> Path:
    """Write one latent scatter per KL weight: ``panels`` of ``(beta, codes (N, 2), labels or None, metrics)``,
    with shared axes, the prior's 1-sd circle, and each panel titled with its reconstruction and KL."""
    reach = max(1.2, max(float(np.abs(c).max()) for _, c, _, _ in panels) * 1.05)  # shared limits compare scales
    fig = figure(max(3.9 * len(panels) + 1.3, 7.5), 4.6, layout="constrained")  # room for the title
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    handles = None
    for ax, (beta, codes, labels, metrics) in zip(axes, panels, strict=True):
        keep = subsample(len(codes))
        colour, handles = label_colours(None if labels is None else labels[keep])
        ax.scatter(codes[keep, 0], codes[keep, 1], c=colour, s=9, alpha=0.75, lw=0)
        ax.add_patch(Circle((0, 0), 1.0, fill=False, ls="--", lw=1.2, color="0.2"))
        names = ("PC1", "PC2") if latent_dim > 2 else ("z1", "z2" if latent_dim == 2 else "(none: 1-D latent)")
        ax.set(xlim=(-reach, reach), ylim=(-reach, reach), aspect="equal", xlabel=names[0], ylabel=names[1])
        ax.set_title(f"β = {beta:g}\nrecon {metrics['recon_nats']:.1f} nats, KL {metrics['kl']:.3g} nats", fontsize=11)
        ax.grid(alpha=0.3)
    if handles:
        axes[-1].legend(handles=handles, title="label", loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    fig.suptitle("Test-set posterior means for each KL weight β (dashed: 1 sd of the prior)", fontsize=12)
    return save_figure(fig, path)


# ---- drawing helpers ---------------------------------------------------------------------------------------


def label_colours(y: np.ndarray | None) -> tuple[Any, list | None]:
    """RGBA colours per point (classes get tab10/tab20 and legend handles), or one colour without labels."""
    colour, handles = class_colours(y)
    if y is not None and handles is None:  # continuous labels: map the numbers through a colour map
        span = np.ptp(colour) or 1.0
        colour = matplotlib.colormaps["viridis"]((colour - colour.min()) / span)
    return colour, handles


def _draw_tiles(
    images: np.ndarray,
    path: PathLike,
    *,
    col_labels: Sequence[str],
    row_labels: Sequence[str],
    title: str,
    framed: Sequence[int] = (),
    axis_names: tuple[str, str] | None = None,
) -> Path:
    """Draw images ``(R, C, ch, H, W)`` as one pixel-exact grid with labelled rows and columns."""
    imgs = np.clip(np.nan_to_num(to_numpy(images).astype(np.float64)), 0, 1)
    r, c, ch, h, w = imgs.shape
    pad = 1 if max(h, w) <= 32 else 2
    canvas = np.ones((pad + r * (h + pad), pad + c * (w + pad), ch))  # white separates the tiles
    for i, j in np.ndindex(r, c):
        top, left = pad + i * (h + pad), pad + j * (w + pad)
        canvas[top : top + h, left : left + w] = imgs[i, j].transpose(1, 2, 0)
    # Inches per tile: small images are enlarged enough to read, the whole figure stays under ~16 in.
    tile = min(float(np.clip(max(h, w) / 40, 0.55, 1.0)), 14 / c, 14 / r)
    fig = figure(c * tile + 1.2, r * tile + 1.1, layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(canvas[..., 0] if ch == 1 else canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(pad + np.arange(c) * (w + pad) + (w - 1) / 2, list(col_labels), fontsize=8)  # tile centres
    ax.set_yticks(pad + np.arange(r) * (h + pad) + (h - 1) / 2, list(row_labels), fontsize=9)
    ax.tick_params(length=0)
    ax.spines[:].set_visible(False)
    for j in framed:  # the frame runs through the padding around column j
        ax.add_patch(Rectangle((pad + j * (w + pad) - 1, 0), w + 1, r * (h + pad), fill=False, ec="tab:red", lw=2))
    if axis_names:
        ax.set(xlabel=axis_names[0], ylabel=axis_names[1])
    if not any(row_labels):  # one unlabelled strip: no y axis to explain
        ax.yaxis.set_visible(False)
    ax.set_title(title, fontsize=10, wrap=True)
    return save_figure(fig, path)


def _plot_curves(
    curves: np.ndarray, xs: np.ndarray, path: PathLike, *, titles: list[str], xlabel: str, title: str
) -> Path:
    """One panel per curve set ``curves[p]`` (V, D): the first features' values against ``xs`` (V,)."""
    count, d = len(curves), curves.shape[2]
    ncols, nrows = min(4, count), -(-count // min(4, count))
    fig = figure(3.4 * ncols + 0.8, 2.9 * nrows + 0.6, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[count:]:
        ax.set_visible(False)
    for ax, panel, name in zip(axes, curves, titles, strict=False):
        for f in range(min(d, _MAX_FEATURES)):
            ax.plot(xs, panel[:, f], marker="o", ms=3, label=feature_label(f))
        ax.set(title=name, xlabel=xlabel, ylabel="decoded value")
        ax.grid(alpha=0.3)
    shown = f" (first {_MAX_FEATURES} of {d} features)" if d > _MAX_FEATURES else ""
    axes[0].legend(fontsize=7)
    fig.suptitle(title + shown, fontsize=11)
    return save_figure(fig, path)
