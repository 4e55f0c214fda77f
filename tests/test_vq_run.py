"""The VQ-VAE as a user runs it: train, train-prior, eval, sample learned vs uniform, and its errors."""

from __future__ import annotations

import json
import shutil

import pytest

import aekit
from aekit.cli import main

TINY = ["--num-codes", "16", "--code-dim", "8", "--channels", "16", "--downsample", "1", "--no-progress"]


@pytest.fixture(scope="module")
def vq_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "vq"
    assert main(["train", "--model", "vq-vae", "--epochs", "30", "--out", str(out), "--no-report", *TINY]) == 0
    return out


def test_vq_training_logs_codebook_use(vq_dir, capsys):
    records = [json.loads(line) for line in (vq_dir / "metrics.jsonl").read_text().splitlines()]
    assert all("valid/perplexity" in r and "valid/usage" in r for r in records)
    assert records[-1]["valid/perplexity"] > 4, "dead-code restarts keep the codebook in use"
    assert main(["eval", str(vq_dir), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert {"mse", "recon_nats", "perplexity", "usage", "uniform_bits_per_code"} <= set(m)
    assert "prior_nll" not in m


def test_prior_workflow(vq_dir, tmp_path, capsys):
    run_dir = tmp_path / "vq"
    shutil.copytree(vq_dir, run_dir)
    assert main(["sample", str(run_dir), "--out", str(tmp_path / "s.png")]) == 2
    assert "train-prior" in capsys.readouterr().err
    assert main(["train-prior", str(run_dir), "--epochs", "3", "--channels", "16", "--layers", "3",
                 "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    info = json.loads((run_dir / "prior.json").read_text())
    assert info["test_bits_per_code"] < info["uniform_bits_per_code"]
    assert main(["eval", str(run_dir), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["prior_bits_per_code"] == pytest.approx(info["test_bits_per_code"], rel=1e-4)
    for prior in ("learned", "uniform"):
        out = tmp_path / f"{prior}.png"
        assert main(["sample", str(run_dir), "--prior", prior, "-n", "8", "--out", str(out)]) == 0
        assert out.stat().st_size > 500
    assert (run_dir / "plots" / "prior_vs_uniform.png").is_file()
    assert main(["train-prior", str(run_dir), "--epochs", "1", "--no-progress"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    # Training the VQ-VAE further changes its codes: the saved prior no longer belongs to it.
    before = (run_dir / "model.safetensors").read_bytes()
    aekit.resume(run_dir, epochs=40, report=False, progress=False)
    assert (run_dir / "model.safetensors").read_bytes() != before  # a better epoch replaced the weights
    with pytest.raises(aekit.CheckpointError, match="trained on the codes of another model"):
        aekit.load_run(run_dir)


def test_vq_bad_input(tmp_path, capsys):
    assert main(["train", "--model", "vq-vae", "--num-codes", "1", "--out", str(tmp_path / "r")]) == 2
    assert "at least 2" in capsys.readouterr().err
    vae = aekit.train(model="vae", hidden=(8,), latent_dim=2, epochs=1, progress=False, report=False,
                      out=tmp_path / "vae")  # fmt: skip
    assert main(["train-prior", str(vae.path)]) == 2
    assert "--model vq-vae" in capsys.readouterr().err
    assert main(["sample", str(vae.path), "--prior", "uniform", "--out", str(tmp_path / "u.png")]) == 2
    assert "applies to a latent with discrete codes" in capsys.readouterr().err
