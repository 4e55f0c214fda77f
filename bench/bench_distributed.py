"""Training throughput in one process against torchrun with several, on this machine.

The MLP VAE (784-400-20, bernoulli) on MNIST, ``--epochs E --batch-size B`` (the global batch), trained
by ``aekit train`` in one process (with every core's threads) and by ``torchrun --nproc-per-node N -m aekit
train`` (torchrun gives each process one thread). Each contender is a fresh process; they alternate,
ROUNDS times, and the medians are quoted. Two figures per contender: the training rate the run records
(summary.json samples_per_s: the epochs alone) and the wall time of the whole command (start-up,
data loading, the process group, the final evaluation and report included).

Usage: python bench/bench_distributed.py [--rounds 3] [--nproc 2] [--epochs 2] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(cmd: list[str], out: Path, env: dict[str, str]) -> tuple[float, float]:
    start = time.perf_counter()
    subprocess.run([*cmd, "--out", str(out), "--overwrite"], check=True, capture_output=True, env=env)
    wall = time.perf_counter() - start
    return json.loads((out / "summary.json").read_text())["samples_per_s"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    train = ["-m", "aekit", "train", "--model", "vae", "--data", "mnist", "--hidden", "400", "--latent-dim", "20",
             "--likelihood", "bernoulli", "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
             "--no-progress", "--no-report", "--device", "cpu"]  # fmt: skip
    cores = os.cpu_count() or 1
    contenders = {
        f"1 process, {cores} threads": ([sys.executable, *train], {"OMP_NUM_THREADS": str(cores)}),
        f"torchrun, {args.nproc} processes x 1 thread": (
            [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}", *train],
            {"OMP_NUM_THREADS": "1"},
        ),
    }
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    walls: dict[str, list[float]] = {name: [] for name in contenders}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for i, (name, (cmd, extra)) in enumerate(contenders.items()):
                rate, wall = run(cmd, Path(tmp) / f"run{i}", {**os.environ, **extra})
                rates[name].append(rate)
                walls[name].append(wall)
                print(f"round {r + 1}/{args.rounds}: {name}: {rate:,.0f} samples/s, {wall:.1f} s wall", flush=True)
    base = statistics.median(next(iter(rates.values())))
    print(f"\nMLP VAE on MNIST, {args.epochs} epochs, global batch {args.batch_size}, {cores} cores; medians of "
          f"{args.rounds} interleaved rounds")  # fmt: skip
    print(f"{'contender':45s} {'train samples/s':>16s} {'vs 1 process':>13s} {'wall s':>8s}")
    for name in contenders:
        rate = statistics.median(rates[name])
        print(f"{name:45s} {rate:16,.0f} {rate / base:12.2f}x {statistics.median(walls[name]):8.1f}")


if __name__ == "__main__":
    main()
