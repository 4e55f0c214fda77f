"""Probabilistic models: the importance-weighted bound, the MNIST protocol, collapse tools, the CVAE."""

from __future__ import annotations

import json
import math

import pytest
import torch
from sklearn.linear_model import LogisticRegression

import aekit
from aekit import build_model, model_config
from aekit.cli import main
from aekit.config import from_dict
from aekit.evaluation.bounds import iw_nll
from aekit.evaluation.metrics import evaluate
from aekit.runs.run import binarize_dataset
from aekit.training import Trainer

QUIET = {"progress": False, "report": False}


@pytest.fixture(scope="module")
def digits_vae(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "vae"
    return aekit.train(model="vae", data="digits", latent_dim=8, hidden=(64,), epochs=60, out=out, **QUIET)


def test_iw_bound_with_one_sample_is_the_elbo_in_expectation(digits_vae):
    x = digits_vae.load_data().test[:40]
    draws = torch.stack([iw_nll(digits_vae.model, x, k=1, seed=s) for s in range(300)])  # (S, N)
    neg_elbo = evaluate(digits_vae.model, x)["neg_elbo"]  # analytic KL, 1-draw reconstruction
    with torch.no_grad():
        recon_exact = torch.stack([digits_vae.model.loss_terms(x)["recon"] for _ in range(300)]).mean()
    kl = evaluate(digits_vae.model, x)["kl"]
    assert abs(float(draws.mean()) - (float(recon_exact) + kl)) < 0.02 * abs(neg_elbo)


def test_iw_bound_tightens_with_more_samples(digits_vae):
    x = digits_vae.load_data().test[:60]
    bounds = [float(iw_nll(digits_vae.model, x, k=k, seed=1).mean()) for k in (1, 10, 100, 1000)]
    assert bounds[0] > bounds[1] > bounds[2] > bounds[3], bounds


def test_iw_bound_chunking_does_not_change_the_result(digits_vae):
    x = digits_vae.load_data().test[:7]
    a = iw_nll(digits_vae.model, x, k=50, seed=3, max_decoded=8192)
    b = iw_nll(digits_vae.model, x, k=50, seed=3, max_decoded=50)
    assert torch.isfinite(a).all()
    # The draws differ between chunkings, but both are estimates of the same bound.
    assert abs(float(a.mean()) - float(b.mean())) < 0.05 * float(a.mean())


def test_eval_reports_the_likelihood_diagnostics(digits_vae, capsys):
    assert main(["eval", str(digits_vae.path), "--json", "--iw-samples", "200"]) == 0
    m = json.loads(capsys.readouterr().out)
    expected = {"neg_elbo", "recon_nats", "kl", "nll_iw", "bits_per_dim_iw", "bits_per_dim_elbo", "kl_per_dim"}
    assert expected | {"active_units"} <= set(m)
    assert m["nll_iw"] <= m["neg_elbo"] + 0.5
    assert len(m["kl_per_dim"]) == 8 and abs(sum(m["kl_per_dim"]) - m["kl"]) < 1e-3
    assert m["bits_per_dim_iw"] == pytest.approx(m["nll_iw"] / (64 * math.log(2)))
    assert m["bits_per_dim_elbo"] == pytest.approx(m["neg_elbo"] / (64 * math.log(2)))
    assert 0 < m["active_units"] <= 8


def test_active_units_counts_dimensions_whose_mean_varies():
    torch.manual_seed(0)
    model = build_model(model_config(model="vae", hidden=(16,), latent_dim=6, likelihood="bernoulli"), (10,))
    with torch.no_grad():
        model.latent.proj.weight[:2] = 0  # the means of dims 0 and 1 no longer depend on x
        model.latent.proj.weight[2:6] *= 20
    m = evaluate(model, torch.rand(300, 10))
    assert m["active_units"] == 4


# --- the MNIST protocol ----------------------------------------------------------------------------


def test_binarisation_static_and_dynamic():
    data = aekit.load_dataset("digits")
    static = binarize_dataset(data, "static", seed=0)
    dynamic = binarize_dataset(data, "dynamic", seed=0)
    for split in ("valid", "test"):
        assert set(getattr(static, split).unique().tolist()) <= {0.0, 1.0}
        assert torch.equal(getattr(static, split), getattr(dynamic, split)), "one fixed binarisation, seeded"
    assert torch.equal(binarize_dataset(data, "static", seed=0).test, static.test)
    assert not torch.equal(binarize_dataset(data, "static", seed=1).test, static.test)
    assert torch.equal(dynamic.train, data.train), "dynamic keeps grey levels for per-batch draws"
    assert abs(float(static.test.mean()) - float(data.test.mean())) < 0.01


def test_dynamic_binarisation_in_training(tmp_path):
    run = aekit.train(model="vae", data="digits", binarize="dynamic", hidden=(16,), latent_dim=2, epochs=2,
                      out=tmp_path / "r", **QUIET)  # fmt: skip
    assert set(run.load_data().test.unique().tolist()) <= {0.0, 1.0}
    seen = []
    trainer = Trainer(run.model, run.config.train, batch_transform=lambda xb: seen.append(xb) or torch.bernoulli(xb))
    trainer.fit(run.load_data().train[:64])
    assert seen and all(set(b.unique().tolist()) - {0.0, 1.0} for b in seen), "the transform sees grey batches"


def test_iwae_paper_preset_and_schedule():
    cfg = from_dict({"arch": "iwae-paper"})
    assert cfg.model.arch == "mlp" and cfg.model.hidden == (200, 200) and cfg.model.activation == "tanh"
    assert cfg.model.latent_dim == 50 and cfg.train.batch_size == 20 and cfg.train.adam_eps == 1e-4
    assert from_dict({"arch": "iwae-paper", "latent_dim": 10}).model.latent_dim == 10
    model = build_model(model_config(likelihood="bernoulli", latent_dim=2, hidden=(4,)), (3,))
    trainer = Trainer(model, aekit.TrainConfig(lr_schedule="iwae", progress=False, lr=1e-3))
    lrs = []
    for epoch in range(0, 3280, 1):
        trainer.state.epoch = epoch
        trainer._set_lr()
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
    stages = [(i, 3**i) for i in range(8)]
    expected = [1e-3 * 10 ** (-i / 7) for i, passes in stages for _ in range(passes)]
    assert len(expected) == 3280
    assert lrs == pytest.approx(expected)


# --- posterior-collapse tools ---------------------------------------------------------------------


def test_kl_warmup_weight():
    model = build_model(model_config(likelihood="bernoulli", latent_dim=2, hidden=(4,), beta=2.0, kl_warmup=100), (3,))
    trainer = Trainer(model, aekit.TrainConfig(progress=False))
    terms = {"recon": torch.tensor([1.0]), "kl": torch.tensor([10.0])}
    for step, weight in [(0, 0.0), (50, 1.0), (100, 2.0), (400, 2.0)]:
        trainer.state.step = step
        assert float(trainer.objective(terms)) == pytest.approx(1.0 + weight * 10)
    assert float(trainer.objective(terms, warmup=False)) == pytest.approx(21.0)


def test_free_bits_floor_and_gradient():
    torch.manual_seed(0)
    model = build_model(model_config(likelihood="bernoulli", latent_dim=4, hidden=(8,), free_bits=0.5), (6,)).train()
    x = torch.rand(32, 6).round()
    kl_true = model.eval().loss_terms(x)["kl"]
    model.train()
    torch.manual_seed(1)
    posterior = model.posterior(x)
    var = posterior.stddev.square()
    per_dim = 0.5 * (var - var.log() - 1 + posterior.mean.square()).mean(0)
    terms = model.loss_terms(x)
    assert float(terms["kl"].detach().mean()) == pytest.approx(float(per_dim.detach().clamp(min=0.5).sum()), rel=1e-5)
    assert float(terms["kl"].detach().mean()) >= float(kl_true.detach().mean()) - 1e-6
    terms["kl"].mean().backward()
    weight_grad = model.latent.proj.weight.grad  # rows 0..3: means, 4..7: log-variances
    below = per_dim < 0.5
    assert torch.allclose(weight_grad[:4][below], torch.zeros(1), atol=1e-6)


# --- conditional VAE --------------------------------------------------------------------------------


def test_conditional_samples_are_recognised_as_their_label(tmp_path, capsys):
    run = aekit.train(model="vae", condition_on="labels", data="digits", latent_dim=4, hidden=(128,), epochs=120,
                      out=tmp_path / "cvae", **QUIET)  # fmt: skip
    assert run.model.num_classes == 10
    data = run.load_data()
    clf = LogisticRegression(max_iter=2000).fit(data.train.flatten(1).numpy(), data.train_labels.numpy())
    correct = 0
    for label in range(10):
        samples = run.sample(30, seed=label, label=label)
        correct += int((clf.predict(samples.flatten(1).numpy()) == label).sum())
    accuracy = correct / 300
    assert accuracy > 0.5, accuracy  # chance is 0.1
    out = tmp_path / "s.png"
    assert main(["sample", str(run.path), "--label", "3", "-n", "8", "--out", str(out)]) == 0
    assert out.is_file()
    assert main(["sample", str(run.path), "--out", str(out)]) == 2
    assert "--label L with L in 0..9" in capsys.readouterr().err
    assert main(["eval", str(run.path), "--json", "--iw-samples", "10"]) == 0
    assert "nll_iw" in json.loads(capsys.readouterr().out)


def test_conditioning_needs_labels(tmp_path):
    import numpy as np

    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((50, 4)).astype("float32"))
    with pytest.raises(aekit.DataError, match="needs labelled data"):
        aekit.train(model="vae", condition_on="labels", data=str(tmp_path / "x.npy"), epochs=1, out=tmp_path / "r",
                    **QUIET)  # fmt: skip


def test_label_on_unconditional_model(digits_vae):
    with pytest.raises(aekit.ConfigError, match="needs a conditional model"):
        digits_vae.sample(4, label=2)
