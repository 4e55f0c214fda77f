"""The toy of seed 000: points near an ellipse, y = g(z) + noise with g(z) = (w1 cos z, w2 sin z).

One hidden angle z generates each 2-D observation, so a model with a 1-D latent can explain the data
exactly, and the learned decoder curve can be compared with the true one by
:func:`distance_to_ellipse`. The data is left in its own units (never standardised): standardising
would rescale the axes and the true curve would no longer be ``(w1 cos z, w2 sin z)``.
"""

from __future__ import annotations

import math

import numpy as np

from aekit.data.arrays import split_arrays
from aekit.data.base import Dataset
from aekit.errors import ConfigError


def _check_axes(w1: float, w2: float) -> None:
    for name, value in (("w1", w1), ("w2", w2)):
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"Expected the semi-axis {name} > 0, got {value!r}. Pass e.g. {name}=2.0.")


def load_ellipse(
    *,
    n: int = 2000,
    w1: float = 2.0,
    w2: float = 1.0,
    noise: float = 0.05,
    seed: int = 0,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
) -> Dataset:
    """``n`` points ``(w1 cos z, w2 sin z) + N(0, noise^2 I)`` with ``z ~ U[0, 2 pi)``, float32 ``(n, 2)``.

    The same ``seed`` draws the points and the split permutation. The data set is tabular, has no
    labels and no normalisation (``normalization == {}``): :func:`aekit.data.load_dataset` keeps it
    in its own units under ``normalize="auto"``, like images.
    """
    _check_axes(w1, w2)
    if not (isinstance(n, int) and n >= 3):
        raise ConfigError(f"Expected n >= 3 points for the ellipse, got {n!r}. Pass e.g. n=2000.")
    if not (math.isfinite(noise) and noise >= 0):
        raise ConfigError(f"Expected noise >= 0 (a standard deviation), got {noise!r}. Pass e.g. noise=0.05.")
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.0, 2 * math.pi, n)
    y = np.stack([w1 * np.cos(z), w2 * np.sin(z)], 1) + noise * rng.standard_normal((n, 2))
    return split_arrays(
        "ellipse", "tabular", y.astype(np.float32), None, seed=seed, valid_fraction=valid_fraction,
        test_fraction=test_fraction, source="the ellipse data set",
    )  # fmt: skip


def true_curve(m: int = 1000, *, w1: float = 2.0, w2: float = 1.0) -> np.ndarray:
    """``m`` points ``(w1 cos t, w2 sin t)`` at evenly spaced angles in [0, 2 pi): ``(m, 2)`` float64."""
    _check_axes(w1, w2)
    t = np.linspace(0.0, 2 * math.pi, m, endpoint=False)
    return np.stack([w1 * np.cos(t), w2 * np.sin(t)], 1)


def distance_to_ellipse(points: np.ndarray, w1: float = 2.0, w2: float = 1.0) -> np.ndarray:
    """Euclidean distance of each point ``(N, 2)`` to the nearest point of the ellipse: ``(N,)``.

    The angle of the nearest point is found on a grid of 2,048 angles, then refined by a golden-section
    search over the two grid cells around it (where the squared distance is unimodal), to ~1e-12 rad.
    """
    _check_axes(w1, w2)
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ConfigError(f"Expected points of shape (N, 2), got {p.shape}. Reshape the points to (N, 2).")
    x, y = p[:, :1], p[:, 1:]  # (N, 1): broadcast against angles

    def sq_dist(t: np.ndarray) -> np.ndarray:
        return (x - w1 * np.cos(t)) ** 2 + (y - w2 * np.sin(t)) ** 2

    m = 2048
    step = 2 * math.pi / m
    grid = np.arange(m) * step
    best = grid[np.argmin(sq_dist(grid[None, :]), 1)][:, None]  # (N, 1)
    lo, hi = best - step, best + step
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(60):  # each iteration keeps 0.618 of the bracket: 2 step * 0.618^60 ~ 1e-15
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        left = sq_dist(a) < sq_dist(b)
        hi, lo = np.where(left, b, hi), np.where(left, lo, a)
    return np.sqrt(sq_dist((lo + hi) / 2)[:, 0])
