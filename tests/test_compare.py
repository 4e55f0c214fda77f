"""aekit compare: one table across runs, PCA as a baseline, FID/KID in a cached feature space."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

import aekit
from aekit.analyses.compare import compare_runs, probe_scores
from aekit.cli import main
from aekit.evaluation.features import fid, kid

QUICK = {"data": "digits", "progress": False, "report": False}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {
        "vae": aekit.train(model="vae", epochs=20, out=root / "vae", **QUICK).path,
        "ae": aekit.train(model="ae", epochs=20, out=root / "ae", **QUICK).path,
        "ae-held-out": aekit.train(model="ae", epochs=20, exclude_classes=(3,), out=root / "ae3", **QUICK).path,
        "vae-held-out": aekit.train(model="vae", epochs=20, exclude_classes=(3,), out=root / "vae3", **QUICK).path,
        "ae-split1": aekit.train(model="ae", epochs=1, split_seed=1, out=root / "ae-s1", **QUICK).path,
    }


def test_fid_and_kid_match_their_definitions():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4000, 3)), rng.normal(size=(4000, 3)) + np.array([1.0, 0.0, 0.0])
    # Two unit Gaussians whose means differ by 1: FID = |mu_a - mu_b|^2 = 1.
    assert fid(a, b) == pytest.approx(1.0, abs=0.1)
    assert fid(a, a) == pytest.approx(0.0, abs=1e-6)
    assert abs(kid(a, rng.normal(size=(4000, 3)))) < 0.01 < kid(a, b)


def test_probe_scores_read_class_information():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    informative = np.eye(3)[y] + 0.1 * rng.normal(size=(600, 3))
    noise = rng.normal(size=(600, 3))
    good = probe_scores(informative[:400], y[:400], informative[400:], y[400:])
    bad = probe_scores(noise[:400], y[:400], noise[400:], y[400:])
    assert good["probe_accuracy"] > 0.95 and good["knn_accuracy"] > 0.95
    assert bad["probe_accuracy"] < 0.6


def test_compare_table_with_pca_baseline(runs, tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["compare", str(runs["vae"]), str(runs["ae"]), "--out", str(out), "--num-samples", "300"]
    assert main([*args, "--iw-samples", "20"]) == 0
    printed = capsys.readouterr().out
    assert "PCA (k = 20)" in printed and "not Inception" in printed
    rows = list(csv.DictReader((out / "compare.csv").read_text().splitlines()))
    assert [r["model"] for r in rows] == ["vae", "ae", "pca"]
    vae, ae, pca = rows
    assert float(vae["nll_iw"]) < float(vae["neg_elbo"])  # the IW bound is tighter
    assert ae["nll_iw"] == "" and ae["fid"] == "" and pca["fid"] == ""  # defined only where they mean something
    assert float(vae["fid"]) > 0 and float(vae["kid"]) != 0
    for row in rows:
        assert float(row["probe_accuracy"]) > 0.5 and float(row["knn_accuracy"]) > 0.5  # chance is 0.1
    assert float(ae["mse"]) < 0.05 and float(ae["parameters"]) > float(pca["parameters"])
    assert float(ae["samples_per_s"]) > 0
    html = (out / "compare.html").read_text()
    assert "<th>probe_accuracy</th>" in html and "dB" in html  # each column with its unit and meaning
    markdown = (out / "compare.md").read_text()
    assert markdown.startswith("| name | model | k |") and "PCA (k = 20)" in markdown


def test_feature_network_is_cached(runs, tmp_path):
    kwargs = {"num_samples": 100, "iw_samples": 5, "feature_cache": tmp_path / "features"}
    first = compare_runs([runs["vae"]], **kwargs)
    files = sorted(p.name for p in (tmp_path / "features").iterdir())
    assert len(files) == 2  # weights and their description
    second = compare_runs([runs["vae"]], **kwargs)
    assert sorted(p.name for p in (tmp_path / "features").iterdir()) == files
    assert first.rows[0]["fid"] == pytest.approx(second.rows[0]["fid"])


def test_anomaly_auroc_under_the_held_out_class_protocol(runs, tmp_path):
    table = compare_runs([runs["ae-held-out"], runs["vae-held-out"]], anomaly=True, sample_quality=False,
                         iw_samples=10)  # fmt: skip
    ae, vae, pca = table.rows
    assert (ae["score"], vae["score"], pca["score"]) == ("recon", "nll_iw", "recon")
    for row in table.rows:
        assert 0.0 <= row["auroc"] <= 1.0 and 0.0 < row["average_precision"] <= 1.0


def test_compare_refuses_what_it_cannot_compare(runs, tmp_path, capsys):
    out = str(tmp_path / "cmp")
    assert main(["compare", str(runs["ae"]), str(runs["ae-split1"]), "--out", out]) == 2
    assert "trained on different data (split_seed: 0 vs 1)" in capsys.readouterr().err
    assert main(["compare", str(runs["ae"]), str(runs["ae-held-out"]), "--out", out]) == 2
    assert "exclude_classes" in capsys.readouterr().err
    assert main(["compare", str(runs["ae"]), "--anomaly", "--out", out]) == 2
    assert "held-out-class protocol" in capsys.readouterr().err
    assert main(["compare", str(runs["ae"]), "--split", "all", "--out", out]) == 2
    assert "one split" in capsys.readouterr().err
    assert not (tmp_path / "cmp").exists()


def test_compare_without_labels_leaves_out_the_probes(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "rows.npy", rng.normal(size=(300, 5)).astype(np.float32))
    run = aekit.train(model="vae", data=str(tmp_path / "rows.npy"), epochs=3, out=tmp_path / "run",
                      progress=False, report=False)  # fmt: skip
    table = compare_runs([run.path], iw_samples=5)
    assert "probe_accuracy" not in table.columns() and "fid" not in table.columns()
    assert any("no labels" in n for n in table.notes)
    assert torch.isfinite(torch.tensor(table.rows[0]["mse"]))
    json.dumps(table.rows)  # plain numbers: the CSV and JSON writers take them
