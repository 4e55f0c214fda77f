"""Users' own data: .npy / .npz arrays, CSV tables and folders of images.

Every loader returns a :class:`~aekit.data.base.Dataset` without normalisation; ``load_dataset``
applies that afterwards. The helpers they share with the built-in data sets (seeded splits,
finiteness and label checks) are in :mod:`aekit.data.arrays`; .npy rows are read by
:mod:`aekit.data.npy`.
"""

from __future__ import annotations

import csv
import math
import zipfile
from pathlib import Path

import numpy as np
import torch

from aekit.data.arrays import (
    check_finite,
    encode_labels,
    labels_tensor,
    sample_at,
    sample_layout,
    split_arrays,
    split_indices,
    to_float32,
)
from aekit.data.base import Dataset
from aekit.data.npy import WINDOW_BYTES, RowReader, read_layout
from aekit.errors import ConfigError, DataError, suggest

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
FILE_EXTENSIONS = (".npy", ".npz", ".csv", ".tsv")

# Keys looked up in an .npz, in order of preference.
_X_KEYS = ("x", "X", "data")
_Y_KEYS = ("y", "labels", "Y")
_SPLIT_KEYS = {
    "train": (("train", "x_train", "X_train"), ("train_labels", "y_train")),
    "valid": (("valid", "x_valid", "X_valid"), ("valid_labels", "y_valid")),
    "test": (("test", "x_test", "X_test"), ("test_labels", "y_test")),
}
_GRAY_MODES = ("1", "L", "LA")
_COLOR_MODES = ("P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV")


# --- .npy / .npz ----------------------------------------------------------------------------


def load_npy(path: Path, *, seed: int, valid_fraction: float, test_fraction: float) -> Dataset:
    """Load one array from a .npy file, split, each split read once as float32.

    The rows go straight from the file into their split (``pread`` in windows, no memory map), so
    the process holds the data once, not the file's pages and a copy besides."""
    source = f"'{path}'"
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise DataError(f"{source} is not a NumPy .npy file (it lacks the .npy header). Save it with numpy.save.")
    try:
        layout = read_layout(path)
    except DataError as e:
        if "Fortran" not in str(e):
            raise
        return _load_npy_mapped(path, seed=seed, valid_fraction=valid_fraction, test_fraction=test_fraction)
    reader = RowReader(layout)
    parts = split_indices(layout.shape[0], seed=seed, valid_fraction=valid_fraction, test_fraction=test_fraction,
                          source=source)  # fmt: skip
    xs = []
    for rows in parts:
        x = np.empty((len(rows), *layout.sample_shape), np.float32)
        step = max(1, WINDOW_BYTES // (4 * math.prod(layout.sample_shape)))
        for i in range(0, len(rows), step):
            x[i : i + step] = reader.rows(rows[i : i + step])
        check_finite(x, source, sample_at(rows), dtype=layout.dtype)
        xs.append(torch.from_numpy(x))
    reader.close()
    return Dataset(path.stem, layout.kind, *xs)


def _load_npy_mapped(path: Path, *, seed: int, valid_fraction: float, test_fraction: float) -> Dataset:
    """The fallback for arrays whose rows are not contiguous (Fortran order): a memory map, split."""
    source = f"'{path}'"
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"Could not read {source}: {e}. Save the array again with numpy.save.") from e
    view, kind = sample_layout(arr, source)
    parts = split_indices(len(view), seed=seed, valid_fraction=valid_fraction, test_fraction=test_fraction,
                          source=source)  # fmt: skip
    xs = [torch.from_numpy(to_float32(view[idx], kind, source, rows=idx)) for idx in parts]
    return Dataset(path.stem, kind, *xs)


def load_npz(path: Path, *, seed: int, valid_fraction: float, test_fraction: float) -> Dataset:
    """Load an .npz holding ``x`` (+ ``y``) to split, or pre-split ``train`` / ``valid`` / ``test``.

    Pre-split files may leave out ``valid`` or ``test``; the missing split is then taken from
    ``train`` with the given fraction.
    """
    source = f"'{path}'"
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"Could not read {source}: {e}. Save the arrays again with numpy.savez.") from e
    keys = ", ".join(arrays) or "none"
    given = {split: _first_key(arrays, names[0]) for split, names in _SPLIT_KEYS.items()}
    if given["train"] is not None:
        return _load_presplit(path, arrays, seed, valid_fraction, test_fraction)
    if any(given.values()):
        raise DataError(
            f"{source} holds a valid or test split but no training split (keys: {keys}). "
            "Add the array 'train' (or 'x_train')."
        )
    x_key = _first_key(arrays, _X_KEYS) or (next(iter(arrays)) if len(arrays) == 1 else None)
    if x_key is None:
        raise DataError(
            f"Expected the data in {source} under 'x' (or 'X', 'data'), or pre-split arrays 'train', "
            f"'valid', 'test', got keys: {keys}. Save it with numpy.savez(path, x=data, y=labels)."
        )
    view, kind = sample_layout(arrays[x_key], f"{source}['{x_key}']")
    x = to_float32(view, kind, f"{source}['{x_key}']")
    y_key = _first_key(arrays, _Y_KEYS)
    y = encode_labels(arrays[y_key], f"{source}['{y_key}']") if y_key else None
    return split_arrays(
        path.stem, kind, x, y, seed=seed, valid_fraction=valid_fraction, test_fraction=test_fraction,
        source=source,
    )  # fmt: skip


