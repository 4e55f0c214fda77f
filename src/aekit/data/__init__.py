"""Data sets: the built-in digits, MNIST and dSprites, and users' own files, as one :class:`Dataset`.

:func:`load_dataset` is the entry point. Tabular data is standardised with statistics of the
training split (recorded in ``Dataset.normalization``, reusable for new data); images stay in
[0, 1], and the toy ``ellipse`` stays in its own units (so that its true curve stays comparable).
"""

from __future__ import annotations

import dataclasses
import numbers
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from aekit.data import digits, dsprites, ellipse, files, mnist, stream
from aekit.data.arrays import FLOAT32_MAX
from aekit.data.base import Dataset
from aekit.data.stream import NpyRows
from aekit.errors import ConfigError, DataError, check_choice, suggest

DATASET_NAMES = ("digits", "mnist", "dsprites", "dsprites-small", "ellipse")
NORMALIZE_MODES = ("auto", "standard", "none")
STORAGE_MODES = ("auto", "memory", "stream")

__all__ = [
    "DATASET_NAMES",
    "NORMALIZE_MODES",
    "Dataset",
    "NpyRows",
    "apply_normalization",
    "compute_normalization",
    "in_memory",
    "invert_normalization",
    "keep_classes",
    "load_dataset",
    "normalize_dataset",
]


def load_dataset(
    spec: str | os.PathLike,
    *,
    seed: int = 0,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    normalize: str = "auto",
    normalization: dict | None = None,
    label_column: str | int | None = None,
    mnist_train: str = "train",
    storage: str = "auto",
    classes: Sequence[int] = (),
    exclude_classes: Sequence[int] = (),
) -> Dataset:
    """Load a built-in data set by name, or a file / folder by path.

    Parameters
    ----------
    spec : ``"digits"``, ``"mnist"``, ``"dsprites"`` (737,280 images, 12 GB as float32),
        ``"dsprites-small"`` (a fixed 20,000-image subset), ``"ellipse"`` (2,000 noisy points of the
        ellipse of seed 000, see :mod:`aekit.data.ellipse`), or a path to a ``.npy`` / ``.npz`` /
        ``.csv`` / ``.tsv`` file, a folder of images (class subfolders give labels) or a folder of
        MNIST IDX files.
        Names win over files of the same name.
    seed : seed of the permutation that splits data without fixed splits (not MNIST).
    valid_fraction, test_fraction : shares of the samples for the valid and test splits, each in
        [0, 1) and summing to less than 1. MNIST and pre-split .npz files keep their own splits.
    normalize : ``"auto"`` (``"standard"`` for tabular data, ``"none"`` for images and ``ellipse``),
        ``"standard"`` (subtract the training mean, divide by the training std) or ``"none"``.
    normalization : ``{"mean": [...], "std": [...]}`` recorded by a previous run; applied instead
        of computing new statistics (``{}`` means none). Use it to encode new data for a trained model.
    label_column : name or index of the CSV column holding labels (CSV files only).
    mnist_train : ``"train"`` (50,000) or ``"train+valid"`` (60,000; valid then overlaps train).
    storage : ``"memory"`` loads the data; ``"stream"`` (.npy files only) leaves it in the file and
        gives :class:`NpyRows` splits, read in blocks during training (for data larger than memory);
        ``"auto"`` streams a .npy whose float32 copy would fill more than half the available memory.
    classes, exclude_classes : keep only these labels (or all but these) in the train and valid
        splits; the test split keeps every class, so that the others are its anomalies (the one-class
        and held-out-class protocols of anomaly detection). Normalisation statistics come from the
        kept training samples.

    Returns
    -------
    Dataset with float32 splits, int64 labels where the source has them, and the normalisation
    applied in ``normalization``.
    """
    _check_fractions(valid_fraction, test_fraction)
    check_choice("normalize mode", normalize, NORMALIZE_MODES)
    check_choice("storage", storage, STORAGE_MODES)
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:  # numpy refuses seeds < 0
        raise ConfigError(f"Expected an integer seed >= 0, got {seed!r}. Pass e.g. seed=0.")
    data = _load_raw(
        spec, seed=seed, valid_fraction=valid_fraction, test_fraction=test_fraction,
        label_column=label_column, mnist_train=mnist_train, storage=storage,
    )  # fmt: skip
    if classes or exclude_classes:
        data = keep_classes(data, classes, exclude_classes)
    return _normalize(data, normalize, normalization)


def in_memory(x: torch.Tensor | NpyRows) -> torch.Tensor:
    """A split as a tensor: a streamed one (``storage="stream"``) is read whole, for analyses that need it."""
    return x if isinstance(x, torch.Tensor) else x[:]


