"""Per-sample random draws that are the same in one process as across many.

Under data parallelism (:mod:`aekit.training.distributed`) each process trains on a slice of the
global batch, and every process's random stream is seeded alike. A part that draws noise for each
sample of a batch (the reparameterisation, input corruption, random projections) draws it through
these functions: inside :func:`batch_slice` they draw the noise of the whole global batch and keep
this process's rows, so that N processes see exactly the numbers one process would, and their
training reaches the same weights. Outside it (one process, evaluation) they are plain draws.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

# (first row of this process's slice, rows in the global batch), or None outside a sliced step.
_SLICE: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar("aekit_batch_slice", default=None)


@contextlib.contextmanager
def batch_slice(offset: int, total: int) -> Iterator[None]:
    """Within this context, per-sample draws for a batch of ``n`` rows are rows ``offset .. offset + n``
    of the draw for the ``total`` rows of the global batch."""
    token = _SLICE.set((offset, total))
    try:
        yield
    finally:
        _SLICE.reset(token)


def _sliced(draw: Callable[..., torch.Tensor], shape: Sequence[int], generator: torch.Generator | None,
            **kwargs: Any) -> torch.Tensor:  # fmt: skip
    where = _SLICE.get()
    if where is None or generator is not None or not shape:  # a caller's own stream is never sliced
        return draw(tuple(shape), generator=generator, **kwargs)
    offset, total = where
    return draw((total, *shape[1:]), generator=generator, **kwargs)[offset : offset + shape[0]]


def randn(shape: Sequence[int], *, generator: torch.Generator | None = None, **kwargs: Any) -> torch.Tensor:
    """``torch.randn(shape)`` for a batch whose first dimension is the samples."""
    return _sliced(torch.randn, shape, generator, **kwargs)


def rand(shape: Sequence[int], *, generator: torch.Generator | None = None, **kwargs: Any) -> torch.Tensor:
    """``torch.rand(shape)`` for a batch whose first dimension is the samples."""
    return _sliced(torch.rand, shape, generator, **kwargs)


def randn_like(x: torch.Tensor) -> torch.Tensor:
    """``torch.randn_like(x)`` for a batch ``x`` whose first dimension is the samples."""
    return randn(x.shape, device=x.device, dtype=x.dtype)
