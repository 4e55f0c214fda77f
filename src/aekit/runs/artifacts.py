"""The plots and the HTML report of a run, chosen to suit its data (images or tabular)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from aekit.data import Dataset
from aekit.figures import plots
from aekit.figures.report import write_report

N_SHOW = 64  # images in the reconstruction and sample grids
MAX_PLOTTED = 10_000  # test samples in the code scatter and feature plots (a streamed test split may be huge)


def write_artifacts(run: Any, dataset: Dataset, history: list[dict[str, Any]], summary: dict[str, Any]) -> Path:
    """Write ``plots/*.png`` and ``report.html`` into the directory of ``run`` (an :class:`aekit.Run`);
    return the report's path. What is drawn follows the data's kind and the model's capabilities."""
    out = run.path / "plots"
    figures: list[tuple[str, str]] = []

    def add(title: str, name: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        fn(*args, out / name, **kwargs)
        figures.append((title, f"plots/{name}"))

    x, labels = dataset.test, dataset.test_labels
    if not len(x):
        x, labels = dataset.train, dataset.train_labels
    x, labels = x[:MAX_PLOTTED], None if labels is None else labels[:MAX_PLOTTED]  # a tensor, even when streamed
    if history:
        add("Loss per epoch (per sample, nats)", "loss_curves.png", plots.plot_loss_curves, history)
    caps = run.model.capabilities
    y = labels if caps.conditional else None  # a conditional model needs the labels
    shown = x[:N_SHOW]
    recon = run.reconstruct(_raw(run, shown), None if y is None else y[:N_SHOW])
    generative = caps.generative
    if dataset.kind == "image":
        add("Test images (top) and their reconstructions", "reconstructions.png",
            plots.plot_reconstructions, shown, recon, n=min(32, len(shown)))  # fmt: skip
        if generative and caps.conditional:
            k = min(run.model.num_classes, 10)
            per_class = torch.cat([run.sample(8, seed=c, label=c) for c in range(k)])
            add("Samples per class (one row per label)", "samples.png",
                plots.plot_image_grid, per_class.clamp(0, 1), nrow=8)  # fmt: skip
        elif generative:
            add("Samples from the prior", "samples.png", plots.plot_image_grid, run.sample(N_SHOW).clamp(0, 1))
    else:
        raw = _raw(run, x)
        add("Reconstruction per feature (test set)", "feature_reconstruction.png",
            plots.plot_feature_reconstruction, raw, run.reconstruct(raw, y))  # fmt: skip
        if generative and not caps.conditional:
            add("Data vs samples, per feature", "feature_samples.png",
                plots.plot_feature_samples, raw, run.sample(min(len(raw), 2000)))  # fmt: skip
    codes = run.encode(_raw(run, x), y)
    add("Latent codes of the test set" + (" (PCA to 2-D)" if codes.shape[1] > 2 else ""),
        "latent_scatter.png", plots.plot_latent_scatter, codes, labels)  # fmt: skip
    return write_report(
        run.path,
        title=f"aekit run: {run.config.model.model} on {dataset.name}",
        summary={k: v for k, v in summary.items() if k != "test"},
        metrics=summary.get("test") or None,
        plots=figures,
        config={k: v for k, v in run.config.to_dict().items() if k != "format"},
    )


def _raw(run: Any, x: torch.Tensor) -> torch.Tensor:
    """Undo the data's normalisation: the Run's public methods take data in its own units."""
    return run.denormalize(x.cpu())
