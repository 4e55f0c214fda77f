"""Run directories written by aekit 0.1.0 (tests/fixtures/runs-0.1.0) load, evaluate to the numbers 0.1.0
printed (expected_*.json / .npy / .csv, written by 0.1.0's own commands), resume, and convert their config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

import aekit
from aekit.cli import main
from aekit.errors import CheckpointError

FIXTURES = Path(__file__).parent / "fixtures" / "runs-0.1.0"
RUNS = ("vae", "dae", "cvae", "sparse-ae", "vq-vae", "latent-ebm")


def close(a, b) -> bool:
    if isinstance(a, list):
        return len(a) == len(b) and all(close(u, v) for u, v in zip(a, b, strict=True))
    return abs(a - b) <= 1e-6 * max(1.0, abs(a))


@pytest.mark.parametrize("name", RUNS)
def test_a_0_1_0_run_evaluates_to_the_same_numbers(name, capsys):
    expected = json.loads((FIXTURES / name / "expected_eval.json").read_text())
    assert main(["eval", str(FIXTURES / name), "--json", "--iw-samples", "64"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) == set(expected)
    for key, value in expected.items():
        assert close(value, metrics[key]), (key, value, metrics[key])


@pytest.mark.parametrize(("name", "argv"), [("vae", ["-n", "4", "--seed", "3"]), ("vq-vae", ["-n", "2", "--seed", "3"]),
                                            ("cvae", ["-n", "3", "--label", "2"])])  # fmt: skip
def test_a_0_1_0_run_samples_the_same_images(name, argv, tmp_path):
    assert main(["sample", str(FIXTURES / name), *argv, "--out", str(tmp_path / "s.npy")]) == 0
    # To float rounding: another CPU's matrix kernels may round the last bit differently.
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), np.load(FIXTURES / name / "expected_samples.npy"),
                               rtol=1e-5, atol=1e-6)  # fmt: skip


def test_a_0_1_0_latent_ebm_gives_the_same_free_energies(tmp_path):
    out = tmp_path / "e.csv"
    assert main(["energy", str(FIXTURES / "latent-ebm"), "--inverse-temperature", "10", "--out", str(out)]) == 0
    got, expected = (
        out.read_text().splitlines(),
        (FIXTURES / "latent-ebm" / "expected_energy.csv").read_text().splitlines(),
    )
    assert got[0] == expected[0] and len(got) == len(expected)  # the same columns and rows
    rows = lambda lines: np.array([[float(v) for v in line.split(",")] for line in lines[1:]])  # noqa: E731
    np.testing.assert_allclose(rows(got), rows(expected), rtol=1e-5, atol=1e-5)  # to the printed digits


def test_the_0_1_0_config_converts_to_the_family_sections():
    vq = aekit.load_run(FIXTURES / "vq-vae")
    old = yaml.safe_load((FIXTURES / "vq-vae" / "config.yaml").read_text())
    assert "format" not in old and old["model"]["beta"] == 0.25 and old["model"]["hidden"] == [16]
    assert vq.config.model.commitment_weight == 0.25 and vq.config.model.channels == 16
    assert "beta" not in vq.config.model.field_names()
    assert vq.model.capabilities.generative  # its PixelCNN prior is attached
    cvae = aekit.load_run(FIXTURES / "cvae")
    assert cvae.config.model.kl_warmup == 10 and cvae.config.model.num_classes == 10
    assert aekit.load_run(FIXTURES / "sparse-ae").config.model.sparsity == "kl"


def test_a_0_1_0_run_resumes_and_is_then_written_in_the_new_format(tmp_path):
    run_dir = tmp_path / "vae"
    shutil.copytree(FIXTURES / "vae", run_dir)
    run = aekit.resume(run_dir, epochs=4, report=False, progress=False)
    assert [r["epoch"] for r in aekit.runs.layout.read_metrics(run_dir)] == [1, 2, 3, 4]
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["format"] == 2 and "sparsity" not in saved["model"] and "kl_warmup" in saved["model"]
    assert aekit.load_run(run_dir).config == run.config


def test_a_run_from_a_newer_release_is_refused(tmp_path):
    run_dir = tmp_path / "vae"
    shutil.copytree(FIXTURES / "vae", run_dir)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"format": 99, **config}))
    with pytest.raises(CheckpointError, match=r"newer aekit .*format 99.*Upgrade aekit"):
        aekit.load_run(run_dir)
