"""Compare trained runs on the same data: one table, one row per run plus PCA at each code size.

Columns (each where it is defined; see :mod:`aekit.evaluation.glossary` for units):

- reconstruction: ``mse`` and ``psnr`` of the point reconstruction;
- likelihood: ``neg_elbo`` and ``nll_iw`` (models with a likelihood bound);
- codes: ``probe_accuracy`` (logistic regression) and ``knn_accuracy`` (5 nearest neighbours), fitted
  on the training split's codes and scored on the evaluated split's (labelled data);
- samples: ``fid`` and ``kid`` of generated samples against the evaluated split, in the feature space
  of a small classifier trained on the data (:mod:`aekit.evaluation.features`);
- anomalies (``anomaly=True``): ``auroc`` and ``average_precision`` of the run's best-founded score
  under the held-out-class protocol: runs trained with ``classes`` / ``exclude_classes`` score the
  test split, and the classes they did not see are the anomalies;
- cost: ``train_seconds``, ``samples_per_s`` and ``parameters`` from the run's summary.

PCA at the same code size k (narrower than the data) is a baseline row: its reconstruction, its codes' probes and, for
anomalies, its reconstruction error. Runs must have been trained on the same data (same source,
split, normalisation, binarisation and classes); otherwise the comparison is refused.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aekit.analyses.anomaly import outlier_truth
from aekit.data import in_memory
from aekit.data.arrays import value_range
from aekit.errors import ConfigError, DataError
from aekit.evaluation.features import feature_space, fid, kid
from aekit.evaluation.metrics import encode_all, psnr, psnr_range
from aekit.evaluation.scores import DEFAULT_IW_SAMPLES, detection_metrics, resolve_kind
from aekit.runs.layout import SUMMARY, read_json
from aekit.runs.run import Run, load_run

COLUMNS = ("mse", "psnr", "neg_elbo", "nll_iw", "probe_accuracy", "knn_accuracy", "fid", "kid", "auroc",
           "average_precision", "score", "train_seconds", "samples_per_s", "parameters")  # fmt: skip
# The options of a run's data that must agree for two runs to be compared.
DATA_KEYS = ("data", "valid_fraction", "test_fraction", "split_seed", "normalize", "label_column", "mnist_train",
             "binarize", "binarize_seed", "classes", "exclude_classes")  # fmt: skip


@dataclass
class Comparison:
    """The table: ``rows`` of ``{"name", "model", "k", metric: value}``, with notes on how it was made."""

    rows: list[dict[str, Any]]
    data: str
    split: str
    n: int
    notes: list[str] = field(default_factory=list)

    def columns(self) -> list[str]:
        """The metric columns that hold a value in at least one row, in the order of COLUMNS."""
        return [c for c in COLUMNS if any(r.get(c) is not None for r in self.rows)]


def data_identity(run: Run) -> dict[str, Any]:
    """What a run was trained on: its data options and the data's shape and split sizes."""
    d = run.config.data
    ident = {k: getattr(d, k) for k in DATA_KEYS}
    ident["classes"], ident["exclude_classes"] = list(d.classes), list(d.exclude_classes)
    ident["sample_shape"] = list(run.data_info["sample_shape"])
    ident["sizes"] = run.data_info.get("sizes")
    return ident


def check_same_data(runs: Sequence[Run]) -> None:
    """Raise ConfigError naming the runs and the options that differ when they saw different data."""
    first = data_identity(runs[0])
    for run in runs[1:]:
        other = data_identity(run)
        differ = [k for k in first if first[k] != other[k]]
        if differ:
            shown = "; ".join(f"{k}: {first[k]!r} vs {other[k]!r}" for k in differ)
            raise ConfigError(
                f"'{runs[0].path}' and '{run.path}' were trained on different data ({shown}). Compare runs trained "
                "on the same data, split and preprocessing; retrain one with the other's data options."
            )