def _first_key(arrays: dict, names: tuple[str, ...]) -> str | None:
    return next((k for k in names if k in arrays), None)


def _load_presplit(path: Path, arrays: dict, seed: int, valid_fraction: float, test_fraction: float) -> Dataset:
    source = f"'{path}'"
    xs: dict[str, np.ndarray] = {}
    ys: dict[str, np.ndarray | None] = {}
    kind = "tabular"
    for split, (x_names, y_names) in _SPLIT_KEYS.items():
        x_key = _first_key(arrays, x_names)
        if x_key is None:
            continue
        view, kind = sample_layout(arrays[x_key], f"{source}['{x_key}']")
        xs[split] = to_float32(view, kind, f"{source}['{x_key}']")
        y_key = _first_key(arrays, y_names)
        ys[split] = arrays[y_key] if y_key else None
        if y_key and len(ys[split]) != len(xs[split]):
            raise DataError(
                f"Expected one label per sample in {source}, got {len(ys[split])} in '{y_key}' for "
                f"{len(xs[split])} samples in '{x_key}'. Save labels of the same length as the data."
            )
    shapes = {split: x.shape[1:] for split, x in xs.items()}
    if len(set(shapes.values())) > 1:
        raise DataError(
            f"Expected every split in {source} to have the same sample shape, got {shapes}. "
            "Save all splits with the same shape."
        )
    if len({y is None for y in ys.values()}) > 1:
        raise DataError(
            f"{source} has labels for some splits but not for others. Save labels for every split, or none."
        )
    ys = _encode_split_labels(ys, source)
    if "valid" not in xs or "test" not in xs:
        # A split that was not given is carved out of train with its fraction.
        x_train, y_train = xs["train"], ys["train"]
        parts = split_indices(
            len(x_train), seed=seed, source=f"{source}['train']",
            valid_fraction=valid_fraction if "valid" not in xs else 0.0,
            test_fraction=test_fraction if "test" not in xs else 0.0,
        )  # fmt: skip
        for split, idx in zip(("train", "valid", "test"), parts, strict=True):
            if split == "train" or split not in xs:
                xs[split] = x_train[idx]
                ys[split] = None if y_train is None else y_train[idx]
    if len(xs["train"]) == 0:
        raise DataError(f"The training split in {source} is empty. Save at least one training sample.")
    return Dataset(
        path.stem,
        kind,
        *(torch.from_numpy(np.ascontiguousarray(xs[s])) for s in ("train", "valid", "test")),
        *(labels_tensor(ys[s]) for s in ("train", "valid", "test")),
    )


def _encode_split_labels(ys: dict, source: str) -> dict:
    """Encode labels of all splits together so that a class has one code everywhere."""
    if any(y is None for y in ys.values()):
        return ys
    lengths = np.cumsum([len(y) for y in ys.values()])[:-1]
    codes = encode_labels(np.concatenate([np.asarray(y).reshape(len(y), -1) for y in ys.values()]), source)
    return dict(zip(ys, np.split(codes, lengths), strict=True))


