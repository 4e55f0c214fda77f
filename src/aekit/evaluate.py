"""Test-set metrics. All per-sample quantities are averaged over the samples evaluated.

- ``mse``: mean squared error per element between x and its reconstruction.
- ``sse``: sum of squared errors per sample (over its elements), averaged over samples.
- ``psnr``: 10 log10(range^2 / mse) in dB, with range = 1 for data in [0, 1], else the data's range.
- ``recon_nats``: -log p(x | z) per sample in nats; z is the code (AE) or one posterior draw (VAE).
- ``kl``, ``neg_elbo`` (VAE only): KL(q(z|x) || p(z)) and recon_nats + kl, per sample in nats
  (the unweighted bound, whatever beta the model was trained with).
- ``bits_per_dim`` (VAE only): neg_elbo / (number of dimensions * ln 2).

The reconstruction that ``mse`` scores is the decoder's mean at the code (the posterior mean for a
VAE), which is what ``aekit reconstruct`` shows. Posterior draws use a fixed seed, so the same
run and data always give the same numbers.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from aekit.models import Autoencoder
from aekit.penalties import activation_stats, jacobian_frobenius_sq

JACOBIAN_SAMPLES = 1000  # the Jacobian is costly; its mean norm is stable on this many samples


def evaluate(
    model: Autoencoder,
    x: torch.Tensor,
    *,
    batch_size: int = 1024,
    seed: int = 0,
    data_range: float | None = None,
) -> dict[str, Any]:
    """Metrics of ``model`` on samples ``x``; see the module docstring for their definitions."""
    model.eval()
    device = next(model.parameters()).device
    sums: dict[str, float] = {}
    codes = []
    with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(device, torch.float32)
            err = (model.reconstruct(xb) - xb).flatten(1).square()  # (B, D)
            terms = model.loss_terms(xb)
            batch = {"sse": err.sum(1), "recon_nats": terms["recon"]}
            if "kl" in terms:
                batch["kl"] = terms["kl"]
            else:
                codes.append(model.encode(xb).cpu())
            for k, v in batch.items():
                sums[k] = sums.get(k, 0.0) + float(v.sum())
    n, dims = len(x), math.prod(model.sample_shape)
    metrics: dict[str, Any] = {k: v / n for k, v in sums.items()}
    metrics["mse"] = metrics["sse"] / dims
    if data_range is None:
        lo, hi = float(x.min()), float(x.max())
        data_range = 1.0 if lo >= 0 and hi <= 1 else hi - lo
    metrics["psnr"] = 10 * math.log10(data_range**2 / metrics["mse"]) if metrics["mse"] > 0 else math.inf
    if "kl" in metrics:
        metrics["neg_elbo"] = metrics["recon_nats"] + metrics["kl"]
        metrics["bits_per_dim"] = metrics["neg_elbo"] / (dims * math.log(2))
    else:
        sub = x[:JACOBIAN_SAMPLES].to(device, torch.float32)
        fro_sq = [
            jacobian_frobenius_sq(model, sub[i : i + 250], projections=16, create_graph=False).detach()
            for i in range(0, len(sub), 250)
        ]
        metrics["jacobian_norm"] = float(torch.cat(fro_sq).sqrt().mean())
        metrics.update(activation_stats(torch.cat(codes)))
    metrics["n"] = n
    order = ["mse", "sse", "psnr", "recon_nats", "kl", "neg_elbo", "bits_per_dim", "jacobian_norm"]
    return {k: metrics[k] for k in order if k in metrics} | {k: v for k, v in metrics.items() if k not in order}


def mean_image_mse(train: torch.Tensor, test: torch.Tensor) -> float:
    """The baseline: MSE per element of predicting every test sample by the training mean."""
    return float((test - train.mean(0, keepdim=True)).square().mean())
