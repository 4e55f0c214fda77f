"""Train three autoencoders on a CSV file and compare them in one table, with PCA beside them.

    python examples/train_and_compare_csv.py                          # a small CSV made from scikit-learn data
    python examples/train_and_compare_csv.py my.csv --label-column class --epochs 200 --out my-compare

The CSV holds one sample per row and real-valued columns (a header row is optional); a label column,
when there is one, is left out of the features and used to score the codes (probe and k-NN accuracy).
aekit splits the rows 80/10/10 by a fixed seed and standardises every column with the training rows'
mean and standard deviation, so the three models see exactly the same data and can be compared.

Everything is written under --out (default: the current folder): the CSV made when no path is given,
one run directory per model in runs/, and compare.md and compare.csv. The same comparison from the
shell, with FID/KID added: aekit compare runs/ae runs/dae runs/vae --out compare
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import aekit
from aekit.figures.comparison import to_csv, to_markdown, to_text

# Each model with its preset's defaults; the code size, width and budget are shared (see --help).
MODELS = ("ae", "dae", "vae")


def write_example_csv(path: Path) -> Path:
    """scikit-learn's breast-cancer table (569 rows, 30 measurements, a diagnosis) as a CSV with a header."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*(name.replace(" ", "_") for name in data.feature_names), "diagnosis"])
        for row, target in zip(data.data, data.target, strict=True):
            writer.writerow([*(f"{v:.6g}" for v in row), data.target_names[target]])
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", nargs="?", help="your CSV file (default: one written from scikit-learn's data)")
    parser.add_argument("--label-column", help="the column holding class labels, by name or index (optional)")
    parser.add_argument("--out", default=".", help="folder for everything this script writes (default: .)")
    parser.add_argument("--epochs", type=int, default=40, help="training epochs per model (default 40)")
    parser.add_argument("--latent-dim", type=int, default=4, help="code size k of every model (default 4)")
    parser.add_argument("--hidden", default="64", help="hidden layer widths, comma-separated (default 64)")
    parser.add_argument("--report", action="store_true", help="also write each run's plots and report.html")
    args = parser.parse_args()

    out = Path(args.out)
    if args.csv is None:
        source = write_example_csv(out / "breast_cancer.csv")
        label_column = args.label_column or "diagnosis"
        print(f"No CSV given: wrote {source} (569 rows, 30 features, label column 'diagnosis').")
    else:
        source, label_column = Path(args.csv), args.label_column

    hidden = tuple(int(w) for w in args.hidden.split(",") if w)
    runs = []
    for name in MODELS:
        run = aekit.train(
            model=name, data=str(source), label_column=label_column, latent_dim=args.latent_dim, hidden=hidden,
            epochs=args.epochs, lr=3e-3, out=out / "runs" / name, overwrite=True, progress=False, report=args.report,
        )  # fmt: skip
        print(f"Trained {name}: {run.path}")
        runs.append(run.path)

    # The test split of the shared data, scored by every run and by PCA at the same code size. FID/KID
    # (sample_quality) train a feature network first and cache it: left out here to stay quick.
    comparison = aekit.compare_runs(runs, sample_quality=False)
    print()
    print(to_text(comparison))
    for note in comparison.notes:
        print(f"- {note}")
    (out / "compare.md").write_text(to_markdown(comparison))
    (out / "compare.csv").write_text(to_csv(comparison))

    models = [r for r in comparison.rows if r["model"] != "pca"]
    best = min(models, key=lambda r: r["mse"])
    pca = next((r for r in comparison.rows if r["model"] == "pca"), None)
    line = f"Lowest test MSE: {best['name']} ({best['mse']:.4g} per standardised feature)"
    if pca is not None:
        line += f"; PCA with k = {pca['k']}: {pca['mse']:.4g}"
    print(f"\n{line}.")
    print(f"Wrote {out / 'compare.md'} and {out / 'compare.csv'}")


if __name__ == "__main__":
    main()
