"""The README's main job, exactly as `make demo` runs it, meets its promise."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import aekit
from aekit.cli import main
from aekit.evaluation.metrics import mean_image_mse

ROOT = Path(__file__).resolve().parents[1]


def demo_args() -> list[str]:
    """The arguments of `aekit train` in the Makefile's demo target."""
    text = (ROOT / "Makefile").read_text()
    line = re.search(r"^demo:.*\n\t\$\(BIN\)/aekit (train .*)$", text, re.M).group(1)
    return [a for a in shlex.split(line) if "$(" not in a and a != "--out"]


def test_main_command_vae_beats_the_mean_image(tmp_path, capsys):
    args = demo_args()
    assert args[:5] == ["train", "--model", "vae", "--data", "digits"]
    assert main([*args, "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"Report: {tmp_path / 'run' / 'report.html'}" in out
    run = aekit.load_run(tmp_path / "run")
    data = run.load_data()
    test_mse = json.loads((tmp_path / "run" / "summary.json").read_text())["test"]["mse"]
    baseline = mean_image_mse(data.train, data.test)
    assert test_mse < 0.5 * baseline, (test_mse, baseline)
