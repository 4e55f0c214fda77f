"""One conformance suite over every preset: each builds, trains, saves and reloads the same way."""

from __future__ import annotations

import math

import pytest
import torch

import aekit
from aekit.config import PRESETS, from_dict

TINY = {"latent_dim": 3, "hidden": (16,), "epochs": 2, "progress": False, "report": False}


@pytest.mark.parametrize("preset", list(PRESETS))
def test_preset_trains_saves_and_reloads(preset, tmp_path):
    run = aekit.train(model=preset, data="digits", out=tmp_path / preset, **TINY)
    x = run.load_data().test[:16]
    terms = run.model.loss_terms(x)
    assert set(terms) == set(run.model.term_weights)
    assert all(t.shape == (16,) and torch.isfinite(t).all() for t in terms.values())
    again = aekit.load_run(run.path)
    torch.testing.assert_close(again.reconstruct(x), run.reconstruct(x), rtol=0, atol=0)
    metrics = again.evaluate(x)
    assert math.isfinite(metrics["mse"])
    # Each kind of latent reports its own diagnostics.
    expected = {
        "gaussian": "neg_elbo",
        "deterministic": "jacobian_norm",
        "vq": "perplexity",
        "optimized": "free_energy",
    }
    latent = again.config.model.latent
    for kind, key in expected.items():
        assert (key in metrics) == (kind == latent), (kind, key)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_preset_defaults_apply_and_explicit_keys_win(preset):
    cfg = from_dict({"model": preset})
    for key, value in PRESETS[preset].items():
        assert getattr(cfg.model, key) == value
    explicit = from_dict({"model": preset, "latent": "gaussian" if preset == "linear-ae" else "deterministic"})
    assert explicit.model.model == preset


def test_direct_construction_takes_preset_defaults():
    cfg = aekit.ModelConfig(model="dae")
    assert cfg.latent == "deterministic" and cfg.noise == "mask" and cfg.noise_level == 0.5
    assert aekit.ModelConfig(model="dae", noise_level=0.2).noise_level == 0.2
    assert aekit.ModelConfig().latent == "gaussian"
