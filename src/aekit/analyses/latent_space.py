"""Pictures of a trained run's latent space: traversals, interpolations, posterior bubbles, the decoded
manifold, and a sweep over the KL weight beta. This module computes what to draw from a
:class:`aekit.Run`; :mod:`aekit.figures.latent_plots` draws it.

Data points are picked by their position in a split of the run's own data. Codes are the model's
point codes (posterior means of a VAE, the code h of a plain autoencoder). Traversals and
interpolations suit any autoencoder; bubbles need a distribution q(z|x) (the ``posterior``
capability), the prior-unit grid of the manifold a continuous prior.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aekit.errors import ConfigError, DataError, check_choice
from aekit.figures import latent_plots
from aekit.figures.canvas import PathLike
from aekit.figures.latent_plots import check_values, plot_interpolation, plot_traversal
from aekit.fsutil import atomic_write_text
from aekit.models.base import device_of
from aekit.runs.layout import dumps
from aekit.runs.run import Run, train

TRAVERSAL_VALUES = tuple(np.linspace(-3, 3, 9).tolist())  # -3..3 prior standard deviations

__all__ = [
    "TRAVERSAL_VALUES",
    "beta_sweep",
    "interpolate",
    "plot_bubbles",
    "plot_interpolation",
    "plot_manifold",
    "plot_traversal",
    "traverse",
]


# ---- codes of data points ----------------------------------------------------------------------------------


@torch.no_grad()
def _codes(run: Run, x: torch.Tensor) -> torch.Tensor:
    """Point codes ``(N, K)`` of normalised samples, on the CPU."""
    run.model.eval()
    device = device_of(run.model)
    return torch.cat([run.model.encode(x[i : i + 1024].to(device)).cpu() for i in range(0, len(x), 1024)])


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
    return _codes(run, x[list(indices.values())])


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
    values = check_values(values, "values")
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


# ---- 2-D latent spaces -------------------------------------------------------------------------------------


def plot_bubbles(run: Run, path: PathLike, *, n: int = 300, split: str = "test") -> Path:
    """Write the posteriors of ``n`` samples of a model with a 2-D probabilistic latent as bubbles
    (:func:`aekit.figures.latent_plots.plot_bubbles`): mean and one standard deviation of q(z|x) each.

    A model with point codes raises :class:`~aekit.errors.CapabilityError`."""
    _require_2d(run, "plot_bubbles")
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}.")
    x, labels = _split(run, split)
    run.model.eval()
    with torch.no_grad():
        posterior = run.model.posterior(x[:n].to(device_of(run.model)))
    title = f"Posterior bubbles: mean ± 1 sd of q(z|x) for {len(posterior.mean)} {split} samples"
    return latent_plots.plot_bubbles(posterior.mean.cpu(), posterior.stddev.cpu(), path,
                                     labels=None if labels is None else labels[:n], title=title)  # fmt: skip


def plot_manifold(run: Run, path: PathLike, *, n: int = 15, span: float = 3.0, spacing: str = "linear") -> Path:
    """Write the images decoded from an ``n`` x ``n`` grid over a 2-D latent space.

    For a model with a continuous prior the grid covers [-span, span]^2 of prior units: evenly
    (``spacing="linear"``, matching the axes of :func:`plot_bubbles`) or at evenly spaced prior
    quantiles (``"quantile"``, as Kingma & Welling 2014, Fig. 4: each cell then holds equal prior
    mass). A plain AE has no prior, so its grid covers the 1st to 99th percentiles of its training
    codes instead. z2 grows upwards, as in a scatter plot.
    """
    check_choice("spacing", spacing, ("linear", "quantile"))
    _require_2d(run, "plot_manifold")
    if run.data_info.get("kind") != "image":
        raise DataError("plot_manifold tiles decoded images; for tabular data use traverse and plot_traversal.")
    if n < 2 or not span > 0:
        raise ConfigError(f"n must be >= 2 and span > 0, got n = {n}, span = {span}.")
    caps = run.model.capabilities
    prior_grid = caps.generative and caps.posterior  # a continuous prior to measure the grid in
    if prior_grid:
        axis = torch.linspace(-span, span, n, dtype=torch.float64)
        if spacing == "quantile":  # equal steps of probability, mapped back through the prior's quantiles
            axis = run.model.prior_icdf(torch.linspace(*torch.special.ndtr(axis[[0, -1]]).tolist(), n)).double()
        z1 = z2 = axis.float()
    else:
        codes = _codes(run, _split(run, "train")[0]).numpy()
        lo, hi = np.percentile(codes, [1, 99], axis=0)  # (2,) each
        z1, z2 = (torch.linspace(float(lo[i]), float(hi[i]), n) for i in range(2))
    z2 = z2.flip(0)  # the top row holds the largest z2
    rows_z2, cols_z1 = torch.meshgrid(z2, z1, indexing="ij")  # (n, n) each
    z = torch.stack([cols_z1, rows_z2], dim=-1)  # (n, n, 2)
    images = run.decode(z.reshape(-1, 2)).reshape(n, n, *run.model.sample_shape)
    what = "prior units" if prior_grid else "the training codes' 1-99th percentiles"
    title = f"Decoded {n} x {n} grid over the latent space ({spacing} over {what})"
    return latent_plots.plot_manifold(images, z1, z2, path, title=title)


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
        codes = _codes(run, test).numpy()
        if codes.shape[1] > 2:
            from sklearn.decomposition import PCA  # a heavy import, needed only here

            # Each run has its own axes of variation; projecting without centring keeps the prior's origin.
            codes = codes @ PCA(n_components=2).fit(codes).components_.T
        codes = np.pad(codes, ((0, 0), (0, 2 - codes.shape[1])))  # a 1-D code is drawn on the line z2 = 0
        panels.append((float(beta), codes, None if labels is None else labels.numpy(), metrics))
        results.append({"beta": float(beta), "run": str(run.path)} | {k: metrics[k] for k in ("recon_nats", "kl")})
    atomic_write_text(out / "beta_sweep.json", dumps(results, indent=2))
    return latent_plots.plot_beta_sweep(panels, out / "beta_sweep.png", latent_dim=latent_dim)
