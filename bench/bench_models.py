"""Conv AE, VQ-VAE and evaluation throughput: aekit (Python API and CLI) against minimal hand-written PyTorch.

Three parts, each a table of medians over interleaved rounds (every round runs all contenders once, in
a shuffled order, so that the machine's drift hits all of them alike) and ratios to the minimal code:

conv  aekit ``--model ae --arch conv --hidden 32,64`` (bernoulli, latent 20): stride-2 3x3 convs
      28 -> 14 -> 7, a linear code, a linear map back to 64x7x7, stride-2 3x3 transposed convs
      (output_padding 1) 7 -> 14 -> 28 and a 3x3 output conv: aekit's default channels for arch
      conv (``--conv-channels`` measures others).
vq    aekit ``--model vq-vae`` with its defaults (bernoulli): 4x4 stride-2 convs 28 -> 14 -> 7 with
      64 and 128 channels, a 3x3 conv, two residual blocks, a 1x1 conv to 64-d codes, a learned
      codebook of 512 codes (no EMA; codebook loss + 0.25 x commitment loss, straight-through
      gradient), dead codes re-seeded from the batch every 100 steps; the mirror-image decoder.

      Both train with batch 128 and Adam 1e-3 on a fixed random subset of ``--samples`` MNIST training
      images (one in-memory tensor, randperm batches), since a full epoch of conv models is slow on a
      CPU. The contenders: the minimal loop (same layers, same loss, same initial weights copied from
      aekit's model, plain ``torch.optim.Adam`` as a user would write it); aekit's ``Trainer`` (its
      defaults: fused Adam, channels-last convolutions); the same with ``precision="bf16"`` (bfloat16
      convolutions, the fast option); with ``compile=True`` (torch.compile, compiled in the warm-up
      epoch); and ``aekit train`` in a subprocess, on the same subset saved as a pre-split .npz with
      empty valid and test splits, reading ``samples_per_s`` of its summary.json (the training epoch
      alone: no process start-up, data loading or evaluation, but the process's first, cold epoch,
      whereas the in-process contenders get a warm-up epoch first, printed for comparison). The minimal
      and aekit models are checked to have equal parameter counts and equal losses on a batch with the
      same weights.

eval  The MLP VAE of bench_train.py (784-400-20, ReLU, bernoulli), trained for one epoch by
      ``aekit.train``. The negative ELBO of the MNIST test set (10,000 images, batch 1024, one posterior
      draw), each contender against its hand-written twin: the -ELBO alone (a minimal ``no_grad`` loop
      against aekit's per-sample ``score_samples(kind="neg_elbo")``, what ``aekit score`` runs), and every
      test metric (a minimal loop that also computes the KL per dimension, the error of the reconstruction
      at the posterior mean and the active units, against ``Run.evaluate`` with ``iw_samples=0``), each
      timed over ELBO_PASSES passes of the test set, and ``aekit eval --iw-samples 0``, timed from
      outside, wall-clock (process start-up, imports and data loading included; the start-up of a process
      that only loads the run and its data is printed beside it). The importance-weighted bound on
      ``--iw-images`` test images with K = 100 and 1000: a minimal loop (logsumexp over K, about 8192 decoder
      outputs per pass as in aekit) against ``aekit.evaluation.bounds.iw_nll``, also with its periodic
      ``malloc_trim`` switched off. The values of minimal and aekit code are printed side by side; the IW
      loops draw the same noise (a generator seeded 0, the same shapes in the same order), so they agree
      to rounding, while the -ELBO's single draw comes from different generators.

Usage: python bench/bench_models.py [--rounds 3] [--only conv|vq|eval] [--samples N] [--json PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import itertools
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rounds import interleave as interleaved
from torch import nn

import aekit
from aekit.evaluation.scores import score_samples

# The module of the bound, whose release_freed_memory the "malloc_trim off" contender replaces.
evaluate_module = importlib.import_module("aekit.evaluation.bounds")

BATCH, LR, LATENT, EVAL_BATCH, MAX_DECODED = 128, 1e-3, 20, 1024, 8192
ELBO_PASSES = 5  # passes over the test set per timing of the in-process -ELBO contenders: ~0.1 s each is too short
SHAPE = (1, 28, 28)
DEFAULT_SAMPLES = {"conv": 5000, "vq": 2000}


# --- shared: interleaved rounds and the table ------------------------------------------------------


def interleave(contenders: dict[str, Callable[[], float]], rounds: int, label: str) -> dict[str, list[float]]:
    """Run every contender once per round, in a seeded shuffled order; samples/s of each run."""
    return interleaved(contenders, rounds, lambda rate: f"{rate:,.0f}", label="  " + label)


def table(title: str, results: dict[str, list[float]], base: str) -> dict[str, dict]:
    """Print medians (with min-max over rounds) and ratios to ``base``; return them."""
    ref = statistics.median(results[base])
    print(f"\n{title}")
    print(f"{'contender':<38}{'samples/s':>12}{'vs minimal':>12}   min-max over rounds")
    summary = {}
    for name, values in results.items():
        med = statistics.median(values)
        summary[name] = {"median": med, "all": values, "vs_minimal": med / ref}
        print(f"{name:<38}{med:>12,.1f}{med / ref:>11.2f}x   {min(values):,.1f}-{max(values):,.1f}")
    return summary


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def copy_weights(dst: nn.Module, src: nn.Module) -> None:
    """Copy ``src``'s parameters into ``dst``'s, matched by order and checked by shape."""
    pairs = list(itertools.zip_longest(dst.parameters(), src.parameters()))
    for p, q in pairs:
        if p is None or q is None or p.shape != q.shape:
            raise AssertionError("the minimal and aekit models do not have the same parameters in the same order")
    with torch.no_grad():
        for p, q in pairs:
            p.copy_(q)


# --- training contenders, shared by the conv AE and the VQ-VAE ---------------------------------------


def minimal_epoch(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor) -> float:
    start = time.perf_counter()
    perm = torch.randperm(len(x))
    for i in range(0, len(x), BATCH):
        loss = model(x[perm[i : i + BATCH]])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return len(x) / (time.perf_counter() - start)


def aekit_epoch(trainer: aekit.Trainer, x: torch.Tensor) -> float:
    trainer.config = dataclasses.replace(trainer.config, epochs=trainer.state.epoch + 1)
    start = time.perf_counter()
    trainer.fit(x)  # one epoch, no validation split
    return len(x) / (time.perf_counter() - start)


def cli_epoch(npz: Path, model_flags: list[str]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "aekit.cli", "train", *model_flags, "--data", str(npz),
               "--batch-size", str(BATCH), "--lr", str(LR), "--epochs", "1", "--device", "cpu",
               "--no-progress", "--no-report", "--out", f"{tmp}/run"]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
        return json.loads(Path(f"{tmp}/run/summary.json").read_text())["samples_per_s"]


def training_part(
    label: str, minimal: nn.Module, config: aekit.ModelConfig, cli_flags: list[str], x: torch.Tensor, rounds: int
) -> dict:
    """Check the minimal model against aekit's, then time the three contenders on ``x``."""
    torch.manual_seed(0)
    model = aekit.build_model(config, SHAPE)
    n_min, n_aekit = param_count(minimal), param_count(model)
    print(f"\n[{label}] parameters: minimal {n_min:,}, aekit {n_aekit:,}", flush=True)
    assert n_min == n_aekit, "parameter counts differ"
    copy_weights(minimal, model)  # the same initial weights, so both train the same network
    minimal.eval()  # no codebook statistics or restarts during the check
    model.eval()
    with torch.no_grad():
        xb = x[:BATCH]
        loss_min = float(minimal(xb))
        loss_aekit = float(sum(w * model.loss_terms(xb)[k].mean() for k, w in model.term_weights.items()))
    minimal.train()
    model.train()
    print(f"[{label}] loss on one batch with the same weights: minimal {loss_min:.5f}, aekit {loss_aekit:.5f}")
    assert math.isclose(loss_min, loss_aekit, rel_tol=1e-4), "the minimal and aekit losses differ"

    opt = torch.optim.Adam(minimal.parameters(), lr=LR)
    trainer = aekit.Trainer(model, aekit.TrainConfig(batch_size=BATCH, lr=LR, progress=False, device="cpu"))
    torch.manual_seed(0)
    fast = aekit.TrainConfig(batch_size=BATCH, lr=LR, progress=False, device="cpu", precision="bf16")
    bf16 = aekit.Trainer(aekit.build_model(config, SHAPE), fast)  # the fast option: bfloat16 convolutions
    torch.manual_seed(0)
    compile_config = dataclasses.replace(fast, precision="fp32", compile=True)  # torch.compile, float32
    compiled = aekit.Trainer(aekit.build_model(config, SHAPE), compile_config)
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / f"{label}-subset.npz"
        empty = np.zeros((0, *SHAPE), np.float32)
        np.savez(npz, train=x.numpy(), valid=empty, test=empty)  # pre-split: the CLI trains on exactly x
        contenders = {
            "minimal loop": lambda: minimal_epoch(minimal, opt, x),
            "aekit API": lambda: aekit_epoch(trainer, x),
            "aekit bf16": lambda: aekit_epoch(bf16, x),
            "aekit compile": lambda: aekit_epoch(compiled, x),
            "aekit CLI": lambda: cli_epoch(npz, cli_flags),
        }
        # First epochs, not counted.
        warm = {name: contenders[name]() for name in ("minimal loop", "aekit API", "aekit bf16", "aekit compile")}
        print(f"  {label} warm-up (not counted): " + ", ".join(f"{n} {v:,.0f}" for n, v in warm.items()))
        results = interleave(contenders, rounds, label)
    title = (f"{label}: MNIST train subset of {len(x):,} samples per timed epoch, batch {BATCH}, Adam {LR}, cpu, "
             f"{torch.get_num_threads()} threads; medians of {rounds} interleaved rounds")  # fmt: skip
    summary = table(title, results, "minimal loop")
    return {"samples": len(x), "parameters": {"minimal": n_min, "aekit": n_aekit},
            "check_loss": {"minimal": loss_min, "aekit": loss_aekit}, "warmup": warm, "results": summary}  # fmt: skip


