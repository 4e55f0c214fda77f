"""Configuration: keys from anywhere, coerced, validated, refused when unknown."""

from __future__ import annotations

import pytest

from aekit.config import ModelConfig, RunConfig, from_dict, save_yaml
from aekit.errors import ConfigError


def test_flat_and_grouped_keys_agree():
    a = from_dict({"latent_dim": "8", "hidden": "400,200", "epochs": 3, "learn-obs-std": "true"})
    b = from_dict({"model": {"latent_dim": 8, "hidden": [400, 200], "learn_obs_std": True}, "train": {"epochs": 3}})
    assert a == b
    assert a.model.hidden == (400, 200) and a.train.epochs == 3


def test_yaml_round_trip():
    import yaml

    cfg = from_dict({"model": "ae", "beta": 2.5, "data": "mnist"})
    assert from_dict(yaml.safe_load(save_yaml(cfg))) == cfg


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
        ({"model": {"epochs": 3}}, "Unknown key 'epochs' in section 'model'"),
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
    assert ModelConfig(arch="conv").hidden == (32, 64)
    assert RunConfig().replace(model="ae", arch="conv").model.hidden == (32, 64)
    assert RunConfig().replace(arch="conv", hidden=(16,)).model.hidden == (16,)
    assert RunConfig().replace(model="ae").model.hidden == (400,)
