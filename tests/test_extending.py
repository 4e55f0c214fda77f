"""Extending aekit without editing it (docs/extending.md): a latent kind, a penalty and a model family, each
defined here, registered through the public API, and trained from Python and from a YAML config."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import torch
import yaml
from torch import nn

import aekit
from aekit.cli import main
from aekit.config import LikelihoodOptions, ModelConfig
from aekit.parts import Code, Latent, Penalty
from aekit.parts.likelihoods import build_likelihood
from contract import check_contract

QUIET = {"data": "digits", "progress": False, "report": False}


# --- a latent kind: Laplace codes with a Laplace(0, 1) prior -----------------------------------------


@aekit.register_latent("laplace")
class LaplaceLatent(Latent):
    """q(z|x) = Laplace(loc, scale) per dimension, prior Laplace(0, 1); R = beta * KL(q || p) in closed form."""

    probabilistic = True

    def __init__(self, in_features: int, latent_dim: int, beta: float = 1.0):
        super().__init__()
        self.latent_dim, self.beta = latent_dim, beta
        self.proj = nn.Linear(in_features, 2 * latent_dim)

    @classmethod
    def from_config(cls, config: Any, features: tuple[int, ...]) -> Latent:
        return cls(features[0], config.latent_dim, config.beta)

    def forward(self, features: torch.Tensor) -> Code:
        loc, log_scale = self.proj(features).float().chunk(2, dim=1)
        u = torch.rand_like(loc) - 0.5  # inverse-CDF reparameterisation
        z = loc - log_scale.exp() * u.sign() * torch.log1p(-2 * u.abs())
        return Code(z, loc, {"log_scale": log_scale})

    def regularizer(self, code: Code) -> dict[str, torch.Tensor]:
        # KL(Laplace(m, b) || Laplace(0, 1)) = -log b + |m| + b exp(-|m| / b) - 1
        b, m = code.params["log_scale"].exp(), code.mean.abs()
        return {"kl": (-code.params["log_scale"] + m + b * torch.exp(-m / b) - 1).sum(1)}

    def term_weights(self, step: int | None = None) -> dict[str, float]:
        return {"kl": self.beta}

    @property
    def has_prior(self) -> bool:
        return True

    def sample_prior(self, n, *, generator=None, device=None, prior="learned") -> torch.Tensor:
        u = torch.rand(n, self.latent_dim, generator=generator, device=device) - 0.5
        return -u.sign() * torch.log1p(-2 * u.abs())

    def prior_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return (-z.abs() - math.log(2)).sum(-1)

    def prior_icdf(self, p: torch.Tensor) -> torch.Tensor:
        return -(p - 0.5).sign() * torch.log1p(-2 * (p - 0.5).abs())

    def posterior_draws(self, code: Code, k: int, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        loc, log_scale = code.mean, code.params["log_scale"]
        u = torch.rand((k, *loc.shape), generator=generator, device=loc.device) - 0.5
        z = loc - log_scale.exp() * u.sign() * torch.log1p(-2 * u.abs())
        log_q = (-(z - loc).abs() / log_scale.exp() - log_scale - math.log(2)).sum(-1)
        return z, log_q

    def posterior_stddev(self, code: Code) -> torch.Tensor:
        return math.sqrt(2) * code.params["log_scale"].exp()


def test_a_new_latent_kind_trains_from_python_and_yaml(tmp_path):
    run = aekit.train(model="vae", latent="laplace", latent_dim=2, hidden=(64,), epochs=30, out=tmp_path / "py",
                      **QUIET)  # fmt: skip
    assert type(run.model.latent) is LaplaceLatent and run.model.capabilities.generative
    metrics = run.evaluate(run.load_data().test, iw_samples=64)
    assert metrics["nll_iw"] <= metrics["neg_elbo"] and metrics["kl"] > 0.5  # the bound tightens; no collapse
    check_contract(run.model, run.load_data().test[:6])
    aekit.analyses.latent_space.plot_bubbles(run, tmp_path / "bubbles.png")  # uses its posterior spread
    aekit.analyses.latent_space.plot_manifold(run, tmp_path / "m.png", n=5, spacing="quantile")  # its quantiles
    config = tmp_path / "laplace.yaml"
    config.write_text(yaml.safe_dump({"model": {"model": "vae", "latent": "laplace", "latent_dim": 2},
                                      "hidden": [64], "epochs": 2, "data": "digits"}))  # fmt: skip
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "yaml"), "--no-progress"]) == 0
    assert aekit.load_run(tmp_path / "yaml").config.model.latent == "laplace"


# --- a penalty: decorrelated code units --------------------------------------------------------------


@aekit.register_penalty("decorrelation")
class Decorrelation(Penalty):
    """Sum of squared off-diagonal covariances of the code units over the batch (given to every sample)."""

    def forward(self, model: nn.Module, x_in: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        centred = code - code.mean(0)
        cov = centred.T @ centred / max(len(code) - 1, 1)  # (K, K)
        return (cov - torch.diag(torch.diag(cov))).square().sum().expand(len(code))


def _off_diagonal(run: aekit.Run) -> float:
    codes = run.encode(run.load_data().test)
    cov = torch.cov(codes.T)
    return float((cov - torch.diag(torch.diag(cov))).square().sum() / torch.diag(cov).square().sum())


def test_a_new_penalty_trains_from_python_and_yaml(tmp_path):
    common = {"model": "ae", "latent_dim": 4, "hidden": (64,), "epochs": 20, **QUIET}
    plain = aekit.train(**common, out=tmp_path / "plain")
    decorrelated = aekit.train(**common, penalties={"decorrelation": 1.0}, out=tmp_path / "py")
    assert list(decorrelated.model.term_weights) == ["recon", "decorrelation"]
    assert _off_diagonal(decorrelated) < 0.5 * _off_diagonal(plain)
    config = tmp_path / "penalty.yaml"
    config.write_text(yaml.safe_dump({"model": "ae", "penalties": {"decorrelation": {"weight": 0.5}}, "epochs": 2}))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "yaml"), "--no-progress"]) == 0
    assert aekit.load_run(tmp_path / "yaml").model.penalties[0].weight == 0.5
    assert main(["train", "--model", "ae", "--penalties", "decorrelation=2", "--epochs", "1", "--no-progress",
                 "--no-report", "--out", str(tmp_path / "flag")]) == 0  # fmt: skip


# --- a family: the autoencoder with tied weights (decoder = encoder transposed) ----------------------


@dataclass(frozen=True)
class TiedConfig(LikelihoodOptions, ModelConfig):
    """Options of the tied-weight autoencoder."""

    latent_dim: int = 16  # size of the code
    activation: str = "sigmoid"  # of the code: sigmoid or none

    family: ClassVar[str] = "tied"
    presets: ClassVar[dict[str, dict[str, Any]]] = {"tied-ae": {}, "tied-linear-ae": {"activation": "none"}}

    def _check(self) -> None:
        aekit.errors.check_choice("activation", self.activation, ("sigmoid", "none"))


class TiedAutoencoder(aekit.Model):
    """h = act(W x + b), x~ = W^T h + c: one weight matrix shared by encoder and decoder."""

    def __init__(self, config: TiedConfig, sample_shape: tuple[int, ...]):
        super().__init__()
        self.config, self.sample_shape = config, tuple(sample_shape)
        d = math.prod(sample_shape)
        self.weight = nn.Parameter(torch.randn(config.latent_dim, d) / math.sqrt(d))
        self.enc_bias, self.dec_bias = nn.Parameter(torch.zeros(config.latent_dim)), nn.Parameter(torch.zeros(d))
        self.likelihood = build_likelihood(config, sample_shape)

    @property
    def capabilities(self) -> aekit.Capabilities:
        return aekit.Capabilities()

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def term_weights(self) -> dict[str, float]:
        return {"recon": 1.0}

    def loss_terms(self, x, y=None):
        return {"recon": self.likelihood.nll(x, self.decoder_output(self.encode(x)))}

    def encode(self, x, y=None):
        h = x.flatten(1) @ self.weight.T + self.enc_bias
        return torch.sigmoid(h) if self.config.activation == "sigmoid" else h

    def decoder_output(self, z, y=None):
        return (z @ self.weight + self.dec_bias).view(-1, *self.sample_shape)


aekit.register_family(TiedConfig, lambda config, shape, encoder=None, decoder=None: TiedAutoencoder(config, shape))


def test_a_new_family_trains_from_python_and_yaml(tmp_path, capsys):
    run = aekit.train(model="tied-ae", latent_dim=16, epochs=40, lr=1e-2, out=tmp_path / "py", **QUIET)
    data = run.load_data()
    baseline = float((data.test - data.train.mean(0)).square().mean())
    assert run.evaluate(data.test)["mse"] < 0.5 * baseline
    check_contract(run.model, data.test[:6])
    again = aekit.load_run(run.path)
    torch.testing.assert_close(again.reconstruct(data.test), run.reconstruct(data.test))
    with pytest.raises(aekit.NotGenerativeError):
        again.sample(4)
    config = tmp_path / "tied.yaml"
    config.write_text(yaml.safe_dump({"model": {"model": "tied-linear-ae", "latent_dim": 8}, "epochs": 2}))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "yaml"), "--no-progress"]) == 0
    assert aekit.load_run(tmp_path / "yaml").config.model.activation == "none"
    assert main(["eval", str(tmp_path / "yaml"), "--json"]) == 0
    assert '"mse"' in capsys.readouterr().out
    with pytest.raises(aekit.ConfigError, match="does not apply to the 'tied-ae' model"):
        aekit.train(model="tied-ae", beta=2.0, **QUIET)
