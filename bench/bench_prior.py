"""``aekit train-prior`` with its defaults against the settings it had before, on the same VQ-VAE run.

Each contender is the command a user types, run in a fresh process on its own copy of the run
directory (``--overwrite --no-progress``), timed wall-clock from outside: start-up, code maps,
the fit, the test NLL and the samples figure. Each round runs every contender once, in a shuffled
order, so that the machine's drift hits all of them alike; the table reports medians over rounds,
the ratio of each median to the default's, the paired ratio (the median over rounds of each round's
ratio, which cancels drift that moves a whole round) and the test bits per code each one wrote.

Contenders:

default           ``aekit train-prior RUN`` (batch 256, lr 2e-3, at most 50 epochs with early stopping
                  on the validation NLL, patience 3, the best epoch kept; 8 layers; one thread for
                  the small steps of a small code map).
old settings      ``--epochs 20 --batch-size 64 --lr 1e-3 --layers 8 --patience 0``.
old + threads     (with ``--old-threads``) the old settings with every step on all of torch's threads,
                  as before: the one-thread rule switched off. Slow on a busy 2-core machine.
before            (with ``--before-src DIR``) the ``aekit`` package found in DIR (e.g. the ``src``
                  folder of ``git archive`` of an earlier commit) with its own defaults: the code as
                  it was, start to end.

Without ``--run``, a VQ-VAE is first trained on the embedded digits with its defaults
(``aekit train --model vq-vae --data digits``).

Usage: python bench/bench_prior.py [--run RUN] [--rounds 3] [--old-threads] [--before-src DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from rounds import interleave, paired

OLD = ["--epochs", "20", "--batch-size", "64", "--lr", "1e-3", "--layers", "8", "--patience", "0"]
# The old thread behaviour: no step counts as small, so none is moved to one thread.
ALL_THREADS = (
    "import sys; import aekit.parts.pixelcnn as p; p.SMALL_STEP_POSITIONS = 0; "
    "from aekit.cli import main; sys.exit(main(sys.argv[1:]))"
)


def train_prior(
    run: Path, work: Path, name: str, flags: list[str], all_threads: bool = False, src: str | None = None
) -> tuple[float, float]:
    """Wall seconds of one ``aekit train-prior`` on a fresh copy of ``run``, and its test bits per code.

    ``src``: import ``aekit`` from this folder instead (it goes first on PYTHONPATH)."""
    copy = work / name.replace(" ", "-")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("prior.*"))
    argv = ["train-prior", str(copy), "--overwrite", "--no-progress", *flags]
    cmd = [sys.executable, "-c", ALL_THREADS, *argv] if all_threads else [sys.executable, "-m", "aekit", *argv]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env if src else None)
    seconds = time.perf_counter() - start
    return seconds, json.loads((copy / "prior.json").read_text())["test_bits_per_code"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a trained VQ-VAE run directory (default: train one on digits first)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--old-threads", action="store_true", help="add the old settings on all threads")
    parser.add_argument("--before-src", help="add the aekit package in this folder, with its own defaults")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run = Path(args.run) if args.run else work / "vq"
        if not args.run:
            start = time.perf_counter()
            train = ["train", "--model", "vq-vae", "--data", "digits", "--no-progress", "--no-report", "--out", run]
            subprocess.run([sys.executable, "-m", "aekit", *map(str, train)], check=True, capture_output=True)
            print(f"trained the VQ-VAE (digits, defaults) in {time.perf_counter() - start:.1f} s", flush=True)
        contenders = {"default": ([], False, None), "old settings": (OLD, False, None)}
        if args.old_threads:
            contenders["old + threads"] = (OLD, True, None)
        if args.before_src:
            contenders["before"] = ([], False, str(Path(args.before_src).resolve()))
        timed = interleave(
            {name: (lambda c=c, name=name: train_prior(run, work, name, *c)) for name, c in contenders.items()},
            args.rounds,
            lambda result: f"{result[0]:.1f} s",
        )
    seconds = {name: [s for s, _ in values] for name, values in timed.items()}
    bits = {name: [b for _, b in values] for name, values in timed.items()}
    base = statistics.median(seconds["default"])
    print(f"\naekit train-prior on {args.run or 'a digits VQ-VAE'}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads available; medians of {args.rounds} interleaved rounds")  # fmt: skip
    header = ("contender", "seconds", "min-max", "vs default", "paired", "test bits/code")
    print("{:<16}{:>10}{:>16}{:>12}{:>10}{:>16}".format(*header))
    summary = {}
    for name in contenders:
        med = statistics.median(seconds[name])
        ratio = paired(seconds[name], seconds["default"])
        span = f"{min(seconds[name]):.1f}-{max(seconds[name]):.1f}"
        summary[name] = {"median_s": med, "all_s": seconds[name], "vs_default": med / base, "paired": ratio,
                         "test_bits_per_code": statistics.median(bits[name])}  # fmt: skip
        print(f"{name:<16}{med:>10.1f}{span:>16}{med / base:>11.2f}x{ratio:>9.2f}x"
              f"{statistics.median(bits[name]):>16.3f}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
