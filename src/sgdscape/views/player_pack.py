"""The browser player's data format: packed landscapes, the packed run, the page script.

:func:`encode_log_grids` stores log landscapes compactly (16-bit quantised, delta-coded along
rows, split into byte planes, gzipped, base64); :func:`decode_log_grids` inverts it, as
:data:`PLAYER_JS` does in the page. :class:`Player` is what
:func:`sgdscape.views.plotly_figures.player` returns, and :func:`distinct_batches` finds
the distinct minibatches it stores once each. All are importable from
:mod:`sgdscape.views.plotly_figures` too.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from sgdscape.errors import SgdscapeError

__all__ = [
    "CODE_LEVELS",
    "NOT_FINITE",
    "PLAYER_JS",
    "Player",
    "decode_log_grids",
    "distinct_batches",
    "encode_log_grids",
]
CODE_LEVELS = 65534  # quantisation levels of a log landscape; code 65535 marks a non-finite value
NOT_FINITE = 65535


def encode_log_grids(values: np.ndarray) -> dict[str, Any]:
    """Pack log landscapes ``(U, G2, G1)`` compactly for the browser (the player packs the
    fan of next steps' points ``(S, 2, N)`` the same way).

    Each landscape is quantised to 16 bits between its own finite min and max (absolute
    error at most ``(max - min) / 131068``), non-finite values get the code 65535; codes
    are delta-coded along rows (mod 2**16), split into a high-byte and a low-byte plane,
    gzipped and base64-encoded. :func:`decode_log_grids` and ``PLAYER_JS`` invert it.

    Returns:
        ``{"shape": [U, G2, G1], "lo": [U], "hi": [U], "gzip_base64": str}``.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 3:
        raise SgdscapeError(f"log grids must have shape (U, G2, G1), got {values.shape}.")
    finite = np.isfinite(values)
    masked = np.where(finite, values, np.nan)
    with np.errstate(invalid="ignore"):
        any_finite = finite.any(axis=(1, 2))
        lo = np.where(any_finite, np.nanmin(np.where(finite, masked, np.inf), axis=(1, 2)), 0.0)
        hi = np.where(any_finite, np.nanmax(np.where(finite, masked, -np.inf), axis=(1, 2)), 0.0)
    span = np.where(hi > lo, hi - lo, 1.0)[:, None, None]
    scaled = np.round((np.where(finite, values, 0.0) - lo[:, None, None]) / span * CODE_LEVELS)
    codes = np.where(finite, np.clip(scaled, 0, CODE_LEVELS), NOT_FINITE).astype(np.int64)
    delta = (np.diff(codes, axis=-1, prepend=0) % 65536).astype(np.uint16)
    planes = np.concatenate(
        [(delta >> 8).astype(np.uint8).ravel(), (delta & 255).astype(np.uint8).ravel()]
    )
    packed = gzip.compress(planes.tobytes(), compresslevel=9, mtime=0)
    return {
        "shape": list(values.shape),
        "lo": [float(v) for v in lo],
        "hi": [float(v) for v in hi],
        "gzip_base64": base64.b64encode(packed).decode("ascii"),
    }


def decode_log_grids(packed: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_log_grids`: ``(U, G2, G1)`` float64, NaN where not finite."""
    shape = tuple(packed["shape"])
    planes = np.frombuffer(gzip.decompress(base64.b64decode(packed["gzip_base64"])), np.uint8)
    n = int(np.prod(shape))
    delta = (planes[:n].astype(np.int64) << 8 | planes[n:]).reshape(shape)
    codes = np.cumsum(delta, axis=-1) % 65536
    lo = np.asarray(packed["lo"])[:, None, None]
    hi = np.asarray(packed["hi"])[:, None, None]
    values = lo + codes / CODE_LEVELS * (hi - lo)
    return np.where(codes == NOT_FINITE, np.nan, values)


@dataclass(frozen=True)
class Player:
    """A run packed for the browser: ``figure`` (a Plotly figure dict without per-step
    values) and ``frames`` (the per-step values and packed landscapes read by ``PLAYER_JS``).
    """

    figure: dict[str, Any]
    frames: dict[str, Any]


def distinct_batches(
    steps: Sequence[int], batch_of: Callable[[int], np.ndarray]
) -> tuple[list[int], list[int]]:
    """``(first_step, which)``: the first of ``steps`` using each distinct minibatch (as a
    set of samples), and for every step the index of its minibatch in that list."""
    distinct: dict[tuple[int, ...], int] = {}
    first_step: list[int] = []
    which = []
    for step in steps:
        key = tuple(sorted(int(i) for i in batch_of(step)))
        if key not in distinct:
            distinct[key] = len(first_step)
            first_step.append(step)
        which.append(distinct[key])
    return first_step, which


# The browser side of `player` (decode the grids, draw, drive the slider and play button)
# is the package asset ``views/assets/player.js``; the standalone page inlines it.
PLAYER_JS = resources.files("sgdscape.views").joinpath("assets/player.js").read_text("utf-8")
