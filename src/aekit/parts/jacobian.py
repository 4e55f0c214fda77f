"""The Jacobian of the code with respect to the input: the contractive penalty's term and a test metric.

``||dh/dx||_F^2`` measures how much the code moves when the input moves (Rifai et al. 2011): the
contractive autoencoder penalises it, and every deterministic model reports its mean norm.
"""

from __future__ import annotations

import torch
from torch import nn

from aekit.errors import ConfigError
from aekit.parts import noise
from aekit.parts.nets import MLPEncoder

JACOBIAN_SAMPLES = 1000  # the Jacobian is costly; its mean norm is stable on this many samples


def jacobian_frobenius_sq(
    model: nn.Module, x: torch.Tensor, method: str = "auto", projections: int = 1, create_graph: bool = True
) -> torch.Tensor:
    """||dh/dx||_F^2 per sample ``(N,)``, h = model.encode(x) (the code, or posterior mean).

    - ``closed_form``: a single sigmoid layer h = s(Wx + b) has J = diag(h(1 - h)) W, so
      ||J||_F^2 = sum_j (h_j(1 - h_j))^2 ||W_j||^2 (Rifai et al. 2011). Exact and cheap.
    - ``exact``: the full Jacobian by vectorised reverse mode, K backward passes; for small codes.
    - ``projection``: E_v ||J^T v||^2 = ||J||_F^2 for v ~ N(0, I); an unbiased estimate from
      ``projections`` vector-Jacobian products, cost independent of K.
    - ``auto``: closed_form when it applies, else exact for codes of up to 32 units, else projection.
    """
    sigmoid_layer = _single_sigmoid_layer(model)
    if method == "auto":
        method = "closed_form" if sigmoid_layer is not None else "exact" if model.latent_dim <= 32 else "projection"
    if method == "closed_form":
        if sigmoid_layer is None:
            raise ConfigError(
                "jacobian 'closed_form' needs a single sigmoid layer (--hidden none --code-activation "
                "sigmoid --arch mlp); use --jacobian exact or projection for this encoder."
            )
        h = model.encode(x)
        w_sq = sigmoid_layer.weight.square().sum(1)  # (K,) squared norm of each unit's weights
        return (h * (1 - h)).square() @ w_sq
    # Gradients with respect to the input are needed even under no_grad (validation, eval); the
    # graph through them is kept only when the caller trains on the result.
    create_graph = create_graph and torch.is_grad_enabled()
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        h = model.encode(x)  # (N, K)
        total = torch.zeros(len(x), device=x.device)
        if method == "exact":
            for j in range(h.shape[1]):  # one backward pass per code unit
                (g,) = torch.autograd.grad(h[:, j].sum(), x, create_graph=create_graph, retain_graph=True)
                total = total + g.flatten(1).square().sum(1)
            return total
        for _ in range(projections):
            v = noise.randn_like(h)
            (g,) = torch.autograd.grad(h, x, v, create_graph=create_graph, retain_graph=True)
            total = total + g.flatten(1).square().sum(1)
        return total / projections


def _single_sigmoid_layer(model: nn.Module) -> nn.Linear | None:
    """The layer W of a code h = sigmoid(W x + b) straight from the (flattened) input, else None."""
    if isinstance(model.encoder, MLPEncoder) and len(model.encoder.net) == 0:
        return model.latent.sigmoid_layer()
    return None


def mean_jacobian_norm(model: nn.Module, x: torch.Tensor) -> float:
    """Mean ||dh/dx||_F over (the first thousand of) the samples ``x``: how contractive the code is."""
    device = next(model.parameters()).device
    sub = x[:JACOBIAN_SAMPLES].to(device, torch.float32)
    fro_sq = [
        jacobian_frobenius_sq(model, sub[i : i + 250], projections=16, create_graph=False).detach()
        for i in range(0, len(sub), 250)
    ]
    return float(torch.cat(fro_sq).sqrt().mean())
