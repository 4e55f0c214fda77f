"""dSprites, generated exactly from its definition, with its ground-truth factors.

dSprites (Matthey et al. 2017) holds every combination of five factors, one 64x64 binary image
each, 737,280 in all, in this order (shape slowest, posY fastest):

============  =====  ===================================================================
factor        size   values
============  =====  ===================================================================
shape         3      square, ellipse, heart
scale         6      ``np.linspace(0.5, 1, 6)``
orientation   40     ``np.linspace(0, 2*pi, 40)`` radians, counter-clockwise; as in the original
                     the last value is 2*pi, so orientations 0 and 39 give the same image
posX, posY    32     ``np.linspace(0, 1, 32)``; posX left to right, posY top to bottom
============  =====  ===================================================================

The rasteriser (:func:`render`) sets a pixel when its centre lies inside the rotated, scaled shape
(no anti-aliasing). Geometry, in pixels of the 64x64 frame ``[0, 64]^2``:

- every shape fits the disc of radius ``scale * RADIUS`` (``RADIUS = 10`` px) around its centre,
  so a shape of scale 1 at any orientation stays inside the frame;
- the centre moves from 10 to 54 px (``MARGIN + pos * (64 - 2 * MARGIN)``) in steps of ~1.42 px;
- square: half-diagonal ``RADIUS`` (a 14.1 px side at scale 1);
- ellipse: semi-axes ``RADIUS`` and ``RADIUS / 2`` (axis ratio 2:1, the long axis horizontal at
  orientation 0);
- heart: the implicit curve ``(x^2 + y^2 - 1)^3 - x^2 y^3 <= 0``, its bounding box centred on the
  shape centre and scaled into the disc, pointing down at orientation 0.

The images are not the original's pixel for pixel (its renderer was not published); the factors,
their values, order and counts are.
"""

from __future__ import annotations

import logging
import math
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from aekit.data.arrays import split_indices
from aekit.data.base import Dataset
from aekit.errors import ConfigError, DataError, check_choice
from aekit.fsutil import atomic_path

FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")
FACTOR_VALUES = (
    np.arange(3.0),  # shape is categorical: 0 square, 1 ellipse, 2 heart
    np.linspace(0.5, 1.0, 6),
    np.linspace(0.0, 2 * np.pi, 40),
    np.linspace(0.0, 1.0, 32),
    np.linspace(0.0, 1.0, 32),
)
N_IMAGES = math.prod(FACTOR_SIZES)  # 737,280
IMAGE_SIZE = 64
RADIUS = 10.0  # px: every shape of scale 1 fits the disc of this radius around its centre
MARGIN = RADIUS  # px: the centre's range is [MARGIN, IMAGE_SIZE - MARGIN]
SUBSAMPLES = ("full", "small")
SMALL_SIZE = 20_000  # the "small" subset: this many factor combinations ...
SMALL_SEED = 0  # ... drawn without replacement by default_rng(SMALL_SEED), independent of the split seed
RENDER_VERSION = 1  # bump when the rasteriser changes: it names the cache file
CHUNK = 4096  # images rendered per vectorised step

# Heart (x^2 + y^2 - 1)^3 <= x^2 y^3 spans x in [-1.139, 1.139], y in [-1, 1.236]: centre its
# bounding box (y + 0.118) and scale by 1.34 (> its circumradius 1.337 about that centre).
_HEART_SCALE, _HEART_SHIFT = 1.34, 0.118
# cos/sin of the 40 orientations from the scalar libm, reduced mod 2*pi so that orientation 39
# (2*pi) renders exactly like orientation 0, as in the original.
_COS = np.array([math.cos(t % (2 * math.pi)) for t in FACTOR_VALUES[2]])
_SIN = np.array([math.sin(t % (2 * math.pi)) for t in FACTOR_VALUES[2]])
_WINDOW = 2 * math.ceil(RADIUS) + 2  # px: side of the square window that holds any shape

log = logging.getLogger(__name__)


# --- factors --------------------------------------------------------------------------------


def all_factors() -> np.ndarray:
    """All 737,280 factor combinations, ``(N, 5)`` int64 indices, shape slowest and posY fastest."""
    return np.stack(np.unravel_index(np.arange(N_IMAGES), FACTOR_SIZES), axis=1).astype(np.int64)