def keep_classes(data: Dataset, classes: Sequence[int] = (), exclude_classes: Sequence[int] = ()) -> Dataset:
    """``data`` with only the samples labelled in ``classes`` (or not in ``exclude_classes``) in its
    train and valid splits; the test split is left whole."""
    if data.train_labels is None:
        raise DataError(
            f"--classes / --exclude-classes pick samples by label, and '{data.name}' has no labels. Use labelled "
            "data (digits, mnist, an image folder with class subfolders, a CSV with --label-column)."
        )
    present = set(torch.unique(data.train_labels).tolist())
    asked = set(classes) | set(exclude_classes)
    if asked - present:
        raise DataError(
            f"Label(s) {sorted(asked - present)} do not occur in the training split of '{data.name}', whose labels "
            f"are {sorted(present)}."
        )
    changes: dict = {}
    for split in ("train", "valid"):
        labels = getattr(data, f"{split}_labels")
        mask = (
            torch.isin(labels, torch.tensor(list(classes)))
            if classes
            else ~torch.isin(labels, torch.tensor(list(exclude_classes)))
        )
        if split == "train" and not mask.any():
            raise DataError(f"No training sample of '{data.name}' is left after keeping labels {sorted(classes)}.")
        index = mask.nonzero().squeeze(1)
        changes[split] = data.train[index] if split == "train" else data.valid[index]
        changes[f"{split}_labels"] = labels[index]
        factors = getattr(data, f"{split}_factors")
        if factors is not None:
            changes[f"{split}_factors"] = factors[index]
    return dataclasses.replace(data, **changes)


def _check_fractions(valid_fraction: float, test_fraction: float) -> None:
    for name, value in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not isinstance(value, numbers.Real) or not 0 <= value < 1:
            raise ConfigError(f"Expected {name} in [0, 1), got {value!r}. Pass e.g. {name}=0.1.")
    if valid_fraction + test_fraction >= 1:
        raise ConfigError(
            f"Expected valid_fraction + test_fraction < 1 to leave samples for training, got "
            f"{valid_fraction} + {test_fraction}. Lower one of them."
        )


def _load_raw(spec: str | os.PathLike, *, mnist_train: str, storage: str, **split) -> Dataset:
    check_choice("MNIST training split", mnist_train, mnist.TRAIN_CHOICES)
    name = str(spec)
    if name.lower() in DATASET_NAMES and not isinstance(spec, os.PathLike):
        if storage == "stream":
            raise ConfigError(
                f"--storage stream reads .npy files; '{name}' is built in and loads into memory. "
                "Use --storage auto or memory."
            )
        if split["label_column"] is not None:
            raise ConfigError(f"label_column applies to CSV files only, not to the '{name}' data set.")
        if name.lower() in ("dsprites", "dsprites-small"):
            return dsprites.load_dsprites(
                subsample="full" if name.lower() == "dsprites" else "small",
                seed=int(split["seed"]),
                valid_fraction=split["valid_fraction"],
                test_fraction=split["test_fraction"],
            )
        if name.lower() == "ellipse":
            return ellipse.load_ellipse(
                seed=int(split["seed"]),
                valid_fraction=split["valid_fraction"],
                test_fraction=split["test_fraction"],
            )
        if name.lower() == "digits":
            return digits.load_digits(
                seed=int(split["seed"]),
                valid_fraction=split["valid_fraction"],
                test_fraction=split["test_fraction"],
            )
        return mnist.load_mnist(train=mnist_train)
    path = Path(name).expanduser()
    if not path.exists():
        raise DataError(
            f"No data set or file named '{name}'.{suggest(name.lower(), DATASET_NAMES)} Give one of "
            f"{', '.join(DATASET_NAMES)}, or the path of a .npy / .npz / .csv file, a folder of images or a "
            "folder of MNIST IDX files."
        )
    if path.is_dir() and mnist.find_idx_files(path) is not None:
        if split["label_column"] is not None:
            raise ConfigError(f"label_column applies to CSV files only, not to the IDX files in '{path}'.")
        return mnist.load_idx_folder(path, train=mnist_train)
    if stream.should_stream(path, storage):
        if split["label_column"] is not None:
            raise ConfigError(f"label_column applies to CSV files only, not to '{path}'.")
        return stream.open_npy(
            path, seed=split["seed"], valid_fraction=split["valid_fraction"], test_fraction=split["test_fraction"]
        )
    return files.load_path(path, **split)


# --- normalisation --------------------------------------------------------------------------


def compute_normalization(x: torch.Tensor | NpyRows) -> dict:
    """Per-feature mean and std of ``x`` (N, D), as python floats; a constant feature gets std 1."""
    if isinstance(x, NpyRows):  # moments found by the scan that opened the file
        mean, std = torch.from_numpy(x.stats["mean"]), torch.from_numpy(x.stats["std"])
    else:
        x64 = x.double()
        mean = x64.mean(0)
        std = x64.std(0, correction=0)
    # A feature constant up to float32 rounding would otherwise be blown up to noise of size 1.
    std = torch.where(std <= 1e-7 * mean.abs().clamp(min=1), torch.ones_like(std), std)
    return {"mean": mean.tolist(), "std": std.tolist()}


