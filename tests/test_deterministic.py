"""The deterministic family: linear AE = PCA, denoising, sparsity, contraction, and their errors."""

from __future__ import annotations

import json

import pytest
import torch

import aekit
from aekit import ConfigError, build_model, model_config
from aekit.cli import main
from aekit.evaluation.denoising import denoise
from aekit.evaluation.linear import pca_check
from aekit.parts.corruption import Corruption, corrupt
from aekit.parts.jacobian import jacobian_frobenius_sq

QUIET = {"progress": False, "report": False}


# --- linear AE and PCA ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "linear"
    return aekit.train(model="linear-ae", data="digits", out=out, **QUIET)  # the preset's own defaults


def test_linear_ae_learns_the_pca_subspace_at_its_defaults(linear_run):
    # 20 components (the default code): the 20th and 21st principal directions of digits differ by 7%
    # in variance, the hardest case of the subspace to settle.
    data = linear_run.load_data()
    result = pca_check(linear_run.model, data.train, data.test)
    assert result["k"] == 20
    assert abs(result["ae_mse"] / result["pca_mse"] - 1) < 0.02
    assert result["max_angle_deg"] < 10


def test_a_preset_sets_its_training_defaults_unless_they_are_given():
    from aekit.config import TrainConfig, from_dict

    linear = from_dict({"model": "linear-ae"}).train
    assert (linear.epochs, linear.lr, linear.batch_size, linear.lr_schedule) == (200, 1e-2, 32, "cosine")
    assert from_dict({"model": "linear-ae", "lr": 1e-3}).train.lr == 1e-3  # given: kept
    back = from_dict({"model": "linear-ae", "epochs": 7}).replace(model="ae").train
    assert back.epochs == 7 and back.lr == TrainConfig.lr and back.lr_schedule == "constant"  # set by hand stays


def test_the_cosine_schedule_anneals_the_rate_to_zero(tmp_path):
    rates = []
    aekit.train(model="ae", data="digits", hidden=(8,), latent_dim=2, epochs=4, lr=0.1, lr_schedule="cosine",
                out=tmp_path / "r", callbacks=[lambda trainer, record, improved: rates.append(record["lr"])],
                **QUIET)  # fmt: skip
    assert rates == pytest.approx([0.1, 0.1 * (1 + 2**-0.5) / 2, 0.05, 0.1 * (1 - 2**-0.5) / 2])


def test_a_time_limit_ends_training_and_the_cosine_schedule_with_it(tmp_path, monkeypatch):
    import types

    from aekit.training import trainer

    clock = iter(range(0, 10_000, 5))  # every reading 5 s later: an epoch (two readings) takes 5 s
    monkeypatch.setattr(trainer, "time", types.SimpleNamespace(perf_counter=lambda: float(next(clock))))
    rates = []
    run = aekit.train(model="ae", data="digits", hidden=(8,), latent_dim=2, epochs=50, lr=0.1, lr_schedule="cosine",
                      time_limit=0.25, out=tmp_path / "r", callbacks=[lambda t, record, i: rates.append(record["lr"])],
                      **QUIET)  # fmt: skip
    # 15 s of budget at 5 s per epoch: 3 epochs, the rate following the clock, not the 50 epochs
    assert rates == pytest.approx([0.1, 0.075, 0.025])
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["epochs"] == 3 and summary["time_limit_reached"] and not summary["stopped_early"]
    with pytest.raises(ConfigError, match="time_limit"):
        aekit.train(model="ae", time_limit=-1, out=tmp_path / "bad", **QUIET)


def test_pca_check_cli_json(linear_run, capsys):
    assert main(["pca-check", str(linear_run.path), "--json"]) == 0
    import json

    result = json.loads(capsys.readouterr().out)
    assert {"ae_mse", "pca_mse", "max_angle_deg"} <= set(result)


