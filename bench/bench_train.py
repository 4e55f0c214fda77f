"""Training throughput: aekit (Python API and CLI) against a minimal hand-written PyTorch loop.

The model is the MLP VAE of the performance issue: 784-400-20, ReLU, Bernoulli likelihood, batch 128,
Adam 1e-3, MNIST train (50,000 images) held as one in-memory tensor, randperm batches. Each round
runs every contender for one epoch, in a shuffled order, so that the machine's drift hits all of
them alike; the table reports medians over rounds and ratios to the minimal loop (also paired: the
median over rounds of each round's ratio, which cancels drift that moves a whole round), and the matmul
limit: the time of the step's matrix products alone, at the same shapes, measured in the same run.

Contenders: aekit's default (fused Adam, float32), with foreach Adam, with ``precision="bf16"``
(bfloat16 matrix products under autocast; float16 with loss scaling too on CUDA), with
``compile=True`` (torch.compile of the forward pass), and the CLI.

Usage: python bench/bench_train.py [--rounds 5] [--data mnist|digits] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from rounds import interleave, paired
from torch import nn

import aekit

BATCH, HIDDEN, LATENT, LR = 128, 400, 20, 1e-3


# --- (c) the yardstick: a minimal hand-written loop -------------------------------------------------


class MinimalVAE(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.enc = nn.Linear(d, HIDDEN)
        self.stats = nn.Linear(HIDDEN, 2 * LATENT)
        self.dec1 = nn.Linear(LATENT, HIDDEN)
        self.dec2 = nn.Linear(HIDDEN, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, logvar = self.stats(F.relu(self.enc(x))).chunk(2, 1)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        logits = self.dec2(F.relu(self.dec1(z)))
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
        kl = 0.5 * (logvar.exp() - logvar - 1 + mean.square()).sum() / len(x)
        return recon + kl


def minimal_epoch(state: dict, x: torch.Tensor) -> float:
    model, opt = state["model"], state["opt"]
    start = time.perf_counter()
    perm = torch.randperm(len(x), device=x.device)
    for i in range(0, len(x), BATCH):
        loss = model(x[perm[i : i + BATCH]])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(x.device)
    return len(x) / (time.perf_counter() - start)


# --- (a) aekit through its Python API ---------------------------------------------------------------


def aekit_trainer(x: torch.Tensor, device: str, **train_options) -> aekit.Trainer:
    cfg = aekit.model_config("vae", hidden=(HIDDEN,), latent_dim=LATENT, likelihood="bernoulli")
    model = aekit.build_model(cfg, tuple(x.shape[1:]))
    config = aekit.TrainConfig(batch_size=BATCH, lr=LR, progress=False, device=device, **train_options)
    return aekit.Trainer(model, config)


def aekit_epoch(trainer: aekit.Trainer, x: torch.Tensor) -> float:
    trainer.config = dataclasses.replace(trainer.config, epochs=trainer.state.epoch + 1)
    start = time.perf_counter()
    trainer.fit(x)  # one epoch, no validation split
    _sync(x.device)
    return len(x) / (time.perf_counter() - start)


# --- (b) aekit through its command line -------------------------------------------------------------


def cli_epoch(data: str, device: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "aekit.cli", "train", "--model", "vae", "--data", data, "--hidden", str(HIDDEN),
               "--latent-dim", str(LATENT), "--batch-size", str(BATCH), "--lr", str(LR), "--epochs", "1",
               "--device", device, "--valid-fraction", "0", "--no-progress", "--no-report",
               "--out", f"{tmp}/run"]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
        return json.loads(Path(f"{tmp}/run/summary.json").read_text())["samples_per_s"]


# --- the matmul limit -------------------------------------------------------------------------------


def matmul_limit(d: int, device: str, repeats: int = 200) -> float:
    """Samples/s if a step cost only its matrix products (forward, and both gradients backward)."""
    shapes = [(BATCH, d, HIDDEN), (BATCH, HIDDEN, 2 * LATENT), (BATCH, LATENT, HIDDEN), (BATCH, HIDDEN, d)]
    products = []
    for m, k, n in shapes:
        a, w, g = torch.randn(m, k, device=device), torch.randn(k, n, device=device), torch.randn(m, n, device=device)
        products += [(a, w), (a.T.contiguous(), g), (g, w.T.contiguous())]  # y = aw; dW = a^T g; da = g w^T
    products.pop(1 + 0 * 3 + 1)  # the first layer needs no gradient with respect to the data
    for a, b in products:  # warm-up
        a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        for a, b in products:
            a @ b
    _sync(device)
    return BATCH * repeats / (time.perf_counter() - start)


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    dataset = aekit.load_dataset(args.data)
    x = dataset.train.flatten(1).to(args.device)  # the minimal loop's MLP takes flat vectors
    torch.manual_seed(0)
    minimal = MinimalVAE(x.shape[1]).to(args.device)
    state = {"model": minimal, "opt": torch.optim.Adam(minimal.parameters(), lr=LR)}
    images = dataset.train.to(args.device)
    default = aekit_trainer(images, args.device)  # the default: fused Adam
    foreach = aekit_trainer(images, args.device, adam_impl="foreach")
    bf16 = aekit_trainer(images, args.device, precision="bf16")  # the fast option: bfloat16 matrix products
    compiled = aekit_trainer(images, args.device, compile=True)  # torch.compile; compiled in the warm-up round
    contenders = {
        "minimal loop": lambda: minimal_epoch(state, x),
        "aekit API": lambda: aekit_epoch(default, images),
        "aekit foreach Adam": lambda: aekit_epoch(foreach, images),
        "aekit bf16": lambda: aekit_epoch(bf16, images),
        "aekit compile": lambda: aekit_epoch(compiled, images),
        "aekit CLI": lambda: cli_epoch(args.data, args.device),
        "matmul limit": lambda: matmul_limit(x.shape[1], args.device),
    }
    if torch.device(args.device).type == "cuda":
        fp16 = aekit_trainer(images, args.device, precision="fp16")
        contenders["aekit fp16"] = lambda: aekit_epoch(fp16, images)
    for name, run in contenders.items():  # warm-up round, not counted
        if name != "aekit CLI":
            run()
    results = interleave(contenders, args.rounds, lambda rate: f"{rate:,.0f}")
    base = statistics.median(results["minimal loop"])
    limit = statistics.median(results["matmul limit"])
    print(f"\n{args.data} train ({len(x):,} samples), device {args.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; medians of {args.rounds} interleaved rounds")  # fmt: skip
    # Paired ratios (each round's value over the same round's minimal loop or limit, then the median)
    # cancel the drift that moves a whole round; the ratio of medians does not.
    header = ("contender", "samples/s", "vs minimal", "of limit", "paired vs minimal", "paired of limit")
    print("{:<20}{:>12}{:>12}{:>10}{:>20}{:>17}".format(*header))
    summary = {}
    for name, values in results.items():
        med = statistics.median(values)
        vs_minimal = paired(values, results["minimal loop"])
        vs_limit = paired(values, results["matmul limit"])
        summary[name] = {"median": med, "all": values, "vs_minimal": med / base, "of_limit": med / limit,
                         "paired_vs_minimal": vs_minimal, "paired_of_limit": vs_limit}  # fmt: skip
        print(f"{name:<20}{med:>12,.0f}{med / base:>11.2f}x{med / limit:>9.0%}{vs_minimal:>19.2f}x{vs_limit:>16.0%}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak resident memory of this process: {peak:.2f} GiB")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": summary, "peak_rss_gib": peak}, indent=2))


if __name__ == "__main__":
    main()
