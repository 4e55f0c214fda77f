"""Anomaly detection in a scikit-learn pipeline: malignant tumours found as outliers among benign ones.

    python examples/anomaly_pipeline.py                                  # ae, dae and vae: seconds
    python examples/anomaly_pipeline.py --models vae,beta-vae --epochs 100 --contamination 0.1

scikit-learn's breast-cancer table (569 tumours, 30 measurements), with a few measurements knocked out
(--missing) as in real tables. The detectors are fitted on 70% of the benign tumours only (the one-class
setting) and score the held-out benign tumours and every malignant one. Each detector is a Pipeline: a
median imputer (the detectors refuse NaN, like every scikit-learn estimator), then aekit's
AutoencoderOutlierDetector, which standardises its input itself; scikit-learn's IsolationForest in the
same pipeline is the reference. The script prints each detector's AUROC and average precision (malignant
= positive), and how many tumours its threshold flags: the threshold is the (1 - contamination) quantile
of the scores of the data it was fitted on. It writes nothing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import IsolationForest
from sklearn.impute import SimpleImputer
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import Pipeline

from aekit.sklearn import AutoencoderOutlierDetector


def detectors(models: list[str], args: argparse.Namespace) -> dict[str, Pipeline]:
    """One pipeline per detector: the same preprocessing, then the detector."""
    found = {
        f"aekit {model}": AutoencoderOutlierDetector(
            model,
            n_components=args.latent_dim,
            hidden=(32,),
            epochs=args.epochs,
            contamination=args.contamination,
            random_state=args.seed,
        )
        for model in models
    }
    found["IsolationForest"] = IsolationForest(contamination=args.contamination, random_state=args.seed)
    return {name: Pipeline([("impute", SimpleImputer(strategy="median")), ("detect", d)]) for name, d in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="ae,dae,vae", help="aekit presets, comma-separated (default ae,dae,vae)")
    parser.add_argument("--epochs", type=int, default=50, help="training epochs of each autoencoder (default 50)")
    parser.add_argument("--latent-dim", type=int, default=4, help="code size of each autoencoder (default 4)")
    parser.add_argument("--contamination", type=float, default=0.05, help="fraction flagged in fit (default 0.05)")
    parser.add_argument("--missing", type=float, default=0.02, help="fraction of values knocked out (default 0.02)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and of every detector (default 0)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # networks this small train fastest on one thread: more threads cost more than they save

    x, y = load_breast_cancer(return_X_y=True)  # y: 0 malignant, 1 benign
    rng = np.random.default_rng(args.seed)
    x[rng.random(x.shape) < args.missing] = np.nan
    benign = rng.permutation(np.flatnonzero(y == 1))
    n_fit = int(0.7 * len(benign))
    x_fit = x[benign[:n_fit]]
    test = np.r_[benign[n_fit:], np.flatnonzero(y == 0)]
    x_test, malignant = x[test], y[test] == 0
    print(f"fit on {n_fit} benign tumours; scoring {int((~malignant).sum())} benign and {int(malignant.sum())} "
          f"malignant (contamination {args.contamination:g})")  # fmt: skip
    print(f"{'detector':<16} {'AUROC':>6} {'AP':>6} {'malignant flagged':>18} {'benign flagged':>15} {'fit s':>6}")
    for name, pipe in detectors([m.strip() for m in args.models.split(",") if m.strip()], args).items():
        start = time.perf_counter()
        pipe.fit(x_fit)
        seconds = time.perf_counter() - start
        anomaly = -pipe.decision_function(x_test)  # scikit-learn's sign: negative = outlier; flip it
        auroc, ap = roc_auc_score(malignant, anomaly), average_precision_score(malignant, anomaly)
        flagged = pipe.predict(x_test) == -1
        print(f"{name:<16} {auroc:>6.3f} {ap:>6.3f} {flagged[malignant].mean():>18.1%} "
              f"{flagged[~malignant].mean():>15.1%} {seconds:>6.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
