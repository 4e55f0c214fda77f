"""Data larger than memory: the rows of a .npy file, read in blocks and never held whole.

:class:`NpyRows` stands for one split of a .npy file (a sorted set of its rows) and behaves like
the float32 tensor it replaces wherever aekit reads data in slices: ``len``, ``shape``, ``x[a:b]``
(a tensor), ``min``/``max``. Training draws shuffled batches from :meth:`NpyRows.batches`: blocks of
rows in a random order, read a window at a time (tens of MB, by a background thread while the
previous window trains) and shuffled within the window. Reads go through ``pread`` rather than a
memory map, so the file's pages sit in the page cache, not in the process: resident memory stays
flat however large the file is.

Splits are the same seeded row-level splits as the in-memory path, so ``--storage stream`` and
``--storage memory`` train and test on the same samples.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from aekit.data.arrays import check_finite, split_indices
from aekit.data.base import Dataset
from aekit.data.npy import MAX_GAP as MAX_GAP  # re-exported: tests read it here
from aekit.data.npy import WINDOW_BYTES, NpyLayout, RowReader, read_layout
from aekit.errors import ConfigError, DataError

BLOCK_ROWS = 256  # rows kept together when the order of an epoch is drawn
SCAN_BYTES = 64 * 2**20  # rows read at a time by the opening scan


class NpyRows:
    """One split of a .npy file: its sorted ``rows``, read on demand as float32 tensors.

    ``stats`` holds the split's per-feature ``min`` and ``max`` (found by the opening scan) and, for the
    training split of tabular data, per-feature ``mean`` and ``std``; ``normalization``
    ``(mean, std)`` arrays, when given, are applied to every read.
    """

    def __init__(
        self,
        reader: RowReader,
        rows: np.ndarray,
        stats: dict[str, np.ndarray],
        normalization: tuple[np.ndarray, np.ndarray] | None = None,
    ):
        self.reader, self.rows, self.stats, self.normalization = reader, rows, stats, normalization
        self.window_rows = max(BLOCK_ROWS, WINDOW_BYTES // (4 * math.prod(reader.layout.sample_shape)))

    # --- the tensor-like surface ---------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.rows), *self.reader.layout.sample_shape))

    def dim(self) -> int:
        return len(self.shape)

    def numel(self) -> int:
        return math.prod(self.shape)

    def min(self) -> torch.Tensor:
        return torch.tensor(self._range()[0].min() if len(self) else math.nan)

    def max(self) -> torch.Tensor:
        return torch.tensor(self._range()[1].max() if len(self) else math.nan)

    def _range(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature min and max, after normalisation when there is one."""
        lo, hi = self.stats["min"], self.stats["max"]
        if self.normalization is None:
            return lo, hi
        mean, std = (v.reshape(-1) for v in self.normalization)
        return (lo - mean) / std, (hi - mean) / std

    def __getitem__(self, index: slice | int) -> torch.Tensor:
        """Samples at positions ``index`` of this split (a slice or an int), as a float32 tensor."""
        if isinstance(index, int):
            return self[index : index + 1 or None][0]
        if not isinstance(index, slice):
            raise TypeError(f"a streamed split takes slices or ints, not {type(index).__name__}")
        return self.take(self.rows[index])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """The whole split in memory (an explicit request; training never does this)."""
        return self.take(self.rows).numpy().astype(dtype or np.float32, copy=False)

    def take(self, rows: np.ndarray, order: np.ndarray | None = None) -> torch.Tensor:
        """Samples of the sorted file rows ``rows`` (in ``order`` when given), as a float32 tensor."""
        x = self.reader.rows(rows, order)  # a fresh array: normalising in place is safe
        if self.normalization is not None:
            mean, std = self.normalization
            x -= mean
            x /= std
        return torch.from_numpy(x)

    def normalized(self, mean: np.ndarray, std: np.ndarray) -> NpyRows:
        return NpyRows(self.reader, self.rows, self.stats, (mean.astype(np.float32), std.astype(np.float32)))

    # --- training batches ------------------------------------------------------------------------

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """One epoch of shuffled batches of exactly ``batch_size`` (the last one may be smaller).

        The epoch's order is drawn by ``generator``: blocks of ``BLOCK_ROWS`` rows in a random
        order, grouped into windows; each window is read in one go (the next one in the
        background) and its rows are shuffled before being cut into batches."""
        n_blocks = math.ceil(len(self.rows) / BLOCK_ROWS)
        order = torch.randperm(n_blocks, generator=generator).numpy()
        per_window = max(1, self.window_rows // BLOCK_ROWS)
        windows = [self._positions(np.sort(order[i : i + per_window])) for i in range(0, n_blocks, per_window)]
        carry = None
        with ThreadPoolExecutor(max_workers=1) as pool:

            def read(k: int):  # window k, in an order drawn now: the draws stay in a fixed sequence
                order = torch.randperm(len(windows[k]), generator=generator).numpy()
                return pool.submit(self.take, self.rows[windows[k]], order)

            pending = read(0) if windows else None
            for k in range(len(windows)):
                x = pending.result()
                if k + 1 < len(windows):
                    pending = read(k + 1)  # read while this window trains
                if carry is not None:  # top up the last window's remainder
                    head = torch.cat([carry, x[: batch_size - len(carry)]])
                    x = x[batch_size - len(carry) :]
                    if len(head) < batch_size:
                        carry = head
                        continue
                    yield head
                full = len(x) - len(x) % batch_size
                yield from x[:full].split(batch_size)
                carry = x[full:] if full < len(x) else None
        if carry is not None:
            yield carry

    def sliced_batches(
        self, batch_size: int, generator: torch.Generator, part: Callable[[int], tuple[int, int]]
    ) -> Iterator[tuple[torch.Tensor, int, int]]:
        """The batches of :meth:`batches` (the same draws from ``generator``, so the same batches in the
        same order), each cut to one process's slice: ``part(total)`` gives the ``(start, stop)`` of a
        batch of ``total`` rows to keep. Only those rows are read from the file (about a window's worth
        at a time, the next one in the background). Yields ``(rows, start, total)``."""
        n_blocks = math.ceil(len(self.rows) / BLOCK_ROWS)
        order = torch.randperm(n_blocks, generator=generator).numpy()
        per_window = max(1, self.window_rows // BLOCK_ROWS)
        windows = [self._positions(np.sort(order[i : i + per_window])) for i in range(0, n_blocks, per_window)]
        # :meth:`batches` cuts the windows' shuffled rows, one after another, into batches: the same sequence.
        shuffled = [self.rows[w][torch.randperm(len(w), generator=generator).numpy()] for w in windows]
        sequence = np.concatenate(shuffled) if shuffled else np.zeros(0, dtype=np.int64)
        starts = list(range(0, len(sequence), batch_size))
        per_group = max(1, self.window_rows // batch_size)
        groups = [starts[i : i + per_group] for i in range(0, len(starts), per_group)]
        with ThreadPoolExecutor(max_workers=1) as pool:

            def read(g: int):
                cuts, wanted = [], []
                for start in groups[g]:
                    total = min(batch_size, len(sequence) - start)
                    lo, hi = part(total)
                    cuts.append((lo, total, hi - lo))
                    wanted.append(sequence[start + lo : start + hi])
                rows = np.concatenate(wanted)
                by_row = np.argsort(rows, kind="stable")
                order = np.empty_like(by_row)
                order[by_row] = np.arange(len(rows))  # take() reads sorted rows; this puts them back in order
                return pool.submit(self.take, rows[by_row], order), cuts

            pending = read(0) if groups else None
            for g in range(len(groups)):
                future, cuts = pending
                x = future.result()
                if g + 1 < len(groups):
                    pending = read(g + 1)
                for lo, total, size in cuts:
                    yield x[:size], lo, total
                    x = x[size:]

    def _positions(self, blocks: np.ndarray) -> np.ndarray:
        """Positions in this split of the rows of ``blocks`` (sorted block numbers)."""
        positions = (blocks[:, None] * BLOCK_ROWS + np.arange(BLOCK_ROWS)).reshape(-1)
        return positions[positions < len(self.rows)]


# --- opening a file --------------------------------------------------------------------------


def scan(layout: NpyLayout, reader: RowReader, split_of_row: np.ndarray, tabular_train: bool) -> list[dict]:
    """One pass over the file: check every value is finite; per split min and max; for tabular
    data the training split's per-feature mean and std (merged chunk by chunk, Chan et al.)."""
    n_splits, width = 3, math.prod(layout.sample_shape)
    lo, hi = np.full((n_splits, width), np.inf), np.full((n_splits, width), -np.inf)
    count, mean, m2 = 0, None, None
    step = max(1, SCAN_BYTES // max(layout.row_bytes, 1))
    big = layout.shape[0] * layout.row_bytes > 4 * SCAN_BYTES  # a bar only where the scan takes a while
    bar = tqdm(total=layout.shape[0], unit="row", desc=f"checking {layout.path.name}", leave=False,
               disable=None if big else True)  # fmt: skip
    for start in range(0, layout.shape[0], step):
        bar.update(min(step, layout.shape[0] - start))
        stop = min(start + step, layout.shape[0])
        x = layout.to_samples(reader.read(start, stop))
        flat = x.reshape(len(x), -1)
        check_finite(flat, f"'{layout.path}'", _row_in_file(start), dtype=layout.dtype)
        which = split_of_row[start:stop]
        for s in range(n_splits):
            part = flat[which == s]
            if len(part):
                np.minimum(lo[s], part.min(0), out=lo[s])
                np.maximum(hi[s], part.max(0), out=hi[s])
        if tabular_train:
            part = flat[which == 0].astype(np.float64)
            if len(part):
                b_mean, b_m2 = part.mean(0), ((part - part.mean(0)) ** 2).sum(0)
                if mean is None:
                    count, mean, m2 = len(part), b_mean, b_m2
                else:
                    total = count + len(part)
                    delta = b_mean - mean
                    mean = mean + delta * len(part) / total
                    m2 = m2 + b_m2 + delta**2 * count * len(part) / total
                    count = total
    bar.close()
    stats = [{"min": lo[s], "max": hi[s]} for s in range(n_splits)]  # per feature
    if tabular_train and mean is not None:
        stats[0]["mean"], stats[0]["std"] = mean, np.sqrt(m2 / count)
    return stats


def _row_in_file(start: int) -> Callable[[tuple[int, ...]], str]:
    """Name a position of a block read from row ``start`` by the file's row, for error messages."""
    return lambda at: f"row {start + at[0]}, position {at[1]}"


def open_npy(path: Path, *, seed: int, valid_fraction: float, test_fraction: float) -> Dataset:
    """A :class:`~aekit.data.base.Dataset` whose splits are :class:`NpyRows` of the file at ``path``."""
    layout = read_layout(path)
    source = f"'{path}'"
    parts = split_indices(
        layout.shape[0], seed=seed, valid_fraction=valid_fraction, test_fraction=test_fraction, source=source
    )
    split_of_row = np.empty(layout.shape[0], np.int8)
    for s, rows in enumerate(parts):
        split_of_row[rows] = s
    reader = RowReader(layout)
    stats = scan(layout, reader, split_of_row, layout.kind == "tabular")
    splits = [NpyRows(reader, rows.astype(np.int64), st) for rows, st in zip(parts, stats, strict=True)]
    return Dataset(path.stem, layout.kind, *splits)


def should_stream(path: Path, storage: str) -> bool:
    """Whether ``storage`` (auto | memory | stream) streams the file at ``path``.

    ``auto`` streams a .npy whose float32 copy would take more than half the memory available."""
    is_npy = path.suffix.lower() == ".npy" and path.is_file()
    if storage == "memory":
        return False
    if storage == "stream":
        if not is_npy:
            raise ConfigError(
                f"--storage stream reads .npy files only, and '{path}' is not one. Convert it with "
                "numpy.save('data.npy', x) (rows = samples), or use --storage memory."
            )
        return True
    if not is_npy:
        return False
    try:
        layout = read_layout(path)
    except DataError:  # the in-memory loader reports what is wrong with the file
        return False
    return 4 * math.prod(layout.shape) > 0.5 * available_memory()


def available_memory() -> int:
    """Bytes of memory available to new allocations (MemAvailable on Linux; else all of it)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
