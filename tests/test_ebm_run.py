"""The latent EBM as a user runs it: train on the ellipse, eval, energy CSV and plots, and its errors."""

from __future__ import annotations

import csv
import json

import pytest

import aekit
from aekit.cli import main


@pytest.fixture(scope="module")
def ebm_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "ebm"
    argv = ["train", "--model", "latent-ebm", "--data", "ellipse", "--latent-dim", "1", "--epochs", "15", "--lr",
            "3e-3", "--no-progress", "--no-report", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    return out


def test_eval_reports_the_free_energy(ebm_dir, capsys):
    capsys.readouterr()
    assert main(["eval", str(ebm_dir), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert "free_energy" in m and "jacobian_norm" not in m
    assert m["free_energy"] <= m["recon_nats"] + 0.05  # min_z E(y, z) is at most E at the inferred code


def test_energy_command(ebm_dir, tmp_path, capsys):
    out = tmp_path / "e" / "energies.csv"
    assert main(["energy", str(ebm_dir), "--inverse-temperature", "100", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 200 and {"f_inf", "f_beta", "z_1"} <= set(rows[0])
    assert all(float(r["f_beta"]) >= float(r["f_inf"]) - 1e-3 for r in rows)  # a grid mean is >= the minimum
    for name in ("energy_landscape.png", "latent_energy.png", "decoder_curve.png"):
        assert (out.parent / name).stat().st_size > 1000
    assert main(["energy", str(ebm_dir), "--beta", "100", "--out", str(out)]) == 2
    assert "'--beta' is now '--inverse-temperature'" in capsys.readouterr().err


def test_energy_errors(tmp_path, capsys):
    vae = aekit.train(model="vae", hidden=(8,), latent_dim=2, epochs=1, progress=False, report=False,
                      out=tmp_path / "vae")  # fmt: skip
    assert main(["energy", str(vae.path), "--out", str(tmp_path / "e.csv")]) == 2
    assert "--model latent-ebm" in capsys.readouterr().err
    for bad, message in ((["--infer-steps", "0"], "infer_steps must be > 0"), (["--reg", "l3"], "Unknown reg"),
                         (["--d-weight", "-1"], "d_weight must be"),
                         (["--no-use-encoder", "--init", "encoder"], "needs an encoder")):  # fmt: skip
        assert main(["train", "--model", "latent-ebm", "--data", "ellipse", *bad, "--out", str(tmp_path / "x")]) == 2
        assert message in capsys.readouterr().err


def test_without_an_encoder(tmp_path):
    run = aekit.train(model="latent-ebm", data="ellipse", latent_dim=1, use_encoder=False, epochs=2,
                      progress=False, report=False, out=tmp_path / "r")  # fmt: skip
    assert run.model.term_weights.get("latent_match", 0) == 0
    assert run.evaluate(run.load_data().test)["free_energy"] > 0
