"""Atomic file writes (a run directory is never left half-written), and returning freed memory."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from aekit.errors import StorageError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` only if the block succeeds.

    The temporary file lives in the same directory so that the final ``os.replace`` is atomic:
    readers see either the old file or the complete new one, never a partial write. An operating
    system error (full or read-only disk, no permission) is a :class:`StorageError` naming ``path``;
    the old file is intact and the temporary one removed.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    except OSError as err:
        raise storage_error(err, path) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates owner-only files (and a writer such as safetensors may replace the file it is
        # given): give the result the permissions a plain open() would, just before it takes its name.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    except StorageError:
        raise
    except OSError as err:
        raise storage_error(err, path) from None
    finally:
        with contextlib.suppress(OSError):
            tmp_path.unlink(missing_ok=True)


TMP_SUFFIX = ".tmp"


def storage_error(err: OSError, path: str | os.PathLike, doing: str = "write") -> StorageError:
    """The :class:`StorageError` for an operating system's refusal, with the fix for its cause."""
    path = Path(path)
    fixes = {
        errno.ENOSPC: f"no space is left on the device holding '{path}'. Free some space or choose another --out",
        errno.EDQUOT: f"the disk quota of '{path}' is used up. Free some space or choose another --out",
        errno.EROFS: f"'{path}' is on a read-only file system. Choose an --out on a writable disk",
        errno.EACCES: f"permission denied for '{path}'. Choose a path you may write to, or change its permissions",
        errno.EPERM: f"the operation is not permitted on '{path}'. Choose a path you may write to",
        errno.ENOTDIR: f"a part of '{path}' is a file, not a directory. Choose another path",
        errno.EISDIR: f"'{path}' is a directory. Name a file",
        errno.ENOENT: f"'{path}' or its folder does not exist. Check the path",
    }
    reason = fixes.get(err.errno, f"{err.strerror or err} ('{path}'). Check the path and the disk")
    error = StorageError(f"Could not {doing} '{path.name}': {reason}. Files written before are intact.")
    error.errno = err.errno
    return error


def remove_stale_temporaries(folder: str | os.PathLike) -> None:
    """Remove the temporary files an interrupted atomic write left in ``folder`` (a killed process
    cannot run its clean-up). Call it only while holding the folder's lock: another writer's
    temporaries are live."""
    for stray in Path(folder).glob(f".*{TMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            stray.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release_freed_memory() -> None:
    """Hand memory freed by large tensors back to the operating system (glibc only; else a no-op).

    Loops that allocate and free the same large CPU tensors many times (the importance-weighted
    bound allocates ~16 MB per step) can otherwise see glibc's heap grow step after step, because
    its adaptive mmap threshold moves such blocks onto a heap it does not trim.
    """
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
