"""Data-parallel training under torchrun: two processes (gloo on loopback) train what one process trains
with the same global batch, resume, and stop with a clear message on a bad set-up."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import aekit
from aekit.errors import ConfigError
from aekit.parts import noise
from aekit.training import distributed

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "AEKIT_DIST_TIMEOUT": "60"}


def torchrun(*args: str, nproc: int = 2, cwd=None, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=cwd, timeout=timeout)


def aekit_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aekit", *args], capture_output=True, text=True, env=ENV, cwd=cwd)


def weights(run_dir) -> dict[str, torch.Tensor]:
    tensors = load_file(str(run_dir / "checkpoint.safetensors"))
    return {k: v for k, v in tensors.items() if k.startswith("model.")}


def max_gap(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


# EMA codebook statistics summed across ranks. The codebook is fitted to the first global batch alone (no warm-up)
# and no code restarts: a later k-means refit or restart turns float-level differences into other codes.
VQ_EMA = ["--model", "vq-vae", "--use-ema", "--restart-after", "1000", "--codebook-warmup", "0",
          "--batch-size", "512"]  # fmt: skip


@pytest.mark.parametrize(
    ("options", "tolerance"),
    [
        (["--model", "vae", "--batch-size", "128"], 1e-5),
        # A codebook in use leaves a few weights with near-zero gradients, whose Adam steps (g / sqrt(v))
        # magnify the summation order of the reduced gradients: a single weight moves by ~2e-5.
        (VQ_EMA, 1e-4),
    ],
    ids=["vae", "vq-vae-ema"],
)
def test_two_processes_reach_the_weights_of_one(tmp_path, options, tolerance):
    common = ["--data", "digits", "--epochs", "1", "--no-progress", "--no-report", *options]
    one = aekit_cli("train", *common, "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr[-2000:]
    two = torchrun("-m", "aekit", "train", *common, "--out", str(tmp_path / "two"))
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("Run directory:") == 1  # rank 0 alone reports (and writes)
    gap = max_gap(weights(tmp_path / "one"), weights(tmp_path / "two"))
    assert gap < tolerance, f"2 processes differ from 1 by {gap:.2e}"
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert json.loads((tmp_path / "one" / "summary.json").read_text())["world_size"] == 1
    history = [json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    first = [json.loads(line) for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    # The logged metrics are reduced over the ranks: the whole split's means, as in one process.
    assert history[0]["train/loss"] == pytest.approx(first[0]["train/loss"], rel=1e-5)
    assert history[0]["valid/loss"] == pytest.approx(first[0]["valid/loss"], rel=1e-5)


def test_two_processes_stream_their_own_rows(tmp_path):
    """--storage stream: each rank reads its slice of every batch from the file; same weights as one process."""
    data = tmp_path / "digits.npy"
    np.save(data, aekit.load_dataset("digits", valid_fraction=0, test_fraction=0).train.numpy())
    common = ["--model", "vae", "--data", str(data), "--storage", "stream", "--batch-size", "128", "--epochs", "1",
              "--no-progress", "--no-report"]  # fmt: skip
    one = aekit_cli("train", *common, "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr[-2000:]
    two = torchrun("-m", "aekit", "train", *common, "--out", str(tmp_path / "two"))
    assert two.returncode == 0, two.stderr[-3000:]
    assert max_gap(weights(tmp_path / "one"), weights(tmp_path / "two")) < 1e-5


def test_two_processes_resume(tmp_path):
    common = ["--model", "vae", "--data", "digits", "--batch-size", "128", "--no-progress", "--no-report"]
    straight = torchrun("-m", "aekit", "train", *common, "--epochs", "2", "--out", str(tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr[-3000:]
    first = torchrun("-m", "aekit", "train", *common, "--epochs", "1", "--out", str(tmp_path / "resumed"))
    assert first.returncode == 0, first.stderr[-3000:]
    again = torchrun("-m", "aekit", "train", "--resume", str(tmp_path / "resumed"), "--epochs", "2", "--no-report")
    assert again.returncode == 0, again.stderr[-3000:]
    assert max_gap(weights(tmp_path / "straight"), weights(tmp_path / "resumed")) == 0.0
    assert len((tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()) == 2


def test_a_batch_that_does_not_divide_over_the_ranks_is_refused(tmp_path):
    done = torchrun("-m", "aekit", "train", "--model", "ae", "--data", "digits", "--batch-size", "63",
                    "--epochs", "1", "--out", str(tmp_path / "run"))  # fmt: skip
    assert done.returncode != 0
    assert "--batch-size 63 does not divide over the 2 processes" in done.stderr
    assert "e.g. 62" in done.stderr
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_ranks_that_disagree_on_the_config_are_refused(tmp_path):
    script = tmp_path / "disagree.py"
    script.write_text(
        textwrap.dedent("""
        import os, sys
        import aekit
        from aekit.errors import ConfigError
        rank = int(os.environ["RANK"])
        try:
            aekit.train(model="ae", data="digits", epochs=1 + rank, progress=False, report=False, out="run")
        except ConfigError as err:
            print(f"rank {rank}: {err}")
            sys.exit(5)
    """)
    )
    done = torchrun(str(script), cwd=tmp_path)
    assert done.returncode != 0
    assert "disagree on the configuration" in done.stdout, done.stdout + done.stderr[-2000:]
    assert not (tmp_path / "run").exists()


def test_a_rank_that_dies_stops_the_others(tmp_path):
    script = tmp_path / "dies.py"
    script.write_text(
        textwrap.dedent("""
        import os, sys
        import aekit
        if os.environ["RANK"] == "1":
            sys.exit(3)  # dies before joining: rank 0 would wait for it forever without a timeout
        aekit.train(model="ae", data="digits", epochs=1, progress=False, report=False, out="run")
    """)
    )
    start = time.perf_counter()
    done = torchrun(str(script), cwd=tmp_path, timeout=200)
    assert done.returncode != 0
    assert time.perf_counter() - start < 120


def test_shards_cover_the_batch_in_rank_order():
    for total in (1, 7, 8, 64, 65):
        for size in (1, 2, 3):
            parts = [distributed.shard(total, distributed.World(rank, size)) for rank in range(size)]
            assert parts[0][0] == 0 and parts[-1][1] == total
            assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
            assert max(b - a for a, b in parts) - min(b - a for a, b in parts) <= 1


def test_sliced_draws_are_the_rows_of_the_global_draw():
    torch.manual_seed(0)
    whole = torch.randn(10, 3)
    torch.manual_seed(0)
    with noise.batch_slice(4, 10):
        part = noise.randn_like(torch.zeros(6, 3))
    torch.testing.assert_close(part, whole[4:])
    generator = torch.Generator().manual_seed(1)  # a caller's own stream is never sliced
    with noise.batch_slice(4, 10):
        assert noise.rand((6, 3), generator=generator).shape == (6, 3)


def test_one_process_is_untouched():
    here = distributed.world()
    assert not here.parallel and here.main and here.size == 1
    distributed.check_batch_size(63, here)  # any batch size in one process
    with pytest.raises(ConfigError, match="use a multiple of 4"):
        distributed.check_batch_size(63, distributed.World(0, 4))
