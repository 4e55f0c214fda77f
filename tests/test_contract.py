"""The conformance suite: every built-in family against the model contract (tests/contract.py)."""

from __future__ import annotations

import pytest
import torch

import aekit
from aekit.parts import GatedPixelCNN
from aekit.registry import FAMILIES
from contract import built_in_presets, check_contract

# A tiny configuration per preset, and the data shape it suits.
TINY = {"vq-vae": {"channels": 8, "num_codes": 8, "code_dim": 4, "res_blocks": 1, "downsample": 1}}
IMAGES = (1, 8, 8)


def tiny_model(preset: str, **options) -> aekit.Model:
    family = aekit.registry.family_of(preset).name
    defaults = TINY.get(family, {"hidden": (16,), "latent_dim": 3})
    torch.manual_seed(0)
    return aekit.build_model(preset, IMAGES, likelihood="bernoulli", **{**defaults, **options})


def batch(n: int = 6) -> torch.Tensor:
    return torch.rand(n, *IMAGES, generator=torch.Generator().manual_seed(1)).round()


@pytest.mark.parametrize("preset", built_in_presets())
def test_every_preset_keeps_the_contract(preset):
    check_contract(tiny_model(preset), batch())


def test_every_family_is_covered():
    assert {"ae", "vae", "vq-vae", "latent-ebm"} <= {name for name, _ in FAMILIES.items()}


def test_declared_capabilities_of_the_families():
    caps = {p: tiny_model(p).capabilities for p in ("ae", "vae", "vq-vae", "latent-ebm")}
    assert caps["ae"] == aekit.Capabilities()
    assert caps["vae"] == aekit.Capabilities(generative=True, likelihood_bound=True, posterior=True)
    assert caps["vq-vae"] == aekit.Capabilities(discrete_codes=True, needs_prior=True)
    assert caps["latent-ebm"] == aekit.Capabilities(energy_based=True)


def test_a_conditional_model_keeps_the_contract():
    model = tiny_model("vae", condition_on="labels", num_classes=3)
    assert model.capabilities.conditional
    check_contract(model, batch(), torch.tensor([0, 1, 2, 0, 1, 2]))


def test_a_vq_vae_with_a_prior_becomes_generative():
    model = tiny_model("vq-vae")
    with pytest.raises(aekit.NotGenerativeError, match="train-prior"):
        model.sample(2)
    model.attach_prior(GatedPixelCNN(model.num_codes, channels=4, layers=1))
    assert model.capabilities.generative and model.capabilities.needs_prior
    check_contract(model, batch())
    model.attach_prior(None)
    assert not model.capabilities.generative


def test_a_denoising_vae_keeps_the_contract():
    check_contract(tiny_model("vae", noise="gaussian", noise_level=0.1), batch())
