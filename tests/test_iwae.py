"""The IWAE (Burda et al. 2016): the k-sample importance-weighted bound as the training objective."""

from __future__ import annotations

import pytest
import torch

import aekit
from aekit.cli import main
from aekit.config import model_config
from aekit.errors import ConfigError
from aekit.models import build_model
from aekit.models.vae import ImportanceWeightedAutoencoder

QUIET = {"progress": False, "report": False}


def _model(k: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(model_config("iwae", iw_k=k, hidden=(16,), latent_dim=3, likelihood="bernoulli"), (12,))


def test_the_preset_trains_on_five_draws_and_k_1_is_the_vae():
    assert model_config("iwae").iw_k == 5 and model_config("vae").iw_k == 1
    assert isinstance(_model(5), ImportanceWeightedAutoencoder)
    assert set(_model(1).term_weights) == {"recon", "kl"}  # k = 1: the ELBO, with its closed-form KL


def test_the_objective_is_the_importance_weighted_bound_and_tighter_than_the_elbo():
    iwae = _model(5)
    vae = build_model(model_config("vae", hidden=(16,), latent_dim=3, likelihood="bernoulli"), (12,))
    vae.load_state_dict(iwae.state_dict())  # the same networks
    x = torch.rand(64, 12).bernoulli()
    draws = 400
    with torch.no_grad():
        iw = sum(iwae.loss_terms(x)["neg_iw_bound"] for _ in range(draws)) / draws
        one = sum(-iwae.importance_weights(x)(1)[0] for _ in range(draws)) / draws  # -log w of one draw
        elbo = sum(sum(vae.loss_terms(x).values()) for _ in range(draws)) / draws  # recon + KL in closed form
    assert float(one.mean()) == pytest.approx(float(elbo.mean()), rel=0.01)  # k = 1: the negative ELBO
    assert bool((iw < one).all())  # Burda et al., Theorem 1: the bound tightens with k


def test_iwae_beats_the_vae_at_equal_epochs_on_digits(tmp_path):
    nll = {}
    for model in ("vae", "iwae"):
        run = aekit.train(model=model, data="digits", epochs=30, out=tmp_path / model, **QUIET)
        nll[model] = run.evaluate(run.load_data().test, iw_samples=500)["nll_iw"]
    assert nll["iwae"] < nll["vae"] - 0.1, nll


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"beta": 4.0}, "no KL term to weigh"),
        ({"kl_warmup": 100}, "no KL term to weigh"),
        ({"iw_k": 0}, "iw_k must be an integer >= 1"),
    ],
)
def test_options_without_meaning_for_the_bound_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        model_config("iwae", **options)


def test_the_command_line_trains_an_iwae(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--model", "iwae", "--iw-k", "3", "--data", "digits", "--epochs", "1", "--hidden", "16",
                 "--no-progress", "--no-report", "--out", str(out)]) == 0  # fmt: skip
    assert aekit.load_run(out).config.model.iw_k == 3
    assert "neg_elbo" in capsys.readouterr().out  # evaluated as a VAE
