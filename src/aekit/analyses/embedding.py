"""2-D maps of a run's data: its codes, and the baselines that put them in context (seed 002).

Methods:

- ``latent``: the codes themselves when they are 2-D; wider codes are shown on their first two
  principal axes (a linear view: nothing is invented);
- ``pca``: PCA of the *data* fitted on the run's training split, the linear embedding an
  autoencoder should beat;
- ``tsne``: t-SNE (van der Maaten & Hinton 2008) of the codes, scikit-learn's implementation;
- ``umap``: UMAP (McInnes et al. 2018) of the codes, from the optional ``umap-learn`` package.

t-SNE and UMAP keep neighbourhoods, not distances or densities: read clusters from them, not gaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from aekit.data import in_memory
from aekit.errors import ConfigError, MissingDependencyError
from aekit.evaluation.metrics import encode_all
from aekit.runs.run import Run

METHODS = ("latent", "pca", "tsne", "umap")


@dataclass
class Map2D:
    """Points ``(N, 2)`` of one method, with the axis names and a title for the panel."""

    method: str
    points: np.ndarray
    xlabel: str
    ylabel: str
    title: str


def check_methods(methods: list[str]) -> list[str]:
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ConfigError(f"Unknown --method {','.join(unknown) or '(none)'}. Choose from: {', '.join(METHODS)}.")
    if "umap" in methods:
        require_umap()
    return methods


def require_umap() -> Any:
    try:
        import umap
    except ImportError:
        raise MissingDependencyError(
            "--method umap needs the optional package umap-learn: pip install 'aekit[umap]' "
            "(or pip install umap-learn). --method tsne gives a similar map without it."
        ) from None
    return umap


def subsample(n: int, max_points: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``max_points`` of ``n`` samples, drawn with ``seed`` (all when fewer)."""
    if max_points < 1:
        raise ConfigError(f"--max-points must be at least 1, got {max_points}.")
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))


def embed(run: Run, x: torch.Tensor, y: torch.Tensor | None, methods: list[str], *, seed: int = 0) -> list[Map2D]:
    """The 2-D maps of samples ``x`` (normalised as in training) by each of ``methods``."""
    check_methods(methods)
    codes = None
    if any(m != "pca" for m in methods):
        codes = encode_all(run.model, x, run.labels_for_model(y)).double().numpy()
    k = run.model.latent_dim
    maps = []
    for method in methods:
        if method == "latent":
            if k == 2:
                maps.append(Map2D(method, codes, "z1", "z2", f"codes of the {run.model.name} (k = 2)"))
            else:
                points, ratio = _pca(codes, codes)
                maps.append(Map2D(method, points, f"code PC1 ({ratio[0]:.0%} of variance)",
                                  f"code PC2 ({ratio[1]:.0%})", f"codes of the {run.model.name} (k = {k}), "
                                  "first two principal axes"))  # fmt: skip
        elif method == "pca":
            train = in_memory(run.load_data().train).flatten(1).double().numpy()
            points, ratio = _pca(train, x.flatten(1).double().numpy())
            maps.append(Map2D(method, points, f"PC1 ({ratio[0]:.0%} of variance)", f"PC2 ({ratio[1]:.0%})",
                              "PCA of the data (fitted on the training split)"))  # fmt: skip
        elif method == "tsne":
            from sklearn.manifold import TSNE

            perplexity = float(min(30, max(2, (len(codes) - 1) // 3)))
            points = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(codes)
            maps.append(Map2D(method, points, "t-SNE 1", "t-SNE 2", f"t-SNE of the {run.model.name} codes (k = {k})"))
        else:
            reducer = require_umap().UMAP(n_components=2, random_state=seed)
            points = reducer.fit_transform(codes)
            maps.append(Map2D(method, points, "UMAP 1", "UMAP 2", f"UMAP of the {run.model.name} codes (k = {k})"))
    return maps


def _pca(fit: np.ndarray, apply: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.decomposition import PCA

    if fit.shape[1] < 2:
        raise ConfigError("A 2-D map needs at least two dimensions; these codes or data have one.")
    pca = PCA(2).fit(fit)
    return pca.transform(apply), pca.explained_variance_ratio_
