"""Score a run's data for anomalies: the scores, the threshold that flags outliers, and how well the
scores find known outliers (AUROC and average precision) when labels mark them.

The threshold for a contamination c is the (1 - c) quantile of the same score on the run's
validation split: normal data the model was not fitted on, so a flag means "more anomalous than all
but c of the data the run held out". Known outliers are the samples whose label is in
``outlier_labels``, else (for a run trained with ``classes`` or ``exclude_classes``) every label the
run did not train on: the one-class and held-out-class protocols.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aekit.data import in_memory
from aekit.errors import ConfigError, DataError
from aekit.evaluation.scores import (
    DEFAULT_IW_SAMPLES,
    WHY,
    Detection,
    check_contamination,
    contamination_threshold,
    detection_metrics,
    resolve_kind,
    score_samples,
)
from aekit.fsutil import atomic_write_text
from aekit.runs.run import Run

DEFAULT_CONTAMINATION = 0.05


@dataclass
class ScoreReport:
    """The scores of one data set under one run, with their threshold and flags."""

    kind: str
    auto: bool
    scores: np.ndarray
    labels: np.ndarray | None
    threshold: float
    threshold_from: str
    outlier_labels: list[int] | None = None
    detection: Detection | None = None
    flags: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.flags = self.scores > self.threshold

    def summary(self) -> dict[str, Any]:
        """What ``aekit score --json`` prints."""
        out: dict[str, Any] = {
            "score": self.kind,
            "auto": self.auto,
            "meaning": WHY[self.kind],
            "n": len(self.scores),
            "threshold": self.threshold,
            "threshold_from": self.threshold_from,
            "flagged": int(self.flags.sum()),
            "flagged_fraction": float(self.flags.mean()) if len(self.flags) else 0.0,
            "score_median": float(np.median(self.scores)),
        }
        if self.detection is not None:
            out |= {
                "outlier_labels": self.outlier_labels,
                "outliers": self.detection.outliers,
                "inliers": self.detection.inliers,
                "auroc": self.detection.auroc,
                "average_precision": self.detection.average_precision,
            }
        return out

    def to_csv(self) -> str:
        """One row per sample: its index in the data scored, its label (when known), score and flag."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        has_labels = self.labels is not None
        writer.writerow(["index", *(["label"] if has_labels else []), "score", "flagged"])
        for i, (s, f) in enumerate(zip(self.scores, self.flags, strict=True)):
            label = [int(self.labels[i])] if has_labels else []
            writer.writerow([i, *label, repr(float(s)), int(f)])
        return buf.getvalue()

    def write_csv(self, path: str | Path) -> None:
        atomic_write_text(Path(path), self.to_csv())


def trained_classes(run: Run) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The labels the run was restricted to (``classes``) or left out (``exclude_classes``)."""
    return tuple(run.config.data.classes), tuple(run.config.data.exclude_classes)


def outlier_truth(run: Run, labels: np.ndarray | None, outlier_labels: list[int] | None) -> tuple[np.ndarray, list]:
    """Which samples are known outliers, and the labels that make them so; raise DataError without labels."""
    classes, excluded = trained_classes(run)
    if labels is None:
        raise DataError(
            "AUROC needs labels that mark the outliers, and the data scored has none. Score labelled data "
            "(digits, mnist, a CSV with the run's --label-column), or leave out --outlier-label."
        )
    present = sorted(set(labels.tolist()))
    if outlier_labels is None:
        outlier_labels = [c for c in present if c not in classes] if classes else list(excluded)
    missing = sorted(set(outlier_labels) - set(present))
    if missing:
        raise DataError(f"--outlier-label {missing} does not occur in the data scored, whose labels are {present}.")
    return np.isin(labels, outlier_labels), sorted(outlier_labels)


def score_run(
    run: Run,
    x: Any,
    y: torch.Tensor | None = None,
    *,
    kind: str = "auto",
    iw_samples: int = DEFAULT_IW_SAMPLES,
    contamination: float | None = None,
    threshold: float | None = None,
    outlier_labels: list[int] | None = None,
    detect: bool | None = None,
    seed: int = 0,
) -> ScoreReport:
    """Score samples ``x`` (normalised as in training) under ``run``; ``y`` are their labels, if any.

    ``threshold`` flags scores above it; otherwise ``contamination`` (default 0.05) sets it from the
    run's validation split. ``detect``: report AUROC and average precision (None: when the outliers
    are known, from ``outlier_labels`` or the classes the run was trained on)."""
    if threshold is not None and contamination is not None:
        raise ConfigError("Give --contamination or --threshold, not both.")
    if threshold is not None and not np.isfinite(threshold):
        raise ConfigError(f"--threshold must be a finite number, got {threshold}.")
    if contamination is not None:
        check_contamination(contamination)
    model = run.model
    resolved = resolve_kind(model, kind)
    run.check_data(x, "the data scored")
    labels = None if y is None else y.numpy()
    model_labels = run.labels_for_model(y)
    scores = score_samples(model, x, model_labels, kind=resolved, iw_samples=iw_samples, seed=seed)
    if threshold is None:
        c = DEFAULT_CONTAMINATION if contamination is None else contamination
        split = "valid" if run.data_info["sizes"].get("valid", 0) else "train"
        ref_x, ref_y = run.load_data().split(split)
        ref = score_samples(model, in_memory(ref_x), run.labels_for_model(ref_y), kind=resolved,
                            iw_samples=iw_samples, seed=seed)  # fmt: skip
        threshold = contamination_threshold(ref, c)
        source = f"the {1 - c:.4g} quantile of the run's {split} split ({len(ref)} samples; contamination {c:g})"
    else:
        source = "given (--threshold)"
    known = outlier_labels is not None or any(trained_classes(run))
    report = ScoreReport(resolved, kind == "auto", scores, labels, float(threshold), source)
    if detect or (detect is None and known and labels is not None):
        truth, report.outlier_labels = outlier_truth(run, labels, outlier_labels)
        report.detection = detection_metrics(scores, truth)
    return report
