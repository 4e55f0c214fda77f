"""Pictures of a trained run's latent space: traversals, interpolations, posterior bubbles, the decoded
manifold, and a sweep over the KL weight beta.

Every function takes a :class:`aekit.Run`; data points are picked by their position in a split of the
run's own data. Codes are posterior means (the code h of a plain autoencoder). Traversals and
interpolations suit any autoencoder; bubbles need a posterior variance, so they need a VAE.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch
from matplotlib.collections import EllipseCollection
from matplotlib.patches import Circle, Rectangle

from aekit.errors import ConfigError, DataError, NotGenerativeError, check_choice
from aekit.fsutil import atomic_write_text
from aekit.plots import PathLike, _colours, _figure, _save, _subsample, _to_numpy
from aekit.run import Run, train

_MAX_FEATURES = 8  # tabular pictures draw one line per feature, the first ones only
TRAVERSAL_VALUES = tuple(np.linspace(-3, 3, 9).tolist())  # -3..3 prior standard deviations


# ---- codes of data points ----------------------------------------------------------------------------------


@torch.no_grad()
def _posterior(run: Run, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Posterior means ``(N, K)`` and log-variances (None for a plain AE) of normalised samples."""
    run.model.eval()
    device = next(run.model.parameters()).device
    stats = run.model.posterior(x.to(device))
    logvar = stats.get("logvar")
    return stats["mean"].cpu(), None if logvar is None else logvar.cpu()


def _split(run: Run, split: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    x, labels = run.load_data().split(split)
    if not len(x):
        raise DataError(f"The {split} split of '{run.data_info.get('name')}' is empty; pass split='train'.")
    return x, labels


def _codes_at(run: Run, split: str, **indices: int) -> torch.Tensor:
    """Posterior means ``(len(indices), K)`` of the samples at the named positions of ``split``."""
    x, _ = _split(run, split)
    for name, i in indices.items():
        if not 0 <= i < len(x):
            raise ConfigError(
                f"{name} must lie in [0, {len(x) - 1}] for the {split} split ({len(x)} samples), got {i}."
            )
    return _posterior(run, x[list(indices.values())])[0]


def _require_generative(run: Run, what: str) -> None:
    if not getattr(getattr(run.model, "latent", None), "stochastic", False):
        raise NotGenerativeError(
            f"{what} needs the posterior variance of a VAE, but this '{run.config.model.model}' model has a "
            "deterministic code (a point, not a distribution). Train a generative model, e.g. --model vae."
        )


def _require_2d(run: Run, what: str) -> None:
    if run.model.latent_dim != 2:
        raise ConfigError(
            f"{what} draws a 2-D latent space, but this run has latent_dim = {run.model.latent_dim}. Train with "
            "--latent-dim 2 for it; traversals and interpolations work for any latent size."
        )


# ---- traversals and interpolations -------------------------------------------------------------------------


def traverse(
    run: Run,
    *,
    index: int = 0,
    split: str = "test",
    values: Sequence[float] | np.ndarray = TRAVERSAL_VALUES,
    dims: Sequence[int] | None = None,
) -> torch.Tensor:
    """Decode a sweep of each latent dimension around one data point.

    Every dimension in ``dims`` (default all, 0-based) takes each of ``values`` in turn while the other
    dimensions stay at the posterior mean of sample ``index`` of ``split``. The values are absolute
    coordinates: for a VAE, -3..3 spans the prior; for a plain AE choose them from its codes' range.
    Returns a tensor ``(len(dims), len(values), *sample_shape)`` in the data's units.
    """
    values = _values(values, "values")
    k = run.model.latent_dim
    dims = list(range(k)) if dims is None else [int(d) for d in dims]
    if not dims or any(not 0 <= d < k for d in dims):
        raise ConfigError(f"dims must be latent dimensions in [0, {k - 1}] (0-based), got {dims}.")
    z = _codes_at(run, split, index=index).repeat(len(dims), len(values), 1)  # (D, V, K)
    for row, d in enumerate(dims):
        z[row, :, d] = torch.as_tensor(values, dtype=z.dtype)
    decoded = run.decode(z.reshape(-1, k))
    return decoded.reshape(len(dims), len(values), *decoded.shape[1:])


def interpolate(
    run: Run, a: int, b: int, *, steps: int = 10, split: str = "test", mode: str = "linear"
) -> torch.Tensor:
    """Decode ``steps`` points on the path between the posterior means of samples ``a`` and ``b``.

    ``mode`` is ``linear`` or ``slerp``: the spherical interpolation of White (2016), which keeps the
    norm of the codes typical of a Gaussian prior instead of cutting through its low-norm centre. Both
    paths start exactly at ``a``'s code and end exactly at ``b``'s. Returns ``(steps, *sample_shape)``.
    """
    check_choice("mode", mode, ("linear", "slerp"))
    if steps < 2:
        raise ConfigError(f"steps must be >= 2 to include both end points, got {steps}.")
    za, zb = _codes_at(run, split, a=a, b=b)
    t = torch.linspace(0, 1, steps)[:, None]  # (S, 1)
    cos = torch.dot(za, zb) / (za.norm() * zb.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1, 1))
    if mode == "slerp" and omega.sin() > 1e-4:  # nearly parallel codes: slerp is linear in the limit
        z = (torch.sin((1 - t) * omega) * za + torch.sin(t * omega) * zb) / omega.sin()
    else:
        z = (1 - t) * za + t * zb
    return run.decode(z)