# --- part 1: conv autoencoder ------------------------------------------------------------------------


class MinimalConvAE(nn.Module):
    """aekit's arch conv for 1x28x28 images, deterministic code, ReLU, Bernoulli loss on logits."""

    def __init__(self, channels: tuple[int, ...], latent: int = LATENT):
        super().__init__()
        sizes = [28]
        for _ in channels:
            sizes.append((sizes[-1] + 1) // 2)  # stride-2 3x3 conv, padding 1: ceil(s / 2)
        self.start = (channels[-1], sizes[-1], sizes[-1])
        enc: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise([1, *channels]):
            enc += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU()]
        self.enc = nn.Sequential(*enc)
        self.code = nn.Linear(math.prod(self.start), latent)
        self.fc = nn.Linear(latent, math.prod(self.start))
        rev = list(reversed(channels))
        up: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(rev, [*rev[1:], rev[-1]], strict=True)):
            pad = sizes[-2 - i] - (2 * sizes[-1 - i] - 1)  # 2s - 1, plus the row ceil dropped
            up += [nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=pad), nn.ReLU()]
        self.up = nn.Sequential(*up)
        self.out = nn.Conv2d(rev[-1], 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.code(self.enc(x).flatten(1))
        logits = self.out(self.up(F.relu(self.fc(h)).view(-1, *self.start)))
        return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)


