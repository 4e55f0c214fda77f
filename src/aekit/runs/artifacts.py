"""The plots and the HTML report of a run, chosen to suit its data (images or tabular)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from aekit.data import Dataset
from aekit.figures import plots
from aekit.figures.report import write_report
from aekit.runs.layout import PLOTS, read_command

N_SHOW = 64  # images in the reconstruction and sample grids
MAX_PLOTTED = 10_000  # test samples in the code scatter and feature plots (a streamed test split may be huge)

# Options that have no effect on a run, by section: option -> the test on its section's values.
# The report leaves them out (config.yaml keeps them all), so the page shows what shaped this model.
_OFF = (None, "none", 0, 0.0)
_IDLE: dict[str, dict[str, Any]] = {
    "model": {
        "noise_level": lambda m: m.get("noise") in _OFF,
        "sparsity_weight": lambda m: m.get("sparsity") in _OFF,
        "sparsity_target": lambda m: m.get("sparsity") != "kl",
        "jacobian": lambda m: m.get("contractive_weight") in _OFF and "contractive" not in (m.get("penalties") or {}),
        "jacobian_projections": lambda m: (
            m.get("jacobian") != "projection"
            or (m.get("contractive_weight") in _OFF and "contractive" not in (m.get("penalties") or {}))
        ),
        "num_classes": lambda m: m.get("condition_on") in _OFF,
        "obs_std": lambda m: m.get("likelihood") == "bernoulli",
        "learn_obs_std": lambda m: m.get("likelihood") == "bernoulli",
        "ema_decay": lambda m: not m.get("use_ema"),
        "penalties": lambda m: not m.get("penalties"),
    },
    "data": {
        "mnist_train": lambda d: "mnist" not in str(d.get("data", "")),
        "label_column": lambda d: d.get("label_column") is None,
        "binarize_seed": lambda d: d.get("binarize") in _OFF,
        "classes": lambda d: not d.get("classes"),
        "exclude_classes": lambda d: not d.get("exclude_classes"),
    },
    # The progress bar, its interval and the loggers change nothing the run computes.
    "train": {
        "progress": lambda t: True,
        "log_every": lambda t: True,
        "tensorboard": lambda t: t.get("tensorboard") is None,
        "mlflow": lambda t: t.get("mlflow") is None,
    },
}
CONFIG_NOTE = (
    "Options that have no effect on this run (e.g. noise_level without noise) are left out; config.yaml holds them all."
)


def applicable_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The sections of a run's configuration (``RunConfig.to_dict()``) without the options that have no
    effect on it and without the file's ``format``; the model section holds only its family's options."""
    shown: dict[str, Any] = {}
    for section, values in config.items():
        if section == "format":
            continue
        if not isinstance(values, Mapping):
            shown[section] = values
            continue
        idle = _IDLE.get(section, {})
        shown[section] = {k: v for k, v in values.items() if not (k in idle and idle[k](values))}
    return shown


def write_artifacts(run: Any, dataset: Dataset, history: list[dict[str, Any]], summary: dict[str, Any]) -> Path:
    """Write ``plots/*.png`` and ``report.html`` into the directory of ``run`` (an :class:`aekit.Run`);
    return the report's path. What is drawn follows the data's kind and the model's capabilities."""
    out = run.path / PLOTS
    figures: list[tuple[str, str]] = []

    def add(heading: str, name: str, fn: Any, *args: Any, **kwargs: Any) -> None:
        fn(*args, out / name, **kwargs)
        figures.append((heading, f"{PLOTS}/{name}"))

    x, labels = dataset.test, dataset.test_labels
    split = "test set"
    if not len(x):
        x, labels, split = dataset.train, dataset.train_labels, "training set"
    x, labels = x[:MAX_PLOTTED], None if labels is None else labels[:MAX_PLOTTED]  # a tensor, even when streamed
    if history:
        add("Loss per epoch (per sample, nats)", "loss_curves.png", plots.plot_loss_curves, history)
    caps = run.model.capabilities
    y = labels if caps.conditional else None  # a conditional model needs the labels
    shown = x[:N_SHOW]
    recon = run.reconstruct(_raw(run, shown), None if y is None else y[:N_SHOW])
    generative = caps.generative
    # Column names are used when the data description records them; otherwise panels read "feature i".
    names = run.data_info.get("feature_names")
    if dataset.kind == "image":
        title = f"{split.capitalize()} images and their reconstructions"
        add(title, "reconstructions.png", plots.plot_reconstructions, shown, recon, n=min(32, len(shown)), title=title)
        if generative and caps.conditional:
            k = min(run.model.num_classes, 10)
            per_class = torch.cat([run.sample(8, seed=c, label=c) for c in range(k)])
            title = "Samples per class (one row per label)"
            add(title, "samples.png", plots.plot_image_grid, per_class.clamp(0, 1), nrow=8, title=title)
        elif generative:
            title = f"{N_SHOW} samples from the prior"
            add(title, "samples.png", plots.plot_image_grid, run.sample(N_SHOW).clamp(0, 1), title=title)
    else:
        raw = _raw(run, x)
        title = f"Reconstruction per feature, {split}"
        add(title, "feature_reconstruction.png", plots.plot_feature_reconstruction, raw, run.reconstruct(raw, y),
            feature_names=names, title=title)  # fmt: skip
        if generative and not caps.conditional:
            title = "Data vs samples, per feature"
            add(title, "feature_samples.png", plots.plot_feature_samples, raw, run.sample(min(len(raw), 2000)),
                feature_names=names, title=title)  # fmt: skip
    codes = run.encode(_raw(run, x), y)
    title = f"Latent codes of the {split}" + (" (PCA to 2-D)" if codes.shape[1] > 2 else "")
    add(title, "latent_scatter.png", plots.plot_latent_scatter, codes, labels)  # its title gives K
    return write_report(
        run.path,
        title=f"aekit run: {run.config.model.model} on {dataset.name}",
        summary={k: v for k, v in summary.items() if k != "test"},
        metrics=summary.get("test") or None,
        plots=figures,
        config=applicable_config(run.config.to_dict()),
        command=read_command(run.path),
        config_note=CONFIG_NOTE,
    )


def _raw(run: Any, x: torch.Tensor) -> torch.Tensor:
    """Undo the data's normalisation: the Run's public methods take data in its own units."""
    return run.denormalize(x.cpu())
