"""``aekit compare``: one table across runs trained on the same data, with PCA as a baseline."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from aekit.analyses.compare import compare_runs
from aekit.errors import ConfigError
from aekit.evaluation.scores import DEFAULT_IW_SAMPLES
from aekit.figures.comparison import comparison_page, plot_comparison, to_csv, to_markdown, to_text
from aekit.fsutil import atomic_write_text


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "compare",
        help="Compare runs trained on the same data: reconstruction, likelihood, code probes, FID/KID, anomaly "
        "AUROC and cost, beside PCA; printed and written as CSV, Markdown and HTML.",
    )
    p.set_defaults(_parser=p, handler=cmd_compare)
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--data", help="data to evaluate on (default: the runs' own); split and normalised as in training")
    p.add_argument("--split", default="test", help="train, valid or test (default: test)")
    p.add_argument("--anomaly", action="store_true",
                   help="add anomaly AUROC under the held-out-class protocol (runs trained with --classes or "
                        "--exclude-classes; the classes they did not see are the anomalies)")  # fmt: skip
    p.add_argument("--no-fid", dest="fid", action="store_false",
                   help="leave out FID/KID (the first use trains and caches a classifier on the data)")  # fmt: skip
    p.add_argument("--num-samples", type=int, default=2000, help="generated samples per run for FID/KID (default 2000)")
    p.add_argument("--iw-samples", type=int, default=DEFAULT_IW_SAMPLES,
                   help=f"draws of the IW bound nll_iw (default {DEFAULT_IW_SAMPLES})")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="compare", help="folder for compare.csv, compare.md and compare.html "
                   "(default: ./compare)")  # fmt: skip


def cmd_compare(args: argparse.Namespace) -> int:
    if args.split not in ("train", "valid", "test"):
        raise ConfigError(f"compare evaluates one split: --split train, valid or test, got '{args.split}'.")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out '{out}' is a file; compare writes a folder. Choose another path.")
    comparison = compare_runs(
        args.run_dirs, data=args.data, split=args.split, anomaly=args.anomaly, sample_quality=args.fid,
        num_samples=args.num_samples, iw_samples=args.iw_samples, seed=args.seed,
        log=lambda message: print(message, file=sys.stderr),
    )  # fmt: skip
    command = shlex.join(["aekit", *sys.argv[1:]]) if Path(sys.argv[0]).name == "aekit" else None
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "compare.csv", to_csv(comparison))
    atomic_write_text(out / "compare.md", to_markdown(comparison))
    drawn = plot_comparison(comparison, out / "compare.png")
    page = comparison_page(comparison, command=command, figure_name=drawn.name if drawn else None)
    atomic_write_text(out / "compare.html", page)
    print(to_text(comparison))
    for note in comparison.notes:
        print(f"- {note}")
    print(
        f"Wrote {out / 'compare.csv'}, {out / 'compare.md'}, {out / 'compare.html'}"
        + (f" and {drawn}" if drawn else "")
    )
    return 0
