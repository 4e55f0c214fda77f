"""The model contract as checks: what a model declares in its capabilities, it does; what it does not
declare raises the documented error. Used by test_contract.py for every built-in family and by
test_extending.py for a family defined outside the library."""

from __future__ import annotations

import math

import pytest
import torch

import aekit
from aekit.evaluation.bounds import iw_nll
from aekit.evaluation.metrics import evaluate
from aekit.models import Capabilities, Model


def check_contract(model: Model, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
    """Run every check of the contract on ``model`` with a batch ``x`` (and labels ``y``)."""
    caps = model.capabilities
    assert isinstance(caps, Capabilities)
    n, shape = len(x), tuple(model.sample_shape)
    assert tuple(x.shape[1:]) == shape

    # Training: named per-sample terms, one weight each; schedules end at the full weights.
    model.train()
    terms = model.loss_terms(x, y)
    assert list(terms) == list(model.term_weights)
    assert all(t.shape == (n,) and torch.isfinite(t).all() for t in terms.values())
    assert model.objective_weights(None) == model.term_weights
    assert set(model.objective_weights(0)) == set(model.term_weights)

    # Encoding and decoding.
    model.eval()
    with torch.no_grad():
        code = model.encode(x, y)
        assert code.shape == (n, model.latent_dim)
        recon = model.reconstruct(x, y)
        assert recon.shape == x.shape and torch.isfinite(recon).all()
        torch.testing.assert_close(model.decode(code, y), recon)
        assert model.decoder_output(code, y).shape == x.shape
        evaluation = model.evaluation(x, y)
        torch.testing.assert_close(evaluation.code, code)
        torch.testing.assert_close(evaluation.recon, recon)
        assert set(evaluation.terms) == set(terms)
        assert all(v.shape[0] == n for v in evaluation.stats.values())
        # The declared anomaly scores, one per sample: read off an evaluation pass, or computed directly.
        for scores in (model.scores_of(evaluation), model.sample_scores(x, y)):
            assert tuple(scores) == model.score_names
            assert all(v.shape == (n,) and torch.isfinite(v).all() for v in scores.values())

    # Each capability: declared means it works; undeclared means the documented error.
    labels = None if y is None else y[:3]
    if caps.generative:
        samples = model.sample(3, generator=torch.Generator().manual_seed(0), y=labels)
        assert samples.shape == (3, *shape) and torch.isfinite(samples).all()
    else:
        with pytest.raises(aekit.NotGenerativeError):
            model.sample(3, y=labels)
    if caps.likelihood_bound:
        bound = iw_nll(model, x, y, k=8)
        assert bound.shape == (n,) and torch.isfinite(bound).all()
    else:
        with pytest.raises(aekit.CapabilityError):
            iw_nll(model, x, y, k=8)
    if caps.posterior:
        with torch.no_grad():
            posterior = model.posterior(x, y)
        torch.testing.assert_close(posterior.mean, code)
        assert posterior.stddev.shape == code.shape and (posterior.stddev > 0).all()
    else:
        with pytest.raises(aekit.CapabilityError):
            model.posterior(x, y)
    if caps.discrete_codes:
        indices = model.encode_indices(x)
        assert indices.dtype == torch.long and indices.shape == (n, *model.code_shape)
        assert int(indices.min()) >= 0 and int(indices.max()) < model.num_codes
        with torch.no_grad():
            torch.testing.assert_close(model.decode_indices(indices), recon)
            uniform = model.sample(2, prior="uniform")
        assert uniform.shape == (2, *shape)
    else:
        with pytest.raises(aekit.CapabilityError):
            model.encode_indices(x)
        with pytest.raises(aekit.CapabilityError):
            model.num_codes  # noqa: B018
    if not caps.needs_prior:
        with pytest.raises(aekit.CapabilityError):
            model.attach_prior(None)
    if caps.energy_based:
        energy = model.free_energy(x)
        assert energy.shape == (n,) and torch.isfinite(energy).all()
    else:
        with pytest.raises(aekit.CapabilityError):
            model.free_energy(x)
    if caps.conditional:
        with pytest.raises(aekit.DataError):
            model.loss_terms(x)
    else:
        assert y is None, "labels are for conditional models"

    # Evaluation: the common metrics, and the bound's where it is declared.
    metrics = evaluate(model, x, y=y, iw_samples=4)
    assert {"mse", "sse", "psnr", "recon_nats", "n"} <= set(metrics)
    assert ("nll_iw" in metrics) == caps.likelihood_bound
    assert ("free_energy" in metrics) == caps.energy_based
    assert all(math.isfinite(v) for v in metrics.values() if isinstance(v, float))
    assert isinstance(model.epoch_diagnostics(x), dict)


def built_in_presets() -> list[str]:
    """The ``--model`` names of the families aekit itself defines (tests may register others)."""
    from aekit.registry import FAMILIES

    return [p for _, f in FAMILIES.items() if f.config.__module__.startswith("aekit.") for p in f.presets]
