"""Test-set metrics. All per-sample quantities are averaged over the samples evaluated.

- ``mse``: mean squared error per element between x and its reconstruction.
- ``sse``: sum of squared errors per sample (over its elements), averaged over samples.
- ``psnr``: 10 log10(range^2 / mse) in dB, with range = 1 for data in [0, 1], else the data's range.
- ``recon_nats``: -log p(x | z) per sample in nats; z is the code (AE) or one posterior draw (VAE).
- ``kl``, ``neg_elbo`` (VAE only): KL(q(z|x) || p(z)) and recon_nats + kl, per sample in nats
  (the unweighted bound, whatever beta the model was trained with).
- ``nll_iw`` (VAE, with ``iw_samples`` = k > 0): the importance-weighted bound on -log p(x) with
  k samples (Burda et al. 2016), per sample in nats; ``aekit eval`` uses k = 5000 by default.
- ``bits_per_dim`` (VAE only): nll_iw (or neg_elbo without it) / (number of dimensions * ln 2).
- ``kl_per_dim`` (VAE only): the KL of each latent dimension, averaged over samples.
- ``active_units`` (VAE only): latent dimensions whose posterior mean varies over the data with
  variance above 0.01 (Burda et al. 2016).

The reconstruction that ``mse`` scores is the decoder's mean at the code (the posterior mean for a
VAE), which is what ``aekit reconstruct`` shows. Posterior draws use a fixed seed, so the same
run and data always give the same numbers.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from aekit.fsutil import release_freed_memory
from aekit.losses import gaussian_kl_per_dim
from aekit.models import Autoencoder
from aekit.penalties import activation_stats, jacobian_frobenius_sq

ACTIVE_THRESHOLD = 0.01
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)

TRIM_SECONDS = 5.0  # iw_nll hands freed heap memory back to the system at most this often
JACOBIAN_SAMPLES = 1000  # the Jacobian is costly; its mean norm is stable on this many samples


def evaluate(
    model: Autoencoder,
    x: torch.Tensor,
    *,
    y: torch.Tensor | None = None,
    batch_size: int = 1024,
    seed: int = 0,
    data_range: float | None = None,
    iw_samples: int = 0,
) -> dict[str, Any]:
    """Metrics of ``model`` on samples ``x``; see the module docstring for their definitions.

    ``y``: labels of a conditional model. ``iw_samples`` > 0 adds ``nll_iw`` (generative models).
    """
    model.eval()
    device = next(model.parameters()).device
    sums: dict[str, Any] = {}
    codes, means, maps = [], [], []
    gaussian = bool(getattr(getattr(model, "latent", None), "stochastic", False))
    quantized = hasattr(model, "encode_indices")
    energy_based = hasattr(model, "free_energy_inf")
    free_energies = []
    with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(device, torch.float32)
            yb = None if y is None else y[i : i + batch_size].to(device)
            stats = None
            if isinstance(model, Autoencoder):  # one encoder pass for the terms, codes and reconstruction
                terms, stats, params = model.loss_parts(xb, yb)
                # The reconstruction decodes the code: the posterior mean (a second decoder pass for a
                # VAE, whose terms decoded a draw), or the deterministic code the terms decoded.
                recon = model.decode(stats["mean"], yb) if gaussian else model.likelihood.mean(params)
            else:
                terms, recon = model.loss_terms(xb, yb), model.reconstruct(xb, yb)
            err = (recon - xb).flatten(1).square()  # (B, D)
            batch = {"sse": err.sum(1), "recon_nats": terms["recon"]}
            if quantized:
                maps.append(model.encode_indices(xb).cpu())
            elif energy_based:
                free_energies.append(model.free_energy_inf(xb).cpu())
            elif gaussian:
                batch["kl"] = terms["kl"]
                batch["kl_per_dim"] = gaussian_kl_per_dim(stats["mean"], stats["logvar"])
                means.append(stats["mean"].cpu())
            else:
                codes.append((stats["mean"] if stats is not None else model.encode(xb, yb)).cpu())
            for k, v in batch.items():
                sums[k] = sums.get(k, 0.0) + v.sum(0).cpu().double()
    n, dims = len(x), math.prod(model.sample_shape)
    metrics: dict[str, Any] = {k: float(v) / n for k, v in sums.items() if k != "kl_per_dim"}
    metrics["mse"] = metrics["sse"] / dims
    if data_range is None:
        lo, hi = float(x.min()), float(x.max())
        data_range = 1.0 if lo >= 0 and hi <= 1 else hi - lo
    metrics["psnr"] = 10 * math.log10(data_range**2 / metrics["mse"]) if metrics["mse"] > 0 else math.inf
    if quantized:
        metrics.update(vq_metrics(model, torch.cat(maps)))
    elif energy_based:  # the zero-temperature free energy min_z E(y, z), per sample
        metrics["free_energy"] = float(torch.cat(free_energies).mean())
    elif gaussian:
        metrics["neg_elbo"] = metrics["recon_nats"] + metrics["kl"]
        metrics["bits_per_dim"] = metrics["neg_elbo"] / (dims * math.log(2))
        if iw_samples > 0:
            metrics["nll_iw"] = float(iw_nll(model, x, y, iw_samples, seed=seed).mean())
            metrics["iw_samples"] = iw_samples
            metrics["bits_per_dim"] = metrics["nll_iw"] / (dims * math.log(2))
        metrics["kl_per_dim"] = [round(float(v) / n, 5) for v in sums["kl_per_dim"]]
        # Burda et al. 2016: a unit is active when its posterior mean varies over the data, Cov_x(E_q[z_j]) > 0.01.
        variance = torch.cat(means).double().var(0)
        metrics["active_units"] = int((variance > ACTIVE_THRESHOLD).sum())
    else:
        sub = x[:JACOBIAN_SAMPLES].to(device, torch.float32)
        fro_sq = [
            jacobian_frobenius_sq(model, sub[i : i + 250], projections=16, create_graph=False).detach()
            for i in range(0, len(sub), 250)
        ]
        metrics["jacobian_norm"] = float(torch.cat(fro_sq).sqrt().mean())
        metrics.update(activation_stats(torch.cat(codes)))
    metrics["n"] = n
    order = ["mse", "sse", "psnr", "recon_nats", "kl", "neg_elbo", "nll_iw", "bits_per_dim", "jacobian_norm",
             "free_energy"]  # fmt: skip
    return {k: metrics[k] for k in order if k in metrics} | {k: v for k, v in metrics.items() if k not in order}


@torch.no_grad()
def vq_metrics(model: Any, maps: torch.Tensor) -> dict[str, Any]:
    """Codebook use on code maps ``(N, h, w)``, and the prior's likelihood of them when there is one.

    ``perplexity`` is exp(entropy) of the codes' frequencies (K when all are used equally);
    ``usage`` the fraction of codes used; ``prior_nll`` nats per code map, ``prior_bits_per_code``
    its value per position in bits, against ``uniform_bits_per_code`` = log2 K for independent
    uniform codes.
    """
    from aekit.quantizer import code_counts, usage_stats

    metrics: dict[str, Any] = {k: float(v) for k, v in usage_stats(code_counts(maps, model.num_codes)).items()}
    metrics["uniform_bits_per_code"] = math.log2(model.num_codes)
    if model.prior is not None:
        device = next(model.prior.parameters()).device
        nll = torch.cat([model.prior.nll(maps[i : i + 512].to(device)).cpu() for i in range(0, len(maps), 512)])
        metrics["prior_nll"] = float(nll.mean())
        metrics["prior_bits_per_code"] = metrics["prior_nll"] / (maps[0].numel() * math.log(2))
    return metrics


@torch.no_grad()
def iw_nll(
    model: Autoencoder,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    k: int = 5000,
    *,
    seed: int = 0,
    max_decoded: int = 8192,
) -> torch.Tensor:
    """Importance-weighted bound on -log p(x) per sample ``(N,)`` in nats (Burda et al. 2016).

    -log (1/k) sum_i p(x, z_i) / q(z_i | x), z_i ~ q(z | x). With k = 1 it is an unbiased estimate
    of the negative ELBO; it tightens (falls) as k grows. Samples are drawn in chunks so that at
    most ``max_decoded`` decoder outputs exist at once, and the log-mean-exp is accumulated with a
    running log-sum-exp, so any k fits in memory and no exponential overflows.
    """
    if not getattr(getattr(model, "latent", None), "stochastic", False):
        from aekit.errors import NotGenerativeError

        raise NotGenerativeError("The importance-weighted bound needs a model with a gaussian latent (a VAE).")
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    out = []
    trimmed = time.perf_counter()
    rows = max(1, min(len(x), max_decoded // min(k, max_decoded)))  # data points per pass
    for i in range(0, len(x), rows):
        xb = x[i : i + rows].to(device, torch.float32)  # (B, ...)
        yb = None if y is None else y[i : i + rows].to(device)
        stats = model.posterior(xb, yb)
        mean, std = stats["mean"], torch.exp(0.5 * stats["logvar"])  # (B, K)
        b, latent = mean.shape
        chunk = max(1, max_decoded // b)
        total = torch.full((b,), -math.inf, device=device, dtype=torch.float64)
        for start in range(0, k, chunk):
            c = min(chunk, k - start)
            eps = torch.randn((c, b, latent), generator=generator, device=device)
            z = mean + std * eps  # (c, B, K)
            log_q = (-0.5 * eps.square() - torch.log(std) - HALF_LOG_2PI).sum(-1)  # (c, B)
            log_prior = (-0.5 * z.square() - HALF_LOG_2PI).sum(-1)
            x_rep = xb.unsqueeze(0).expand(c, *xb.shape).reshape(c * b, *xb.shape[1:])
            y_rep = None if yb is None else yb.repeat(c)
            params = model.decoder_output(z.reshape(c * b, latent), y_rep)
            log_lik = -model.likelihood.nll(x_rep, params).view(c, b)
            log_w = (log_lik + log_prior - log_q).double()
            total = torch.logaddexp(total, torch.logsumexp(log_w, 0))
        out.append(-(total - math.log(k)).float().cpu())
        # Trimming hands the heap back, and the next batch faults it in again: every few seconds
        # bounds the heap's growth at a cost of a percent (every batch cost a third of the time).
        if device.type == "cpu" and time.perf_counter() - trimmed > TRIM_SECONDS:
            release_freed_memory()
            trimmed = time.perf_counter()
    if device.type == "cpu":
        release_freed_memory()
    return torch.cat(out)


def mean_image_mse(train: torch.Tensor, test: torch.Tensor) -> float:
    """The baseline: MSE per element of predicting every test sample by the training mean."""
    return float((test - train.mean(0, keepdim=True)).square().mean())
