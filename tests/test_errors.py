"""Bad input gets a clear, documented error and loses nothing."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import aekit
from aekit import CheckpointError, ConfigError, DataError


def test_bernoulli_refuses_data_outside_unit_interval(tmp_path):
    path = tmp_path / "big.npy"
    np.save(path, np.random.default_rng(0).normal(size=(50, 1, 4, 4)).astype(np.float32) * 3)
    with pytest.raises(DataError, match=r"bernoulli likelihood needs .* in \[0, 1\].*--likelihood gaussian"):
        aekit.train(data=str(path), likelihood="bernoulli", epochs=1, progress=False, out=tmp_path / "r")
    assert not (tmp_path / "r").exists(), "no run directory is created for a run that cannot start"


def test_nan_in_data(tmp_path):
    x = np.random.default_rng(0).random((40, 5)).astype(np.float32)
    x[7, 2] = np.nan
    np.save(tmp_path / "nan.npy", x)
    with pytest.raises(DataError, match="NaN"):
        aekit.train(data=str(tmp_path / "nan.npy"), epochs=1, progress=False, out=tmp_path / "r")


def test_unknown_option_suggests():
    with pytest.raises(ConfigError, match="Did you mean 'latent_dim'"):
        aekit.train(latent_dims=3)


def test_corrupt_checkpoint(vae_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(vae_run.path, copy)
    (copy / "model.safetensors").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        aekit.load_run(copy)
    (copy / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError):
        aekit.load_run(copy)


def test_checkpoint_from_another_model(vae_run, ae_run, tmp_path):
    copy = tmp_path / "mixed"
    shutil.copytree(vae_run.path, copy)
    shutil.copy(ae_run.path / "model.safetensors", copy / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"'ae' model but config.yaml describes a 'vae'"):
        aekit.load_run(copy)


def test_not_a_run_directory(tmp_path):
    with pytest.raises(CheckpointError, match="not an aekit run directory"):
        aekit.load_run(tmp_path)


def test_wrong_shape_for_encode(vae_run):
    with pytest.raises(DataError, match=r"Expected samples of shape \(1, 8, 8\)"):
        vae_run.encode(torch.rand(3, 64))


def test_existing_run_dir_is_not_overwritten(vae_run):
    before = (vae_run.path / "model.safetensors").read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        aekit.train(epochs=1, progress=False, out=vae_run.path)
    assert (vae_run.path / "model.safetensors").read_bytes() == before


def test_overwrite_refuses_foreign_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("precious")
    with pytest.raises(ConfigError, match="not an aekit run directory"):
        aekit.train(epochs=1, progress=False, out=tmp_path, overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "precious"
