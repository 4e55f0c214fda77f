"""Your own encoder and decoder in an aekit model: a small convolutional VAE on the 8x8 digits.

    python examples/custom_networks.py                  # writes runs/custom-vae under the current folder
    python examples/custom_networks.py --epochs 60 --out my-runs

aekit.train(encoder=..., decoder=...) puts your networks where the built-in ones would be. The family
still supplies everything between and after them: for a VAE, a linear layer from the encoder's features
to the code's mean and log-variance, the reparameterised draw, the KL term and the likelihood. So the
encoder maps a batch of samples to features (N, F), any F, and the decoder maps codes (N, latent_dim) to
the likelihood's parameters, shaped like the data (here Bernoulli logits, (N, 1, 8, 8)). The shapes are
checked once, when the model is built.

A run directory holds weights, never code: to load the run again, pass new instances of the same
classes to aekit.load_run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

import aekit


class ConvEncoder(nn.Module):
    """(N, 1, 8, 8) images -> (N, 64) features: two stride-2 convolutions, 8x8 -> 4x4 -> 2x2."""

    def __init__(self, channels: int = 16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(8, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(),  # (N, channels * 2 * 2)
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """(N, latent_dim) codes -> (N, 1, 8, 8) logits: a linear layer to 16 x 2 x 2, two transposed convolutions."""

    def __init__(self, latent_dim: int, channels: int = 16):
        super().__init__()
        self.channels = channels
        self.fc = nn.Linear(latent_dim, channels * 2 * 2)
        self.net = nn.Sequential(
            nn.ReLU(), nn.ConvTranspose2d(channels, 8, 4, stride=2, padding=1),  # 2x2 -> 4x4
            nn.ReLU(), nn.ConvTranspose2d(8, 1, 4, stride=2, padding=1),  # 4x4 -> 8x8
        )  # fmt: skip

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(-1, self.channels, 2, 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs", help="folder for the run directory (default: ./runs)")
    parser.add_argument("--epochs", type=int, default=15, help="training epochs (default 15)")
    parser.add_argument("--latent-dim", type=int, default=8, help="code size (default 8)")
    args = parser.parse_args()
    k = args.latent_dim

    run = aekit.train(
        model="vae", data="digits", latent_dim=k, epochs=args.epochs, lr=3e-3,
        encoder=ConvEncoder(), decoder=ConvDecoder(k),
        out=Path(args.out) / "custom-vae", overwrite=True, progress=False, report=False,
    )  # fmt: skip
    parameters = sum(p.numel() for p in run.model.parameters())
    print(f"Trained a VAE with your networks (arch '{run.config.model.arch}', {parameters:,} parameters): {run.path}")
    networks = json.loads((run.path / "networks.json").read_text())
    print(f"networks.json records their classes: {', '.join(n['class'] for n in networks.values())}")

    test = run.load_data().test  # (180, 1, 8, 8) in [0, 1]
    metrics = run.evaluate(test, iw_samples=0)
    print(f"Test: -ELBO {metrics['neg_elbo']:.2f} nats, MSE {metrics['mse']:.4f} per pixel, "
          f"{metrics['active_units']} of {k} latent dimensions active")  # fmt: skip

    # Loading without the networks is refused with a message that says how to load it.
    try:
        aekit.load_run(run.path)
    except aekit.CheckpointError as err:
        print(f"load_run without networks: {str(err).split('. ')[0]}.")

    again = aekit.load_run(run.path, encoder=ConvEncoder(), decoder=ConvDecoder(k))
    same = torch.equal(again.reconstruct(test), run.reconstruct(test))
    print(f"Reloaded with new instances of ConvEncoder and ConvDecoder: reconstructions identical: {same}")
    samples = again.sample(16, seed=0)
    print(f"Sampled {len(samples)} new digits of shape {tuple(samples.shape[1:])} from the prior")
    if not same:
        raise SystemExit("the reloaded run does not reproduce the trained one")


if __name__ == "__main__":
    main()
