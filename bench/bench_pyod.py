"""Outlier detection: PyOD's deep detectors (AutoEncoder, VAE) against aekit's ``ae`` and ``vae`` presets.

What it measures. The unsupervised outlier-detection setting of PyOD's benchmarks: each data set is
split into a training and a test split that both hold outliers; every detector is fitted on the
training split without labels and scores the test split; the score's AUROC and average precision
(outliers positive) and the wall-clock time of the fit are recorded. The data sets:

breast-cancer  scikit-learn's ``load_breast_cancer`` (569 x 30), malignant = outlier (37 %);
               stratified 60/40 split.
digits         scikit-learn's ``load_digits`` (1797 x 64) with one class held out as the outlier class,
               downsampled (seeded) to 5 % of the samples; stratified 60/40 split. Held-out classes
               0, 3 and 8; each repeat reports the mean over them.
synthetic-10d  PyOD's ``generate_data`` (n_train=1000, n_test=500, contamination 0.1, its own split),
synthetic-50d  with 10 and 50 features.

Contenders, all in one process with ``torch.set_num_threads(1)`` on the CPU:

pyod-ae    ``pyod.models.auto_encoder.AutoEncoder`` with its defaults (64-32 encoder with batch norm and
           dropout 0.2, 10 epochs, batch 32, Adam 1e-3, weight decay 1e-5, standardisation by
           ``preprocessing=True``); only ``random_state`` (the repeat's seed) and ``verbose=0`` set.
pyod-vae   ``pyod.models.vae.VAE`` with its defaults (128-64-32 encoder, latent 2, dropout 0.2, 30 epochs,
           batch 32); the same two arguments set. Both score by reconstruction distance.
aekit-ae   ``aekit.train(model="ae")`` / ``model="vae"`` with the presets' defaults (MLP 400 hidden units,
aekit-vae  ReLU, latent_dim 20, 50 epochs, batch 128, Adam 1e-3; gaussian likelihood with std 1 for
           standardised data), ``epochs`` and ``latent_dim`` passed explicitly (EPOCHS, LATENT_DIM below,
           the same on every data set). The data are standardised with the training
           split's statistics (``aekit.data.compute_normalization``, as ``aekit.train`` and the CLI do
           for tabular data), and 15 % of the
           training split is held out as the validation split that picks the best epoch. Scores:
           ``score_samples(kind="auto")``: the reconstruction error of the AE, the importance-weighted
           bound on -log p(x) (100 draws) of the VAE.

Every repeat (seeds 0 to 4) draws new splits (and new synthetic data) shared by all contenders, seeds
every contender with the repeat's seed, and runs the contenders in a shuffled order, so the machine's
drift hits all of them alike. The table reports medians over repeats; fit seconds include what each
``fit`` does (PyOD's scoring of its training data; aekit's run directory, written to a temporary folder).

Usage (needs PyOD: ``pip install 'aekit[pyod]'``)::

    python bench/bench_pyod.py --json bench/results/pyod.json [--markdown bench/results/pyod.md]
    python bench/bench_pyod.py --quick   # one seed, one held-out digit: about 1.5 minutes
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split

import aekit
from aekit.data import Dataset, apply_normalization, compute_normalization
from aekit.evaluation.scores import score_samples

try:
    import pyod
    from pyod.models.auto_encoder import AutoEncoder
    from pyod.models.vae import VAE
    from pyod.utils.data import generate_data
except ImportError:
    sys.exit("bench/bench_pyod.py compares against PyOD, which is not installed. Install it: pip install 'aekit[pyod]'")

# aekit's options, the same on every data set: the presets' defaults. Tried on a tuning seed (100, not
# one of SEEDS) on breast-cancer and digits: latent_dim 4 / 8 / 20 at 100 epochs, epochs 50 / 100 / 200
# at latent_dim 20; the defaults were as accurate as any and the fastest.
EPOCHS = 50  # the best epoch on the validation split is kept
LATENT_DIM = 20
VALID_FRACTION = 0.15  # of the training split, for aekit's best-epoch selection
SEEDS, QUICK_SEEDS = (0, 1, 2, 3, 4), (0,)
DIGIT_CLASSES, QUICK_DIGIT_CLASSES = (0, 3, 8), (0,)
DIGIT_CONTAMINATION = 0.05
CONTENDERS = ("pyod-ae", "pyod-vae", "aekit-ae", "aekit-vae")


@dataclass
class Task:
    """One fit-and-score problem: ``y_test`` marks the outliers of ``x_test``."""

    dataset: str
    name: str
    x_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


# --- the data sets -----------------------------------------------------------------------------------


def split_60_40(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x_train, x_test, _, y_test = train_test_split(x, y, test_size=0.4, stratify=y, random_state=seed)
    return x_train, x_test, y_test


def breast_cancer_tasks(seed: int, quick: bool) -> list[Task]:
    data = load_breast_cancer()
    outlier = data.target == list(data.target_names).index("malignant")
    x_train, x_test, y_test = split_60_40(data.data, outlier, seed)
    return [Task("breast-cancer", "malignant", x_train, x_test, y_test)]


def digits_tasks(seed: int, quick: bool) -> list[Task]:
    x, y = load_digits(return_X_y=True)
    tasks = []
    for cls in QUICK_DIGIT_CLASSES if quick else DIGIT_CLASSES:
        rng = np.random.default_rng([seed, cls])
        inliers = np.flatnonzero(y != cls)
        n_out = round(DIGIT_CONTAMINATION / (1 - DIGIT_CONTAMINATION) * len(inliers))
        outliers = rng.choice(np.flatnonzero(y == cls), size=n_out, replace=False)
        keep = np.concatenate([inliers, outliers])
        x_train, x_test, y_test = split_60_40(x[keep], y[keep] == cls, seed)
        tasks.append(Task("digits", f"held-out {cls}", x_train, x_test, y_test))
    return tasks


def synthetic_tasks(n_features: int) -> Callable[[int, bool], list[Task]]:
    def make(seed: int, quick: bool) -> list[Task]:
        x_train, x_test, _, y_test = generate_data(
            n_train=1000, n_test=500, n_features=n_features, contamination=0.1, random_state=seed
        )
        return [Task(f"synthetic-{n_features}d", "generate_data", x_train, x_test, y_test.astype(bool))]

    return make


DATASETS: dict[str, Callable[[int, bool], list[Task]]] = {
    "breast-cancer": breast_cancer_tasks,
    "digits": digits_tasks,
    "synthetic-10d": synthetic_tasks(10),
    "synthetic-50d": synthetic_tasks(50),
}


# --- the contenders: fit on x_train, return (fit seconds, scores of x_test, score seconds) -------------


def run_pyod(cls: type, task: Task, seed: int) -> tuple[float, np.ndarray, float]:
    start = time.perf_counter()
    detector = cls(random_state=seed, verbose=0)
    detector.fit(task.x_train)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    scores = detector.decision_function(task.x_test)
    return fit_s, scores, time.perf_counter() - start


def run_aekit(model: str, task: Task, seed: int, tmp: Path) -> tuple[float, np.ndarray, float]:
    start = time.perf_counter()
    x = torch.tensor(task.x_train, dtype=torch.float32)
    norm = compute_normalization(x)  # the training split's statistics, as the CLI uses for tabular data
    x = apply_normalization(x, norm)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_valid = max(1, round(VALID_FRACTION * len(x)))
    ds = Dataset(
        name=task.dataset,
        kind="tabular",
        train=x[order[n_valid:]],
        valid=x[order[:n_valid]],
        test=x[:0],  # scored below, outside the fit
        normalization=norm,
    )
    run = aekit.train(
        dataset=ds,
        model=model,
        epochs=EPOCHS,
        latent_dim=LATENT_DIM,
        seed=seed,
        out=tmp / model,
        overwrite=True,
        progress=False,
        report=False,
    )
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    x_test = apply_normalization(torch.tensor(task.x_test, dtype=torch.float32), norm)
    scores = score_samples(run.model, x_test, kind="auto", seed=seed)
    return fit_s, scores, time.perf_counter() - start


def run_contender(name: str, task: Task, seed: int, tmp: Path) -> dict[str, Any]:
    if name == "pyod-ae":
        fit_s, scores, score_s = run_pyod(AutoEncoder, task, seed)
    elif name == "pyod-vae":
        fit_s, scores, score_s = run_pyod(VAE, task, seed)
    else:
        fit_s, scores, score_s = run_aekit(name.removeprefix("aekit-"), task, seed, tmp)
    scores = np.asarray(scores, dtype=np.float64)
    finite = bool(np.isfinite(scores).all())
    if not finite:  # count a diverged detector as a coin flip rather than crash the benchmark
        scores = np.nan_to_num(scores, nan=0.0, posinf=0.0, neginf=0.0)
    return {
        "auroc": float(roc_auc_score(task.y_test, scores)),
        "ap": float(average_precision_score(task.y_test, scores)),
        "fit_s": round(fit_s, 4),
        "score_s": round(score_s, 4),
        "finite_scores": finite,
    }


# --- the benchmark ------------------------------------------------------------------------------------


def benchmark(seeds: tuple[int, ...], datasets: list[str], quick: bool, log: Callable[[str], None]) -> list[dict]:
    records = []
    with tempfile.TemporaryDirectory(prefix="bench_pyod_") as tmp:
        # An untimed warm-up fit of every contender: the first fit in a process pays one-time costs
        # (lazy imports, torch's first kernels) that would land on whoever runs first.
        x_train, x_test, _, y_test = generate_data(n_train=100, n_test=50, n_features=5, random_state=0)
        warm = Task("warm-up", "warm-up", x_train, x_test, y_test.astype(bool))
        for name in CONTENDERS:
            run_contender(name, warm, 0, Path(tmp))
        for seed in seeds:  # one repeat: every data set, every contender, in a shuffled order
            for dataset in datasets:
                for task in DATASETS[dataset](seed, quick):
                    order = list(CONTENDERS)
                    random.Random(f"{seed}-{dataset}-{task.name}").shuffle(order)
                    for position, name in enumerate(order):
                        rec = run_contender(name, task, seed, Path(tmp))
                        rec.update(dataset=dataset, task=task.name, seed=seed, contender=name, position=position)
                        rec.update(n_train=len(task.x_train), n_test=len(task.x_test), outliers=int(task.y_test.sum()))
                        records.append(rec)
                        log(
                            f"seed {seed} {dataset:14s} {task.name:13s} {name:9s} AUROC {rec['auroc']:.4f} "
                            f"AP {rec['ap']:.4f} fit {rec['fit_s']:7.2f}s"
                        )
    return records


def summarize(records: list[dict]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per data set and contender: each repeat's mean over its tasks, then the median over repeats."""
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for dataset in dict.fromkeys(r["dataset"] for r in records):
        summary[dataset] = {}
        for name in CONTENDERS:
            rows = [r for r in records if r["dataset"] == dataset and r["contender"] == name]
            if not rows:
                continue
            per_seed = {}
            for seed in dict.fromkeys(r["seed"] for r in rows):
                mine = [r for r in rows if r["seed"] == seed]
                per_seed[seed] = {k: statistics.fmean(r[k] for r in mine) for k in ("auroc", "ap", "fit_s", "score_s")}
            summary[dataset][name] = {
                **{k: statistics.median(v[k] for v in per_seed.values()) for k in ("auroc", "ap", "fit_s", "score_s")},
                "per_seed_auroc": {str(s): v["auroc"] for s, v in per_seed.items()},
                "per_seed_fit_s": {str(s): v["fit_s"] for s, v in per_seed.items()},
                "all_finite": all(r["finite_scores"] for r in rows),
            }
    return summary


