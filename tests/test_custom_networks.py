"""Bring your own networks: a user's encoder and decoder trained, saved, reloaded and evaluated like the
built-in ones, with the shapes checked once when the model is built."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import aekit
from aekit.cli import main
from contract import check_contract


class SmallConvEncoder(nn.Module):
    """(N, 1, 8, 8) -> (N, 64): two stride-2 convolutions."""

    def __init__(self, channels: int = 16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(8, channels, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallConvDecoder(nn.Module):
    """(N, K) -> (N, 1, 8, 8) logits: a linear layer to 16 x 2 x 2, then two transposed convolutions."""

    def __init__(self, latent_dim: int, out_size: int = 8):
        super().__init__()
        self.fc = nn.Linear(latent_dim, 16 * 2 * 2)
        self.net = nn.Sequential(
            nn.ReLU(), nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1),
            nn.ReLU(), nn.ConvTranspose2d(8, 1, 4, stride=2, padding=1),
        )  # fmt: skip
        self.out_size = out_size

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(-1, 16, 2, 2))[..., : self.out_size, : self.out_size]


def test_a_user_conv_vae_trains_saves_reloads_and_evaluates(tmp_path, capsys):
    run = aekit.train(model="vae", data="digits", latent_dim=4, epochs=15, lr=3e-3, encoder=SmallConvEncoder(),
                      decoder=SmallConvDecoder(4), out=tmp_path / "custom", progress=False, report=False)  # fmt: skip
    assert run.config.model.arch == "custom"
    records = aekit.runs.layout.read_metrics(run.path)
    assert records[-1]["train/loss"] < 0.8 * records[0]["train/loss"], "it learns"
    networks = json.loads((run.path / "networks.json").read_text())
    assert networks["encoder"]["class"].endswith("SmallConvEncoder")

    with pytest.raises(aekit.CheckpointError, match=r"your own networks \(encoder .*SmallConvEncoder.*load_run"):
        aekit.load_run(run.path)
    again = aekit.load_run(run.path, encoder=SmallConvEncoder(), decoder=SmallConvDecoder(4))
    x = run.load_data().test
    torch.testing.assert_close(again.reconstruct(x), run.reconstruct(x))
    metrics = again.evaluate(x, iw_samples=16)
    assert metrics["nll_iw"] <= metrics["neg_elbo"] + 0.5 and metrics["mse"] < 0.1
    check_contract(again.model, x[:6])

    assert main(["eval", str(run.path)]) == 2  # the command line cannot rebuild user code
    err = capsys.readouterr().err
    assert "your own networks" in err and "Traceback" not in err
    with pytest.raises(aekit.CheckpointError, match="do not fit this model"):
        aekit.load_run(run.path, encoder=SmallConvEncoder(channels=32), decoder=SmallConvDecoder(4))


def test_shapes_are_checked_when_the_model_is_built():
    with pytest.raises(aekit.ConfigError, match=r"decoder maps codes to \(1, 7, 7\).*\(1, 8, 8\)"):
        aekit.build_model("vae", (1, 8, 8), latent_dim=4, likelihood="bernoulli", encoder=SmallConvEncoder(),
                          decoder=SmallConvDecoder(4, out_size=7))  # fmt: skip
    with pytest.raises(aekit.ConfigError, match="decoder cannot take codes"):
        aekit.build_model("ae", (1, 8, 8), latent_dim=3, likelihood="bernoulli", encoder=SmallConvEncoder(),
                          decoder=SmallConvDecoder(4))  # fmt: skip
    with pytest.raises(aekit.ConfigError, match="encoder cannot take samples"):
        aekit.build_model("ae", (3, 8, 8), latent_dim=4, likelihood="bernoulli", encoder=SmallConvEncoder(),
                          decoder=SmallConvDecoder(4))  # fmt: skip
    with pytest.raises(aekit.ConfigError, match="both your encoder and your decoder"):
        aekit.build_model("ae", (1, 8, 8), latent_dim=4, likelihood="bernoulli", encoder=SmallConvEncoder())


def test_user_networks_in_the_other_families():
    x = torch.rand(4, 1, 8, 8).round()
    vq_encoder = nn.Conv2d(1, 4, 3, stride=2, padding=1)  # code maps (N, 4, 4, 4)
    vq_decoder = nn.ConvTranspose2d(4, 1, 4, stride=2, padding=1)
    vq = aekit.build_model("vq-vae", (1, 8, 8), code_dim=4, num_codes=8, likelihood="bernoulli",
                           encoder=vq_encoder, decoder=vq_decoder)  # fmt: skip
    assert vq.code_shape == (4, 4) and vq.config.arch == "custom"
    check_contract(vq, x)
    with pytest.raises(aekit.ConfigError, match="code_dim=8"):
        aekit.build_model("vq-vae", (1, 8, 8), code_dim=8, likelihood="bernoulli", encoder=vq_encoder,
                          decoder=vq_decoder)  # fmt: skip
    ebm = aekit.build_model("latent-ebm", (1, 8, 8), latent_dim=4, use_encoder=False, likelihood="bernoulli",
                            decoder=SmallConvDecoder(4))  # fmt: skip
    assert ebm.encoder is None
    check_contract(ebm, x)
