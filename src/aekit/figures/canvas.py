"""The drawing surface every figure shares: Agg figures without pyplot, atomic PNG writes, array helpers.

Figures are built from :class:`matplotlib.figure.Figure` and drawn by the Agg canvas directly, never
through ``pyplot``: the user's backend and global state stay untouched, no display is needed, no
figure leaks. Arrays may be NumPy arrays or torch tensors.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from aekit.fsutil import atomic_path

DPI = 100
PathLike = str | os.PathLike
MAX_POINTS = 5000  # scatter plots are thinned beyond this: more points only add ink


def to_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a NumPy array; torch tensors are detached and copied to the CPU."""
    if hasattr(x, "detach"):  # a torch.Tensor, recognised without importing torch
        x = x.detach().cpu()
        x = (x.float() if x.is_floating_point() else x).numpy()  # NumPy has no bfloat16
    return np.asarray(x)


def floats(x: Any) -> np.ndarray:
    return to_numpy(x).astype(np.float64, copy=False)


def figure(width: float, height: float, **kwargs: Any) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, **kwargs)
    FigureCanvasAgg(fig)  # attaches itself to the figure
    return fig


def unlabelled(fig: Figure) -> list[str]:
    """What a reader could not tell from ``fig``: one line per axes that holds data but lacks a title
    (its own or the figure's suptitle) or a label on a visible x or y axis. Empty when all is labelled.

    Image grids drawn with the axis off need only a title; colour bars carry their own label."""
    figure_title = fig.get_suptitle().strip()
    problems = []
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible() or ax.get_label() == "<colorbar>":
            continue
        if not (ax.lines or ax.collections or ax.images or ax.patches):
            continue  # nothing drawn: a spare panel
        name = f"axes {i}" + (f" ('{ax.get_title()}')" if ax.get_title() else "")
        if not (figure_title or any(ax.get_title(loc).strip() for loc in ("left", "center", "right"))):
            problems.append(f"{name} has no title and the figure no suptitle")
        if not ax.axison:
            continue
        for axis, label in ((ax.xaxis, ax.get_xlabel()), (ax.yaxis, ax.get_ylabel())):
            if axis.get_visible() and not label.strip():
                problems.append(f"{name} has no {axis.axis_name}-axis label")
    return problems


def save_figure(fig: Figure, path: PathLike) -> Path:
    """Write ``fig`` to ``path`` as a PNG, atomically; return the path.

    Every figure aekit draws goes through here. A figure whose data axes lack a title or an axis label
    is a bug in the figure's code, so it raises :class:`AssertionError` naming the axes."""
    problems = unlabelled(fig)
    if problems:
        raise AssertionError(f"The figure for {Path(path).name} is not fully labelled: {'; '.join(problems)}.")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, facecolor="white")
    return Path(path)


def subsample(n: int) -> np.ndarray:
    """At most ``MAX_POINTS`` row indices, shuffled with a fixed seed (no class is always drawn on top)."""
    return np.random.default_rng(0).permutation(n)[:MAX_POINTS]


def class_colours(y: np.ndarray | None) -> tuple[Any, list[Line2D] | None]:
    """Scatter colours and legend handles: up to 20 discrete classes get tab10/tab20 and a legend;
    other labels come back as numbers for a colour map (handles None); no labels give one colour."""
    if y is None:
        return "tab:blue", None
    numeric = np.issubdtype(y.dtype, np.number) or y.dtype == bool
    classes, index = np.unique(y, return_inverse=True)
    index = index.reshape(-1)
    if len(classes) > 20 or (numeric and np.any(np.mod(y.astype(np.float64), 1))):
        return (y.astype(np.float64) if numeric else index.astype(np.float64)), None
    cmap = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
    return cmap(index), [Line2D([], [], ls="", marker="o", color=cmap(i), label=str(c)) for i, c in enumerate(classes)]