def _values(values: Any, name: str) -> np.ndarray:
    v = np.asarray(_to_numpy(values), dtype=np.float64).reshape(-1)
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
    g, v = _to_numpy(grid), _values(values, "values")
    if g.ndim not in (3, 5) or g.shape[1] != len(v):
        raise DataError(f"grid must be (K, V, C, H, W) or (K, V, D) with V = {len(v)} values; got {g.shape}.")
    names = [f"z{d + 1}" for d in (dims if dims is not None else range(len(g)))]
    shape = "row" if g.ndim == 5 else "panel"
    title = title or f"Latent traversal: each {shape} sweeps one dimension, the others stay fixed"
    if g.ndim == 3:
        return _plot_curves(g, v, path, titles=[f"varying {n}" for n in names], xlabel="z value", title=title)
    return _draw_tiles(g, path, col_labels=[f"{x:.3g}" for x in v], row_labels=names, title=title)


def plot_interpolation(
    samples: Any, path: PathLike, *, ends: tuple[str, str] = ("start", "end"), title: str | None = None
) -> Path:
    """Write an interpolation from :func:`interpolate` as one row; the two end images are framed in red.

    ``ends`` labels the end columns (e.g. ``("test #3", "test #17")``); inner columns show t in (0, 1).
    Tabular samples ``(S, D)`` give each feature's decoded value against t instead.
    """
    s = _to_numpy(samples)
    if s.ndim not in (2, 4) or len(s) < 2:
        raise DataError(f"samples must be (S, C, H, W) or (S, D) with S >= 2; got shape {s.shape}.")
    t = np.linspace(0, 1, len(s))
    title = title or f"Interpolation from {ends[0]} to {ends[1]}"
    if s.ndim == 2:
        return _plot_curves(s[None], t, path, titles=[""], xlabel=f"t ({ends[0]} at 0, {ends[1]} at 1)", title=title)
    labels = [ends[0], *(f"{x:.2f}" for x in t[1:-1]), ends[1]]
    return _draw_tiles(s[None], path, col_labels=labels, row_labels=[""], title=title, framed=(0, len(s) - 1))


# ---- 2-D latent spaces -------------------------------------------------------------------------------------