# --- CSV ------------------------------------------------------------------------------------


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_rows(path: Path) -> tuple[list[list[str]], list[int]]:
    """Return the non-blank rows of a CSV / TSV file and their line numbers (1-based)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise DataError(f"'{path}' is not UTF-8 text ({e}). Save it as a UTF-8 CSV file.") from e
    first = text.lstrip().split("\n", 1)[0]
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    if delimiter == "," and "," not in first:
        delimiter = next((d for d in (";", "\t") if d in first), ",")
    rows, lines = [], []
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    for row in reader:
        if any(cell.strip() for cell in row):
            rows.append([cell.strip() for cell in row])
            lines.append(reader.line_num)
    return rows, lines


def _has_header(rows: list[list[str]]) -> bool:
    # A header has a non-numeric cell above a numeric one (string label columns stay data),
    # or is entirely non-numeric.
    first = [not _is_number(c) for c in rows[0]]
    if all(first):
        return True
    if len(rows) < 2:
        return False
    return any(f and _is_number(c) for f, c in zip(first, rows[1], strict=False))


def _label_index(label_column: str | int, header: list[str] | None, n_columns: int, source: str) -> int:
    columns = ", ".join(header) if header else f"0..{n_columns - 1}"
    if isinstance(label_column, str) and header and label_column in header:
        return header.index(label_column)
    if isinstance(label_column, str) and label_column.lstrip("-").isdigit():
        label_column = int(label_column)
    if isinstance(label_column, int) and -n_columns <= label_column < n_columns:
        return label_column % n_columns
    if isinstance(label_column, str) and not header:
        raise DataError(
            f"{source} has no header row, so the label column '{label_column}' cannot be found by name. "
            f"Pass its index (0..{n_columns - 1}) instead."
        )
    hint = suggest(str(label_column), header) if header else ""
    raise DataError(f"Unknown label column '{label_column}' in {source}.{hint} Columns are: {columns}.")


def read_csv(path: Path, label_column: str | int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a real-valued CSV table as float32 ``(N, D)`` and, optionally, one label column.

    The header is detected (a first row with non-numeric cells). Labels are integer-coded.
    """
    x, labels, _ = read_csv_columns(path, label_column)
    return x, labels


def read_csv_columns(
    path: Path, label_column: str | int | None = None
) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...] | None]:
    """:func:`read_csv`, with the names of the feature columns when the file has a header (else None)."""
    source = f"'{path}'"
    rows, lines = _read_rows(path)
    if not rows:
        raise DataError(f"{source} is empty. Give a CSV file with one sample per row.")
    header = rows[0] if _has_header(rows) else None
    if header:
        rows, lines = rows[1:], lines[1:]
    n_columns = len(header) if header else len(rows[0]) if rows else 0
    for row, line in zip(rows, lines, strict=True):
        if len(row) != n_columns:
            raise DataError(
                f"Expected {n_columns} cells on every row of {source}, got {len(row)} on line {line}. "
                "Give every row the same number of columns."
            )
    names = header or [str(j) for j in range(n_columns)]
    label_at = None if label_column is None else _label_index(label_column, header, n_columns, source)
    features = [j for j in range(n_columns) if j != label_at]
    if not features:
        raise DataError(f"{source} has no feature columns besides the label column. Add feature columns.")
    x = np.empty((len(rows), len(features)), np.float32)
    for i, (row, line) in enumerate(zip(rows, lines, strict=True)):
        try:
            with np.errstate(over="ignore"):  # a number too large for float32 becomes inf, which check_finite reports
                x[i] = [float(row[j]) for j in features]
        except ValueError:
            j = next(j for j in features if not _is_number(row[j]))
            what = "is empty" if row[j] == "" else f"holds '{row[j]}', which is not a number"
            raise DataError(
                f"Expected numbers in the feature columns of {source}, but line {line}, column '{names[j]}' "
                f"{what}. Fix or drop that row, or pass label_column='{names[j]}' if it holds labels."
            ) from None
    check_finite(
        x, source, lambda at: f"line {lines[at[0]]}, column '{names[features[at[1]]]}'", dtype=np.dtype(np.float64)
    )
    labels = None
    if label_at is not None:
        column = np.array([row[label_at] for row in rows])
        if (column == "").any():
            line = lines[int(np.argmax(column == ""))]
            raise DataError(
                f"The label column '{names[label_at]}' of {source} is empty on line {line}. "
                "Give every row a label, or drop the rows without one."
            )
        labels = encode_labels(column, f"{source}, column '{names[label_at]}'")
    return x, labels, tuple(names[j] for j in features) if header else None


def load_csv(
    path: Path, *, seed: int, valid_fraction: float, test_fraction: float, label_column: str | int | None
) -> Dataset:
    """Load a CSV table (one sample per row) and split it by a seeded permutation."""
    x, labels, names = read_csv_columns(path, label_column)
    data = split_arrays(
        path.stem, "tabular", x, labels, seed=seed, valid_fraction=valid_fraction,
        test_fraction=test_fraction, source=f"'{path}'",
    )  # fmt: skip
    data.feature_names = names
    return data


# --- folders of images ----------------------------------------------------------------------


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )  # fmt: skip


