"""The latent-variable EBM of seed 000 on its toy, the ellipse y = (2 cos z, sin z) + noise.

Trains with target propagation (or reuses RUN_DIR), then measures: how close the learned decoder
curve lies to the true ellipse; how many inference steps reach the minimum energy from the encoder's
guess vs from zero; how well the free energy separates on-ellipse from off-ellipse points (AUROC);
and how F_beta approaches F_inf as beta grows.

Usage: python experiments/ellipse_ebm.py [RUN_DIR]   (default runs/ebm-ellipse; trained if missing)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

import aekit
from aekit.data.ellipse import distance_to_ellipse

RUN = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/ebm-ellipse")


def steps_to(trace: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    hit = trace <= target
    return torch.where(hit.any(0), hit.float().argmax(0), torch.full_like(target, len(trace))).float()


def main() -> None:
    if not (RUN / "model.safetensors").exists():
        aekit.train(model="latent-ebm", data="ellipse", latent_dim=1, epochs=80, lr=3e-3, out=RUN, progress=False)
    run = aekit.load_run(RUN)
    model, y = run.model, run.load_data().test
    torch.manual_seed(0)
    with torch.no_grad():
        curve = model.decode(model.encode(y))
    results = {"mean_distance_to_true_curve": float(distance_to_ellipse(curve.numpy()).mean())}
    target = model.free_energy_inf(y) + 0.01
    with torch.no_grad():
        z_tilde = model.encoder(y)
    _, from_guess = model.infer(y, z_tilde, 100, return_trace=True, d_weight=0.0)
    _, from_zero = model.infer(y, torch.zeros_like(z_tilde), 100, return_trace=True, d_weight=0.0)
    results["steps_from_encoder_guess"] = float(steps_to(from_guess, target).mean())
    results["steps_from_zero"] = float(steps_to(from_zero, target).mean())
    on, off = model.free_energy_inf(y), model.free_energy_inf(torch.cat([0.5 * y, 1.5 * y]))
    labels = np.r_[np.zeros(len(on)), np.ones(len(off))]
    results["auroc_on_vs_off"] = float(roc_auc_score(labels, np.r_[on.numpy(), off.numpy()]))
    codes = model.encode(y)
    lo, hi = float(codes.min()) - 1, float(codes.max()) + 1
    f_inf = model.free_energy_inf(y, candidates=torch.linspace(lo, hi, 200)[:, None])
    results["f_beta_minus_f_inf"] = {
        str(b): float((model.free_energy(y, b, grid=(lo, hi, 4001)) - f_inf).mean()) for b in (1, 10, 100, 1000)
    }
    print(json.dumps(results, indent=2))
    (RUN / "ellipse_evidence.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
