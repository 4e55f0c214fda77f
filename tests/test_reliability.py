"""Nothing lost, nothing silently wrong: divergence, interruptions, the run directory's lock and the
operating system's refusals (docs/reliability.md)."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import aekit
from aekit.cli import main
from aekit.errors import (
    CheckpointError,
    ConfigError,
    RunInterrupted,
    RunLockedError,
    StorageError,
    TrainingDivergedError,
)
from aekit.fsutil import atomic_write_text
from aekit.runs import lock as lock_module
from aekit.runs.layout import read_metrics
from aekit.runs.lock import LOCK, RunLock
from aekit.training import Callback
from aekit.training.checkpoint import load_tensors

QUICK = {"model": "vae", "data": "digits", "hidden": (16,), "latent_dim": 2, "progress": False, "report": False}
CLI_QUICK = ["--data", "digits", "--hidden", "16", "--latent-dim", "2", "--no-progress", "--no-report"]
STEPS_PER_EPOCH = math.ceil(len(aekit.load_dataset("digits").train) / 128)  # the default batch size


def trained_epochs(path: Path) -> int:
    return load_tensors(path / "checkpoint.safetensors")[1]["trainer"]["epoch"]


def all_finite(path: Path) -> bool:
    tensors, _ = load_tensors(path)
    return all(bool(t.isfinite().all()) for t in tensors.values() if t.is_floating_point())


class Poison(Callback):
    """Sets the first weight to ``value`` at ``step`` (on_step runs every step with log_every=1)."""

    def __init__(self, step: int, value: float = float("nan")):
        self.step, self.value = step, value

    def on_step(self, trainer, step, logs):
        if step == self.step:
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(self.value)


# --- divergence -----------------------------------------------------------------------------------


def test_a_nan_loss_stops_with_status_3_and_the_same_command_then_starts_the_run(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert main(["train", "--model", "vae", *CLI_QUICK, "--lr", "1e6", "--epochs", "3", "--out", out]) == 3
    err = capsys.readouterr().err
    assert "diverged in epoch 1" in err and "--lr" in err and "--clip-grad-norm" in err and "Traceback" not in err
    assert not (tmp_path / "r" / "checkpoint.safetensors").exists()
    # Nothing was trained, so the directory is not started: the command with a sane rate runs without --overwrite.
    assert main(["train", "--model", "vae", *CLI_QUICK, "--epochs", "1", "--out", out]) == 0
    assert trained_epochs(tmp_path / "r") == 1


def test_a_loss_that_runs_away_while_finite_is_divergence_too(tmp_path):
    with pytest.raises(TrainingDivergedError, match="exploded"):
        aekit.train(**{**QUICK, "model": "ae"}, lr=1e6, epochs=3, out=tmp_path / "r")


def test_a_valid_split_with_huge_outliers_is_not_divergence(tmp_path, caplog):
    import logging

    from aekit.data import Dataset

    x = torch.randn(300, 6, generator=torch.Generator().manual_seed(0))
    valid = x[200:250].clone()
    valid[0, 0] = 1e25  # finite, but its squared error overflows float32: the valid loss is inf
    data = Dataset("outliers", "tabular", x[:200], valid, x[250:])
    with caplog.at_level(logging.WARNING, logger="aekit"):
        run = aekit.train(dataset=data, model="ae", normalize="none", epochs=3, out=tmp_path / "r", progress=False,
                          report=False)  # fmt: skip
    assert trained_epochs(run.path) == 3  # trained on: the training loss is fine
    assert caplog.text.count("validation loss of epoch 1 is inf") == 1 and "valid split" in caplog.text


def test_divergence_after_good_epochs_keeps_the_last_good_checkpoint_and_resumes(tmp_path):
    out = tmp_path / "r"
    # Poisoned mid-epoch 2: the loss read at the next step is NaN.
    with pytest.raises(
        TrainingDivergedError, match=r"epoch 2 by step \d+: the training loss is nan.*epoch 1\) is kept"
    ):
        aekit.train(**QUICK, epochs=3, log_every=1, out=out, callbacks=[Poison(STEPS_PER_EPOCH + 3)])
    assert trained_epochs(out) == 1
    assert all_finite(out / "checkpoint.safetensors") and all_finite(out / "model.safetensors")
    assert [r["epoch"] for r in read_metrics(out)] == [1]
    run = aekit.resume(out, epochs=2, report=False)
    assert trained_epochs(out) == 2 and all_finite(out / "model.safetensors")
    assert torch.isfinite(run.encode(torch.rand(4, 1, 8, 8))).all()


def test_non_finite_weights_at_the_end_of_an_epoch_are_never_saved(tmp_path):
    out = tmp_path / "r"
    # Poisoned after the last step of epoch 2: the epoch's loss is finite, its weights are not.
    with pytest.raises(TrainingDivergedError, match=r"epoch 2 .*a weight became non-finite"):
        aekit.train(**QUICK, epochs=3, log_every=1, out=out, callbacks=[Poison(2 * STEPS_PER_EPOCH, float("inf"))])
    assert trained_epochs(out) == 1 and all_finite(out / "checkpoint.safetensors")


def test_clip_grad_norm_bounds_every_step_and_is_validated(tmp_path, capsys):
    norms: dict[float, list[float]] = {}

    class GradNorms(Callback):
        def __init__(self, key):
            self.key = key

        def on_train_begin(self, trainer):
            def record(optimizer, args, kwargs):
                grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
                norms.setdefault(self.key, []).append(float(torch.linalg.vector_norm(torch.stack(
                    [torch.linalg.vector_norm(g) for g in grads]))))  # fmt: skip

            trainer.optimizer.register_step_pre_hook(record)

    for clip in (0.0, 0.5):
        aekit.train(**QUICK, epochs=1, clip_grad_norm=clip, out=tmp_path / f"c{clip}", callbacks=[GradNorms(clip)])
    assert max(norms[0.0]) > 0.5  # unclipped, the gradients are larger than the bound...
    assert max(norms[0.5]) <= 0.5 * (1 + 1e-4)  # ...and clipped, none is
    with pytest.raises(ConfigError, match="clip_grad_norm must be >= 0"):
        aekit.train(**QUICK, epochs=1, clip_grad_norm=-1.0, out=tmp_path / "bad")
    assert main(["train", "--model", "vae", *CLI_QUICK, "--clip-grad-norm", "nan", "--out", str(tmp_path / "b")]) == 2
    assert "clip_grad_norm" in capsys.readouterr().err


# --- interruptions --------------------------------------------------------------------------------


class InterruptAt(Callback):
    def __init__(self, hook: str):
        self.hook = hook

    def on_train_begin(self, trainer):
        if self.hook == "begin":
            raise KeyboardInterrupt

    def on_epoch_end(self, trainer, record, improved):
        if self.hook == "epoch 2" and record["epoch"] == 2:  # before the run directory saves epoch 2
            raise KeyboardInterrupt


def test_a_run_interrupted_before_its_first_epoch_is_marked_not_started_and_restarts(tmp_path):
    out = tmp_path / "r"
    with pytest.raises(
        RunInterrupted,
        match=r"was interrupted: its training stopped before the first epoch was saved.*running the same command",
    ):
        aekit.train(**QUICK, epochs=2, out=out, callbacks=[InterruptAt("begin")])
    assert (out / "config.yaml").is_file() and not (out / "checkpoint.safetensors").exists()
    with pytest.raises(CheckpointError, match=r"has no checkpoint to resume.*same command"):
        aekit.resume(out)
    with pytest.raises(CheckpointError, match=r"has no trained weights.*same command"):
        aekit.load_run(out)
    aekit.train(**QUICK, epochs=1, out=out)  # no overwrite needed
    assert trained_epochs(out) == 1


def test_an_interruption_after_an_epoch_says_resume_and_exits_130(tmp_path, capsys, monkeypatch):
    out = tmp_path / "r"
    with pytest.raises(RunInterrupted, match=r"holds epoch 1 .*--resume"):
        aekit.train(**QUICK, epochs=3, out=out, callbacks=[InterruptAt("epoch 2")])
    assert RunInterrupted.exit_status == 130
    aekit.resume(out, epochs=2, report=False)
    assert trained_epochs(out) == 2

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("aekit.cli.evaluate.load_run", interrupted)  # Ctrl-C outside training
    capsys.readouterr()  # what training said
    assert main(["eval", str(out)]) == 130
    assert capsys.readouterr().err.strip() == "aekit: interrupted."


def _aekit(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "aekit", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        # Ctrl-C as at a terminal: a shell's background job (a CI script run with &) inherits SIGINT
        # ignored, and a program that finds it ignored rightly keeps it so.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        **kwargs,
    )


def _wait_for(predicate, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("moment", ["start-up", "training"])
def test_ctrl_c_prints_one_line_and_exits_130(tmp_path, moment):
    out = tmp_path / "r"
    proc = _aekit("train", "--model", "vae", *CLI_QUICK, "--epochs", "100000", "--out", str(out))
    if moment == "start-up":
        time.sleep(0.5)  # inside the imports (torch takes seconds)
    else:
        _wait_for(lambda: (out / "checkpoint.safetensors").exists())
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()  # no training left running when the signal was not obeyed
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    if moment == "training":
        assert "--resume" in err
        assert main(["train", "--resume", str(out), "--epochs", str(trained_epochs(out) + 1), "--no-progress"]) == 0


# --- the lock -------------------------------------------------------------------------------------


def test_a_second_writer_is_refused_with_the_first_ones_pid(tmp_path):
    out = tmp_path / "r"
    aekit.train(**QUICK, epochs=1, out=out)
    with RunLock(out):
        holder = json.loads((out / LOCK).read_text())
        assert holder["pid"] == os.getpid()
        for attempt in (
            lambda: aekit.train(**QUICK, epochs=1, out=out, overwrite=True),
            lambda: aekit.resume(out, epochs=2),
        ):
            with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
                attempt()
    assert not (out / LOCK).exists()  # released with the lock
    aekit.resume(out, epochs=2, report=False)  # the lock is free again
    assert trained_epochs(out) == 2


def test_two_processes_one_run_directory(tmp_path):
    out = tmp_path / "r"
    first = _aekit("train", "--model", "vae", *CLI_QUICK, "--epochs", "100000", "--out", str(out))
    try:
        _wait_for(lambda: (out / "checkpoint.safetensors").exists())
        second = _aekit("train", "--model", "ae", *CLI_QUICK, "--epochs", "1", "--out", str(out), "--overwrite")
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2 and f"pid {first.pid}" in err and "being written" in err, err
        assert "model: vae" in (out / "config.yaml").read_text()  # untouched by the refused writer
        first.kill()  # SIGKILL: the lock file stays, but its flock went with the process
        first.wait(timeout=30)
        assert (out / LOCK).exists()
        epochs = trained_epochs(out)
        again = ["train", "--resume", str(out), "--epochs", str(epochs + 1), "--no-progress"]
        resumed = subprocess.run([sys.executable, "-m", "aekit", *again], capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        assert trained_epochs(out) == epochs + 1 and not (out / LOCK).exists()
    finally:
        first.kill()


def test_without_flock_the_pid_decides(tmp_path, monkeypatch):
    monkeypatch.setattr(lock_module, "fcntl", None)  # as on Windows and file systems without flock
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / LOCK).write_text(json.dumps({"pid": sleeper.pid, "host": lock_module.socket.gethostname()}))
        with pytest.raises(RunLockedError, match=f"pid {sleeper.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        sleeper.kill()
        sleeper.wait()
    with RunLock(tmp_path):  # the holder is dead: a stale lock is taken over
        assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()


# --- the operating system's refusals --------------------------------------------------------------


def test_out_under_a_file_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["train", "--model", "vae", *CLI_QUICK, "--epochs", "1", "--out", str(tmp_path / "file" / "r")]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a directory" in err and "Traceback" not in err


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = atomic_write_text(tmp_path / "summary.json", "old")

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(StorageError, match=r"no space is left.*Free some space"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]


@pytest.fixture
def small_disk(tmp_path):
    """A 640 KiB tmpfs (root and mount(2) needed; skipped elsewhere)."""
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=640k", "tmpfs", str(where)], capture_output=True)
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_is_a_clear_error_and_the_run_resumes_once_there_is_room(small_disk, capsys):
    out = small_disk / "r"
    # 400 hidden units: ~0.2 MB of weights, ~0.6 MB with the optimiser state: the first checkpoint does not fit.
    args = ["train", "--model", "vae", "--data", "digits", "--epochs", "2", "--no-progress", "--no-report"]
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no space is left" in err and "Traceback" not in err
    assert not list(out.glob(".*.tmp"))  # no temporary left behind
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    assert main([*args, "--out", str(out)]) == 0  # nothing was saved: the same command starts it
    assert trained_epochs(out) == 2


def test_a_read_only_disk_is_a_clear_error_and_reading_still_works(small_disk, capsys):
    out = small_disk / "r"
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    assert main(["train", "--model", "vae", *CLI_QUICK, "--epochs", "1", "--out", str(out)]) == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    assert main(["train", "--resume", str(out), "--epochs", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "read-only file system" in err and "Traceback" not in err
    assert main(["eval", str(out), "--json"]) == 0  # reading a run needs no write


# --- data the model would score wrongly -----------------------------------------------------------


@pytest.mark.filterwarnings("error")
def test_auto_likelihood_looks_at_every_split_not_just_train(tmp_path):
    # Three rows: one per split. The lone training row standardises to zeros, inside [0, 1], but the
    # valid and test rows do not: bernoulli would score them as out-of-range data.
    path = tmp_path / "tiny.npy"
    np.save(path, np.random.default_rng(0).normal(size=(3, 5)).astype("float32"))
    out = tmp_path / "r"
    aekit.train(model="vae", data=str(path), hidden=(4,), latent_dim=2, epochs=2, out=out, progress=False, report=False)
    assert aekit.load_run(out).config.model.likelihood == "gaussian"
