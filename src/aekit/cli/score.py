"""``aekit score``: one anomaly score per sample, a threshold that flags outliers, AUROC with known outliers."""

from __future__ import annotations

import argparse
from typing import Any

from aekit.analyses.anomaly import DEFAULT_CONTAMINATION, score_run
from aekit.cli.common import add_run_and_rows, check_out, numbers, print_json, rows_data
from aekit.evaluation.scores import DEFAULT_IW_SAMPLES, SCORE_KINDS
from aekit.runs.run import load_run


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "score",
        help="Anomaly score of every sample (higher = more anomalous), flags above a threshold, AUROC when labels "
        "mark outliers.",
    )
    p.set_defaults(_parser=p, handler=cmd_score)
    add_run_and_rows(p)
    p.add_argument("--score", default="auto", choices=("auto", *SCORE_KINDS), metavar="KIND",
                   help="auto (the model's best-founded score: nll_iw for a VAE, free_energy for a latent EBM, "
                        "neg_log_joint for a VQ-VAE with a prior, else recon), " + ", ".join(SCORE_KINDS))  # fmt: skip
    limit = p.add_mutually_exclusive_group()
    limit.add_argument("--contamination", type=float,
                       help="expected fraction of outliers, in (0, 0.5]: the threshold is the (1 - c) quantile of "
                            f"the score on the run's validation split (default {DEFAULT_CONTAMINATION})")  # fmt: skip
    limit.add_argument("--threshold", type=float, help="flag scores above this value")
    p.add_argument("--outlier-label", metavar="L[,L...]",
                   help="labels that mark the outliers: report AUROC and average precision (default: for a run "
                        "trained with --classes / --exclude-classes, the labels it did not train on)")  # fmt: skip
    p.add_argument("--iw-samples", type=int, default=DEFAULT_IW_SAMPLES,
                   help=f"draws of the nll_iw score (default {DEFAULT_IW_SAMPLES})")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the posterior draws")
    p.add_argument("--out", required=True, help="scores.csv: index, label (when known), score, flagged")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def cmd_score(args: argparse.Namespace) -> int:
    out = check_out(args.out, (".csv",))
    run = load_run(args.run_dir)
    x, y = rows_data(run, args)
    outliers = numbers(args.outlier_label, int, "--outlier-label")
    report = score_run(
        run, x, y, kind=args.score, iw_samples=args.iw_samples, contamination=args.contamination,
        threshold=args.threshold, outlier_labels=outliers, detect=True if outliers else None, seed=args.seed,
    )  # fmt: skip
    report.write_csv(out)
    summary = {"run": str(run.path), **report.summary(), "out": str(out)}
    if args.json:
        print_json(summary)
        return 0
    chosen = " (auto)" if report.auto else ""
    print(f"Scored {summary['n']} samples by {report.kind}{chosen}: {summary['meaning']}.")
    print(f"Threshold {report.threshold:.6g}, {summary['threshold_from']}: {summary['flagged']} flagged "
          f"({100 * summary['flagged_fraction']:.1f}%).")  # fmt: skip
    if report.detection is not None:
        d = report.detection
        print(f"Outliers: labels {report.outlier_labels} ({d.outliers} of {d.outliers + d.inliers}): "
              f"AUROC {d.auroc:.4f}, average precision {d.average_precision:.4f}")  # fmt: skip
    print(f"Wrote {out}")
    return 0