def sample_factors(n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """``n`` factor combinations drawn uniformly and independently, ``(n, 5)`` int64 indices."""
    rng = np.random.default_rng(rng)
    return np.stack([rng.integers(0, size, n) for size in FACTOR_SIZES], axis=1).astype(np.int64)


def factor_index(factors: np.ndarray) -> np.ndarray:
    """Position of each factor combination in :func:`all_factors` (and in the original's arrays)."""
    return np.ravel_multi_index(tuple(_check_factors(factors).T), FACTOR_SIZES)


def _check_factors(factors: np.ndarray) -> np.ndarray:
    f = np.asarray(factors)
    if f.ndim != 2 or f.shape[1] != len(FACTOR_SIZES) or not np.issubdtype(f.dtype, np.integer):
        raise DataError(
            f"Expected dSprites factors as an integer array of shape (N, {len(FACTOR_SIZES)}) "
            f"({', '.join(FACTOR_NAMES)} indices), got {f.dtype} of shape {f.shape}."
        )
    bad = (f < 0) | (f >= np.array(FACTOR_SIZES))
    if bad.any():
        col = int(np.argwhere(bad)[0, 1])
        raise DataError(
            f"dSprites factor '{FACTOR_NAMES[col]}' takes indices 0..{FACTOR_SIZES[col] - 1}, got "
            f"{int(f[bad.any(1)][0, col])}. Use integer indices, not factor values."
        )
    return f.astype(np.int64, copy=False)


# --- rasteriser ------------------------------------------------------------------------------


def render(factors: np.ndarray) -> np.ndarray:
    """Images of the factor combinations ``factors`` ``(N, 5)``: ``(N, 1, 64, 64)`` uint8 in {0, 1}."""
    f = _check_factors(factors)
    out = np.zeros((len(f), IMAGE_SIZE * IMAGE_SIZE), np.uint8)
    for start in range(0, len(f), CHUNK):
        _render_chunk(f[start : start + CHUNK], out[start : start + CHUNK])
    return out.reshape(len(f), 1, IMAGE_SIZE, IMAGE_SIZE)


def _render_chunk(f: np.ndarray, out: np.ndarray) -> None:
    # Only a window around each shape is tested (~1/9 of the frame), then scattered into place.
    span = IMAGE_SIZE - 2 * MARGIN
    cx = MARGIN + FACTOR_VALUES[3][f[:, 3]] * span  # (B,) px, left to right
    cy = MARGIN + FACTOR_VALUES[4][f[:, 4]] * span  # (B,) px, top to bottom
    c0 = np.clip(np.floor(cx - RADIUS).astype(np.int64), 0, IMAGE_SIZE - _WINDOW)
    r0 = np.clip(np.floor(cy - RADIUS).astype(np.int64), 0, IMAGE_SIZE - _WINDOW)
    offsets = np.arange(_WINDOW)
    dx = (c0[:, None] + offsets + 0.5 - cx[:, None])[:, None, :]  # (B, 1, W)
    dy = (cy[:, None] - r0[:, None] - offsets - 0.5)[:, :, None]  # (B, W, 1), y up
    size = (FACTOR_VALUES[1][f[:, 1]] * RADIUS)[:, None, None]
    cos, sin = _COS[f[:, 2]][:, None, None], _SIN[f[:, 2]][:, None, None]
    # Rotate the pixel by -orientation into the shape's frame, where the shape fits the unit disc.
    u = (dx * cos + dy * sin) / size  # (B, W, W)
    v = (dy * cos - dx * sin) / size
    inside = np.empty(u.shape, bool)
    for shape, test in enumerate((_in_square, _in_ellipse, _in_heart)):
        sel = f[:, 0] == shape
        if sel.any():
            inside[sel] = test(u[sel], v[sel])
    flat = (r0[:, None] + offsets)[:, :, None] * IMAGE_SIZE + (c0[:, None] + offsets)[:, None, :]
    out[np.arange(len(f))[:, None], flat.reshape(len(f), -1)] = inside.reshape(len(f), -1)


def _in_square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= math.sqrt(0.5)


def _in_ellipse(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * u + 4.0 * v * v <= 1.0  # semi-axes 1 and 1/2


def _in_heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    x, y = u * _HEART_SCALE, v * _HEART_SCALE + _HEART_SHIFT
    r = x * x + y * y - 1.0
    return r * r * r <= x * x * y * y * y


# --- data set --------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$AEKIT_CACHE_DIR`` if set, else the platform's user cache folder for aekit."""
    if os.environ.get("AEKIT_CACHE_DIR"):
        return Path(os.environ["AEKIT_CACHE_DIR"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("aekit"))


def small_factors() -> np.ndarray:
    """The factors of the ``"small"`` subset: ``SMALL_SIZE`` combinations, in canonical order."""
    idx = np.sort(np.random.default_rng(SMALL_SEED).choice(N_IMAGES, SMALL_SIZE, replace=False))
    return all_factors()[idx]


def load_dsprites(
    *,
    subsample: str = "full",
    seed: int = 0,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    dtype: torch.dtype = torch.float32,
    cache_dir: str | os.PathLike | None = None,
) -> Dataset:
    """dSprites as a :class:`Dataset` with ground-truth factors.

    Parameters
    ----------
    subsample : ``"small"``: the 20,000 factor combinations drawn once without replacement with
        ``default_rng(0)`` (every factor value occurs), rendered on the fly in about a second
        (328 MB as float32). ``"full"``: all 737,280 images. **The full set takes 12 GB as
        float32** (3 GB with ``dtype=torch.uint8``). The first call renders them (~20 s) into a
        6 MB cache file of packed bits in ``cache_dir``; later calls read it (~2 s) and unpack.
    seed : seed of the permutation that splits the samples (not of the subset).
    valid_fraction, test_fraction : shares of the samples for the valid and test splits.
    dtype : ``torch.float32`` (what training expects) or ``torch.uint8`` (four times less memory;
        convert batches with ``x.float()``).
    cache_dir : folder of the cache file; default ``$AEKIT_CACHE_DIR`` or the user cache folder.

    Returns
    -------
    Dataset named ``dsprites`` / ``dsprites-small`` of images ``(N, 1, 64, 64)`` in {0, 1}, with
    the shape index as label and the int64 factor indices ``(N, 5)`` in ``*_factors``.
    """
    check_choice("dSprites subsample", subsample, SUBSAMPLES)
    if dtype not in (torch.float32, torch.uint8):
        raise ConfigError(f"Expected dtype torch.float32 or torch.uint8 for dSprites, got {dtype}.")
    name = "dsprites" if subsample == "full" else "dsprites-small"
    if subsample == "small":
        factors = small_factors()
        packed = np.packbits(render(factors).reshape(len(factors), -1), axis=1)
    else:
        factors = all_factors()
        log.info("dSprites: loading all 737,280 images (%s); this needs %s of memory.", dtype, _gib(dtype))
        packed = _cached_packed(Path(cache_dir).expanduser() if cache_dir else default_cache_dir())
    parts = split_indices(
        len(factors), seed=seed, valid_fraction=valid_fraction, test_fraction=test_fraction, source=f"'{name}'"
    )
    xs = [_unpack(packed, idx, dtype) for idx in parts]
    fs = [torch.from_numpy(factors[idx]) for idx in parts]
    labels = [f[:, 0].clone() for f in fs]  # the shape, a class label for plots
    return Dataset(
        name, "image", *xs, *labels, train_factors=fs[0], valid_factors=fs[1], test_factors=fs[2],
        factor_sizes=FACTOR_SIZES, factor_names=FACTOR_NAMES,
    )  # fmt: skip


def _gib(dtype: torch.dtype) -> str:
    return f"{N_IMAGES * IMAGE_SIZE**2 * (4 if dtype == torch.float32 else 1) / 2**30:.1f} GiB"


def _unpack(packed: np.ndarray, idx: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    # Unpack in chunks straight into the output: peak memory stays the output plus one chunk.
    out = torch.empty((len(idx), 1, IMAGE_SIZE, IMAGE_SIZE), dtype=dtype)
    flat = out.view(len(idx), -1)
    for s in range(0, len(idx), 16 * CHUNK):
        bits = np.unpackbits(packed[idx[s : s + 16 * CHUNK]], axis=1)
        flat[s : s + len(bits)] = torch.from_numpy(bits)
    return out


def _cached_packed(cache_dir: Path) -> np.ndarray:
    """All images as packed bits ``(737280, 512)`` uint8, from the cache or rendered into it."""
    path = cache_dir / f"dsprites-v{RENDER_VERSION}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as npz:
                packed = npz["packed"]
        except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise DataError(
                f"The dSprites cache '{path}' is unreadable ({e}). Delete it; aekit renders it again."
            ) from e
        if packed.shape == (N_IMAGES, IMAGE_SIZE**2 // 8) and _spot_check(packed):
            return packed
        raise DataError(
            f"The dSprites cache '{path}' does not hold the images this version renders. Delete it; aekit "
            "renders it again."
        )
    log.info("dSprites: rendering 737,280 images into the cache '%s' (once).", path)
    factors = all_factors()
    packed = np.empty((N_IMAGES, IMAGE_SIZE**2 // 8), np.uint8)
    for s in range(0, N_IMAGES, 16 * CHUNK):
        f = factors[s : s + 16 * CHUNK]
        packed[s : s + len(f)] = np.packbits(render(f).reshape(len(f), -1), axis=1)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, packed=packed)
    return packed


def _spot_check(packed: np.ndarray, n: int = 64) -> bool:
    # Re-render a few images: a cache written by a different rasteriser is refused, not trusted.
    idx = np.random.default_rng(len(packed)).choice(N_IMAGES, n, replace=False)
    fresh = np.packbits(render(all_factors()[idx]).reshape(n, -1), axis=1)
    return bool(np.array_equal(fresh, packed[idx]))
