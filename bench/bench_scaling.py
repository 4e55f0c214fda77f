"""Scaling of training time: seconds per epoch against training-set size N and hidden width W.

The model is aekit's MLP VAE (784-W-20, ReLU, Bernoulli likelihood, batch 128, Adam 1e-3), trained through
the Python API (aekit.build_model, aekit.Trainer) on one in-memory float32 tensor, with no validation split
and the progress bar off. The data is MNIST train (50,000 images in [0, 1]): its first N images for
N <= 50,000, and for larger N copies of it stacked one after another, each copy but the first with a fresh
random set of pixels flipped (x -> 1 - x, a few per image) so that the copies differ; values stay in [0, 1].

Each (W, N) cell gets its own model and Trainer, warmed up with two short epochs on a slice. A measurement
is the wall-clock time of one trainer.fit call that runs whole epochs over the N samples: one epoch, or
as many as make it last --min-seconds for the small, fast cells; the cell's time is that divided by the
epochs run. The cells are measured once per repeat, in an order shuffled anew each repeat, so that the
machine's drift (about +-25% over minutes on a shared CPU) hits all of them alike; the tables report
medians over repeats (--stat min: the fastest, which a machine shared with other work slows least).

Printed: seconds per epoch (W rows, N columns; +-x% is half the range over repeats relative to the
median), microseconds per sample, and per width a linearity check: t(N)/t(N0) divided by N/N0 for each
size N against the smallest N0 (1.00 = time exactly proportional to N), and the least-squares line
t = a + b*N through the medians (or minima) with its R^2 (a: fixed cost per epoch, b: cost per sample).

Usage: python bench/bench_scaling.py [--repeats 3] [--sizes 10000,50000,200000] [--widths 200,400,800]
                                     [--min-seconds 1.0] [--flips 8] [--stat median|min] [--json PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import statistics
import time
from pathlib import Path

import torch

import aekit

BATCH, LATENT, LR = 128, 20, 1e-3
WARMUP_SAMPLES = 2048  # 16 steps: enough for the allocator and the kernels' first calls


# --- data -------------------------------------------------------------------------------------------


def make_pool(train: torch.Tensor, n: int, flips: int, seed: int = 0) -> torch.Tensor:
    """``n`` samples: ``train`` itself, then copies of it with ``flips`` random pixels per image flipped."""
    copies = [train]
    gen = torch.Generator().manual_seed(seed)
    while sum(len(c) for c in copies) < n:
        copy = train.clone()
        flat = copy.view(len(copy), -1)
        if flips:
            idx = torch.randint(0, flat.shape[1], (len(flat), flips), generator=gen)
            flat.scatter_(1, idx, 1 - flat.gather(1, idx))
        copies.append(copy)
    return torch.cat(copies)[:n] if len(copies) > 1 else train[:n]


# --- one cell: a model of width W trained on N samples ----------------------------------------------


class Cell:
    def __init__(self, width: int, x: torch.Tensor, min_seconds: float):
        self.width, self.x = width, x
        cfg = aekit.model_config("vae", hidden=(width,), latent_dim=LATENT, likelihood="bernoulli")
        model = aekit.build_model(cfg, tuple(x.shape[1:]))
        self.trainer = aekit.Trainer(model, aekit.TrainConfig(batch_size=BATCH, lr=LR, progress=False, device="cpu"))
        warm = x[:WARMUP_SAMPLES]
        per_sample = min(self._fit(warm, 1), self._fit(warm, 1)) / len(warm)  # sets the epochs to measure
        self.epochs = max(1, math.ceil(min_seconds / (per_sample * len(x))))  # epochs per measurement
        self.seconds: list[float] = []  # per epoch, one value per repeat

    def _fit(self, x: torch.Tensor, epochs: int) -> float:
        trainer = self.trainer
        trainer.config = dataclasses.replace(trainer.config, epochs=trainer.state.epoch + epochs)
        start = time.perf_counter()
        trainer.fit(x)  # `epochs` more epochs, no validation split
        return time.perf_counter() - start

    def measure(self) -> float:
        self.seconds.append(self._fit(self.x, self.epochs) / self.epochs)
        return self.seconds[-1]


# --- the tables -------------------------------------------------------------------------------------


def linearity(sizes: list[int], times: list[float]) -> dict:
    """Ratios against the smallest size, and the least-squares line t = a + b*N with its R^2."""
    n0, t0 = sizes[0], times[0]
    ratios = {n: (t / t0) / (n / n0) for n, t in zip(sizes[1:], times[1:], strict=True)}
    fit = {"a_seconds": math.nan, "b_us_per_sample": math.nan, "r2": math.nan}
    if len(sizes) >= 2:
        slope, intercept = statistics.linear_regression(sizes, times)
        r2 = statistics.correlation(sizes, times) ** 2 if len(sizes) >= 3 else 1.0
        fit = {"a_seconds": intercept, "b_us_per_sample": slope * 1e6, "r2": r2}
    return {"ratios": ratios, **fit}


def short(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


STATISTICS = {"median": statistics.median, "min": min}


def print_tables(widths: list[int], sizes: list[int], cells: dict[tuple[int, int], Cell], stat: str) -> dict:
    med = {key: STATISTICS[stat](cell.seconds) for key, cell in cells.items()}  # the chosen statistic
    repeats = len(next(iter(cells.values())).seconds)
    head = f"{'W':>6}" + "".join(f"{'N=' + short(n):>18}" for n in sizes)
    print(f"\nseconds per epoch ({stat} of {repeats}; +-: half the range over repeats, relative to the {stat})")
    print(head)
    for w in widths:
        row = ""
        for n in sizes:
            values = cells[w, n].seconds
            spread = (max(values) - min(values)) / 2 / med[w, n]
            row += f"{med[w, n]:>10.3f} s {spread:>4.0%}"
        print(f"{w:>6}{row}")
    print(f"\nmicroseconds per sample ({stat} seconds per epoch / N)")
    print(f"{'W':>6}" + "".join(f"{'N=' + short(n):>12}" for n in sizes))
    for w in widths:
        print(f"{w:>6}" + "".join(f"{med[w, n] / n * 1e6:>12.2f}" for n in sizes))
    lin = {w: linearity(sizes, [med[w, n] for n in sizes]) for w in widths}
    n0 = sizes[0]
    ratio_heads = [f"t({short(n)})/t({short(n0)})/{n / n0:g}" for n in sizes[1:]]
    print(f"\nlinearity per width (ratios: 1.00 = exactly linear in N; fit t = a + b*N over the {stat}s)")
    print(f"{'W':>6}" + "".join(f"{h:>22}" for h in ratio_heads) + f"{'a (s)':>10}{'b (µs/sample)':>15}{'R^2':>9}")
    for w in widths:
        ratios = "".join(f"{r:>22.3f}" for r in lin[w]["ratios"].values())
        fit = lin[w]
        print(f"{w:>6}{ratios}{fit['a_seconds']:>10.3f}{fit['b_us_per_sample']:>15.2f}{fit['r2']:>9.4f}")
    return {
        "cells": [
            {
                "width": w,
                "n": n,
                "epochs_per_measurement": cells[w, n].epochs,
                f"{stat}_seconds_per_epoch": med[w, n],
                "us_per_sample": med[w, n] / n * 1e6,
                "all_seconds_per_epoch": cells[w, n].seconds,
            }
            for w in widths
            for n in sizes
        ],
        "linearity": {str(w): {**lin[w], "ratios": {str(n): r for n, r in lin[w]["ratios"].items()}} for w in widths},
    }


def int_list(text: str) -> list[int]:
    return sorted({int(v) for v in text.replace(" ", "").split(",") if v})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="measurements per cell (default 3)")
    parser.add_argument("--sizes", type=int_list, default=[10_000, 50_000, 200_000], help="training-set sizes N")
    parser.add_argument("--widths", type=int_list, default=[200, 400, 800], help="hidden widths W")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="epochs per measurement: enough to last this")
    parser.add_argument("--flips", type=int, default=8, help="pixels flipped per image in each copy beyond MNIST's")
    parser.add_argument("--stat", choices=list(STATISTICS), default="median", help="per cell, over repeats")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    begin = time.perf_counter()
    torch.manual_seed(args.seed)
    train = aekit.load_dataset("mnist").train  # (50000, 1, 28, 28) in [0, 1]
    pool = make_pool(train, max(args.sizes), args.flips, args.seed)
    assert float(pool.min()) >= 0.0 and float(pool.max()) <= 1.0
    print(f"data: {len(pool):,} samples {tuple(pool.shape[1:])} ({len(train):,} MNIST train, the rest flipped "
          f"copies); torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)  # fmt: skip

    cells: dict[tuple[int, int], Cell] = {}
    for w in args.widths:
        for n in args.sizes:
            cells[w, n] = Cell(w, pool[:n], args.min_seconds)
    print("epochs per measurement: " + ", ".join(f"W{w}/N{short(n)} {c.epochs}" for (w, n), c in cells.items()))
    for r in range(args.repeats):
        order = list(cells)
        random.Random(args.seed * 1000 + r).shuffle(order)
        start = time.perf_counter()
        for key in order:
            cells[key].measure()
        print(f"repeat {r + 1}/{args.repeats} done in {time.perf_counter() - start:.0f} s", flush=True)

    results = print_tables(args.widths, args.sizes, cells, args.stat)
    total = time.perf_counter() - begin
    print(f"\ntotal run time {total:.0f} s")
    if args.json:
        meta = {
            "repeats": args.repeats, "statistic": args.stat, "min_seconds": args.min_seconds, "flips": args.flips,
            "batch": BATCH, "latent": LATENT, "lr": LR, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "total_seconds": total,
        }  # fmt: skip
        Path(args.json).write_text(json.dumps({"config": meta, **results}, indent=2))


if __name__ == "__main__":
    main()
