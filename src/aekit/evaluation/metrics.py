"""Test metrics of any model. All per-sample quantities are averaged over the samples evaluated.

Every model:

- ``mse``: mean squared error per element between x and its reconstruction.
- ``sse``: sum of squared errors per sample (over its elements), averaged over samples.
- ``psnr``: 10 log10(range^2 / mse) in dB, with range = 1 for data in [0, 1], else the data's range.
- ``recon_nats``: -log p(x | z) per sample in nats; z is the code (AE) or one posterior draw (VAE).

Then each model adds its own (:meth:`aekit.models.Model.test_metrics`):

- a likelihood bound (VAE): ``kl``, ``neg_elbo`` (recon_nats + kl, the unweighted bound whatever beta
  the model was trained with), ``bits_per_dim_elbo`` (neg_elbo in bits per data dimension),
  ``kl_per_dim``, ``active_units`` (latent dimensions
  whose posterior mean varies over the data with variance above 0.01, Burda et al. 2016), and with
  ``iw_samples`` = k > 0 ``nll_iw``: the importance-weighted bound on -log p(x) with k samples
  (:mod:`aekit.evaluation.bounds`) and ``bits_per_dim_iw``, the same in bits per data dimension;
- a deterministic code: ``jacobian_norm`` (mean ||dh/dx||_F), ``mean_activation`` (per unit too) and
  ``fraction_near_zero``;
- discrete codes (VQ-VAE): ``perplexity``, ``usage``, and with a fitted prior ``prior_nll`` and
  ``prior_bits_per_code`` against ``uniform_bits_per_code``;
- an energy-based model: ``free_energy``, the mean of min_z E(x, z).

The reconstruction that ``mse`` scores is the decoder's mean at the point code (the posterior mean
for a VAE), which is what ``aekit reconstruct`` shows. Posterior draws use a fixed seed, so the same
run and data always give the same numbers.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from aekit.data.arrays import value_range
from aekit.evaluation.bounds import iw_nll
from aekit.models.base import Model, device_of, seeded

# Metrics in this order first, then the model's own in its order.
ORDER = ("mse", "sse", "psnr", "recon_nats", "kl", "neg_elbo", "nll_iw", "bits_per_dim_elbo", "bits_per_dim_iw",
         "jacobian_norm",
         "free_energy")  # fmt: skip


def evaluate(
    model: Model,
    x: Any,
    *,
    y: torch.Tensor | None = None,
    batch_size: int = 1024,
    seed: int = 0,
    data_range: float | None = None,
    iw_samples: int = 0,
    per_sample: dict[str, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Metrics of ``model`` on samples ``x``; see the module docstring for their definitions.

    ``y``: labels of a conditional model. ``iw_samples`` > 0 adds ``nll_iw`` (models with a likelihood bound).
    ``per_sample``: a dict that receives, from the same pass, each sample's ``code`` (N, K), its ``recon``
    anomaly score (mean squared error per element), the model's own scores (:attr:`Model.score_names`)
    and ``nll_iw``: what a comparison needs besides the metrics, without encoding the data again.
    """
    model.eval()
    device = device_of(model)
    collected: dict[str, list[torch.Tensor]] = {"sse": []}
    with seeded(seed, device):
        with torch.no_grad():
            # Everything stays on the device until the split is done: no host sync per batch.
            for i in range(0, len(x), batch_size):
                xb = x[i : i + batch_size].to(device, torch.float32, non_blocking=True)
                yb = None if y is None else y[i : i + batch_size].to(device, non_blocking=True)
                out = model.evaluation(xb, yb)  # one encoder pass: terms, codes, reconstruction
                collected["sse"].append((out.recon - xb).flatten(1).square().sum(1))
                for name, value in {**out.terms, **out.stats}.items():
                    collected.setdefault(name, []).append(value)
                if per_sample is not None:
                    for name, value in {"point_code": out.code, **model.scores_of(out)}.items():
                        collected.setdefault(f"keep/{name}", []).append(value)
        gathered = {name: torch.cat(parts).cpu() for name, parts in collected.items()}
        kept = {name[5:]: gathered.pop(name) for name in list(gathered) if name.startswith("keep/")}
        sse_per_sample = gathered.pop("sse").double()
        sse = sse_per_sample.sum()
        n, dims = len(x), math.prod(model.sample_shape)
        metrics: dict[str, Any] = {"sse": float(sse) / n}
        metrics["mse"] = metrics["sse"] / dims
        metrics["psnr"] = psnr(metrics["mse"], data_range if data_range is not None else psnr_range(*value_range(x)))
        metrics["recon_nats"] = float(gathered["recon"].double().mean())
        metrics.update(model.test_metrics(gathered, x, y))
        if per_sample is not None:
            per_sample.update(kept)
            per_sample["code"] = per_sample.pop("point_code")
            per_sample["recon"] = sse_per_sample / dims
        if iw_samples > 0 and model.capabilities.likelihood_bound:
            bound = iw_nll(model, x, y, iw_samples, seed=seed)
            if per_sample is not None:
                per_sample["nll_iw"] = bound.double()
            metrics["nll_iw"] = float(bound.mean())
            metrics["iw_samples"] = iw_samples
            metrics["bits_per_dim_iw"] = metrics["nll_iw"] / (dims * math.log(2))
    metrics["n"] = n
    return {k: metrics[k] for k in ORDER if k in metrics} | {k: v for k, v in metrics.items() if k not in ORDER}


def psnr_range(lo: float, hi: float) -> float:
    """The peak value of the PSNR for data spanning [lo, hi]: 1 for data in [0, 1], else hi - lo."""
    return 1.0 if lo >= 0 and hi <= 1 else hi - lo


def psnr(mse: float, data_range: float) -> float:
    """10 log10(range^2 / mse) in dB (infinite for a perfect reconstruction; NaN, undefined, for data
    without a range: every value the same)."""
    if not data_range > 0:
        return math.nan
    return 10 * math.log10(data_range**2 / mse) if mse > 0 else math.inf


@torch.no_grad()
def encode_all(model: Model, x: Any, y: torch.Tensor | None = None, batch_size: int = 1024) -> torch.Tensor:
    """The point codes ``(N, K)`` of samples ``x`` (normalised as in training), in batches, on the CPU."""
    model.eval()
    device = device_of(model)
    out = []
    for i in range(0, len(x), batch_size):
        yb = None if y is None else y[i : i + batch_size].to(device)
        out.append(model.encode(x[i : i + batch_size].to(device, torch.float32), yb))
    return torch.cat(out).cpu() if out else torch.zeros(0, model.latent_dim)


def mean_image_mse(train: torch.Tensor, test: torch.Tensor) -> float:
    """The baseline: MSE per element of predicting every test sample by the training mean."""
    return float((test - train.mean(0, keepdim=True)).square().mean())
