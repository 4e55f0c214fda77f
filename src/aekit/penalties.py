"""Penalties R(h) on a deterministic code: sparsity (seed 002) and contraction (seed 000).

Each penalty is a module with a ``name``, a ``weight`` (lambda) and
``forward(model, x_in, code) -> (N,)``, one value per sample; the model adds it to its loss terms
and the trainer multiplies by the weight.
"""

from __future__ import annotations

import torch
from torch import nn

from aekit.config import ModelConfig
from aekit.nets import MLPEncoder


class Sparsity(nn.Module):
    """Sparsity of the code h.

    - ``l1``: sum_j |h_j| per sample; ``l2``: sum_j h_j^2 per sample.
    - ``kl``: sum_j KL(rho || rho_hat_j), where rho_hat_j is unit j's mean activation over the
      batch (Ng's sparse autoencoder); the batch-level value is given to every sample, so its
      mean over the batch is the penalty itself. Needs codes in (0, 1) (a sigmoid code).
    """

    name = "sparsity"

    def __init__(self, kind: str, weight: float, target: float = 0.05):
        super().__init__()
        self.kind, self.weight, self.target = kind, weight, target

    def forward(self, model: nn.Module, x_in: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        if self.kind == "l1":
            return code.abs().sum(1)
        if self.kind == "l2":
            return code.square().sum(1)
        rho, rho_hat = self.target, code.mean(0).clamp(1e-6, 1 - 1e-6)  # (K,)
        kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
        return kl.sum().expand(len(code))


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
    if method == "auto":
        method = "closed_form" if closed_form_applies(model) else "exact" if model.latent_dim <= 32 else "projection"
    if method == "closed_form":
        if not closed_form_applies(model):
            from aekit.errors import ConfigError

            raise ConfigError(
                "jacobian 'closed_form' needs a single sigmoid layer (--hidden none --code-activation "
                "sigmoid --arch mlp); use --jacobian exact or projection for this encoder."
            )
        h = model.encode(x)
        w_sq = model.latent.proj.weight.square().sum(1)  # (K,) squared norm of each unit's weights
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
            v = torch.randn_like(h)
            (g,) = torch.autograd.grad(h, x, v, create_graph=create_graph, retain_graph=True)
            total = total + g.flatten(1).square().sum(1)
        return total / projections


def closed_form_applies(model: nn.Module) -> bool:
    """Whether the code is one sigmoid layer of the (flattened) input."""
    enc, latent = model.encoder, model.latent
    return (
        isinstance(enc, MLPEncoder)
        and len(enc.net) == 0
        and isinstance(getattr(latent, "act", None), nn.Sigmoid)
        and not getattr(latent, "stochastic", False)
    )


class Contractive(nn.Module):
    """lambda * ||dh/dx||_F^2 at the (possibly corrupted) encoder input."""

    name = "contractive"

    def __init__(self, weight: float, method: str = "auto", projections: int = 1):
        super().__init__()
        self.weight, self.method, self.projections = weight, method, projections

    def forward(self, model: nn.Module, x_in: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        return jacobian_frobenius_sq(model, x_in, self.method, self.projections)


def build_penalties(config: ModelConfig, encoder: nn.Module, latent: nn.Module) -> list[nn.Module]:
    penalties: list[nn.Module] = []
    if config.sparsity != "none" and config.sparsity_weight > 0:
        penalties.append(Sparsity(config.sparsity, config.sparsity_weight, config.sparsity_target))
    if config.contractive_weight > 0:
        penalties.append(Contractive(config.contractive_weight, config.jacobian, config.jacobian_projections))
    return penalties


def activation_stats(codes: torch.Tensor, threshold: float = 0.01) -> dict[str, object]:
    """Mean activation per unit, and the fraction of near-zero code values (|h| < threshold)."""
    mean = codes.mean(0)
    return {
        "mean_activation": float(mean.mean()),
        "mean_activation_per_unit": [round(float(v), 6) for v in mean],
        "fraction_near_zero": float((codes.abs() < threshold).float().mean()),
    }
