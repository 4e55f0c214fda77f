"""Configuration: keys from anywhere, coerced, validated, refused when unknown."""

from __future__ import annotations

import pytest

from aekit.config import RunConfig, from_dict, model_config, save_yaml
from aekit.errors import ConfigError
from aekit.models import AutoencoderConfig, VAEConfig, VQVAEConfig
from contract import built_in_presets


def test_flat_and_grouped_keys_agree():
    a = from_dict({"latent_dim": "8", "hidden": "400,200", "epochs": 3, "learn-obs-std": "true"})
    b = from_dict({"model": {"latent_dim": 8, "hidden": [400, 200], "learn_obs_std": True}, "train": {"epochs": 3}})
    assert a == b
    assert a.model.hidden == (400, 200) and a.train.epochs == 3


@pytest.mark.parametrize("preset", built_in_presets())
def test_yaml_round_trip(preset):
    import yaml

    cfg = from_dict({"model": preset, "data": "mnist", "epochs": 7})
    saved = yaml.safe_load(save_yaml(cfg))
    assert saved["format"] == 2 and saved["model"]["model"] == preset
    assert from_dict(saved) == cfg


def test_each_family_has_its_own_options():
    vae, vq, dae = (from_dict({"model": m}).model for m in ("beta-vae", "vq-vae", "dae"))
    assert isinstance(vae, VAEConfig) and vae.beta == 4.0 and vae.kl_warmup == 0
    assert isinstance(vq, VQVAEConfig) and vq.commitment_weight == 0.25 and "beta" not in vq.field_names()
    assert isinstance(dae, AutoencoderConfig) and dae.noise == "mask" and "beta" not in dae.field_names()
    assert "num_codes" not in vae.field_names() and "sparsity" not in vae.field_names()
    with pytest.raises(ConfigError, match="does not apply to the 'vae' model; it belongs to vq-vae"):
        from_dict({"model": "vae", "num_codes": 16})
    with pytest.raises(ConfigError, match="'commitment_weight' for the 'vq-vae' model"):
        from_dict({"model": "vq-vae", "beta": 0.5})


def test_switching_preset_follows_the_preset_and_keeps_hand_set_values():
    dae = from_dict({"model": "dae", "latent_dim": 3, "hidden": (16,)})
    ae = dae.replace(model="ae")
    assert ae.model.noise == "none" and ae.model.noise_level == 0.0  # the dae preset's noise goes with it
    assert ae.model.latent_dim == 3 and ae.model.hidden == (16,)  # values set by hand stay
    vae = ae.replace(model="vae")
    assert isinstance(vae.model, VAEConfig) and vae.model.latent == "gaussian" and vae.model.latent_dim == 3
    assert from_dict({"model": "sparse-ae", "sparsity": "l2"}).model.sparsity == "l2"  # explicit wins
    assert model_config("dae", noise_level=0.2).noise_level == 0.2


def test_replace_does_not_mutate():
    base = RunConfig()
    new = base.replace(latent_dim=2)
    assert base.model.latent_dim == 20 and new.model.latent_dim == 2


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"beta": -1}, "beta must be"),
        ({"arch": "cnn"}, "Unknown arch 'cnn'"),
        ({"hidden": "400,x"}, "list of integers"),
        ({"model": {"epochs": 3}}, "Unknown key 'epochs' in section 'model': it belongs in section 'train'"),
        ({"model": "vae", "kl_warmup": -1}, "kl_warmup must be >= 0"),
        ({"model": "ae", "penalties": "nope=1"}, "Unknown penalty 'nope'"),
        ({"model": "ae", "penalties": "sparsity=1"}, "has its own options"),
        ({"lr": 0}, "lr must be > 0"),
        ({"latent_dim": 2.5}, "expects an integer"),
        ({"patience": -1}, "patience must be >= 0"),
        ({"likelihood": "poisson"}, "Unknown likelihood"),
    ],
)
def test_bad_values(values, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(values)


def test_conv_gets_conv_channels_by_default():
    assert VAEConfig(arch="conv").hidden == (32, 64)
    assert RunConfig().replace(model="ae", arch="conv").model.hidden == (32, 64)
    assert RunConfig().replace(arch="conv", hidden=(16,)).model.hidden == (16,)
    assert RunConfig().replace(model="ae").model.hidden == (400,)


def test_the_config_module_finds_the_built_in_models_without_importing_aekit_first():
    import subprocess
    import sys

    code = "from aekit.config import model_config; print(model_config('dae').noise)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "mask", done.stderr
