"""The command line, driven as a user would, in-process (plus one real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from PIL import Image

from aekit.cli import main


def test_eval_json_keys(vae_run, capsys):
    assert main(["eval", str(vae_run.path), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"mse", "sse", "psnr", "recon_nats", "neg_elbo", "kl"} <= set(metrics)
    assert metrics["mse"] > 0 and metrics["neg_elbo"] > metrics["kl"] > 0


def test_eval_plain_ae_has_no_elbo(ae_run, capsys):
    assert main(["eval", str(ae_run.path), "--json", "--split", "valid"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert "neg_elbo" not in metrics and "kl" not in metrics and metrics["mse"] > 0


def test_sample_reconstruct_encode(vae_run, tmp_path, capsys):
    assert main(["sample", str(vae_run.path), "-n", "16", "--out", str(tmp_path / "s.png")]) == 0
    assert Image.open(tmp_path / "s.png").size[0] > 50
    assert main(["sample", str(vae_run.path), "-n", "5", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (5, 1, 8, 8)
    assert main(["reconstruct", str(vae_run.path), "--out", str(tmp_path / "r.png")]) == 0
    assert Image.open(tmp_path / "r.png").size[0] > 50
    assert main(["encode", str(vae_run.path), "--data", "digits", "--out", str(tmp_path / "c.npy")]) == 0
    assert np.load(tmp_path / "c.npy").shape == (1797, 4)
    assert main(["encode", str(vae_run.path), "--split", "test", "--out", str(tmp_path / "c.npz")]) == 0
    z = np.load(tmp_path / "c.npz")
    assert z["codes"].shape[0] == z["labels"].shape[0] > 0


def test_sample_plain_ae_explains_why(ae_run, tmp_path, capsys):
    assert main(["sample", str(ae_run.path), "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err
    assert "cannot generate" in err and "--model vae" in err and "Traceback" not in err
    assert not (tmp_path / "s.png").exists()


def test_config_file_and_override(tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"model": "ae", "latent_dim": 3}, "epochs": 5, "hidden": [16]}))
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--epochs", "2", "--out", str(out), "--no-progress",
                 "--no-report"]) == 0  # fmt: skip
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["model"]["model"] == "ae" and saved["model"]["latent_dim"] == 3
    assert saved["train"]["epochs"] == 2 and saved["model"]["hidden"] == [16]
    assert saved["model"]["likelihood"] == "bernoulli"  # 'auto' is resolved and saved
    assert "Run directory" in capsys.readouterr().out


def test_resume_from_cli(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--model", "ae", "--hidden", "16", "--no-progress", "--no-report"]
    assert main(["train", "--epochs", "1", "--out", str(out), *args]) == 0
    assert main(["train", "--resume", str(out), "--epochs", "3", "--no-progress", "--no-report"]) == 0
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert main(["train", "--resume", str(out), "--latent-dim", "5"]) == 2
    assert "only --epochs" in capsys.readouterr().err


def test_console_script_runs(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "aekit.cli", "train", "--latent-dmi", "3"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2
    assert "Unknown option '--latent-dmi'" in proc.stderr and "--latent-dim" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--model", "vea"], "Did you mean 'vae'"),
        (["train", "--latent-dim", "-3"], "latent_dim must be > 0"),
        (["train", "--epochs", "two"], "expects an integer"),
        (["train", "--data", "digitz"], "digits"),
        (["train", "--valid-fraction", "0.7", "--test-fraction", "0.5"], "must be < 1"),
        (["eval", "/nonexistent/run"], "does not exist"),
        (["eval", ".", "--split", "tset"], "Unknown split"),
        (["train", "--config", "/nonexistent.yaml"], "does not exist"),
    ],
)
def test_bad_input_is_a_clear_error(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_every_option_is_described_in_help(capsys):
    from dataclasses import fields

    from aekit.config import COMMON_SECTIONS, field_help
    from aekit.registry import FAMILIES

    classes = [*COMMON_SECTIONS.values(), *(family.config for _, family in FAMILIES.items())]
    for cls in classes:
        helps = field_help(cls)
        assert {f.name for f in fields(cls)} == {k for k, v in helps.items() if v}, cls.__name__
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--storage" in out and "stream a .npy" in out and "passes over the training split" in out


@pytest.mark.parametrize(
    ("model", "shown", "hidden"),
    [
        ("vae", ["--beta", "--free-bits", "--kl-warmup", "--latent-dim"], ["--num-codes", "--sparsity", "--reg"]),
        ("vq-vae", ["--num-codes", "--commitment-weight", "--channels"], ["--beta", "--latent-dim", "--hidden"]),
        ("dae", ["--noise", "--sparsity", "--contractive-weight"], ["--beta", "--num-codes", "--free-bits"]),
        ("latent-ebm", ["--infer-steps", "--reg-weight"], ["--noise", "--beta", "--num-codes"]),
    ],
)
def test_help_shows_the_options_of_the_named_model(model, shown, hidden, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--model", model, "--help"])
    out = capsys.readouterr().out
    for flag in shown:
        assert f"{flag} " in out, flag
    for flag in hidden:
        assert f"{flag} " not in out, flag


def test_options_of_another_family_name_their_models(capsys):
    assert main(["train", "--model", "vae", "--num-codes", "16"]) == 2
    err = capsys.readouterr().err
    assert "does not apply to the 'vae' model" in err and "vq-vae" in err
    assert main(["train", "--model", "vq-vae", "--beta", "0.5"]) == 2
    assert "'commitment_weight'" in capsys.readouterr().err


def test_version(capsys):
    import aekit

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"aekit {aekit.__version__}"


@pytest.mark.parametrize("model", ["ae", "vae", "vq-vae", "latent-ebm"])
def test_help_shows_every_default_as_a_value(model, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--model", model, "--help"])
    text = capsys.readouterr().out
    assert "MISSING" not in text and "object at 0x" not in text