def compare_runs(
    run_dirs: Sequence[str | Path],
    *,
    data: str | None = None,
    split: str = "test",
    anomaly: bool = False,
    sample_quality: bool = True,
    num_samples: int = 2000,
    iw_samples: int = DEFAULT_IW_SAMPLES,
    seed: int = 0,
    feature_cache: str | Path | None = None,
    log: Any = None,
) -> Comparison:
    """Evaluate every run on the same split and return the table (see the module docstring)."""
    if not run_dirs:
        raise ConfigError("Name at least one run directory to compare.")
    if num_samples < 2:
        raise ConfigError(f"--num-samples must be at least 2, got {num_samples}.")
    say = log or (lambda message: None)
    runs = [load_run(p) for p in run_dirs]
    check_same_data(runs)
    dataset = runs[0].load_data(data)
    x, y = dataset.split(split)
    x = in_memory(x)
    if not len(x):
        raise ConfigError(f"The {split} split of '{dataset.name}' is empty. Choose another --split.")
    train_x, train_y = in_memory(dataset.train), dataset.train_labels
    comparison = Comparison([], dataset.name, split, len(x))
    labelled = y is not None and train_y is not None
    if not labelled:
        comparison.notes.append("The data has no labels: no probe, k-NN or FID/KID columns.")
    if anomaly:
        _check_anomaly_protocol(runs, y)
    space = None
    if sample_quality and labelled and any(r.model.capabilities.generative for r in runs):
        say("Preparing the feature network for FID/KID ...")
        space = feature_space(dataset.name, (train_x, train_y), (x, y), cache_dir=feature_cache, seed=seed)
        real = space.net.features(x)
        comparison.notes.append(space.describe() + ".")
        reference = space.net.features(train_x[_pick(len(train_x), min(len(x), num_samples), seed)])
        comparison.notes.append(
            f"FID/KID floor: the training split against the {split} split gives FID {fid(reference, real):.3g}, "
            f"KID {kid(reference, real, seed=seed):.3g} (KID is unbiased: around 0, either sign, for samples of "
            f"the data's own distribution); generated samples: {num_samples} per run."
        )
    for run in runs:
        say(f"Evaluating {run.path} ...")
        comparison.rows.append(_run_row(run, x, y, train_x, train_y, labelled, anomaly, space, num_samples,
                                        iw_samples, seed))  # fmt: skip
    dims = math.prod(train_x.shape[1:])
    for k in sorted({r["k"] for r in comparison.rows if r["k"] < min(dims, len(train_x))}):
        comparison.rows.append(_pca_row(k, train_x, train_y, x, y, labelled, anomaly, seed, runs))
    wide = [r["name"] for r in comparison.rows if r["k"] >= dims]
    if wide:
        comparison.notes.append(
            f"No PCA row for {', '.join(wide)}: codes as wide as the data ({dims} values) or wider, where PCA is "
            "the identity and reconstructs perfectly."
        )
    if any(r.model.capabilities.likelihood_bound for r in runs):
        comparison.notes.append(f"nll_iw: the importance-weighted bound with K = {iw_samples}.")
    return comparison


def _check_anomaly_protocol(runs: Sequence[Run], y: torch.Tensor | None) -> None:
    if y is None:
        raise DataError("--anomaly needs labelled data: the classes a run did not train on are its anomalies.")
    for run in runs:
        if not (run.config.data.classes or run.config.data.exclude_classes):
            raise ConfigError(
                f"--anomaly uses the held-out-class protocol, and '{run.path}' was trained on every class. Train "
                "the runs with --exclude-classes L (or --classes L for one-class training) and compare those."
            )


def _pick(n: int, m: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, m, replace=False)) if m < n else np.arange(n)


