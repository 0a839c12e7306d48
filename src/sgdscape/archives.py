"""Reading sgdscape's ``.npz`` archives with one-line errors for files of the wrong kind."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from sgdscape.errors import SgdscapeError


def read_archive(
    path: str | Path, kind: str, required: Iterable[str], how_to_write: str, other_kind: str
) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path``, checked to hold ``required``.

    Args:
        kind: what the file should be, for messages (``"saved run"``).
        how_to_write: how to make one (``"`sgdscape run --out DIR`"``).
        other_kind: a hint for the look-alike file of the other kind.

    Raises :class:`SgdscapeError` in one sentence when the file is not a readable archive
    (it is never unpickled) or lacks a required array.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError):
        raise SgdscapeError(
            f"{str(path)!r} is not a {kind} (not a readable .npz archive); write one with "
            f"{how_to_write}."
        ) from None
    missing = sorted(set(required) - set(arrays))
    if missing:
        raise SgdscapeError(
            f"{str(path)!r} is not a {kind} (it lacks {', '.join(missing)}); {other_kind}."
        )
    return arrays
