"""aekit score: per-sample anomaly scores, thresholds, AUROC, and the errors of bad requests."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

import aekit
from aekit.cli import main
from aekit.errors import ConfigError, DataError
from aekit.evaluation.metrics import evaluate
from aekit.evaluation.scores import contamination_threshold, detection_metrics, score_kinds, score_samples
from aekit.parts.pixelcnn import GatedPixelCNN

QUICK = {"data": "digits", "progress": False, "report": False}


@pytest.fixture(scope="module")
def one_class_vae(tmp_path_factory):
    """A VAE trained on the digit 0 only: the nine other digits of the test split are its anomalies."""
    out = tmp_path_factory.mktemp("runs") / "vae0"
    return aekit.train(model="vae", classes=(0,), epochs=40, out=out, **QUICK)


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    return aekit.train(model="ae", epochs=15, out=tmp_path_factory.mktemp("runs") / "ae", **QUICK)


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_auto_score_is_each_models_best_founded_one():
    shape, b = (1, 8, 8), {"likelihood": "bernoulli"}
    assert score_kinds(aekit.build_model("vae", shape, **b))[0] == "nll_iw"
    assert score_kinds(aekit.build_model("ae", shape, **b)) == ("recon",)
    assert score_kinds(aekit.build_model("latent-ebm", (2,), likelihood="gaussian"))[0] == "free_energy"
    vq = aekit.build_model("vq-vae", (1, 16, 16), **b)
    assert score_kinds(vq) == ("recon",)  # without a prior the codes have no likelihood
    vq.attach_prior(GatedPixelCNN(vq.num_codes, channels=8, layers=2))
    assert score_kinds(vq)[0] == "neg_log_joint"


def test_scores_match_their_definitions(one_class_vae, ae_run):
    x, _ = one_class_vae.load_data().split("test")
    model = one_class_vae.model
    recon = score_samples(model, x, kind="recon")
    with torch.no_grad():
        expected = (model.reconstruct(x) - x).flatten(1).square().mean(1).double().numpy()
    np.testing.assert_allclose(recon, expected, rtol=1e-5)
    # The mean per-sample -ELBO is the test metric neg_elbo (same seed, same draws).
    neg_elbo = score_samples(model, x, kind="neg_elbo")
    assert neg_elbo.mean() == pytest.approx(one_class_vae.evaluate(x)["neg_elbo"], rel=1e-5)
    # The IW bound is tighter than the ELBO on average (Burda et al. 2016).
    nll_iw = score_samples(model, x, kind="nll_iw", iw_samples=50)
    assert nll_iw.mean() < neg_elbo.mean()
    # evaluate() hands out the same per-sample scores and the codes from its own pass.
    each = {}
    evaluate(model, x, iw_samples=50, per_sample=each)
    for kind, expected in (("recon", recon), ("neg_elbo", neg_elbo), ("nll_iw", nll_iw)):
        np.testing.assert_allclose(each[kind].numpy(), expected, rtol=1e-5)
    torch.testing.assert_close(each["code"], model.encode(x).detach())


def test_one_class_vae_finds_the_other_digits(one_class_vae, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    assert main(["score", str(one_class_vae.path), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["score"] == "nll_iw" and summary["auto"] is True
    assert summary["outlier_labels"] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert summary["auroc"] > 0.9  # digit 0 against the rest
    rows = read_csv(out)
    assert list(rows[0]) == ["index", "label", "score", "flagged"]
    assert len(rows) == summary["n"] == 180
    scores = np.array([float(r["score"]) for r in rows])
    flags = np.array([int(r["flagged"]) for r in rows])
    np.testing.assert_array_equal(flags, scores > summary["threshold"])


def test_contamination_sets_the_threshold_on_held_out_normal_data(ae_run, tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert main(["score", str(ae_run.path), "--split", "valid", "--contamination", "0.1", "--out", str(out),
                 "--json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert "valid split" in summary["threshold_from"]
    assert summary["flagged_fraction"] == pytest.approx(0.1, abs=0.01)  # its own reference data
    assert "auroc" not in summary  # no outliers are known for a run trained on every class
    assert main(["score", str(ae_run.path), "--threshold", "0", "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["flagged_fraction"] == 1.0


def test_outlier_label_gives_auroc(ae_run, tmp_path, capsys):
    assert main(["score", str(ae_run.path), "--outlier-label", "3,5", "--out", str(tmp_path / "s.csv"),
                 "--json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["outlier_labels"] == [3, 5]
    _, y = ae_run.load_data().split("test")
    assert 0 <= summary["auroc"] <= 1 and summary["outliers"] == int(((y == 3) | (y == 5)).sum())


def test_a_file_is_scored_whole_in_file_order(ae_run, tmp_path, capsys):
    x, _ = ae_run.load_data().split("test")
    rows = x[:37].numpy()
    np.save(tmp_path / "new.npy", rows)
    out = tmp_path / "s.csv"
    assert main(["score", str(ae_run.path), "--data", str(tmp_path / "new.npy"), "--out", str(out)]) == 0
    got = np.array([float(r["score"]) for r in read_csv(out)])
    assert "label" not in read_csv(out)[0]
    np.testing.assert_allclose(got, score_samples(ae_run.model, torch.from_numpy(rows), kind="recon"), rtol=1e-6)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--score", "free_energy"], "cannot give the 'free_energy' score"),
        (["--contamination", "0.7"], "must lie in (0, 0.5]"),
        (["--contamination", "0"], "must lie in (0, 0.5]"),
        (["--outlier-label", "12"], "does not occur in the data scored"),
        (["--outlier-label", "x"], "expects comma-separated int"),
    ],
)
def test_bad_requests_name_the_problem(ae_run, tmp_path, capsys, args, message):
    assert main(["score", str(ae_run.path), "--out", str(tmp_path / "s.csv"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()


def test_auroc_needs_labels_and_both_kinds(ae_run, tmp_path, capsys):
    np.save(tmp_path / "new.npy", ae_run.load_data().split("test")[0][:20].numpy())
    args = ["score", str(ae_run.path), "--data", str(tmp_path / "new.npy"), "--outlier-label", "1"]
    assert main([*args, "--out", str(tmp_path / "s.csv")]) == 2
    assert "needs labels that mark the outliers" in capsys.readouterr().err
    with pytest.raises(DataError, match="only outliers"):
        detection_metrics(np.arange(3.0), np.ones(3, dtype=bool))
    with pytest.raises(ConfigError):
        contamination_threshold(np.arange(3.0), 0.6)


def test_vq_vae_with_a_prior_scores_the_joint_code_length():
    torch.manual_seed(0)
    vq = aekit.build_model("vq-vae", (1, 16, 16), likelihood="bernoulli")
    vq.attach_prior(GatedPixelCNN(vq.num_codes, channels=8, layers=2))
    x = torch.rand(6, 1, 16, 16)
    joint = score_samples(vq, x)  # auto: neg_log_joint
    vq.eval()
    with torch.no_grad():
        out = vq.evaluation(x)
        expected = out.terms["recon"] + vq.latent.prior.nll(vq.encode_indices(x))
    np.testing.assert_allclose(joint, expected.double().numpy(), rtol=1e-5)
