"""A trained model whose test metrics show it failed (a posterior collapsed onto the prior, a codebook
that uses one code) says so when training ends, with the fix, and summary.json keeps it."""

from __future__ import annotations

import json
import logging

import aekit
from aekit import build_model

QUIET = {"progress": False, "report": False}


def test_a_collapsed_posterior_is_reported_with_its_fix(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="aekit"):
        run = aekit.train(model="beta-vae", beta=50.0, data="digits", epochs=5, out=tmp_path / "b", **QUIET)
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["test"]["active_units"] == 0
    (warning,) = summary["warnings"]
    assert "posterior collapsed" in warning and "--beta" in warning and "beta 50" in warning
    assert warning in caplog.text


def test_a_working_vae_has_no_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="aekit"):
        run = aekit.train(model="vae", data="digits", epochs=5, out=tmp_path / "v", **QUIET)
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["test"]["active_units"] > 0 and summary["warnings"] == []
    assert "collapsed" not in caplog.text


def test_a_collapsed_codebook_is_named_by_its_perplexity():
    model = build_model("vq-vae", (1, 8, 8), likelihood="bernoulli", num_codes=16)
    (warning,) = model.warnings({"perplexity": 1.0, "usage": 1 / 16})
    assert "codebook collapsed" in warning and "of 16 codes" in warning and "--codebook-init" in warning
    assert model.warnings({"perplexity": 9.5}) == []
    assert build_model("ae", (64,), likelihood="bernoulli").warnings({"mse": 0.1}) == []  # nothing to say
