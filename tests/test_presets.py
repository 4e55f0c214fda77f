"""One conformance suite over every preset: each builds, trains, saves and reloads the same way."""

from __future__ import annotations

import math

import pytest
import torch

import aekit
from aekit.config import from_dict
from aekit.registry import family_of
from contract import built_in_presets

TINY = {"epochs": 2, "progress": False, "report": False}
TINY_MODEL = {"vq-vae": {"channels": 16, "num_codes": 16, "code_dim": 4}}  # the others: a small MLP


def tiny(preset: str) -> dict:
    return {**TINY, **TINY_MODEL.get(family_of(preset).name, {"latent_dim": 3, "hidden": (16,)})}


@pytest.mark.parametrize("preset", built_in_presets())
def test_preset_trains_saves_and_reloads(preset, tmp_path):
    run = aekit.train(model=preset, data="digits", out=tmp_path / preset, **tiny(preset))
    x = run.load_data().test[:16]
    terms = run.model.loss_terms(x)
    assert set(terms) == set(run.model.term_weights)
    assert all(t.shape == (16,) and torch.isfinite(t).all() for t in terms.values())
    again = aekit.load_run(run.path)
    torch.testing.assert_close(again.reconstruct(x), run.reconstruct(x), rtol=0, atol=0)
    metrics = again.evaluate(x)
    assert math.isfinite(metrics["mse"])
    # Each family reports its own diagnostics.
    expected = {"vae": "neg_elbo", "ae": "jacobian_norm", "vq-vae": "perplexity", "latent-ebm": "free_energy"}
    family = family_of(preset).name
    for name, key in expected.items():
        assert (key in metrics) == (name == family), (name, key)


@pytest.mark.parametrize("preset", built_in_presets())
def test_preset_defaults_apply_and_explicit_keys_win(preset):
    cfg = from_dict({"model": preset})
    for key, value in family_of(preset).presets[preset].items():
        assert getattr(cfg.model, key) == value
    assert type(cfg.model) is family_of(preset).config
    assert family_of(preset).config(model=preset) == cfg.model  # direct construction takes the same defaults


def test_direct_construction_takes_preset_defaults():
    cfg = aekit.model_config(model="dae")
    assert cfg.latent == "deterministic" and cfg.noise == "mask" and cfg.noise_level == 0.5
    assert aekit.model_config(model="dae", noise_level=0.2).noise_level == 0.2
    assert aekit.model_config().latent == "gaussian"
    assert aekit.AutoencoderConfig(model="sparse-ae").sparsity == "l1"
    assert aekit.AutoencoderConfig(model="sparse-ae", sparsity="l2").sparsity == "l2"
