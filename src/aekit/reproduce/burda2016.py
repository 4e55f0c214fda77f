"""Burda, Grosse & Salakhutdinov 2016 (ICLR), "Importance weighted autoencoders": MNIST with dynamic
binarisation, one stochastic layer (784-200-200-50, tanh), the test NLL estimated by the
importance-weighted bound with k = 5000 (their Table 1: VAE 86.76 / 86.47 / 86.35 and IWAE
86.76 / 85.54 / 84.78 nats at k = 1 / 5 / 50).

The paper trained 3,280 passes; the full tier is sized for time to quality on a CPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aekit.reproduce.base import Reproduction, Row, epochs, train_or_reuse, train_seconds

PAPER = {("vae", 1): 86.76, ("vae", 5): 86.47, ("vae", 50): 86.35, ("iwae", 5): 85.54, ("iwae", 50): 84.78}


def run(settings: Mapping[str, Any], folder: Path, progress: bool) -> list[Row]:
    rows = []
    for model, k in settings["models"]:
        trained = train_or_reuse(
            folder / f"{model}-k{k}",
            progress,
            model=model,
            iw_k=k,
            arch="iwae-paper",
            data="mnist",
            mnist_train="train+valid",
            binarize="dynamic",
            epochs=settings["epochs"],
            lr=settings["lr"],
            lr_schedule="cosine",
        )
        test = trained.load_data().test
        result = trained.evaluate(test, iw_samples=settings["iw_samples"])
        note = f"{epochs(settings['epochs'])}, {train_seconds(trained):.0f} s of training"
        rows.append(Row(f"{model.upper()}, k = {k}", f"test NLL (k = {settings['iw_samples']} bound), nats",
                        result["nll_iw"], PAPER.get((model, k)), note))  # fmt: skip
    return rows


BURDA2016 = Reproduction(
    name="burda2016",
    paper="Burda, Grosse & Salakhutdinov 2016, ICLR",
    summary="MNIST, dynamic binarisation, 784-200-200-50 VAE and IWAE, test NLL by the k = 5000 IW bound",
    tiers={
        "smoke": {"models": [("vae", 1), ("iwae", 5)], "epochs": 1, "lr": 1e-3, "iw_samples": 10},
        "full": {"models": [("vae", 1), ("iwae", 5)], "epochs": 200, "lr": 1e-3, "iw_samples": 5000},
    },
    run=run,
)