def conv_part(train: torch.Tensor, channels: tuple[int, ...], rounds: int) -> dict:
    config = aekit.model_config("ae", arch="conv", hidden=channels, latent_dim=LATENT, likelihood="bernoulli")
    flags = ["--model", "ae", "--arch", "conv", "--hidden", ",".join(map(str, channels)),
             "--latent-dim", str(LATENT), "--likelihood", "bernoulli"]  # fmt: skip
    result = training_part("conv AE", MinimalConvAE(channels), config, flags, train, rounds)
    return {"channels": list(channels), **result}


# --- part 2: VQ-VAE ----------------------------------------------------------------------------------


class ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.net = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class MinimalVQVAE(nn.Module):
    """aekit's VQ-VAE defaults for 1x28x28 images: K = 512 learned codes of D = 64, beta 0.25, 128 channels."""

    def __init__(self, channels: int = 128, dim: int = 64, codes: int = 512, beta: float = 0.25, restart: int = 100):
        super().__init__()
        half = channels // 2
        self.enc = nn.Sequential(
            nn.Conv2d(1, half, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(half, channels, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), ResBlock(channels), ResBlock(channels),
            nn.ReLU(), nn.Conv2d(channels, dim, 1),
        )  # fmt: skip
        self.codebook = nn.Embedding(codes, dim)
        nn.init.kaiming_uniform_(self.codebook.weight)  # aekit's initialisation
        self.dec = nn.Sequential(
            nn.Conv2d(dim, channels, 3, padding=1), ResBlock(channels), ResBlock(channels), nn.ReLU(),
            nn.ConvTranspose2d(channels, half, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(half, 1, 4, stride=2, padding=1),
        )  # fmt: skip
        self.beta, self.restart = beta, restart
        self.register_buffer("usage", torch.zeros(codes))
        self.steps = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z_e = self.enc(x)  # (N, D, 7, 7)
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])  # (N * 49, D)
        with torch.no_grad():
            e = self.codebook.weight
            idx = (e.square().sum(1) - 2 * flat @ e.T).argmin(1)  # nearest code; ||z||^2 is the same for all
        q = self.codebook(idx).view(z_e.shape[0], *z_e.shape[2:], -1).permute(0, 3, 1, 2)
        codebook_loss = (z_e.detach() - q).square().sum() / len(x)
        commitment = (z_e - q.detach()).square().sum() / len(x)
        logits = self.dec(z_e + (q - z_e).detach())  # straight-through gradient
        if self.training:
            self.restart_dead_codes(flat.detach(), idx)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
        return recon + codebook_loss + self.beta * commitment

    @torch.no_grad()
    def restart_dead_codes(self, flat: torch.Tensor, idx: torch.Tensor) -> None:
        """Every ``restart`` steps, codes unused since the last check take random encoder outputs of the batch."""
        self.usage += torch.bincount(idx, minlength=len(self.usage))
        self.steps += 1
        if self.steps % self.restart == 0:
            dead = self.usage == 0
            candidates = flat[torch.randint(len(flat), (len(self.usage),))]
            self.codebook.weight.copy_(torch.where(dead[:, None], candidates, self.codebook.weight))
            self.usage.zero_()


