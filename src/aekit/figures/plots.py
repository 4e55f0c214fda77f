"""Plots of runs, reconstructions, samples and latent spaces, each written as one PNG file.

Every function writes its PNG atomically (through :mod:`aekit.figures.canvas`: Agg figures, never
pyplot) and returns the path. Arrays may be NumPy arrays or torch tensors.
"""

from __future__ import annotations

import math
import numbers
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator

from aekit.errors import DataError
from aekit.evaluation.glossary import describe
from aekit.figures.canvas import DPI, PathLike, class_colours, figure, floats, save_figure, subsample, to_numpy

Names = Sequence[str] | None
_MAX_PER_ROW = 16  # images per labelled row before the rows wrap
_SPLITS = {"train": ("tab:blue", "-"), "valid": ("tab:orange", "--")}  # colour, line style


# ---- image grids -----------------------------------------------------------------------------------------


def _images(x: Any, name: str) -> np.ndarray:
    """Validate images of shape (N, C, H, W); return them as (N, H, W, C) clipped to [0, 1]."""
    a = floats(x)
    if a.ndim != 4 or a.shape[1] not in (1, 3) or a.shape[0] == 0:
        raise DataError(
            f"{name} must have shape (N, C, H, W) with N >= 1 and C = 1 or 3, values in [0, 1]; got shape "
            f"{tuple(a.shape)}. Reshape grey images to (N, 1, H, W); tabular data (N, D) has its own plots."
        )
    return np.clip(np.nan_to_num(a), 0.0, 1.0).transpose(0, 2, 3, 1)


