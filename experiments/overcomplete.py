"""Over-complete autoencoders on digits: does the model copy anything, or only data?

A plain over-complete AE (256 code units for 64 pixels) can learn something close to the identity
and then reconstructs even uniform noise. The same network trained as a denoising or contractive
AE cannot: its reconstructions of noise are pulled towards the data. The script trains the three,
prints each model's reconstruction MSE on test digits and on uniform noise, and draws noise inputs
with their reconstructions.

Usage: python experiments/overcomplete.py [OUT_DIR]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

import aekit
from aekit import plots

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/overcomplete")
COMMON = dict(data="digits", hidden=(), latent_dim=256, likelihood="gaussian", epochs=150, lr=3e-3,
              progress=False, report=False, overwrite=True)  # fmt: skip
MODELS = {
    "ae": {},
    "dae": {"noise": "gaussian", "noise_level": 0.3},
    "cae": {"contractive_weight": 0.05, "jacobian": "projection", "jacobian_projections": 4},
}


def main() -> None:
    noise = torch.rand(180, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    rows, results = [("uniform noise", noise[:16])], {}
    for name, extra in MODELS.items():
        run = aekit.train(model=name, out=OUT / name, **COMMON, **extra)
        test = run.load_data().test
        data_mse = run.evaluate(test)["mse"]
        noise_mse = float((run.reconstruct(noise).clamp(0, 1) - noise).square().mean())
        # Relative to the noise's own variance: 0 is a perfect copy, 1 is no better than grey.
        relative = noise_mse / float(noise.var())
        results[name] = {"data_mse": data_mse, "noise_mse": noise_mse, "noise_mse_over_noise_var": relative}
        rows.append((f"{name} output", run.reconstruct(noise[:16]).clamp(0, 1)))
        print(f"{name:>4}: test digits MSE {data_mse:.4f}   uniform noise MSE {noise_mse:.4f} "
              f"({relative:.2f} of the noise variance)")  # fmt: skip
    plots.plot_rows(rows, OUT / "overcomplete_noise.png", title="Reconstructions of uniform noise (256-unit codes)")
    (OUT / "overcomplete.json").write_text(json.dumps(results, indent=2))
    print(f"Wrote {OUT / 'overcomplete_noise.png'} and {OUT / 'overcomplete.json'}")


if __name__ == "__main__":
    main()