def vq_part(train: torch.Tensor, rounds: int) -> dict:
    config = aekit.model_config("vq-vae", likelihood="bernoulli")
    assert (config.channels, config.num_codes, config.code_dim, config.res_blocks, config.downsample) == (
        128, 512, 64, 2, 2), "aekit's VQ-VAE defaults changed; update MinimalVQVAE"  # fmt: skip
    assert (config.commitment_weight, config.use_ema, config.restart_after) == (0.25, False, 100)
    return training_part("VQ-VAE", MinimalVQVAE(), config, ["--model", "vq-vae", "--likelihood", "bernoulli"],
                         train, rounds)  # fmt: skip


# --- part 3: evaluation of the MLP VAE ---------------------------------------------------------------


class MinimalVAE(nn.Module):
    """784-400-20 VAE of bench_train.py, as used at test time."""

    def __init__(self, d: int = 784, hidden: int = 400, latent: int = LATENT):
        super().__init__()
        self.enc = nn.Linear(d, hidden)
        self.stats = nn.Linear(hidden, 2 * latent)
        self.dec1 = nn.Linear(latent, hidden)
        self.dec2 = nn.Linear(hidden, d)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.stats(F.relu(self.enc(x))).chunk(2, -1)
        return mean, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec2(F.relu(self.dec1(z)))


