"""The linear autoencoder against PCA, and PCA as the yardstick for any code of the same size.

A linear autoencoder trained with squared error spans the principal subspace (Baldi & Hornik
1989): :func:`pca_check` compares its reconstruction error and subspace with PCA's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from aekit.errors import ConfigError
from aekit.models.base import Model, device_of


@torch.no_grad()
def linear_problems(model: Model, x: torch.Tensor) -> list[str]:
    """Why the model is not a linear map from data to codes to reconstruction (empty when it is).

    Checked on the model itself, whatever its parts: encoding and decoding must be affine (the
    image of a mixture is the mixture of the images), and the code must be a point, not a draw."""
    if model.capabilities.posterior or model.capabilities.discrete_codes or model.capabilities.energy_based:
        return ["its codes are not a linear function of the data (a probabilistic, quantised or optimised latent)"]
    model.eval()
    device = device_of(model)
    a = x[:64].to(device, torch.float32)
    b = a.flip(0) + 0.5  # any two inputs will do: an affine map keeps their mixtures
    mix = 0.3 * a + 0.7 * b
    problems = []
    codes = [model.encode(v) for v in (a, b, mix)]
    if not torch.allclose(codes[2], 0.3 * codes[0] + 0.7 * codes[1], rtol=1e-3, atol=1e-4):
        problems.append("its encoder is not linear (a hidden activation or code activation other than none)")
    out = [model.decode(z) for z in (codes[0], codes[1], 0.3 * codes[0] + 0.7 * codes[1])]
    if not torch.allclose(out[2], 0.3 * out[0] + 0.7 * out[1], rtol=1e-3, atol=1e-4):
        problems.append("its decoder is not linear (a hidden activation, or a likelihood whose mean is not, "
                        "e.g. bernoulli: use gaussian)")  # fmt: skip
    return problems


@torch.no_grad()
def decoder_subspace(model: Model) -> np.ndarray:
    """Orthonormal basis ``(D, K)`` of the directions a linear decoder can produce."""
    device = device_of(model)
    k = model.latent_dim
    basis = torch.cat([torch.zeros(1, k), torch.eye(k)]).to(device)
    out = model.decode(basis).flatten(1).double().cpu()  # (K + 1, D)
    directions = (out[1:] - out[:1]).numpy().T  # (D, K): the decoder's linear part
    q, _ = np.linalg.qr(directions)
    return q


def pca_check(model: Model, train: torch.Tensor, test: torch.Tensor) -> dict[str, Any]:
    """Linear AE vs PCA at the same k: test MSE of each and the principal angles between subspaces.

    Returns ``ae_mse`` and ``pca_mse`` (mean squared error per element on ``test``),
    ``max_angle_deg`` (the largest principal angle between the AE's decoder subspace and the
    first k principal components of ``train``), all angles, and ``k``.
    """
    problems = linear_problems(model, test if len(test) >= 2 else train)
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
    from scipy.linalg import subspace_angles  # imported when used: scikit-learn and SciPy take ~2 s to import
    from sklearn.decomposition import PCA

    pca = PCA(n_components=k).fit(x_train)
    pca_recon = pca.inverse_transform(pca.transform(x_test))
    model.eval()
    device = device_of(model)
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
    from sklearn.decomposition import PCA

    # The exact solver: sklearn's default picks a randomised one for large data, whose error then
    # varies from call to call.
    pca = PCA(n_components=k, svd_solver="full").fit(train.flatten(1).double().numpy())
    flat = x.flatten(1).double().numpy()
    err = (pca.inverse_transform(pca.transform(flat)) - flat) ** 2
    return {"pca_mse": float(err.mean()), "pca_sse": float(err.sum(1).mean())}