def test_pca_check_refuses_a_nonlinear_model(tmp_path, capsys):
    run = aekit.train(model="ae", data="digits", hidden=(16,), latent_dim=4, epochs=1, out=tmp_path / "r", **QUIET)
    assert main(["pca-check", str(run.path)]) == 2
    err = capsys.readouterr().err
    assert "not linear" in err and "encoder is not linear" in err and "--model linear-ae" in err


# --- denoising -----------------------------------------------------------------------------------


def test_corruption_levels():
    g = torch.Generator().manual_seed(0)
    x = torch.full((200, 1, 10, 10), 0.5)
    masked = corrupt(x, "mask", 0.3, generator=g)
    assert abs(float((masked == 0).float().mean()) - 0.3) < 0.02
    sp = corrupt(x, "salt_pepper", 0.4, generator=g)
    assert abs(float((sp != 0.5).float().mean()) - 0.4) < 0.02
    assert abs(float((sp == 1).float().mean()) - 0.2) < 0.02
    gauss = corrupt(x, "gaussian", 0.1, generator=g)
    assert abs(float((gauss - x).std()) - 0.1) < 0.005
    layer = Corruption("mask", 0.9).eval()
    assert torch.equal(layer(x), x), "evaluation sees clean data"


def test_dae_restores_masked_digits(tmp_path, capsys):
    run = aekit.train(model="dae", data="digits", hidden=(256,), latent_dim=32, epochs=100, out=tmp_path / "d", **QUIET)
    x = run.load_data().test
    _, _, metrics = denoise(run.model, x, "mask", 0.5)
    assert metrics["mse_restored"] * 2 <= metrics["mse_corrupted"], metrics
    grid = tmp_path / "grid.png"
    argv = ["denoise", str(run.path), "--noise", "mask", "--noise-level", "0.5", "--out", str(grid), "--json"]
    assert main(argv) == 0
    assert grid.stat().st_size > 1000
    assert "mse_restored" in capsys.readouterr().out
    # Without --noise, the run's own noise (the dae preset's: mask, 0.5) with the same seed.
    assert main(["denoise", str(run.path), "--json"]) == 0
    own = json.loads(capsys.readouterr().out)
    assert (own["noise"], own["noise_level"]) == ("mask", 0.5) and own["mse_restored"] == metrics["mse_restored"]
    assert main(["denoise", str(run.path), "--noise-level", "0.2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["noise_level"] == 0.2
    assert main(["denoise", str(run.path), "--level", "0.5"]) == 2
    assert "'--level' is now '--noise-level'" in capsys.readouterr().err


# --- sparsity ------------------------------------------------------------------------------------


def test_kl_sparsity_reaches_the_target_rate(tmp_path):
    rho = 0.05
    run = aekit.train(model="sparse-ae", sparsity="kl", code_activation="sigmoid", sparsity_weight=10,
                      sparsity_target=rho, hidden=(256,), latent_dim=64, data="digits", epochs=100,
                      out=tmp_path / "s", **QUIET)  # fmt: skip
    metrics = run.evaluate(run.load_data().test)
    per_unit = torch.tensor(metrics["mean_activation_per_unit"])
    assert abs(metrics["mean_activation"] - rho) < 0.01
    assert float((per_unit - rho).abs().max()) < 0.03


def test_l1_sparsity_shrinks_codes():
    torch.manual_seed(0)
    x = torch.rand(256, 20)
    codes = {}
    for weight in (0.0, 0.2):
        cfg = model_config(model="sparse-ae", sparsity="l1", sparsity_weight=weight, hidden=(), latent_dim=30,
                          likelihood="gaussian")  # fmt: skip
        torch.manual_seed(0)
        model = build_model(cfg, (20,))
        trainer = aekit.Trainer(model, aekit.TrainConfig(epochs=60, progress=False, batch_size=64))
        trainer.fit(x)
        codes[weight] = model.encode(x).abs().mean().item()
    assert codes[0.2] < 0.5 * codes[0.0]


# --- contraction ---------------------------------------------------------------------------------


def test_jacobian_methods_agree():
    torch.manual_seed(0)
    sigmoid_layer = build_model(
        model_config(model="cae", hidden=(), code_activation="sigmoid", latent_dim=5, likelihood="bernoulli"), (12,)
    )
    x = torch.rand(7, 12)
    closed = jacobian_frobenius_sq(sigmoid_layer, x, "closed_form")
    exact = jacobian_frobenius_sq(sigmoid_layer, x, "exact")
    torch.testing.assert_close(closed, exact, rtol=1e-5, atol=1e-6)
    deep = build_model(model_config(model="cae", hidden=(9,), latent_dim=4, likelihood="bernoulli"), (12,))
    exact = jacobian_frobenius_sq(deep, x, "exact")
    jac = torch.func.vmap(torch.func.jacrev(lambda v: deep.encode(v[None])[0]))(x)  # (N, K, D)
    torch.testing.assert_close(exact, jac.square().sum((1, 2)))
    estimate = jacobian_frobenius_sq(deep, x.repeat(4000, 1), "projection").view(4000, 7).mean(0)
    torch.testing.assert_close(estimate, exact, rtol=0.1, atol=1e-3)  # unbiased: the mean converges


def test_closed_form_refused_for_deep_encoder():
    deep = build_model(model_config(model="cae", hidden=(9,), latent_dim=4, likelihood="bernoulli"), (12,))
    with pytest.raises(ConfigError, match="single sigmoid layer"):
        jacobian_frobenius_sq(deep, torch.rand(2, 12), "closed_form")


def test_cae_is_less_sensitive_than_ae(tmp_path):
    common = dict(data="digits", hidden=(256,), latent_dim=16, code_activation="sigmoid", epochs=60, **QUIET)
    ae = aekit.train(model="ae", out=tmp_path / "ae", **common)
    cae = aekit.train(model="cae", out=tmp_path / "cae", **common)
    x = ae.load_data().test
    m_ae, m_cae = ae.evaluate(x), cae.evaluate(x)
    assert m_cae["jacobian_norm"] < 0.7 * m_ae["jacobian_norm"]
    assert m_cae["mse"] < 1.5 * m_ae["mse"], "comparable reconstruction error"


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"model": "dae", "noise": "mask", "noise_level": 1.5}, r"must lie in \[0, 1\]"),
        ({"model": "dae", "noise": "salt_pepper", "noise_level": -0.1}, "noise_level must be"),
        ({"model": "sparse-ae", "sparsity_weight": -1}, "sparsity_weight must be"),
        ({"model": "cae", "contractive_weight": -0.1}, "contractive_weight must be"),
        ({"model": "sparse-ae", "sparsity": "kl", "code_activation": "sigmoid", "sparsity_target": 1.2}, "rho"),
        ({"model": "sparse-ae", "sparsity": "kl", "sparsity_target": 0.05}, "--code-activation sigmoid"),
        ({"model": "vae", "sparsity": "l1"}, "does not apply to the 'vae' model; it belongs to ae, linear-ae"),
        ({"model": "ae", "latent": "gaussian"}, "deterministic code"),
        ({"model": "dae", "noise": "pepper"}, "Unknown noise 'pepper'"),
    ],
)
def test_bad_options(values, message):
    with pytest.raises(ConfigError, match=message):
        aekit.config.from_dict(values)


def test_eval_pca_baseline_matches_pca_check(linear_run, capsys):
    import json

    assert main(["eval", str(linear_run.path), "--json", "--pca-baseline"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    data = linear_run.load_data()
    expected = pca_check(linear_run.model, data.train, data.test)["pca_mse"]
    assert abs(metrics["pca_mse"] - expected) < 1e-9
    assert abs(metrics["pca_sse"] - 64 * expected) < 1e-6
