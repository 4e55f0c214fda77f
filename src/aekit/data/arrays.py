"""Helpers for arrays already read from any source: seeded splits, shape rules, finiteness and label checks.

They depend on no file format, so users' files (:mod:`aekit.data.files`), streamed .npy files
(:mod:`aekit.data.stream`) and the built-in data sets all share them from here. Keeping them apart
from the loaders means every module can import them without importing another loader.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from aekit.data.base import Dataset
from aekit.errors import DataError

MIN_SAMPLES = 3  # one each for train, valid and test
FLOAT32_MAX = float(np.finfo(np.float32).max)
# The smallest int64 is how pandas (NaT) and others store a missing integer; it is exact in float32 (-2**63).
INT64_MISSING = float(np.iinfo(np.int64).min)


def split_indices(
    n: int, *, seed: int, valid_fraction: float, test_fraction: float, source: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ``range(n)`` into train / valid / test indices by a seeded permutation.

    Split sizes depend only on ``n`` and the fractions (rounded, at least one sample for a
    non-zero fraction); which samples land where depends on ``seed``. Indices are sorted within
    each split so that samples keep their order in the file.
    """
    if n < MIN_SAMPLES:
        raise DataError(
            f"Expected at least {MIN_SAMPLES} samples in {source} to split into train, valid and test, "
            f"got {n}{' (the data is empty)' if n == 0 else ''}. Add more samples."
        )
    n_valid = _split_size(n, valid_fraction)
    n_test = _split_size(n, test_fraction)
    n_train = n - n_valid - n_test
    if n_train < 1:
        raise DataError(
            f"{source} has {n} samples: too few to keep any for training after taking {n_valid} for "
            f"valid and {n_test} for test. Add samples or lower valid_fraction / test_fraction."
        )
    perm = np.random.default_rng(seed).permutation(n)
    train, valid, test = np.split(perm, [n_train, n_train + n_valid])
    return np.sort(train), np.sort(valid), np.sort(test)


def _split_size(n: int, fraction: float) -> int:
    if fraction <= 0:
        return 0
    # floor(x + 0.5) rather than round(): no banker's rounding, so sizes are easy to predict.
    return max(1, math.floor(n * fraction + 0.5))


def value_range(x: torch.Tensor) -> tuple[float, float]:
    """The smallest and largest value of ``x`` (a tensor or a streamed split, non-empty); NaN when ``x``
    holds one. One pass over a tensor: ``aminmax`` costs a fifth of ``isfinite(x).all()`` plus min and max."""
    lo, hi = torch.aminmax(x.detach()) if isinstance(x, torch.Tensor) else (x.min(), x.max())
    return float(lo), float(hi)


def check_finite(
    x: np.ndarray,
    source: str,
    where: Callable[[tuple[int, ...]], str] | None = None,
    *,
    dtype: np.dtype | None = None,
) -> None:
    """Raise :class:`DataError` if ``x`` holds NaN or infinite values, saying how many and where.

    ``dtype``: that of the values ``x`` (float32) was read from. From float64 (or text), an infinite
    value may have been a finite one too large for float32, and the message says so; from int64, the
    smallest int64 is refused too, as the marker of a missing value it usually is."""
    if dtype == np.int64:
        _check_missing_int64(x, source, where)
    bad = ~np.isfinite(x)
    if not bad.any():
        return
    n_nan = int(np.isnan(x).sum())
    n_inf = int(bad.sum()) - n_nan
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    too_large = (
        f" Values beyond +/-{FLOAT32_MAX:.4g}, the range of float32 in which models train, count as infinite: "
        "rescale such data (e.g. divide it by its largest absolute value)."
        if dtype is not None and is_wide(dtype) and n_inf
        else ""
    )
    raise DataError(
        f"Expected finite values in {source}, got {n_nan} NaN and {n_inf} infinite value(s); the first is at "
        f"{_position(first, where)} ({x[first]}). Remove or impute them (e.g. with numpy.nan_to_num) and save the "
        f"data again.{too_large}"
    )


def _check_missing_int64(x: np.ndarray, source: str, where: Callable[[tuple[int, ...]], str] | None) -> None:
    missing = x == INT64_MISSING
    if not missing.any():
        return
    first = tuple(int(i) for i in np.argwhere(missing)[0])
    raise DataError(
        f"{source} holds {int(missing.sum())} value(s) of -9223372036854775808, the smallest int64, which marks a "
        f"missing value (pandas' NaT, for one); the first is at {_position(first, where)}. Remove or impute them "
        "and save the data again."
    )


def _position(at: tuple[int, ...], where: Callable[[tuple[int, ...]], str] | None) -> str:
    return where(at) if where else f"sample {at[0]}" + (f", position {at[1:]}" if at[1:] else "")


def cast_float32(arr: np.ndarray) -> np.ndarray:
    """``arr`` as a contiguous float32 array; values beyond float32's range become infinite, silently,
    for :func:`check_finite` to report."""
    with np.errstate(over="ignore"):
        return np.ascontiguousarray(arr, dtype=np.float32)


