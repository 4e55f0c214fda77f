"""The latent-space and disentanglement commands, run as a user would."""

from __future__ import annotations

import json

import pytest
from PIL import Image

import aekit
from aekit.cli import main


@pytest.fixture(scope="module")
def vae2(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "vae2"
    return aekit.train(model="vae", latent_dim=2, hidden=(64,), epochs=20, progress=False, report=False, out=out)


@pytest.mark.parametrize(
    "argv",
    [
        ["traverse", "--index", "3", "--values=-2,0,2"],
        ["interpolate", "--a", "0", "--b", "7", "--steps", "6", "--mode", "slerp"],
        ["bubbles", "-n", "100"],
        ["manifold", "-n", "8", "--spacing", "quantile"],
    ],
)
def test_latent_pictures(vae2, tmp_path, argv):
    out = tmp_path / "fig.png"
    assert main([argv[0], str(vae2.path), *argv[1:], "--out", str(out)]) == 0
    assert Image.open(out).size[0] > 100


def test_latent_command_errors(vae2, tmp_path, capsys):
    assert main(["traverse", str(vae2.path), "--values", "a,b", "--out", str(tmp_path / "f.png")]) == 2
    assert "comma-separated float" in capsys.readouterr().err
    assert main(["interpolate", str(vae2.path), "--a", "0", "--b", "1", "--out", str(tmp_path / "f.jpg")]) == 2
    assert "must end in .png" in capsys.readouterr().err


def test_sweep_beta_command(tmp_path, capsys):
    argv = ["sweep-beta", "--betas", "1,10", "--out", str(tmp_path / "sweep"), "--hidden", "16", "--epochs", "3",
            "--no-progress", "--no-report"]  # fmt: skip
    assert main([a for a in argv if a != "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "beta      1" in out and "beta     10" in out
    assert (tmp_path / "sweep" / "beta_sweep.png").is_file()
    rows = json.loads((tmp_path / "sweep" / "beta_sweep.json").read_text())
    assert [r["beta"] for r in rows] == [1.0, 10.0]


def test_disentanglement_command(tmp_path, capsys):
    run = aekit.train(model="beta-vae", data="dsprites-small", latent_dim=4, hidden=(32,), epochs=1,
                      progress=False, report=False, out=tmp_path / "ds")  # fmt: skip
    assert main(["disentanglement", str(run.path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert 0 <= report["betavae_score"] <= 1 and 0 <= report["mig"] <= 1
    digits = aekit.train(model="vae", latent_dim=2, hidden=(8,), epochs=1, progress=False, report=False,
                         out=tmp_path / "dg")  # fmt: skip
    assert main(["disentanglement", str(digits.path)]) == 2
    assert "dsprites" in capsys.readouterr().err
