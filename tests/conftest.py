"""Shared fixtures: small trained runs reused across tests (training is the slow part)."""

from __future__ import annotations

import pytest
import torch

import aekit


@pytest.fixture(autouse=True)
def _no_threads_fight():
    # Tests run on 2-core machines; keep torch from oversubscribing when pytest-xdist is used.
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def vae_run(tmp_path_factory):
    """A VAE trained briefly on digits (with plots and report)."""
    out = tmp_path_factory.mktemp("runs") / "vae"
    return aekit.train(model="vae", data="digits", latent_dim=4, hidden=(64,), epochs=40, progress=False, out=out)


@pytest.fixture(scope="session")
def ae_run(tmp_path_factory):
    """A plain AE trained briefly on digits, without plots."""
    out = tmp_path_factory.mktemp("runs") / "ae"
    return aekit.train(
        model="ae", data="digits", latent_dim=4, hidden=(64,), epochs=3, progress=False, out=out, report=False
    )
