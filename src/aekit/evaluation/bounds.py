"""The importance-weighted bound on -log p(x) (Burda et al. 2016), for any model that declares one.

The model supplies the importance weights log p(x, z) - log q(z | x) of fresh posterior draws
(:meth:`aekit.models.Model.importance_weights`: its latent owns q and p); this module only averages
them stably over k draws, in chunks, so any k fits in memory.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from aekit.fsutil import release_freed_memory

TRIM_SECONDS = 5.0  # iw_nll hands freed heap memory back to the system at most this often


@torch.no_grad()
def iw_nll(
    model: Any,
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
    running log-sum-exp, so any k fits in memory and no exponential overflows. A model without a
    likelihood bound raises :class:`~aekit.errors.CapabilityError`.
    """
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    out = []
    trimmed = time.perf_counter()
    rows = max(1, min(len(x), max_decoded // min(k, max_decoded)))  # data points per pass
    for i in range(0, len(x), rows):
        xb = x[i : i + rows].to(device, torch.float32)  # (B, ...)
        yb = None if y is None else y[i : i + rows].to(device)
        draw = model.importance_weights(xb, yb)  # encodes the batch once
        b = len(xb)
        chunk = max(1, max_decoded // b)
        total = torch.full((b,), -math.inf, device=device, dtype=torch.float64)
        for start in range(0, k, chunk):
            log_w = draw(min(chunk, k - start), generator).double()  # (c, B)
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
