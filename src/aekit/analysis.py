"""Analyses of trained deterministic models: the linear AE against PCA, and denoising.

- :func:`pca_check`: a linear autoencoder trained with squared error spans the principal
  subspace (Baldi & Hornik 1989); compare its reconstruction error and subspace with PCA's.
- :func:`denoise`: corrupt clean data, restore it with the model, and score both against the
  clean data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA

from aekit.corruption import corrupt
from aekit.errors import ConfigError
from aekit.models import Autoencoder


def linear_problems(model: Autoencoder) -> list[str]:
    """Why the model is not a linear map from data to reconstruction (empty when it is)."""
    cfg = model.config
    if cfg is None:
        return ["it was not built from a configuration"]
    problems = []
    if cfg.arch != "mlp":
        problems.append(f"arch is '{cfg.arch}' (needs mlp)")
    if cfg.hidden and cfg.activation != "none":
        problems.append(f"activation is '{cfg.activation}' (needs none)")
    if cfg.latent != "deterministic":
        problems.append(f"latent is '{cfg.latent}' (needs deterministic)")
    if cfg.code_activation != "none":
        problems.append(f"code_activation is '{cfg.code_activation}' (needs none)")
    if cfg.likelihood != "gaussian":
        problems.append(f"likelihood is '{cfg.likelihood}' (its mean is not linear; needs gaussian)")
    return problems


@torch.no_grad()
def decoder_subspace(model: Autoencoder) -> np.ndarray:
    """Orthonormal basis ``(D, K)`` of the directions a linear decoder can produce."""
    device = next(model.parameters()).device
    k = model.latent_dim
    basis = torch.cat([torch.zeros(1, k), torch.eye(k)]).to(device)
    out = model.decode(basis).flatten(1).double().cpu()  # (K + 1, D)
    directions = (out[1:] - out[:1]).numpy().T  # (D, K): the decoder's linear part
    q, _ = np.linalg.qr(directions)
    return q


def pca_check(model: Autoencoder, train: torch.Tensor, test: torch.Tensor) -> dict[str, Any]:
    """Linear AE vs PCA at the same k: test MSE of each and the principal angles between subspaces.

    Returns ``ae_mse`` and ``pca_mse`` (mean squared error per element on ``test``),
    ``max_angle_deg`` (the largest principal angle between the AE's decoder subspace and the
    first k principal components of ``train``), all angles, and ``k``.
    """
    problems = linear_problems(model)
    if problems:
        raise ConfigError(
            "pca-check compares a linear autoencoder with PCA, but this model is not linear: "
            + "; ".join(problems)
            + ". Train one with --model linear-ae."
        )
    k = model.latent_dim
    x_train = train.flatten(1).double().numpy()
    x_test = test.flatten(1).double().numpy()
    if k > min(x_train.shape):
        raise ConfigError(f"pca-check needs k <= min(samples, dimensions) = {min(x_train.shape)}, got k = {k}.")
    pca = PCA(n_components=k).fit(x_train)
    pca_recon = pca.inverse_transform(pca.transform(x_test))
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        ae_recon = model.reconstruct(test.to(device, torch.float32)).flatten(1).double().cpu().numpy()
    angles = np.degrees(subspace_angles(decoder_subspace(model), pca.components_.T))
    return {
        "k": k,
        "ae_mse": float(np.mean((ae_recon - x_test) ** 2)),
        "pca_mse": float(np.mean((pca_recon - x_test) ** 2)),
        "max_angle_deg": float(angles.max()),
        "angles_deg": [round(float(a), 3) for a in sorted(angles)],
    }


def pca_baseline(train: torch.Tensor, x: torch.Tensor, k: int) -> dict[str, float]:
    """PCA with ``k`` components fitted on ``train``: reconstruction ``pca_mse`` (per element) and
    ``pca_sse`` (per sample) on ``x``, the yardstick for any code of size ``k``."""
    if not 0 < k <= min(train.flatten(1).shape):
        raise ConfigError(f"A PCA baseline needs 0 < k <= min(samples, dimensions) = {min(train.flatten(1).shape)}.")
    pca = PCA(n_components=k).fit(train.flatten(1).double().numpy())
    flat = x.flatten(1).double().numpy()
    err = (pca.inverse_transform(pca.transform(flat)) - flat) ** 2
    return {"pca_mse": float(err.mean()), "pca_sse": float(err.sum(1).mean())}


def denoise(
    model: Autoencoder, x: torch.Tensor, kind: str, level: float, *, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """Corrupt ``x`` (seeded), restore it with the model; return corrupted, restored and their MSEs.

    ``mse_corrupted`` and ``mse_restored`` are mean squared errors per element against the clean
    ``x``; their ratio is how much the model removed.
    """
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    noisy = corrupt(x.cpu(), kind, level, generator=generator)
    with torch.no_grad():
        restored = torch.cat(
            [model.reconstruct(noisy[i : i + 1024].to(device)).cpu() for i in range(0, len(noisy), 1024)]
        )
    mse_c = float((noisy - x.cpu()).square().mean())
    mse_r = float((restored - x.cpu()).square().mean())
    return noisy, restored, {"mse_corrupted": mse_c, "mse_restored": mse_r,
                             "improvement": mse_c / mse_r if mse_r > 0 else math.inf}  # fmt: skip
