"""The learned prior of a VQ-VAE: a gated PixelCNN over the code maps of the encoded training set.

A VQ-VAE's codes have no prior of their own: drawing each code independently gives incoherent
images (seed 003). ``aekit train-prior RUN_DIR`` fits an autoregressive prior to the code maps of
the training images and stores it beside the model, in ``prior.safetensors`` and ``prior.json``;
:func:`aekit.load_run` attaches it, after which ``aekit sample`` draws code maps from it.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import torch

from aekit.errors import CheckpointError, ConfigError
from aekit.figures import plots
from aekit.fsutil import atomic_write_text
from aekit.models.base import Model, device_of
from aekit.parts.pixelcnn import GatedPixelCNN, bits_per_code, default_layers, mean_nll, threads_for
from aekit.parts.pixelcnn import train_prior as fit
from aekit.runs.layout import PLOTS, PRIOR_INFO, PRIOR_WEIGHTS, WEIGHTS, dumps, read_json
from aekit.runs.lock import RunLock
from aekit.training.checkpoint import load_state_into, load_tensors, save_tensors


def weights_digest(path: Path) -> str:
    """SHA-256 of a weights file: ties a prior to the exact model whose codes it learned."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_prior(
    run: Any,
    *,
    epochs: int = 50,
    batch_size: int = 256,
    lr: float = 2e-3,
    patience: int = 3,
    channels: int = 64,
    layers: int | None = None,
    kernel: int = 3,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Fit a gated PixelCNN to the code maps of ``run``'s training split; save and attach it.

    ``epochs`` is an upper bound: with a validation split the prior keeps the weights of its best
    epoch on it and stops after ``patience`` epochs without improvement (0: never stops early);
    a run without a validation split holds out a tenth of its training maps for this.
    ``layers=None`` takes 8, or more where the code map needs them (:func:`default_layers`).
    Batches of 256 take lr 2e-3: 1e-3 for batches of 64, scaled by the square root of the batch
    ratio (a quarter of the steps, each with less noise in its gradient).

    Returns the summary written to ``prior.json`` (settings, per-epoch records, the best epoch,
    and the test split's NLL in nats per map and bits per code, next to log2 K for uniform codes).
    """
    model = run.model
    if not model.capabilities.needs_prior:
        raise ConfigError(
            f"train-prior fits a prior over VQ-VAE code maps; this run is a '{model.name}' model. "
            "Train one with --model vq-vae."
        )
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("channels", channels), ("layers", layers)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}.")
    if patience < 0:
        raise ConfigError(f"patience must be >= 0 (0 turns early stopping off), got {patience}.")
    if lr <= 0:
        raise ConfigError(f"lr must be > 0, got {lr}.")
    with RunLock(run.path):  # one writer: a second train-prior or a --resume would mix the files
        if (run.path / PRIOR_WEIGHTS).exists() and not overwrite:
            raise ConfigError(f"'{run.path}' already has a prior; pass --overwrite to replace it.")
        data = run.load_data()
        device = device_of(model)
        train = data.train
        if run.config.data.binarize == "dynamic":  # the codes of one fixed draw, as the model saw binary images
            train = torch.bernoulli(train, generator=torch.Generator().manual_seed(seed))
        maps = model.code_maps(train.to(device))
        valid = model.code_maps(data.valid.to(device)) if len(data.valid) else None
        held_out = valid is None and patience > 0 and len(maps) >= 20
        if held_out:  # no validation split: early stopping watches a tenth of the training maps instead
            order = torch.randperm(len(maps), generator=torch.Generator().manual_seed(seed)).to(maps.device)
            valid, maps = maps[order[: len(maps) // 10]], maps[order[len(maps) // 10 :]]
        h, w = maps.shape[1:]
        if layers is None:
            layers = default_layers((h, w), kernel)
        torch.manual_seed(seed)
        prior = GatedPixelCNN(model.num_codes, channels=channels, layers=layers, kernel=kernel).to(device)
        records = fit(prior, maps, epochs=epochs, batch_size=batch_size, lr=lr, patience=patience, valid=valid,
                      progress=progress, seed=seed)  # fmt: skip
        test = model.code_maps(data.test.to(device)) if len(data.test) else maps
        with threads_for(device, 512 * h * w):
            nll = mean_nll(prior, test, 512)
        best = min(records, key=lambda r: r["valid/nll"]) if valid is not None else records[-1]
        valid_maps = None if valid is None else "a tenth of the training maps" if held_out else "the valid split"
        summary = {
            "prior": prior.config,
            "code_shape": [h, w],
            "settings": {"epochs": epochs, "batch_size": batch_size, "lr": lr, "patience": patience, "seed": seed},
            "valid_maps": valid_maps,  # the maps that chose the best epoch (and stopped the fit)
            "best_epoch": best["epoch"],
            "stopped_early": len(records) < epochs,
            "model_sha256": weights_digest(run.path / WEIGHTS),
            "test_nll": nll,
            "test_bits_per_code": bits_per_code(nll, h, w),
            "uniform_bits_per_code": math.log2(model.num_codes),
            "records": records,
        }
        save_tensors(run.path / PRIOR_WEIGHTS, prior.state_dict(), {"model": "gated-pixelcnn", "prior": prior.config})
        atomic_write_text(run.path / PRIOR_INFO, dumps(summary, indent=2))
        model.attach_prior(prior)
        return summary


def attach_saved_prior(model: Model, run_dir: Path) -> None:
    """Attach the run's saved prior to its (already loaded) VQ-VAE, if it has one."""
    weights, info_path = run_dir / PRIOR_WEIGHTS, run_dir / PRIOR_INFO
    if not weights.exists():
        return
    info = read_json(run_dir, PRIOR_INFO) if info_path.exists() else {}
    if info.get("model_sha256") != weights_digest(run_dir / WEIGHTS):
        raise CheckpointError(
            f"The prior in '{run_dir}' was trained on the codes of another model (its model.safetensors differs). "
            f"Retrain it: aekit train-prior {run_dir} --overwrite"
        )
    tensors, meta = load_tensors(weights)
    if meta.get("model") != "gated-pixelcnn":
        raise CheckpointError(f"'{weights}' is not a PixelCNN prior.")
    prior = GatedPixelCNN(**meta["prior"])
    load_state_into(prior, tensors, weights)
    model.attach_prior(prior.to(device_of(model)).eval())


def plot_prior_vs_uniform(run: Any, *, n: int = 32, seed: int = 0) -> Path:
    """Write ``plots/prior_vs_uniform.png`` into the run directory: ``n`` samples whose code maps come
    from the fitted prior above ``n`` whose codes are drawn independently (why a prior is needed)."""
    learned, uniform = (run.sample(n, seed=seed, prior=p) for p in ("learned", "uniform"))
    return plots.plot_rows([("learned prior", learned.clamp(0, 1)), ("uniform codes", uniform.clamp(0, 1))],
                           run.path / PLOTS / "prior_vs_uniform.png",
                           title="Samples: codes drawn from the PixelCNN prior vs independently")  # fmt: skip