def find_images(folder: Path) -> tuple[list[Path], list[int] | None]:
    """List the images in ``folder``: directly inside (no labels) or in class subfolders (labels)."""
    direct = _image_files(folder)
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    classes = [(d, files) for d in subfolders if (files := _image_files(d))]
    if direct and classes:
        raise DataError(
            f"'{folder}' holds images both directly and in subfolders ({classes[0][0].name}/, ...). "
            "Put every image into a class subfolder, or all of them directly in the folder."
        )
    if direct:
        return direct, None
    if not classes:
        raise DataError(
            f"No data found in folder '{folder}': expected images ({', '.join(IMAGE_EXTENSIONS)}) directly "
            "in it or in class subfolders, or the four MNIST IDX files. Point to a folder that holds them."
        )
    files = [f for _, fs in classes for f in fs]
    labels = [k for k, (_, fs) in enumerate(classes) for _ in fs]
    return files, labels


def _is_gray(im, path: Path) -> bool:
    """Whether an image has one channel (a palette of greys counts as one)."""
    if im.mode in _GRAY_MODES:
        return True
    if im.mode in ("P", "PA"):
        palette = np.asarray(im.getpalette() or [], dtype=np.int64).reshape(-1, 3)
        return bool((palette == palette[:, :1]).all())
    if im.mode in _COLOR_MODES:
        return False
    raise DataError(
        f"Image '{path}' has mode '{im.mode}' (16-bit or floating point); expected 8-bit grayscale or colour "
        "images. Convert it, e.g. Image.open(p).convert('L').save(p)."
    )


def read_image_folder(folder: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a folder of same-sized images as float32 ``(N, C, H, W)`` in [0, 1] (C = 1 or 3)."""
    from PIL import Image, UnidentifiedImageError

    files, labels = find_images(folder)
    sizes, gray = [], []
    for f in files:  # first pass reads headers only
        try:
            with Image.open(f) as im:
                sizes.append(im.size)
                gray.append(_is_gray(im, f))
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"Could not read image '{f}': {e}. Remove or replace the file.") from e
    w, h = sizes[0]
    for f, size in zip(files, sizes, strict=True):
        if size != sizes[0]:
            raise DataError(
                f"Expected every image in '{folder}' to be {w}x{h} pixels like '{files[0].name}', "
                f"got {size[0]}x{size[1]} for '{f}'. Resize the images to one size first "
                f"(e.g. Image.open(p).resize(({w}, {h})) with Pillow)."
            )
    mode = "L" if all(gray) else "RGB"
    x = np.empty((len(files), 1 if mode == "L" else 3, h, w), np.float32)
    for i, f in enumerate(files):
        try:
            with Image.open(f) as im:
                a = np.asarray(im.convert(mode), dtype=np.float32)
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"Could not read image '{f}': {e}. Remove or replace the file.") from e
        x[i] = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    x /= 255.0
    return x, None if labels is None else np.asarray(labels, np.int64)


def load_image_folder(path: Path, *, seed: int, valid_fraction: float, test_fraction: float) -> Dataset:
    """Load a folder of images (class subfolders give labels) and split it by a seeded permutation."""
    x, labels = read_image_folder(path)
    return split_arrays(
        path.name, "image", x, labels, seed=seed, valid_fraction=valid_fraction,
        test_fraction=test_fraction, source=f"'{path}'",
    )  # fmt: skip


# --- dispatch -------------------------------------------------------------------------------


def load_path(
    path: Path,
    *,
    seed: int = 0,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    label_column: str | int | None = None,
) -> Dataset:
    """Load a file or a folder of images by its extension; see :func:`aekit.data.load_dataset`."""
    split = {"seed": seed, "valid_fraction": valid_fraction, "test_fraction": test_fraction}
    suffix = path.suffix.lower()
    if label_column is not None and (path.is_dir() or suffix not in (".csv", ".tsv")):
        raise ConfigError(
            f"label_column applies to CSV files only, got it for '{path}'. For .npz files save the labels "
            "as 'y'; for a folder of images put each class into its own subfolder."
        )
    if path.is_dir():
        return load_image_folder(path, **split)
    if suffix not in FILE_EXTENSIONS:
        raise DataError(
            f"Unsupported file type '{suffix or path.name}' for '{path}'. Expected one of "
            f"{', '.join(FILE_EXTENSIONS)}, a folder of images or a folder of MNIST IDX files. "
            "Convert the data, e.g. with numpy.save('data.npy', x)."
        )
    if path.stat().st_size == 0:
        raise DataError(f"'{path}' is empty (0 bytes). Check that the file was written completely.")
    if suffix == ".npy":
        return load_npy(path, **split)
    if suffix == ".npz":
        return load_npz(path, **split)
    return load_csv(path, label_column=label_column, **split)
