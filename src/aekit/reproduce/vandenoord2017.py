"""van den Oord, Vinyals & Kavukcuoglu 2017 (NeurIPS), "Neural discrete representation learning": a
VQ-VAE with a PixelCNN prior over its code maps, here on MNIST: reconstruction, the prior's bits per
code against uniform codes, and the bits per image of the code map, beside a convolutional VAE of
similar size (its -ELBO, a bound on the bits per image), and ``samples.png``: code maps drawn from the
prior, from independent uniform codes, and the VAE's samples. The paper reports no MNIST numbers (its
CIFAR-10 model reached 4.67 bits per dimension); the table compares the two models here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aekit.figures.plots import plot_rows
from aekit.reproduce.base import Plan, Reproduction, Row
from aekit.runs.layout import PRIOR_WEIGHTS
from aekit.runs.priors import train_prior
from aekit.runs.run import Run, load_run

SAMPLES, SAMPLES_PNG = 16, "samples.png"


def runs(settings: Mapping[str, Any]) -> Plan:
    return {
        "vq-vae": {"model": "vq-vae", "data": "mnist", "epochs": settings["epochs"]},
        "vae": {"model": "vae", "arch": "conv", "hidden": tuple(settings["vae_hidden"]), "data": "mnist",
                "epochs": settings["vae_epochs"]},
    }  # fmt: skip


def table(settings: Mapping[str, Any], trained: dict[str, Run], folder: Path, progress: bool) -> list[Row]:
    vq, vae = trained["vq-vae"], trained["vae"]
    if not (vq.path / PRIOR_WEIGHTS).is_file():
        train_prior(vq, epochs=settings["prior_epochs"], progress=progress)
        vq = load_run(vq.path)  # with its prior attached
    test = vq.load_data().test
    q, v = vq.evaluate(test), vae.evaluate(test)
    codes_per_map = math.prod(vq.model.code_maps(test[:1]).shape[1:])
    samples = [
        ("VQ-VAE, codes from the prior", vq.sample(SAMPLES)),
        ("VQ-VAE, uniform codes", vq.sample(SAMPLES, prior="uniform")),
        ("VAE", vae.sample(SAMPLES)),
    ]
    plot_rows(samples, folder / SAMPLES_PNG, title="Samples: the PixelCNN prior's code maps against uniform codes")
    return [
        Row("VQ-VAE", "mse", q["mse"], None, f"{_weights(vq)} weights"),
        Row("VAE, convolutional", "mse", v["mse"], None, f"{_weights(vae)} weights"),
        Row(
            "VQ-VAE prior", "bits per code", q["prior_bits_per_code"], None, f"uniform {q['uniform_bits_per_code']:.3g}"
        ),
        Row("VQ-VAE prior", "bits per image (code map)", q["prior_bits_per_code"] * codes_per_map),
        Row("VAE, convolutional", "bits per image (-ELBO)", v["neg_elbo"] / math.log(2)),
    ]


def _weights(run: Any) -> str:
    return f"{sum(p.numel() for p in run.model.parameters()):,}"


VANDENOORD2017 = Reproduction(
    name="vandenoord2017",
    paper="van den Oord, Vinyals & Kavukcuoglu 2017, NeurIPS",
    summary="MNIST, a VQ-VAE with a PixelCNN prior against a convolutional VAE",
    tiers={
        "smoke": {"epochs": 1, "vae_epochs": 1, "prior_epochs": 1, "vae_hidden": [32, 64]},
        # The VAE's channels (128, 256) give it 1.5M weights to the VQ-VAE's 1.9M, and 2 of its epochs take
        # as long as 3 of the VQ-VAE's on a CPU: models of equal size, trained for equal time.
        "full": {"epochs": 3, "vae_epochs": 2, "prior_epochs": 5, "vae_hidden": [128, 256]},
    },
    runs=runs,
    table=table,
)