def plot_bubbles(run: Run, path: PathLike, *, n: int = 300, split: str = "test") -> Path:
    """Write the posteriors of ``n`` samples of a 2-D VAE as bubbles (Canziani, NYU Deep Learning, VAE notes, Fig. 8).

    Each ellipse is centred on a posterior mean with semi-axes of one standard deviation, exp(logvar / 2),
    and coloured by label; the dashed unit circle is one standard deviation of the prior N(0, I). The KL
    term pulls the bubbles towards it, the reconstruction term pushes them apart.
    """
    _require_generative(run, "plot_bubbles")
    _require_2d(run, "plot_bubbles")
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}.")
    x, labels = _split(run, split)
    mean, logvar = _posterior(run, x[:n])
    mu, sd = mean.numpy(), (0.5 * logvar).exp().numpy()  # (N, 2) each
    colour, handles = _label_colours(None if labels is None else labels[:n].numpy())
    fig = _figure(7.5, 6.2, layout="constrained")
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
        f"Posterior bubbles: mean ± 1 sd of q(z|x) for {len(mu)} {split} samples\n"
        f"median sd = {np.median(sd):.2g}, median |mean| = {np.median(np.linalg.norm(mu, axis=1)):.2g}",
        fontsize=11,
    )
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_manifold(run: Run, path: PathLike, *, n: int = 15, span: float = 3.0, spacing: str = "linear") -> Path:
    """Write the images decoded from an ``n`` x ``n`` grid over a 2-D latent space.

    For a VAE the grid covers [-span, span]^2 of prior units: evenly (``spacing="linear"``, matching the
    axes of :func:`plot_bubbles`) or at evenly spaced Gaussian quantiles (``"quantile"``, as Kingma &
    Welling 2014, Fig. 4: each cell then holds equal prior mass). A plain AE has no prior, so its grid
    covers the 1st to 99th percentiles of its training codes instead. z2 grows upwards, as in a scatter plot.
    """
    check_choice("spacing", spacing, ("linear", "quantile"))
    _require_2d(run, "plot_manifold")
    if run.data_info.get("kind") != "image":
        raise DataError("plot_manifold tiles decoded images; for tabular data use traverse and plot_traversal.")
    if n < 2 or not span > 0:
        raise ConfigError(f"n must be >= 2 and span > 0, got n = {n}, span = {span}.")
    if run.model.is_generative:
        axis = torch.linspace(-span, span, n, dtype=torch.float64)
        if spacing == "quantile":  # equal steps of probability, mapped back through the inverse Gaussian CDF
            axis = torch.special.ndtri(torch.linspace(*torch.special.ndtr(axis[[0, -1]]).tolist(), n))
        z1 = z2 = axis.float()
    else:
        codes = _posterior(run, _split(run, "train")[0])[0].numpy()
        lo, hi = np.percentile(codes, [1, 99], axis=0)  # (2,) each
        z1, z2 = (torch.linspace(float(lo[i]), float(hi[i]), n) for i in range(2))
    z2 = z2.flip(0)  # the top row holds the largest z2
    rows_z2, cols_z1 = torch.meshgrid(z2, z1, indexing="ij")  # (n, n) each
    z = torch.stack([cols_z1, rows_z2], dim=-1)  # (n, n, 2)
    images = run.decode(z.reshape(-1, 2)).reshape(n, n, *run.model.sample_shape)
    step = max(1, n // 8)  # label every few ticks so that the numbers do not collide
    # round() turns the float noise of a grid point at zero (1.7e-16) into 0; "+ 0.0" turns -0.0 into 0.
    cols, rows = (
        [f"{round(v, 6) + 0.0:.2g}" if i % step == 0 else "" for i, v in enumerate(a.tolist())] for a in (z1, z2)
    )
    what = "prior units" if run.model.is_generative else "the training codes' 1-99th percentiles"
    title = f"Decoded {n} x {n} grid over the latent space ({spacing} over {what})"
    return _draw_tiles(images, path, col_labels=cols, row_labels=rows, title=title, axis_names=("z1", "z2"))


# ---- beta sweep: the KL weight lambda = 1, 4, 10 of Herrmann's VAE lecture (Higgins et al. 2017's beta) ---


def beta_sweep(
    base_config: dict[str, Any] | None = None,
    betas: Sequence[float] = (1, 4, 10),
    *,
    out_dir: PathLike,
    latent_dim: int = 2,
    **train_kwargs: Any,
) -> Path:
    """Train one VAE per KL weight beta and draw their test-set latent codes side by side.

    Each run goes to ``out_dir/beta-<b>``; ``train_kwargs`` (e.g. ``data="digits"``, ``epochs=30``,
    ``overwrite=True``) reach :func:`aekit.train`. Writes ``out_dir/beta_sweep.png``, one panel per beta
    with shared axes (first two principal components when ``latent_dim`` > 2) and the prior's 1-sd circle,
    titled with the test reconstruction and KL in nats, and ``beta_sweep.json`` with those numbers.
    Returns the figure's path.
    """
    if not betas:
        raise ConfigError("betas must name at least one KL weight, e.g. (1, 4, 10).")
    out = Path(out_dir)
    panels, results = [], []
    for beta in betas:
        run = train(dict(base_config or {}), model="vae", beta=float(beta), latent_dim=latent_dim,
                    out=out / f"beta-{float(beta):g}", **train_kwargs)  # fmt: skip
        test, labels = run.load_data().split("test")
        metrics = run.evaluate(test)
        codes = _posterior(run, test)[0].numpy()
        if codes.shape[1] > 2:
            from sklearn.decomposition import PCA  # a heavy import, needed only here

            # Each run has its own axes of variation; projecting without centring keeps the prior's origin.
            codes = codes @ PCA(n_components=2).fit(codes).components_.T
        codes = np.pad(codes, ((0, 0), (0, 2 - codes.shape[1])))  # a 1-D code is drawn on the line z2 = 0
        panels.append((float(beta), codes, None if labels is None else labels.numpy(), metrics))
        results.append({"beta": float(beta), "run": str(run.path)} | {k: metrics[k] for k in ("recon_nats", "kl")})
    reach = max(1.2, max(float(np.abs(c).max()) for _, c, _, _ in panels) * 1.05)  # shared limits compare scales
    fig = _figure(max(3.9 * len(panels) + 1.3, 7.5), 4.6, layout="constrained")  # room for the title
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    handles = None
    for ax, (beta, codes, labels, metrics) in zip(axes, panels, strict=True):
        keep = _subsample(len(codes))
        colour, handles = _label_colours(None if labels is None else labels[keep])
        ax.scatter(codes[keep, 0], codes[keep, 1], c=colour, s=9, alpha=0.75, lw=0)
        ax.add_patch(Circle((0, 0), 1.0, fill=False, ls="--", lw=1.2, color="0.2"))
        names = ("PC1", "PC2") if latent_dim > 2 else ("z1", "z2" if latent_dim == 2 else "")
        ax.set(xlim=(-reach, reach), ylim=(-reach, reach), aspect="equal", xlabel=names[0], ylabel=names[1])
        ax.set_title(f"β = {beta:g}\nrecon {metrics['recon_nats']:.1f} nats, KL {metrics['kl']:.3g} nats", fontsize=11)
        ax.grid(alpha=0.3)
    if handles:
        axes[-1].legend(handles=handles, title="label", loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    fig.suptitle("Test-set posterior means for each KL weight β (dashed: 1 sd of the prior)", fontsize=12)
    atomic_write_text(out / "beta_sweep.json", json.dumps(results, indent=2))
    return _save(fig, out / "beta_sweep.png")


# ---- drawing helpers ---------------------------------------------------------------------------------------


def _label_colours(y: np.ndarray | None) -> tuple[Any, list | None]:
    """RGBA colours per point (classes get tab10/tab20 and legend handles), or one colour without labels."""
    colour, handles = _colours(y)
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
    imgs = np.clip(np.nan_to_num(_to_numpy(images).astype(np.float64)), 0, 1)
    r, c, ch, h, w = imgs.shape
    pad = 1 if max(h, w) <= 32 else 2
    canvas = np.ones((pad + r * (h + pad), pad + c * (w + pad), ch))  # white separates the tiles
    for i, j in np.ndindex(r, c):
        top, left = pad + i * (h + pad), pad + j * (w + pad)
        canvas[top : top + h, left : left + w] = imgs[i, j].transpose(1, 2, 0)
    # Inches per tile: small images are enlarged enough to read, the whole figure stays under ~16 in.
    tile = min(float(np.clip(max(h, w) / 40, 0.55, 1.0)), 14 / c, 14 / r)
    fig = _figure(c * tile + 1.2, r * tile + 1.1, layout="constrained")
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
    ax.set_title(title, fontsize=10, wrap=True)
    return _save(fig, path)


def _plot_curves(
    curves: np.ndarray, xs: np.ndarray, path: PathLike, *, titles: list[str], xlabel: str, title: str
) -> Path:
    """One panel per curve set ``curves[p]`` (V, D): the first features' values against ``xs`` (V,)."""
    count, d = len(curves), curves.shape[2]
    ncols, nrows = min(4, count), -(-count // min(4, count))
    fig = _figure(3.4 * ncols + 0.8, 2.9 * nrows + 0.6, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[count:]:
        ax.set_visible(False)
    for ax, panel, name in zip(axes, curves, titles, strict=False):
        for f in range(min(d, _MAX_FEATURES)):
            ax.plot(xs, panel[:, f], marker="o", ms=3, label=f"x{f}")
        ax.set(title=name, xlabel=xlabel, ylabel="decoded value")
        ax.grid(alpha=0.3)
    shown = f" (first {_MAX_FEATURES} of {d} features)" if d > _MAX_FEATURES else ""
    axes[0].legend(fontsize=7)
    fig.suptitle(title + shown, fontsize=11)
    return _save(fig, path)