def is_wide(dtype: np.dtype) -> bool:
    """Whether values of ``dtype`` may lie beyond float32's range (float64 and longer floats)."""
    return dtype.kind in "fc" and dtype.itemsize > 4


def encode_labels(values: np.ndarray, source: str) -> np.ndarray:
    """Return labels as int64 codes; non-integer labels are coded by their sorted unique values."""
    values = np.asarray(values)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise DataError(
            f"Expected labels of shape (n_samples,) in {source}, got shape {values.shape}. "
            "Save one integer label per sample."
        )
    if values.dtype.kind in "iub":
        return values.astype(np.int64)
    if values.dtype.kind in "US":
        try:  # numbers stored as text (a CSV column) are coded by value, not alphabetically
            values = values.astype(np.float64)
        except ValueError:
            return np.unique(values, return_inverse=True)[1].reshape(-1).astype(np.int64)
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            raise DataError(f"Labels in {source} hold NaN or infinite values. Give every sample a label.")
        if np.array_equal(values, np.round(values)):
            return values.astype(np.int64)
    if values.dtype.kind != "f":
        raise DataError(
            f"Expected integer or string labels in {source}, got dtype {values.dtype}. Save labels as integers."
        )
    return np.unique(values, return_inverse=True)[1].reshape(-1).astype(np.int64)


def sample_layout(arr: np.ndarray, source: str) -> tuple[np.ndarray, str]:
    """Interpret an array's shape: (N, D) tabular, (N, H, W) / (N, C, H, W) / (N, H, W, C) images.

    Returns a view shaped ``(N, D)`` or ``(N, C, H, W)`` and the kind.
    """
    if arr.dtype.kind not in "biuf":
        raise DataError(
            f"Expected a numeric array in {source}, got dtype {arr.dtype}. Convert it with x.astype('float32')."
        )
    if arr.ndim < 2:
        raise DataError(
            f"Expected a 2-D array (samples, features) or images (N, H, W) / (N, C, H, W) in {source}, got a "
            f"{arr.ndim}-D array of shape {arr.shape}. Reshape your data with x.reshape(-1, 1) if it has a "
            "single feature or x.reshape(1, -1) if it is a single sample."
        )
    if arr.ndim > 4:
        raise DataError(
            f"Expected at most 4 dimensions (N, C, H, W) in {source}, got shape {arr.shape}. "
            "Reshape it to (N, D) for vectors or (N, C, H, W) for images."
        )
    if 0 in arr.shape[1:]:  # nothing to encode, and no model layer can have zero inputs
        raise DataError(
            f"Expected at least one value per sample in {source}, got an array of shape {arr.shape}, whose samples "
            f"of shape {arr.shape[1:]} are empty. Save the data with at least one feature (or pixel) per sample."
        )
    if arr.ndim == 2:
        return arr, "tabular"
    if arr.ndim == 3:
        return arr[:, None], "image"
    # Channels-last only when the last axis looks like channels and the second does not.
    if arr.shape[-1] in (1, 3, 4) and arr.shape[1] not in (1, 3, 4):
        return arr.transpose(0, 3, 1, 2), "image"
    return arr, "image"


def to_float32(arr: np.ndarray, kind: str, source: str, rows: np.ndarray | None = None) -> np.ndarray:
    """Copy into memory as float32; uint8 images are scaled from [0, 255] to [0, 1].

    ``rows``: the file's sample number of each row of ``arr``, for error messages."""
    x = cast_float32(arr)
    if kind == "image" and arr.dtype == np.uint8:
        x /= 255.0
    check_finite(x, source, None if rows is None else sample_at(rows), dtype=arr.dtype)
    return x


def sample_at(rows: np.ndarray) -> Callable[[tuple[int, ...]], str]:
    """Name a position of a split by the file's sample number, for error messages."""
    return lambda at: f"sample {rows[at[0]]}" + (f", position {at[1:]}" if at[1:] else "")


def labels_tensor(y: np.ndarray | None) -> torch.Tensor | None:
    """Labels as a contiguous int64 tensor, or ``None`` where there are none."""
    return None if y is None else torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))


def split_arrays(
    name: str,
    kind: str,
    x: np.ndarray,
    labels: np.ndarray | None,
    *,
    seed: int,
    valid_fraction: float,
    test_fraction: float,
    source: str,
) -> Dataset:
    """Build a :class:`Dataset` from one float32 array (and labels) by a seeded split."""
    if labels is not None and len(labels) != len(x):
        raise DataError(
            f"Expected one label per sample in {source}, got {len(labels)} labels for {len(x)} samples. "
            "Save labels of the same length as the data."
        )
    parts = split_indices(len(x), seed=seed, valid_fraction=valid_fraction, test_fraction=test_fraction, source=source)
    xs = [torch.from_numpy(np.ascontiguousarray(x[idx])) for idx in parts]
    ys = [None] * 3 if labels is None else [labels_tensor(labels[idx]) for idx in parts]
    return Dataset(name, kind, *xs, *ys)
