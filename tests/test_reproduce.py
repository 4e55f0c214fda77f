"""``aekit reproduce``: every reproduction's smoke tier runs end to end and writes its table beside the
paper's numbers; a second call reuses the finished runs. MNIST is a small stand-in here (random images
in the cache), so the path is checked, not the numbers (docs/reproductions.md has those)."""

from __future__ import annotations

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

from aekit.cli import main
from aekit.reproduce import REPRODUCTIONS
from aekit.reproduce.base import machine


@pytest.fixture
def small_mnist(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 200), ("valid", 40), ("test", 40)):
        arrays[f"x_{split}"] = (rng.integers(0, 256, (n, 784)) / 256).astype(np.float32)
        arrays[f"y_{split}"] = rng.integers(0, 10, n).astype(np.int64)
    (tmp_path / "cache").mkdir()
    np.savez(tmp_path / "cache" / "mnist.npz", **arrays)
    monkeypatch.setenv("AEKIT_CACHE_DIR", str(tmp_path / "cache"))


def test_list_names_every_reproduction(capsys):
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("hinton2006", "burda2016", "higgins2017", "vandenoord2017"))


@pytest.mark.parametrize("name", sorted(REPRODUCTIONS))
def test_the_smoke_tier_writes_its_table_and_reuses_its_runs(name, tmp_path, small_mnist, capsys):
    out = tmp_path / "out"
    assert main(["reproduce", name, "--out", str(out), "--no-progress"]) == 0
    folder = out / name / "smoke"
    table = json.loads((folder / "table.json").read_text())
    assert table["tier"] == "smoke" and table["machine"]["cores"] >= 1 and table["seconds"] > 0
    assert table["rows"] and all(math.isfinite(r["measured"]) for r in table["rows"])
    md = (folder / "table.md").read_text()
    assert all(r["what"] in md for r in table["rows"]) and "| measured | paper |" in md
    assert "table.md" in capsys.readouterr().out
    if name == "vandenoord2017":  # its samples: prior, uniform codes and the VAE, one labelled row each
        assert (folder / "samples.png").stat().st_size > 0
    first = {(r["what"], r["metric"]): r["measured"] for r in table["rows"]}
    weights = {p: p.stat().st_mtime_ns for p in folder.rglob("model.safetensors")}
    assert weights
    assert main(["reproduce", name, "--out", str(out), "--no-progress"]) == 0  # reuses the finished runs
    again = json.loads((folder / "table.json").read_text())
    assert {(r["what"], r["metric"]): r["measured"] for r in again["rows"]} == pytest.approx(first)
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("model.safetensors")} == weights  # not retrained


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="reads Linux's /proc/cpuinfo")
def test_the_table_names_the_processor_not_just_its_architecture():
    names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
             if line.split(":")[0].strip() == "model name"]  # fmt: skip
    m = machine()
    assert m["cpu"] == (names[0] if names else m["arch"])
    assert m["arch"] and m["cores"] >= 1


def test_the_papers_numbers_stand_beside_ours(tmp_path, small_mnist):
    assert main(["reproduce", "hinton2006", "--out", str(tmp_path), "--no-progress"]) == 0
    rows = json.loads((tmp_path / "hinton2006" / "smoke" / "table.json").read_text())["rows"]
    assert [r["paper"] for r in rows] == [3.00, 13.87]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reproduce", "hinton"], "Unknown reproduction 'hinton'"),
        (["reproduce", "hinton2006", "--tier", "huge"], "Unknown tier 'huge'"),
        (["reproduce"], "Name a reproduction"),
    ],
)
def test_bad_names_are_clear_errors(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_jobs_train_the_runs_side_by_side_to_the_same_table(tmp_path, small_mnist, capfd):
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["reproduce", "burda2016", "--out", str(one), "--no-progress"]) == 0
    assert main(["reproduce", "burda2016", "--out", str(two), "--no-progress", "--jobs", "2"]) == 0
    err = capfd.readouterr().err  # the workers write to the process's stderr
    assert "training" in err and "thread" in err  # each worker says what it trains, on its share
    tables = [json.loads((out / "burda2016" / "smoke" / "table.json").read_text()) for out in (one, two)]
    assert tables[1]["jobs"] == 2 and "2 runs trained at a time" in (two / "burda2016/smoke/table.md").read_text()
    assert [r["measured"] for r in tables[1]["rows"]] == pytest.approx([r["measured"] for r in tables[0]["rows"]],
                                                                       rel=1e-3)  # fmt: skip
    assert main(["reproduce", "burda2016", "--out", str(two), "--jobs", "0"]) == 2
    assert "jobs must be an integer >= 1" in capfd.readouterr().err


def test_weights_at_keep_a_run_as_it_was_at_a_mark_of_training_time(tmp_path, small_mnist):
    from aekit.reproduce.base import run_at, train_or_reuse, weights_at

    options = {"model": "vae", "data": "mnist", "hidden": (16,), "latent_dim": 2, "epochs": 3}
    run = train_or_reuse(tmp_path / "r", False, weights_at=(0.0,), **options)  # mark 0: after the first epoch
    assert weights_at(run.path, 0.0).is_file() and not weights_at(run.path, 60.0).is_file()
    early, meta = run_at(run.path, 0.0)
    assert meta["epoch"] == 1 and meta["minutes"] >= 0
    final, end = run_at(run.path, None)
    assert end["epoch"] == 3
    assert run_at(run.path, 60.0)[1] == end  # a mark the run never reached: the finished run
    test = run.load_data().test
    assert early.evaluate(test)["neg_elbo"] > final.evaluate(test)["neg_elbo"]  # two more epochs of training


ORPHAN = """
import multiprocessing, os, sys, time
from aekit.reproduce.base import exit_with_parent

def child(path):
    exit_with_parent(os.getppid(), every=0.1)
    open(path, "w").write(str(os.getpid()))
    time.sleep(60)

if __name__ == "__main__":
    multiprocessing.get_context("fork").Process(target=child, args=(sys.argv[1],)).start()
    time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has ended; only its exit status waits to be read


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_a_worker_ends_when_its_reproduce_is_killed(tmp_path):
    """A killed ``aekit reproduce`` leaves no worker training behind it (a second writer on its runs)."""
    pid_file = tmp_path / "worker.pid"
    parent = subprocess.Popen([sys.executable, "-c", ORPHAN, str(pid_file)])
    try:
        deadline = time.monotonic() + 60
        while not (pid_file.is_file() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        worker = int(pid_file.read_text())
        assert _alive(worker)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(worker), "the worker outlived its killed parent"
    finally:
        parent.kill()
        if pid_file.is_file() and pid_file.read_text() and _alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