def _run_row(
    run: Run, x, y, train_x, train_y, labelled: bool, anomaly: bool, space, num_samples: int, iw_samples: int,
    seed: int,
) -> dict[str, Any]:  # fmt: skip
    model = run.model
    caps = model.capabilities
    if caps.conditional:
        raise ConfigError(f"'{run.path}' is a conditional model; compare compares unconditional runs.")
    started = time.perf_counter()
    each: dict[str, torch.Tensor] = {}  # per-sample codes and scores from the same pass as the metrics
    metrics = run.evaluate(x, seed=seed, iw_samples=iw_samples if caps.likelihood_bound else 0, per_sample=each)
    row: dict[str, Any] = {"name": run.path.name, "model": model.name, "k": model.latent_dim}
    row |= {k: metrics.get(k) for k in ("mse", "psnr", "neg_elbo", "nll_iw")}
    if labelled:
        row |= probe_scores(encode_all(model, train_x).double().numpy(), train_y.numpy(),
                            each["code"].double().numpy(), y.numpy(), seed=seed)  # fmt: skip
    if space is not None and caps.generative:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            samples = torch.cat([model.sample(min(500, num_samples - i), generator=generator).cpu()
                                 for i in range(0, num_samples, 500)])  # fmt: skip
        fake, real = space.net.features(samples), space.net.features(x)
        row |= {"fid": fid(fake, real), "kid": kid(fake, real, seed=seed)}
    if anomaly:
        kind = resolve_kind(model, "auto")
        scores = each[kind].double().numpy()
        found = detection_metrics(scores, outlier_truth(run, y.numpy(), None)[0])
        row |= {"auroc": found.auroc, "average_precision": found.average_precision, "score": kind}
    summary = _summary(run.path)
    row["train_seconds"] = summary.get("train_seconds")
    row["samples_per_s"] = summary.get("samples_per_s")
    row["parameters"] = sum(p.numel() for p in model.parameters())
    row["eval_seconds"] = time.perf_counter() - started
    return row


def _pca_row(k: int, train_x, train_y, x, y, labelled: bool, anomaly: bool, seed: int, runs) -> dict[str, Any]:
    from sklearn.decomposition import PCA

    flat_train, flat = train_x.flatten(1).double().numpy(), x.flatten(1).double().numpy()
    pca = PCA(k, random_state=seed).fit(flat_train)
    codes = pca.transform(flat)
    err = np.square(pca.inverse_transform(codes) - flat)
    mse = float(err.mean())
    row: dict[str, Any] = {"name": f"PCA (k = {k})", "model": "pca", "k": k, "mse": mse,
                           "psnr": psnr(mse, psnr_range(*value_range(x)))}  # fmt: skip
    if labelled:
        row |= probe_scores(pca.transform(flat_train), train_y.numpy(), codes, y.numpy(), seed=seed)
    if anomaly:
        found = detection_metrics(err.mean(1), outlier_truth(runs[0], y.numpy(), None)[0])
        row |= {"auroc": found.auroc, "average_precision": found.average_precision, "score": "recon"}
    row["parameters"] = int(pca.components_.size + pca.mean_.size)
    return row


def probe_scores(train_codes, train_y, codes, y, *, seed: int = 0, max_train: int = 10_000) -> dict[str, float]:
    """Accuracy on ``codes`` of a logistic-regression probe and a 5-NN classifier fitted on ``train_codes``
    (at most ``max_train`` of them, drawn with ``seed``), both on standardised codes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    keep = _pick(len(train_codes), max_train, seed)
    fit_x, fit_y = train_codes[keep], train_y[keep]
    if len(np.unique(fit_y)) < 2:
        return {}  # one class only (one-class training): nothing to probe
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(fit_x, fit_y)
    knn = make_pipeline(StandardScaler(), KNeighborsClassifier(5)).fit(fit_x, fit_y)
    return {"probe_accuracy": float(probe.score(codes, y)), "knn_accuracy": float(knn.score(codes, y))}


def _summary(path: Path) -> dict[str, Any]:
    """The run's training summary (its numbers: the cost columns); empty for a run that has none."""
    summary = read_json(path, SUMMARY) if (path / SUMMARY).is_file() else {}
    return {k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