def markdown(summary: dict, settings: dict) -> str:
    lines = [
        "| data set | contender | AUROC | AP | fit s |",
        "|---|---|---:|---:|---:|",
    ]
    for dataset, rows in summary.items():
        for name, s in rows.items():
            flag = "" if s["all_finite"] else " (non-finite scores)"
            lines.append(f"| {dataset} | {name}{flag} | {s['auroc']:.4f} | {s['ap']:.4f} | {s['fit_s']:.2f} |")
    lines.append("")
    for dataset, rows in summary.items():
        ours = max((n for n in rows if n.startswith("aekit")), key=lambda n: rows[n]["auroc"])
        theirs = max((n for n in rows if n.startswith("pyod")), key=lambda n: rows[n]["auroc"])
        diff = rows[ours]["auroc"] - rows[theirs]["auroc"]
        seeds = rows[ours]["per_seed_auroc"]
        wins = sum(
            max(rows[n]["per_seed_auroc"][s] for n in rows if n.startswith("aekit"))
            >= max(rows[n]["per_seed_auroc"][s] for n in rows if n.startswith("pyod"))
            for s in seeds
        )
        ratios = ", ".join(
            f"{kind} {rows['aekit-' + kind]['fit_s'] / rows['pyod-' + kind]['fit_s']:.1f}x"
            for kind in ("ae", "vae")
            if f"aekit-{kind}" in rows and f"pyod-{kind}" in rows
        )
        lines.append(
            f"- {dataset}: aekit's best ({ours}, AUROC {rows[ours]['auroc']:.4f}) - PyOD's best ({theirs}, "
            f"{rows[theirs]['auroc']:.4f}) = {diff:+.4f}; aekit's best >= PyOD's best in {wins}/{len(seeds)} "
            f"repeats; fit time aekit / PyOD: {ratios}"
        )
    lines.append("")
    lines.append(
        f"Medians over repeats (seeds {', '.join(map(str, settings['seeds']))}); digits: the mean over held-out "
        f"classes {', '.join(map(str, settings['digit_classes']))} per repeat. aekit: epochs {settings['epochs']}, "
        f"latent_dim {settings['latent_dim']}, 15 % of the training split for validation; PyOD: defaults, "
        f"random_state = seed, verbose 0. torch threads 1, CPU. PyOD {settings['pyod']}, aekit {settings['aekit']}, "
        f"torch {settings['torch']}."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one seed and one held-out digit (about 1.5 minutes)")
    parser.add_argument("--seeds", type=int, nargs="+", help=f"repeats (default {SEEDS}; quick {QUICK_SEEDS})")
    parser.add_argument("--datasets", nargs="+", choices=tuple(DATASETS), default=list(DATASETS))
    parser.add_argument("--json", type=Path, help="write the settings, every raw result and the summary here")
    parser.add_argument("--markdown", type=Path, help="write the Markdown table here")
    parser.add_argument("--quiet", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # every contender alike: the machine's cores are shared
    seeds = tuple(args.seeds) if args.seeds else (QUICK_SEEDS if args.quick else SEEDS)
    settings = {
        "seeds": list(seeds),
        "datasets": args.datasets,
        "digit_classes": list(QUICK_DIGIT_CLASSES if args.quick else DIGIT_CLASSES),
        "digit_contamination": DIGIT_CONTAMINATION,
        "quick": args.quick,
        "epochs": EPOCHS,
        "latent_dim": LATENT_DIM,
        "valid_fraction": VALID_FRACTION,
        "pyod_args": {"random_state": "seed", "verbose": 0},
        "torch_threads": torch.get_num_threads(),
        "pyod": pyod.__version__,
        "aekit": aekit.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    start = time.perf_counter()
    records = benchmark(seeds, args.datasets, args.quick, (lambda s: None) if args.quiet else print)
    summary = summarize(records)
    settings["wall_s"] = round(time.perf_counter() - start, 1)
    table = markdown(summary, settings)
    print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"settings": settings, "summary": summary, "records": records}, indent=2))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
