"""Side-by-side 2-D maps of a data set (codes, PCA, t-SNE, UMAP), coloured by label."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aekit.figures.canvas import class_colours, figure, save_figure

PathLike = str | Path


def plot_maps(
    panels: Sequence[Any], path: PathLike, *, labels: np.ndarray | None = None, title: str, colour_name: str = "label"
) -> Path:
    """One scatter per map (objects with ``points (N, 2)``, ``xlabel``, ``ylabel`` and ``title``), side by
    side, points coloured by ``labels`` with a legend (discrete) or a colour bar (continuous)."""
    n = len(panels)
    fig = figure(4.6 * n + (0.9 if labels is not None else 0), 4.6, layout="constrained")
    colour, handles = class_colours(labels)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, panel in zip(axes, panels, strict=True):
        pts = np.asarray(panel.points)
        drawn = ax.scatter(pts[:, 0], pts[:, 1], c=colour, s=6 if len(pts) > 2000 else 12, lw=0, alpha=0.8,
                           cmap="viridis" if handles is None else None)  # fmt: skip
        ax.set(title=panel.title, xlabel=panel.xlabel, ylabel=panel.ylabel)
        ax.title.set_fontsize(10)
    if handles is not None:
        fig.legend(handles=handles, title=colour_name, loc="outside right center", frameon=False)
    elif labels is not None:
        fig.colorbar(drawn, ax=list(axes), label=colour_name)
    fig.suptitle(title)
    return save_figure(fig, path)
