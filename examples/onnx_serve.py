"""Export a trained VAE to ONNX and serve it with ONNX Runtime; compare its outputs with PyTorch's.

    pip install 'aekit[onnx]'
    python examples/onnx_serve.py

Trains a small VAE on scikit-learn's digits for a few epochs, exports its encoder and decoder
(aekit export does the same from the command line), encodes and decodes test digits in ONNX Runtime,
draws new digits with noise drawn outside the graphs, and prints the largest difference from PyTorch.
Everything it writes goes under ./runs.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

import aekit
from aekit.runs.export import export_onnx


def main() -> None:
    run = aekit.train(model="vae", data="digits", latent_dim=8, hidden=(64,), epochs=3, out="runs/onnx-serve",
                      overwrite=True, progress=False, report=False)  # fmt: skip
    exported = export_onnx(run, "runs/onnx-serve-onnx")
    providers = ["CPUExecutionProvider"]
    encoder = ort.InferenceSession(str(exported.files["encoder"]), providers=providers)
    decoder = ort.InferenceSession(str(exported.files["decoder"]), providers=providers)

    x = run.load_data().test.numpy()  # (N, 1, 8, 8) float32 in [0, 1]: the digits the run never trained on
    mean, logvar = encoder.run(None, {"x": x})
    (recon,) = decoder.run(None, {"code": mean})

    # Sampling happens out here, never inside a graph: z ~ q(z | x), and z ~ N(0, I) for new digits.
    rng = np.random.default_rng(0)
    z = mean + np.exp(logvar / 2) * rng.standard_normal(mean.shape).astype(np.float32)
    (posterior_samples,) = decoder.run(None, {"code": z})
    (new_digits,) = decoder.run(None, {"code": rng.standard_normal((16, mean.shape[1])).astype(np.float32)})

    code_diff = float(np.abs(mean - run.encode(x).numpy()).max())
    recon_diff = float(np.abs(recon - run.reconstruct(x).numpy()).max())
    print(f"exported to {exported.out}: {', '.join(f.name for f in exported.files.values())} and onnx.json")
    print(f"encoded {len(x)} test digits; posterior samples {posterior_samples.shape}, new digits {new_digits.shape}")
    print(f"max |ONNX Runtime - PyTorch|: codes {code_diff:.2g}, reconstructions {recon_diff:.2g}")
    print(f"max difference {max(code_diff, recon_diff):.2g}")


if __name__ == "__main__":
    main()
