"""One writer per run directory: a lock file holding the writer's pid, host and command.

The lock is an advisory ``flock`` on ``.lock`` in the run directory: the kernel drops it when the
process ends, however it ends (``kill -9`` included), so a lock left by a dead process is stale and
the next writer takes it over. Where ``flock`` is missing or refused (Windows, some network file
systems) the file's pid decides: a live process on this host holds the lock, a dead one does not.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aekit.errors import RunLockedError
from aekit.fsutil import storage_error

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK = ".lock"


class RunLock:
    """The lock of one run directory, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.file = self.path / LOCK
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock (creating the directory), or raise :class:`RunLockedError` naming its holder."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise storage_error(err, self.path, "create the run directory") from None
        if not self._lock(fd):
            os.close(fd)
            raise RunLockedError(_held_message(self.path, read_holder(self.file)))
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python"
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "command": command}  # fmt: skip
        try:
            os.ftruncate(fd, 0)
            os.write(fd, (json.dumps(holder) + "\n").encode())
        except OSError as err:
            os.close(fd)
            raise storage_error(err, self.file, "write the run directory's lock file") from None
        self._fd = fd
        return self

    def release(self) -> None:
        """Let go of the lock; the file goes too (a reader never mistakes it for a live writer)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.file.unlink()
        with contextlib.suppress(OSError):
            os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _lock(self, fd: int) -> bool:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False
            except OSError:  # flock not supported here: fall back to the pid in the file
                pass
        holder = read_holder(self.file)
        return holder is None or not _alive(holder)


@contextlib.contextmanager
def locked(path: str | Path) -> Iterator[RunLock]:
    """``with locked(run_dir):`` the block is the run directory's only writer."""
    with RunLock(path) as lock:
        yield lock


def read_holder(file: Path) -> dict[str, Any] | None:
    """What the lock file says of its holder, or None when it is absent, empty or unreadable."""
    try:
        holder = json.loads(file.read_text() or "null")
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _alive(holder: dict[str, Any]) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # another machine's process: assume it lives (its pid means nothing here)
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _held_message(path: Path, holder: dict[str, Any] | None) -> str:
    if holder is None:
        who = "another aekit process"
    else:
        who = (f"another aekit process (pid {holder.get('pid')} on {holder.get('host')}, since "
               f"{holder.get('since')}: {holder.get('command')})")  # fmt: skip
    return (
        f"The run directory '{path}' is being written by {who}. Two writers would mix their files: wait for it "
        f"to finish, stop it, or choose another --out."
    )