@torch.no_grad()
def minimal_neg_elbo(model: MinimalVAE, x: torch.Tensor, seed: int = 0) -> float:
    """Mean -ELBO in nats with one posterior draw per sample, in batches of EVAL_BATCH."""
    gen, total = torch.Generator().manual_seed(seed), 0.0
    for i in range(0, len(x), EVAL_BATCH):
        xb = x[i : i + EVAL_BATCH].flatten(1)
        mean, logvar = model.encode(xb)
        z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=gen)
        recon = F.binary_cross_entropy_with_logits(model.decode(z), xb, reduction="sum")
        kl = 0.5 * (logvar.exp() - logvar - 1 + mean.square()).sum()
        total += float(recon + kl)
    return total / len(x)


@torch.no_grad()
def minimal_metrics(model: MinimalVAE, x: torch.Tensor, seed: int = 0) -> float:
    """What ``Run.evaluate`` reports, hand-written: -ELBO with one draw, KL per dimension, the squared error
    of the reconstruction at the posterior mean (mse, psnr) and the active units; returns the -ELBO."""
    gen, total, sse, kl_dims, means = torch.Generator().manual_seed(seed), 0.0, 0.0, 0.0, []
    for i in range(0, len(x), EVAL_BATCH):
        xb = x[i : i + EVAL_BATCH].flatten(1)
        mean, logvar = model.encode(xb)
        z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=gen)
        recon = F.binary_cross_entropy_with_logits(model.decode(z), xb, reduction="sum")
        kl = 0.5 * (logvar.exp() - logvar - 1 + mean.square())
        total += float(recon + kl.sum())
        kl_dims = kl_dims + kl.sum(0)
        sse += float((torch.sigmoid(model.decode(mean)) - xb).square().sum())
        means.append(mean)
    active = int((torch.cat(means).double().var(0) > 0.01).sum())
    assert sse > 0 and active >= 0 and len(kl_dims) == mean.shape[1]
    return total / len(x)


def aekit_neg_elbo(model: nn.Module, x: torch.Tensor) -> float:
    """aekit's per-sample -ELBO (``aekit score --score neg_elbo``): one encoder and decoder pass per batch."""
    return float(score_samples(model, x, kind="neg_elbo", batch_size=EVAL_BATCH).mean())


