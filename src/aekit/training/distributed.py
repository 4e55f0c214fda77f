"""Data-parallel training with PyTorch's distributed engine, started by ``torchrun``.

``torchrun --nproc-per-node N -m aekit train ...`` starts N processes (ranks) with the environment
variables of its rendezvous (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``...). aekit reads
them, joins the process group (gloo on the CPU, nccl on CUDA) and trains with
``DistributedDataParallel``: every rank draws the same batch order, takes its slice of each global
batch, and the gradients are averaged across ranks, so a run's hyperparameters mean the same at any
process count (docs/distributed.md). Without torchrun's variables nothing here does anything.

A rank that dies or hangs makes the others fail after ``AEKIT_DIST_TIMEOUT`` seconds (default 600)
instead of waiting forever.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from aekit.errors import ConfigError, DataError

TIMEOUT_VARIABLE = "AEKIT_DIST_TIMEOUT"
T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """Where this process stands among the ranks of a data-parallel run (one rank without torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def parallel(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        """Whether this rank writes the run directory and shows progress (rank 0)."""
        return self.rank == 0


def world() -> World:
    """This process's place in the run, from torchrun's environment variables."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))


def join(device: torch.device) -> World:
    """Join the process group of a torchrun launch (once per process) and return this rank's place.

    The backend follows the device: nccl for CUDA, gloo for the CPU."""
    here = world()
    if not here.parallel or dist.is_initialized():
        return here
    if not dist.is_available():  # pragma: no cover - every official build has it
        raise ConfigError("This PyTorch build has no torch.distributed; run in one process (without torchrun).")
    raw = os.environ.get(TIMEOUT_VARIABLE, "600")
    try:
        seconds = float(raw)
    except ValueError:
        raise ConfigError(f"{TIMEOUT_VARIABLE} must be a number of seconds, got {raw!r}.") from None
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=seconds))
    return here


def leave() -> None:
    """Leave the process group, if this process joined one (at the end of a command)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def check_batch_size(batch_size: int, here: World) -> None:
    """The batch size is the global one: it must split into equal shares over the ranks."""
    if batch_size % here.size:
        fits = max(here.size, batch_size // here.size * here.size)
        raise ConfigError(
            f"--batch-size {batch_size} does not divide over the {here.size} processes of this torchrun launch. "
            f"The batch size is the global one (each process takes an equal share): use a multiple of {here.size}, "
            f"e.g. {fits}."
        )


def device_for(device: torch.device) -> torch.device:
    """Under torchrun each rank of a machine takes its own GPU (by ``LOCAL_RANK``)."""
    here = world()
    if here.parallel and device.type == "cuda" and device.index is None:
        return torch.device("cuda", here.local_rank)
    return device


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over the ranks, in place (a no-op in one process)."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor)
    return tensor


def check_agreement(what: str, value: str) -> None:
    """Raise on every rank when the ranks disagree on ``value`` (e.g. a digest of the configuration):
    they would silently train different things."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return
    values: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    if len(set(values)) > 1:
        groups: dict[str, list[int]] = {}
        for rank, v in enumerate(values):
            groups.setdefault(str(v), []).append(rank)
        ranks = "; ".join(f"ranks {', '.join(map(str, r))} agree" for r in groups.values())
        error = DataError if "data" in what else ConfigError
        raise error(
            f"The ranks of this torchrun launch disagree on {what} ({ranks}). Start every rank with the same "
            "command, options and data files."
        )


def digest(*parts: object) -> str:
    """A short fingerprint of ``parts`` (strings, numbers, tensors) for :func:`check_agreement`."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            h.update(part.detach().cpu().contiguous().numpy().tobytes())
        else:
            h.update(repr(part).encode())
    return h.hexdigest()[:16]


def shard(count: int, here: World) -> tuple[int, int]:
    """The rows ``(start, stop)`` of ``count`` that rank ``here`` takes: contiguous, sizes differing by
    at most one, in rank order (so the ranks' slices, in order, are the whole)."""
    base, extra = divmod(count, here.size)
    start = here.rank * base + min(here.rank, extra)
    return start, start + base + (here.rank < extra)


def from_main(make: Callable[[], T]) -> T:
    """``make()`` on rank 0, its result given to every rank (e.g. the run directory's path). When it
    raises on rank 0, the other ranks raise too, with its message, instead of waiting for it."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return make()
    payload: list[Any] = [None]
    error: BaseException | None = None
    if dist.get_rank() == 0:
        try:
            payload[0] = ("ok", make())
        except Exception as err:  # passed on to the other ranks, then raised here too
            error, payload[0] = err, ("error", f"{type(err).__name__}: {err}")
    dist.broadcast_object_list(payload, src=0)
    if error is not None:
        raise error
    status, value = payload[0]
    if status == "error":
        raise ConfigError(f"Rank 0 stopped this torchrun launch: {value}")
    return value
