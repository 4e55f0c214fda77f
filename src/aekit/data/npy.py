"""Reading a .npy file row by row: its header's layout, and rows fetched by position with ``pread``.

Both ways of loading a .npy use this: the in-memory loader (:func:`aekit.data.files.load_npy`) reads
each split straight into its array, and streaming (:mod:`aekit.data.stream`) reads blocks of rows
during training. It sits apart from both so that neither has to import the other.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aekit.data.arrays import cast_float32, sample_layout
from aekit.errors import DataError

WINDOW_BYTES = 64 * 2**20  # rows shuffled together: large sequential reads, a few windows in memory
MAX_GAP = 64  # rows between two wanted rows below which one read covers both


@dataclass(frozen=True)
class NpyLayout:
    """Where the rows of a .npy file lie and how one row turns into a float32 sample."""

    path: Path
    offset: int  # bytes before the first row
    dtype: np.dtype
    shape: tuple[int, ...]  # of the array in the file
    sample_shape: tuple[int, ...]  # of one sample as aekit sees it: (D,) or (C, H, W)
    kind: str  # "tabular" or "image"
    channels_last: bool

    @property
    def row_bytes(self) -> int:
        return self.dtype.itemsize * math.prod(self.shape[1:])

    def to_samples(self, raw: np.ndarray) -> np.ndarray:
        """Raw rows ``(n, *shape[1:])`` as float32 samples ``(n, *sample_shape)``; uint8 images / 255."""
        if self.channels_last:
            raw = raw.transpose(0, 3, 1, 2)
        x = cast_float32(raw).reshape(len(raw), *self.sample_shape)
        if self.kind == "image" and self.dtype == np.uint8:
            x /= 255.0
        return x


def read_layout(path: Path) -> NpyLayout:
    """Parse the header of a .npy file; refuse what cannot be read row by row."""
    source = f"'{path}'"
    try:
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                raise ValueError("it lacks the .npy header")
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)  # parses the header; reads no data
        shape, dtype, offset = mapped.shape, mapped.dtype, mapped.offset
        fortran_order = not mapped.flags.c_contiguous
        del mapped
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"Could not read {source} as a .npy file: {e}. Save the array again with numpy.save.") from e
    if dtype.hasobject or dtype.kind not in "biuf":
        raise DataError(f"Expected a numeric array in {source}, got dtype {dtype}. Save it as float32 or uint8.")
    if fortran_order and len(shape) > 1:
        raise DataError(
            f"{source} is stored in Fortran (column-major) order, so its rows are not contiguous and cannot be "
            "streamed. Save it with numpy.save(path, numpy.ascontiguousarray(x)), or use --storage memory."
        )
    # A zero-stride stand-in of the file's shape: the shape checks, and their messages, without the data.
    stand_in = np.lib.stride_tricks.as_strided(np.empty(1, dtype), shape=shape, strides=(0,) * len(shape))
    view, kind = sample_layout(stand_in, source)  # the same shape rules as the in-memory loader
    expected = offset + dtype.itemsize * math.prod(shape)
    if path.stat().st_size < expected:
        raise DataError(
            f"{source} is truncated: its header promises {expected:,} bytes, the file has {path.stat().st_size:,}. "
            "Save the array again."
        )
    channels_last = len(shape) == 4 and view.shape[1:] != tuple(shape[1:])
    return NpyLayout(path, offset, dtype, tuple(shape), tuple(view.shape[1:]), kind, channels_last)


class RowReader:
    """Reads rows of a file by position, from any thread (``pread`` has no shared file offset)."""

    def __init__(self, layout: NpyLayout):
        self.layout = layout
        self._fd = os.open(layout.path, os.O_RDONLY)
        self._lock = threading.Lock()  # only used where os.preadv is missing

    def read(self, start: int, stop: int) -> np.ndarray:
        """Raw rows ``start:stop`` as an array of the file's dtype."""
        buf = np.empty((stop - start, *self.layout.shape[1:]), self.layout.dtype)
        self.read_into(buf, start)
        return buf

    def read_into(self, buf: np.ndarray, start: int) -> None:
        """Fill ``buf`` (contiguous, the file's dtype) with the raw rows from ``start`` on."""
        lay = self.layout
        view, pos = memoryview(buf.reshape(-1).view(np.uint8)), lay.offset + start * lay.row_bytes
        done = 0
        while done < len(view):
            if hasattr(os, "preadv"):
                n = os.preadv(self._fd, [view[done:]], pos + done)
            else:  # pragma: no cover - platforms without preadv
                with self._lock:
                    os.lseek(self._fd, pos + done, os.SEEK_SET)
                    n = os.readv(self._fd, [view[done:]])
            if n == 0:
                raise DataError(f"'{lay.path}' ended early while reading from row {start}; was it overwritten?")
            done += n

    def rows(self, rows: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
        """Float32 samples of the sorted file rows ``rows``, taken in ``order`` when given.

        Nearby rows are read together (one read per run, into one buffer), and the wanted rows
        are picked out and put in order by a single gather."""
        lay = self.layout
        if not len(rows):
            return np.empty((0, *lay.sample_shape), np.float32)
        runs = np.split(rows, np.flatnonzero(np.diff(rows) > MAX_GAP) + 1)
        total = sum(int(r[-1]) + 1 - int(r[0]) for r in runs)
        buf = np.empty((total, *lay.shape[1:]), lay.dtype)
        local = np.empty(len(rows), np.int64)  # where each wanted row lies in buf
        at = k = 0
        for run in runs:
            length = int(run[-1]) + 1 - int(run[0])
            self.read_into(buf[at : at + length], int(run[0]))
            local[k : k + len(run)] = run - run[0] + at
            at, k = at + length, k + len(run)
        if order is not None:
            local = local[order]
        raw = buf if order is None and total == len(rows) else buf[local]
        return lay.to_samples(raw)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()
