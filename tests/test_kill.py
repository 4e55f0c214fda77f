"""A real ``aekit train`` killed with SIGKILL at random moments, start-up included: each directory
afterwards either resumes (``--resume``) or re-runs (the same command) to the weights of a run that
was never interrupted, bit for bit (docs/reliability.md)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from aekit.runs.lock import LOCK
from aekit.training.checkpoint import load_tensors

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # the same kernels in every process


def command(out: Path, report: bool) -> list[str]:
    return [sys.executable, "-m", "aekit", "train", "--model", "vae", "--data", "digits", "--hidden", "32",
            "--latent-dim", "2", "--epochs", "12", "--no-progress", "--out", str(out),
            *([] if report else ["--no-report"])]  # fmt: skip


def run(args: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return time.perf_counter() - start


def recover(out: Path, report: bool) -> None:
    """What a user does after a kill: --resume where training began, else the same command again."""
    if (out / "checkpoint.safetensors").is_file():
        run([sys.executable, "-m", "aekit", "train", "--resume", str(out), "--no-progress",
             *([] if report else ["--no-report"])])  # fmt: skip
    else:
        run(command(out, report))


def same_tensors(a: Path, b: Path) -> bool:
    (x, _), (y, _) = load_tensors(a), load_tensors(b)
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def kill_and_recover(tmp_path: Path, trials: int, report: bool, seed: int) -> None:
    reference = tmp_path / "reference"
    seconds = run(command(reference, report))
    rng = random.Random(seed)
    moments = []
    for trial in range(trials):
        out = tmp_path / f"killed-{trial}"
        proc = subprocess.Popen(command(out, report), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        moment = rng.uniform(trial, trial + 1) * seconds / trials  # one moment in each slice of the run
        time.sleep(moment)
        proc.kill()
        proc.wait(timeout=60)
        moments.append((round(moment, 2), "checkpoint" if (out / "checkpoint.safetensors").exists() else "none"))
        recover(out, report)
        for name in ("model.safetensors", "checkpoint.safetensors"):
            assert same_tensors(out / name, reference / name), f"trial {trial}, killed at {moment:.2f} s: {name}"
        assert not list(out.glob(".*.tmp")) and not (out / LOCK).exists()
        assert (out / "summary.json").is_file()
    print("killed at (s, state left):", moments)


def test_killed_runs_resume_or_restart_to_identical_weights(tmp_path):
    kill_and_recover(tmp_path, trials=3, report=False, seed=0)


@pytest.mark.slow
def test_many_killed_runs_resume_or_restart_to_identical_weights(tmp_path):
    kill_and_recover(tmp_path, trials=30, report=True, seed=1)