def _stats(normalization: dict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        mean = torch.tensor(normalization["mean"], dtype=torch.float32)
        std = torch.tensor(normalization["std"], dtype=torch.float32)
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(
            f"Expected normalization {{'mean': [...], 'std': [...]}} (lists of floats), "
            f"got {normalization!r}. Pass the 'normalization' recorded by the run, or {{}} for none."
        ) from e
    n_features = x.shape[1] if x.dim() == 2 else None
    if mean.dim() != 1 or mean.shape != std.shape or mean.shape[0] != n_features:
        raise DataError(
            f"The normalization has {mean.numel()} means and {std.numel()} stds, but the data has samples of "
            f"shape {tuple(x.shape[1:])}. Give data with the same columns the model was trained on."
        )
    if not (torch.isfinite(std).all() and (std > 0).all() and torch.isfinite(mean).all()):
        raise DataError("The normalization holds a non-finite mean or a std <= 0. Use the one the run recorded.")
    return mean, std


def apply_normalization(x: torch.Tensor, normalization: dict) -> torch.Tensor:
    """Return ``(x - mean) / std`` for ``x`` (N, D); ``normalization={}`` returns ``x`` unchanged."""
    if not normalization:
        return x
    mean, std = _stats(normalization, x)
    if isinstance(x, NpyRows):  # applied as rows are read
        return x.normalized(mean.numpy(), std.numpy())
    return (x - mean.to(x.device)) / std.to(x.device)


def _check_representable(x: torch.Tensor | NpyRows, normalization: dict, what: str) -> None:
    """Raise :class:`DataError` when standardising ``x`` (already done for a tensor, done at each read
    for a streamed split) leaves float32's range, where a model could only see infinities."""
    mean = np.asarray(normalization["mean"], np.float64)
    std = np.asarray(normalization["std"], np.float64)
    if isinstance(x, NpyRows):  # from the scan's per-feature range: x - mean, then / std, each in float32
        lo, hi = (np.asarray(v, np.float64).reshape(-1) for v in (x.stats["min"], x.stats["max"]))
        spread = np.maximum(np.abs(lo - mean), np.abs(hi - mean)) if len(x) else np.zeros_like(mean)
        bad = (spread >= FLOAT32_MAX) | (spread / std >= FLOAT32_MAX)
    else:
        bad = (~torch.isfinite(x)).any(0).numpy() if len(x) else np.zeros(len(mean), bool)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"Standardising {what} (subtracting the training mean, dividing by the training std) overflows float32, "
            f"in which models train (largest value +/-{FLOAT32_MAX:.4g}), in feature {j}, whose training mean is "
            f"{mean[j]:.4g} and std {std[j]:.4g}. Rescale the data (e.g. divide it by its largest absolute value)."
        )


def invert_normalization(x: torch.Tensor, normalization: dict) -> torch.Tensor:
    """Map normalised data (e.g. reconstructions) back to the original units: ``x * std + mean``."""
    if not normalization:
        return x
    mean, std = _stats(normalization, x)
    return x * std.to(x.device) + mean.to(x.device)


def normalize_dataset(data: Dataset, normalize: str = "auto") -> Dataset:
    """A copy of an in-memory ``data`` normalised as :func:`load_dataset` would: ``"auto"`` standardises
    tabular data with its training split's statistics (recorded in ``normalization``) and leaves images."""
    check_choice("normalize mode", normalize, NORMALIZE_MODES)
    return _normalize(dataclasses.replace(data), normalize, None)


def _normalize(data: Dataset, normalize: str, normalization: dict | None) -> Dataset:
    if normalization is None:
        # The ellipse toy is tabular but stays in its own units, so that the learned curve can be
        # compared with the true one (seed 000); "standard" still applies when asked for explicitly.
        keep = data.kind != "tabular" or data.name == "ellipse"
        mode = ("none" if keep else "standard") if normalize == "auto" else normalize
        if mode == "none":
            return data
        if data.kind != "tabular":
            raise ConfigError(
                f"normalize='standard' applies to tabular data only; '{data.name}' holds images, which stay "
                "in [0, 1]. Use normalize='auto' or 'none'."
            )
        normalization = compute_normalization(data.train)
    elif normalization and data.kind != "tabular":
        raise ConfigError(
            f"A normalization was given, but '{data.name}' holds images; only tabular data is normalised. "
            "Pass normalization={} or None."
        )
    for split in ("train", "valid", "test"):
        x = apply_normalization(getattr(data, split), normalization)
        if normalization:
            _check_representable(x, normalization, f"the {split} split of '{data.name}'")
        setattr(data, split, x if isinstance(x, NpyRows) else x.contiguous())
    data.normalization = (
        {"mean": [float(v) for v in normalization["mean"]], "std": [float(v) for v in normalization["std"]]}
        if normalization
        else {}
    )
    return data
