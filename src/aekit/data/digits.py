"""scikit-learn's handwritten digits: 1,797 8x8 images shipped inside scikit-learn (works offline)."""

from __future__ import annotations

import numpy as np

from aekit.data.arrays import split_arrays
from aekit.data.base import Dataset

MAX_VALUE = 16.0  # pixels are counts of set bits in 4x4 blocks: 0..16


def load_digits(*, seed: int = 0, valid_fraction: float = 0.1, test_fraction: float = 0.1) -> Dataset:
    """The digits as images (N, 1, 8, 8) float32 in [0, 1] with int64 labels 0..9.

    Splits come from a permutation drawn with ``numpy.random.default_rng(seed)``; their sizes
    depend only on the fractions (180 / 180 for the default 10% / 10%, 1,437 for training).
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = (bunch.images / MAX_VALUE).astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    return split_arrays(
        "digits", "image", x, bunch.target.astype(np.int64), seed=seed, valid_fraction=valid_fraction,
        test_fraction=test_fraction, source="the digits data set",
    )  # fmt: skip