@torch.no_grad()
def minimal_iw(model: MinimalVAE, x: torch.Tensor, k: int, seed: int = 0) -> float:
    """Mean importance-weighted bound -log (1/k) sum_i p(x, z_i) / q(z_i | x), z_i ~ q(z | x), in nats."""
    gen, rows, out = torch.Generator().manual_seed(seed), max(1, MAX_DECODED // k), []
    for i in range(0, len(x), rows):
        xb = x[i : i + rows].flatten(1)  # (B, D)
        mean, logvar = model.encode(xb)
        eps = torch.randn((k, *mean.shape), generator=gen)  # (k, B, L)
        z = mean + torch.exp(0.5 * logvar) * eps
        logits = model.decode(z)  # (k, B, D)
        log_lik = -F.binary_cross_entropy_with_logits(logits, xb.expand_as(logits), reduction="none").sum(-1)
        # log p(z) - log q(z | x): the log(2 pi) terms cancel, and log std = logvar / 2.
        log_w = log_lik - 0.5 * z.square().sum(-1) + 0.5 * eps.square().sum(-1) + 0.5 * logvar.sum(-1)
        out.append(math.log(k) - torch.logsumexp(log_w, 0))
    return float(torch.cat(out).mean())


def aekit_iw(model: nn.Module, x: torch.Tensor, k: int, trim: bool = True) -> float:
    """aekit's IW bound (mean over ``x``); ``trim=False`` skips its ``malloc_trim`` after every batch."""
    release = evaluate_module.release_freed_memory
    if not trim:
        evaluate_module.release_freed_memory = lambda: None
    try:
        return float(evaluate_module.iw_nll(model, x, k=k, seed=0).mean())
    finally:
        evaluate_module.release_freed_memory = release


def timed(fn: Callable[[], float], n: int, values: list[float], passes: int = 1) -> float:
    """Run ``fn`` ``passes`` times over ``n`` samples, keep the value it returns, and return samples per second."""
    start = time.perf_counter()
    for _ in range(passes):
        value = fn()
    values.append(value)
    return passes * n / (time.perf_counter() - start)


def subprocess_seconds(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, done.stdout


def elbo_part(run: aekit.Run, minimal: MinimalVAE, test: torch.Tensor, rounds: int) -> dict:
    """-ELBO of the whole test set, two ways, each against its hand-written twin: the -ELBO alone (minimal
    loop vs aekit's per-sample score) and every test metric (minimal loop vs Run.evaluate); ``aekit eval``
    timed from outside."""
    values: dict[str, list[float]] = {"minimal": [], "aekit score": [], "minimal metrics": [], "aekit API": [],
                                      "aekit CLI": []}  # fmt: skip
    startups: list[float] = []
    cli = [sys.executable, "-m", "aekit.cli", "eval", str(run.path), "--iw-samples", "0", "--json"]
    load_only = [sys.executable, "-c", "import sys; from aekit.runs import load_run; "
                 "load_run(sys.argv[1]).load_data().test", str(run.path)]  # fmt: skip

    def cli_eval() -> float:
        startup, _ = subprocess_seconds(load_only)
        wall, stdout = subprocess_seconds(cli)
        values["aekit CLI"].append(json.loads(stdout)["neg_elbo"])
        startups.append(startup)
        return len(test) / wall

    n = len(test)
    contenders = {
        "minimal no_grad loop": lambda: timed(
            lambda: minimal_neg_elbo(minimal, test), n, values["minimal"], ELBO_PASSES
        ),
        "aekit -ELBO per sample (score)": lambda: timed(
            lambda: aekit_neg_elbo(run.model, test), n, values["aekit score"], ELBO_PASSES
        ),
        "minimal loop, all test metrics": lambda: timed(
            lambda: minimal_metrics(minimal, test), n, values["minimal metrics"], ELBO_PASSES
        ),
        "aekit API Run.evaluate": lambda: timed(
            lambda: run.evaluate(test, iw_samples=0)["neg_elbo"], n, values["aekit API"], ELBO_PASSES
        ),
        "aekit CLI eval (wall, with start-up)": cli_eval,
    }
    for name in list(contenders)[:4]:  # warm-up, not counted
        contenders[name]()
    results = interleave(contenders, rounds, "eval -ELBO")
    title = (f"eval: -ELBO of the MNIST test set ({n:,} samples, batch {EVAL_BATCH}), cpu; medians of {rounds} "
             "interleaved rounds")  # fmt: skip
    pick = ("minimal no_grad loop", "aekit -ELBO per sample (score)", "aekit CLI eval (wall, with start-up)")
    summary = table(title + "; the -ELBO alone", {k: results[k] for k in pick}, "minimal no_grad loop")
    pick = ("minimal loop, all test metrics", "aekit API Run.evaluate")
    summary |= table(title + "; every test metric (-ELBO, KL per dimension, mse at the posterior mean, active units)",
                     {k: results[k] for k in pick}, "minimal loop, all test metrics")  # fmt: skip
    print("-ELBO (nats): " + ", ".join(f"{name} {v[-1]:.3f}" for name, v in values.items()))
    # The evaluation itself is a small part of the CLI's wall time: most of it is start-up.
    startup = statistics.median(startups)
    print(f"start-up of a process that only loads the run and its test data: {startup:.2f} s (median)")
    return {"results": summary, "values": {name: v[-1] for name, v in values.items()}, "startup_seconds": startup}


def iw_part(run: aekit.Run, minimal: MinimalVAE, x: torch.Tensor, k: int, rounds: int) -> dict:
    """The IW bound with ``k`` samples on ``x``: minimal loop against aekit's iw_nll."""
    values: dict[str, list[float]] = {"minimal": [], "aekit": [], "aekit, malloc_trim off": []}
    n = len(x)
    contenders = {
        "minimal IW loop": lambda: timed(lambda: minimal_iw(minimal, x, k), n, values["minimal"]),
        "aekit iw_nll": lambda: timed(lambda: aekit_iw(run.model, x, k), n, values["aekit"]),
        "aekit iw_nll, malloc_trim off": lambda: timed(
            lambda: aekit_iw(run.model, x, k, trim=False), n, values["aekit, malloc_trim off"]
        ),
    }
    rows = max(1, MAX_DECODED // k)  # warm-up, not counted: one pass of each
    minimal_iw(minimal, x[:rows], k)
    aekit_iw(run.model, x[:rows], k)
    results = interleave(contenders, rounds, f"eval IW K={k}")
    title = (f"eval: IW bound, K = {k}, on {n:,} test images (~{MAX_DECODED} decoder outputs per pass), cpu; "
             f"medians of {rounds} interleaved rounds")  # fmt: skip
    summary = table(title, results, "minimal IW loop")
    print(f"IW bound K={k} (nats): " + ", ".join(f"{name} {v[-1]:.3f}" for name, v in values.items()))
    gap = abs(values["minimal"][-1] - values["aekit"][-1])
    print(f"  |minimal - aekit| = {gap:.3f} nats" + ("" if gap < 0.5 else "  <-- more than 0.5 nats apart"))
    return {"results": summary, "values": {name: v[-1] for name, v in values.items()}, "gap": gap}


def eval_part(rounds: int, iw_images: int, ks: tuple[int, ...]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        print("\n[eval] training the MLP VAE (784-400-20, bernoulli) for one epoch on MNIST ...", flush=True)
        start = time.perf_counter()
        run = aekit.train(model="vae", data="mnist", hidden=(400,), latent_dim=LATENT, likelihood="bernoulli",
                          epochs=1, batch_size=BATCH, lr=LR, device="cpu", progress=False, out=f"{tmp}/run",
                          report=False)  # fmt: skip
        print(f"[eval] trained in {time.perf_counter() - start:.1f} s", flush=True)
        test = run.load_data().test
        minimal = MinimalVAE().eval()
        copy_weights(minimal, run.model)
        print(f"[eval] parameters: minimal {param_count(minimal):,}, aekit {param_count(run.model):,}")
        assert param_count(minimal) == param_count(run.model)
        out = {"test_samples": len(test), "iw_images": iw_images, "neg_elbo": elbo_part(run, minimal, test, rounds)}
        for k in ks:
            out[f"iw_{k}"] = iw_part(run, minimal, test[:iw_images], k, rounds)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("conv", "vq", "eval"), help="run one part")
    parser.add_argument("--samples", type=int,
                        help=f"training images per timed epoch (default: conv {DEFAULT_SAMPLES['conv']}, "
                             f"vq {DEFAULT_SAMPLES['vq']})")  # fmt: skip
    parser.add_argument("--conv-channels", default="32,64", help="conv AE channels per stride-2 stage")
    parser.add_argument("--iw-images", type=int, default=200, help="test images of the IW bound")
    parser.add_argument("--iw-k", default="100,1000", help="importance samples K of the IW bound")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    parts = [args.only] if args.only else ["conv", "vq", "eval"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.rounds} rounds, parts {parts}")

    results: dict = {}
    if "conv" in parts or "vq" in parts:
        train = aekit.load_dataset("mnist").train
        subset = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
    if "conv" in parts:
        n = args.samples or DEFAULT_SAMPLES["conv"]
        channels = tuple(int(c) for c in args.conv_channels.split(","))
        results["conv"] = conv_part(train[subset[:n]].contiguous(), channels, args.rounds)
    if "vq" in parts:
        n = args.samples or DEFAULT_SAMPLES["vq"]
        results["vq"] = vq_part(train[subset[:n]].contiguous(), args.rounds)
    if "eval" in parts:
        ks = tuple(int(k) for k in args.iw_k.split(","))
        results["eval"] = eval_part(args.rounds, args.iw_images, ks)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\npeak resident memory of this process: {peak:.2f} GiB")
    if args.json:
        results["meta"] = {"torch": torch.__version__, "threads": torch.get_num_threads(), "rounds": args.rounds,
                           "peak_rss_gib": peak}  # fmt: skip
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