def _tile(blocks: list[tuple[str | None, np.ndarray, bool]], ncols: int) -> tuple[np.ndarray, list, int]:
    """Tile blocks ``(label, images (N, H, W, C), gap_before)`` on one white canvas, ``ncols`` per row.

    Returns the canvas (H, W, C), the ``(row_centre, label)`` pairs and the tile size in pixels.
    """
    h = max(b.shape[1] for _, b, _ in blocks)
    w = max(b.shape[2] for _, b, _ in blocks)
    pad, gap = (1 if max(h, w) <= 32 else 2), max(2, h // 4)  # the gap sets groups of rows apart
    nrows = [math.ceil(len(b) / ncols) for _, b, _ in blocks]
    height = pad + sum(r * (h + pad) for r in nrows) + gap * sum(g for _, _, g in blocks)
    channels = 3 if any(b.shape[3] == 3 for _, b, _ in blocks) else 1
    canvas = np.ones((height, pad + ncols * (w + pad), channels))
    labels, top = [], pad
    for (label, images, gap_before), rows in zip(blocks, nrows, strict=True):
        top += gap if gap_before else 0
        for i, img in enumerate(images):
            y, x = top + (i // ncols) * (h + pad), pad + (i % ncols) * (w + pad)
            canvas[y : y + img.shape[0], x : x + img.shape[1]] = img  # grey broadcasts to RGB
        if label:
            labels.append((top + (rows * (h + pad) - pad) / 2, label))
        top += rows * (h + pad)
    return canvas, labels, max(h, w)


def _draw_canvas(canvas: np.ndarray, labels: list, tile: int, title: str, path) -> Path:
    """Draw a tiled canvas pixel-exactly, enlarged by an integer factor so that small images stay visible."""
    ch, cw = canvas.shape[:2]
    # At least ~3 in overall and ~48 px per tile, at most ~16 in.
    scale = max(math.ceil(300 / max(ch, cw)), math.ceil(48 / tile))
    scale = max(1, min(scale, 1600 // max(ch, cw)))
    img_w, img_h = cw * scale, ch * scale
    label_w = max(len(text) for _, text in labels) * 8 + 16 if labels else 0
    fig_w = img_w + label_w
    lines = textwrap.wrap(title, max(20, fig_w // 9))
    fig_h = img_h + 18 * len(lines) + 14
    fig = figure(fig_w / DPI, fig_h / DPI)
    ax = fig.add_axes((label_w / fig_w, 0, img_w / fig_w, img_h / fig_h))
    grey = {"cmap": "gray", "vmin": 0, "vmax": 1}
    image = canvas.squeeze(2) if canvas.shape[2] == 1 else canvas
    ax.imshow(image, interpolation="nearest", aspect="auto", **grey)
    ax.set_axis_off()
    for y, text in labels:  # pixel centres sit on integers, edges on -0.5
        ax.text(-0.5 - 6 / scale, y - 0.5, text, ha="right", va="center", fontsize=10)
    fig.suptitle("\n".join(lines), x=0.5, y=1 - 6 / fig_h, ha="center", va="top", fontsize=11)
    return save_figure(fig, path)


def plot_image_grid(images: Any, path: PathLike, *, nrow: int | None = None, title: str | None = None) -> Path:
    """Write images as one tiled grid.

    Parameters
    ----------
    images : array or tensor (N, C, H, W), values in [0, 1], C = 1 (grey) or 3 (RGB).
    path : where to write the PNG.
    nrow : images per row (as in torchvision's ``make_grid``); default a near-square grid.
    title : caption above the grid (default: how many images it shows).
    """
    imgs = _images(images, "images")
    title = title or f"{len(imgs)} image{'s' if len(imgs) != 1 else ''}"
    ncols = nrow if nrow and nrow > 0 else math.ceil(math.sqrt(len(imgs)))
    canvas, _, tile = _tile([(None, imgs, False)], min(ncols, len(imgs)))
    return _draw_canvas(canvas, [], tile, title, path)


def plot_rows(rows: Sequence[tuple[str, Any]], path: PathLike, *, title: str | None = None) -> Path:
    """Write labelled rows of images (N, C, H, W), e.g. clean / corrupted / restored.

    Rows of more than 16 images wrap; the parts are interleaved so that the i-th images of all rows stay one
    above the other, and each group of rows is set apart by a small gap.
    """
    if not rows:
        raise DataError("plot_rows needs at least one (label, images) row.")
    named = [(str(label), _images(images, f"images of row '{label}'")) for label, images in rows]
    longest = max(len(images) for _, images in named)
    per_row = math.ceil(longest / math.ceil(longest / _MAX_PER_ROW))
    blocks = [
        (label, images[start : start + per_row], start > 0 and j == 0)
        for start in range(0, longest, per_row)
        for j, (label, images) in enumerate(named)
        if len(images) > start
    ]
    canvas, labels, tile = _tile(blocks, per_row)
    title = title or " / ".join(label for label, _ in named if label) or f"{len(named)} rows of images"
    return _draw_canvas(canvas, labels, tile, title, path)


def plot_reconstructions(
    originals: Any, reconstructions: Any, path: PathLike, *, n: int = 16, title: str | None = None
) -> Path:
    """Write the first ``n`` images (N, C, H, W) above their reconstructions, in pairs of labelled rows."""
    orig, recon = to_numpy(originals)[:n], to_numpy(reconstructions)[:n]
    if orig.shape != recon.shape:
        raise DataError(
            f"originals and reconstructions must have the same shape; got {tuple(orig.shape)} and "
            f"{tuple(recon.shape)} (first n={n} of each)."
        )
    title = title or "Original images (top of each pair) and their reconstructions"
    return plot_rows([("original", orig), ("reconstructed", recon)], path, title=title)


# ---- curves and latent spaces ----------------------------------------------------------------------------


def plot_loss_curves(metrics: Sequence[dict], path: PathLike) -> Path:
    """Write one panel per loss term (``loss`` first), train and valid curves against the epoch.

    ``metrics`` are a run's epoch records with keys ``train/<term>`` and ``valid/<term>``; other keys and
    values that are not numbers are skipped. Records without an ``epoch`` are numbered from 1.
    """
    series: dict[str, dict[str, tuple[list, list]]] = {}  # term -> split -> (epochs, values)
    for i, record in enumerate(metrics):
        epoch = record.get("epoch")
        x = epoch if isinstance(epoch, numbers.Real) and not isinstance(epoch, bool) else i + 1
        for key, value in record.items():
            split, _, term = str(key).partition("/")
            if split in _SPLITS and term and isinstance(value, numbers.Real) and not isinstance(value, bool):
                xs, ys = series.setdefault(term, {}).setdefault(split, ([], []))
                xs.append(x)
                ys.append(float(value))
    if not series:
        raise DataError(
            "No numeric 'train/<term>' or 'valid/<term>' values in the metrics records; expected records "
            "like {'epoch': 1, 'train/loss': 81.2, 'valid/loss': 84.0}."
        )
    terms = sorted(series, key=lambda term: term != "loss")  # stable: loss first, then first-seen order
    ncols = min(3, len(terms))
    nrows = math.ceil(len(terms) / ncols)
    fig = figure(4.2 * ncols, 3.2 * nrows, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(terms) :]:
        ax.set_visible(False)
    for ax, term in zip(axes, terms, strict=False):
        for split, (xs, ys) in series[term].items():
            colour, style = _SPLITS[split]
            marker = "o" if len(xs) <= 30 else None
            ax.plot(xs, ys, color=colour, linestyle=style, marker=marker, markersize=3, label=split)
        described = describe(term)
        unit = described[0] if described and described[0] else ""
        ax.set(title=term, xlabel="epoch", ylabel=f"{term} ({unit})" if unit else term)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_latent_scatter(codes: Any, labels: Any, path: PathLike, *, title: str | None = None) -> Path:
    """Write a picture of latent codes (N, K), coloured by ``labels`` (N,) when given (else None).

    K = 1: a histogram without labels, one jittered strip per class with them. K = 2: a scatter plot.
    K > 2: the first two principal components, fitted on all codes. Up to 20 integer classes get a legend,
    other labels a colour bar. At most 5,000 points are drawn, chosen with a fixed seed.
    """
    z = floats(codes)
    z = z[:, None] if z.ndim == 1 else z
    if z.ndim != 2 or 0 in z.shape or (z.shape[1] > 2 and len(z) < 2):
        raise DataError(f"codes must have shape (N, K) with N >= 1 (2 when K > 2); got shape {tuple(z.shape)}.")
    if not np.all(np.isfinite(z)):
        raise DataError("codes contain NaN or infinite values; the model has likely diverged.")
    n, k = z.shape
    y = None if labels is None else to_numpy(labels).reshape(-1)
    if y is not None and len(y) != n:
        raise DataError(f"labels must have one entry per code: got {len(y)} labels for {n} codes.")
    names = ["z1", "z2"]
    if k > 2:
        from sklearn.decomposition import PCA  # a heavy import, needed only here

        pca = PCA(n_components=2).fit(z)
        z = pca.transform(z)
        names = [f"PC{i + 1} ({100 * r:.1f}% var)" for i, r in enumerate(pca.explained_variance_ratio_)]
    keep = subsample(n)
    z, y = z[keep], (None if y is None else y[keep])
    fig = figure(7, 5.5, layout="constrained")
    ax = fig.add_subplot()
    if k == 1 and y is None:
        ax.hist(z[:, 0], bins=min(50, max(10, int(math.sqrt(len(z))))), color="tab:blue", alpha=0.8)
        ax.set_ylabel("count")
    else:
        colour, handles = class_colours(y)
        continuous = y is not None and handles is None
        if k > 1:
            height = z[:, 1]
        elif handles:  # one strip per class, jittered so that points do not hide each other
            classes, index = np.unique(y, return_inverse=True)
            height = index.reshape(-1) + np.random.default_rng(1).uniform(-0.3, 0.3, len(z))
            ax.set_yticks(range(len(classes)), [str(c) for c in classes])
        else:
            height = colour
        extra = {"cmap": "viridis"} if continuous else {}
        points = ax.scatter(z[:, 0], height, c=colour, s=6 if len(z) > 1000 else 16, alpha=0.7, lw=0, **extra)
        if continuous:
            fig.colorbar(points, ax=ax, label="label")
        elif handles and k > 1:
            ax.legend(handles=handles, title="label", loc="upper left", bbox_to_anchor=(1.01, 1))
        ax.set_ylabel(names[1] if k > 1 else "label")
    ax.set_xlabel(names[0])
    shown = f" — {len(z):,} of {n:,} points" if len(z) < n else ""
    ax.set_title((title or f"Latent codes (K = {k}{', PCA' if k > 2 else ''})") + shown)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


# ---- tabular data ----------------------------------------------------------------------------------------


def _tabular(x: Any, name: str) -> np.ndarray:
    a = floats(x)
    if a.ndim != 2 or a.shape[0] == 0:
        raise DataError(
            f"{name} must have shape (N, D) with N >= 1; got shape {tuple(a.shape)}. Reshape a single "
            "feature to (N, 1); for images use plot_reconstructions or plot_image_grid."
        )
    return a


def feature_label(i: int) -> str:
    """The name of feature ``i`` when the data's column names are unknown (0-based, as in the array)."""
    return f"feature {i}"


def _feature_panels(d: int, max_features: int, feature_names: Names, title: str) -> tuple:
    """A figure with one panel per shown feature, titled ``title`` and how many of the ``d`` features it
    shows; returns it, the panels and the features' names (the CSV's columns, else ``feature i``)."""
    if feature_names is not None and len(feature_names) != d:
        raise DataError(f"feature_names has {len(feature_names)} names for {d} features.")
    names = [str(s)[:30] for s in feature_names] if feature_names is not None else [feature_label(i) for i in range(d)]
    count = max(1, min(d, max_features))
    ncols = min(4, count)
    nrows = math.ceil(count / ncols)
    fig = figure(3.3 * ncols, 3.1 * nrows, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[count:]:
        ax.set_visible(False)
    shown = f"first {count} of {d} features" if count < d else f"all {d} feature{'s' if d != 1 else ''}"
    fig.suptitle(f"{title} ({shown})", fontsize=12)
    return fig, axes[:count], names[:count]


def plot_feature_reconstruction(
    originals: Any,
    reconstructions: Any,
    path: PathLike,
    *,
    max_features: int = 8,
    feature_names: Names = None,
    title: str = "Reconstruction per feature",
) -> Path:
    """Write true against reconstructed values for the first ``max_features`` features of tabular data (N, D).

    Each panel shows the line y = x and the feature's R² over all rows ('n/a' for a constant feature).
    ``feature_names`` (D,) name the panels, else ``feature i``; the title says how many features are shown.
    """
    true, recon = _tabular(originals, "originals"), _tabular(reconstructions, "reconstructions")
    if true.shape != recon.shape:
        raise DataError(f"originals and reconstructions must have the same shape; got {true.shape} and {recon.shape}.")
    fig, axes, names = _feature_panels(true.shape[1], max_features, feature_names, title)
    keep = subsample(len(true))
    for j, (ax, name) in enumerate(zip(axes, names, strict=False)):
        t, r = true[:, j], recon[:, j]
        ss_tot = np.sum((t - t.mean()) ** 2)
        r2 = f"{1 - np.sum((t - r) ** 2) / ss_tot:.3f}" if ss_tot > 0 else "n/a"
        ax.scatter(t[keep], r[keep], s=6, alpha=0.5, linewidths=0, color="tab:blue")
        lo, hi = np.nanmin([t.min(), r.min()]), np.nanmax([t.max(), r.max()])
        margin = 0.05 * (hi - lo) or 0.5
        lims = (lo - margin, hi + margin)
        ax.plot(lims, lims, color="0.4", linestyle="--", linewidth=1)
        ax.set(xlim=lims, ylim=lims, xlabel="true", ylabel="reconstructed")
        ax.set_title(f"{name}{chr(10) if len(name) > 16 else '   '}R² = {r2}", fontsize=11)
        ax.set_aspect("equal", adjustable="box")
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_feature_samples(
    data: Any,
    samples: Any,
    path: PathLike,
    *,
    max_features: int = 8,
    feature_names: Names = None,
    title: str = "Data vs samples per feature",
) -> Path:
    """Write per-feature histograms (densities) of data and model samples overlaid, first ``max_features``.

    ``feature_names`` (D,) name the panels, else ``feature i``; the title says how many features are shown."""
    real, fake = _tabular(data, "data"), _tabular(samples, "samples")
    if real.shape[1] != fake.shape[1]:
        raise DataError(f"data has {real.shape[1]} features but samples have {fake.shape[1]}.")
    fig, axes, names = _feature_panels(real.shape[1], max_features, feature_names, title)
    for j, (ax, name) in enumerate(zip(axes, names, strict=False)):
        d, s = real[:, j], fake[:, j]
        d, s = d[np.isfinite(d)], s[np.isfinite(s)]
        # The range covers the data and most samples: a few wild samples must not squash the histogram.
        lo, hi = (d.min(), d.max()) if len(d) else (0.0, 1.0)
        if len(s):
            lo, hi = min(lo, np.percentile(s, 0.5)), max(hi, np.percentile(s, 99.5))
        bins = np.linspace(lo, hi, 31) if hi > lo else np.linspace(lo - 0.5, hi + 0.5, 31)
        ax.hist(d, bins=bins, density=True, color="0.6", alpha=0.7, label="data")
        ax.hist(s, bins=bins, density=True, histtype="step", color="tab:red", linewidth=1.5, label="samples")
        ax.set(title=name, xlabel="value", ylabel="density")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return save_figure(fig, path)
