"""Choosing the torch device once, from ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``."""

from __future__ import annotations

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
