"""Anomaly scores: one number per sample, higher = less likely under the model.

Every model can be scored by its reconstruction error; what else a model offers it declares
(:attr:`aekit.models.Model.score_names`). The kinds:

- ``recon``: mean squared error per element of the point reconstruction (every model; the classic
  autoencoder detector, e.g. Sakurada & Yairi 2014);
- ``neg_elbo``: the negative ELBO with one posterior draw (models with a likelihood bound);
- ``nll_iw``: the importance-weighted bound on -log p(x) with ``iw_samples`` draws (Burda et al. 2016),
  the tightest density estimate a VAE gives (An & Cho 2015 score outliers by such reconstruction
  probabilities);
- ``free_energy``: min_z E(x, z) of an energy-based model (seed 000);
- ``neg_log_joint``: -log p(x | codes) - log p_prior(codes) of a VQ-VAE with a fitted prior.

``auto`` takes the best-founded one the model has: the IW bound, else the model's first own score,
else the reconstruction error. Scores are computed in one batched pass over the data (one encoder
pass per batch), kept on the device until the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from aekit.errors import ConfigError, DataError
from aekit.evaluation.bounds import iw_nll
from aekit.models.base import Model, device_of, seeded

SCORE_KINDS = ("recon", "neg_elbo", "nll_iw", "free_energy", "neg_log_joint")
DEFAULT_IW_SAMPLES = 100  # interactive default of the IW bound; the paper protocol is 5000 (docs/probabilistic.md)

WHY = {
    "nll_iw": "the importance-weighted bound on -log p(x) (Burda et al. 2016): the model's density estimate",
    "neg_elbo": "the negative ELBO: a bound on -log p(x) with one posterior draw",
    "free_energy": "the free energy min_z E(x, z) of the energy-based model",
    "neg_log_joint": "-log p(x | codes) - log p(codes) under the VQ-VAE and its fitted prior",
    "recon": "the reconstruction error (mean squared error per element): the model defines no density",
}


def score_kinds(model: Model) -> tuple[str, ...]:
    """The score kinds ``model`` offers, best-founded first."""
    bound = ("nll_iw",) if model.capabilities.likelihood_bound else ()
    own = tuple(k for k in model.score_names if k not in bound)
    return (*bound, *own, "recon")


def resolve_kind(model: Model, kind: str) -> str:
    """``kind``, or for ``auto`` the model's best-founded score; an unknown or unavailable kind raises ConfigError."""
    kinds = score_kinds(model)
    if kind == "auto":
        return kinds[0]
    if kind not in SCORE_KINDS:
        raise ConfigError(f"Unknown score '{kind}'. Choose one of: auto, {', '.join(SCORE_KINDS)}.")
    if kind not in kinds:
        hint = {
            "nll_iw": "it has no likelihood bound (train a vae)",
            "neg_elbo": "it has no likelihood bound (train a vae)",
            "free_energy": "it is not energy-based (train a latent-ebm)",
            "neg_log_joint": "it has no fitted prior over discrete codes (a vq-vae after aekit train-prior)",
        }[kind]
        raise ConfigError(
            f"A '{model.name}' model cannot give the '{kind}' score: {hint}. Its scores: {', '.join(kinds)} (or auto)."
        )
    return kind


@torch.no_grad()
def score_samples(
    model: Model,
    x: Any,
    y: torch.Tensor | None = None,
    *,
    kind: str = "auto",
    iw_samples: int = DEFAULT_IW_SAMPLES,
    seed: int = 0,
    batch_size: int = 1024,
) -> np.ndarray:
    """Anomaly scores ``(N,)`` (float64) of samples ``x`` under ``model``; see the module docstring.

    ``x`` is normalised as in training; ``y`` holds the labels of a conditional model."""
    kind = resolve_kind(model, kind)
    model.eval()
    device = device_of(model)
    if kind == "nll_iw":
        if iw_samples < 1:
            raise ConfigError(f"The nll_iw score needs --iw-samples >= 1, got {iw_samples}.")
        return iw_nll(model, x, y, iw_samples, seed=seed).double().numpy()
    out = []
    with seeded(seed, device):
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(device, torch.float32)
            yb = None if y is None else y[i : i + batch_size].to(device)
            if kind == "recon":
                out.append((model.reconstruct(xb, yb) - xb).flatten(1).square().mean(1))
            else:
                out.append(model.sample_scores(xb, yb)[kind])
    scores = torch.cat(out).double().cpu().numpy()
    if not np.isfinite(scores).all():
        raise DataError(
            f"{int((~np.isfinite(scores)).sum())} sample(s) got a non-finite '{kind}' score; the data holds values "
            "the model's likelihood cannot take (check the input range), or the model diverged."
        )
    return scores


def contamination_threshold(reference: np.ndarray, contamination: float) -> float:
    """The score above which a fraction ``contamination`` of the ``reference`` scores lie (PyOD's rule,
    applied to held-out normal data rather than to the data the model was fitted on)."""
    check_contamination(contamination)
    return float(np.quantile(reference, 1.0 - contamination))


def check_contamination(contamination: float) -> None:
    if not 0 < contamination <= 0.5:
        raise ConfigError(
            f"--contamination is the expected fraction of outliers and must lie in (0, 0.5], got {contamination}."
        )


@dataclass
class Detection:
    """How well scores separate known outliers (``is_outlier`` true) from the rest."""

    auroc: float
    average_precision: float
    outliers: int
    inliers: int


def detection_metrics(scores: np.ndarray, is_outlier: np.ndarray) -> Detection:
    """AUROC and average precision of ``scores`` for the binary truth ``is_outlier`` (outliers positive)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    is_outlier = np.asarray(is_outlier, dtype=bool)
    positives = int(is_outlier.sum())
    if positives == 0 or positives == len(is_outlier):
        what = "no outliers" if positives == 0 else "only outliers"
        raise DataError(
            f"AUROC needs both outliers and inliers among the scored samples, but the labels mark {what} "
            f"({len(is_outlier)} samples). Check --outlier-label, or score a split holding both."
        )
    return Detection(
        float(roc_auc_score(is_outlier, scores)),
        float(average_precision_score(is_outlier, scores)),
        positives,
        len(is_outlier) - positives,
    )
