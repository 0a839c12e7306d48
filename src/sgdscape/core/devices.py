"""Choosing the torch device once, from ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``,
how many CPU threads small work should use, and fresh float32 memory for records."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from sgdscape.errors import SgdscapeError


def resolve_device(device: str | torch.device = "cpu") -> torch.device:
    """The ``torch.device`` for ``device``; ``"auto"`` picks CUDA when available.

    Raises :class:`SgdscapeError` when CUDA is asked for but not available.
    """
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SgdscapeError(
                f"device {name!r} was asked for but CUDA is not available here; "
                "use --device cpu or --device auto."
            )
        try:
            return torch.device(name)
        except RuntimeError:
            raise SgdscapeError(f"bad CUDA device {name!r}; use cuda or cuda:N.") from None
    raise SgdscapeError(f"unknown device {name!r}; choose one of: auto, cpu, cuda, cuda:N.")


@contextlib.contextmanager
def one_thread_when_small(work: float, device: torch.device, below: float) -> Iterator[None]:
    """Run the body on one CPU thread when ``work`` is below ``below``, then restore.

    For loops of many small calls (a trajectory's steps, a network's minibatches): an
    OpenMP region over a few microseconds of work costs more than it saves, and much more
    on a busy machine, where a descheduled worker stalls the whole region. Nothing changes
    on a GPU, for large work, or when torch already uses one thread.
    """
    threads = torch.get_num_threads()
    if device.type != "cpu" or work >= below or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def new_record(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """An uninitialised float32 record. On the CPU it is numpy's memory, which numpy
    backs with transparent huge pages where Linux allows (far fewer page faults while the
    records of a large batched run are first written) and which the caller gets back as
    arrays without a copy."""
    if device.type == "cpu":
        return torch.from_numpy(np.empty(shape, dtype=np.float32))
    return torch.empty(shape, device=device)
