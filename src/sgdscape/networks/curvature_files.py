"""The curvature record of a network's training run, its ``--curvature`` spec and its file.

:class:`TrainingCurvature` holds the Hessian spectra that
:func:`sgdscape.networks.curvature.training_curvature` measured along a recorded run and stores
itself as named arrays in ``network.npz``; :func:`parse_curvature_spec` reads the command line's
``--curvature`` words into a :class:`CurvatureRequest`; :func:`load_training_curvature` reads the
record back from a saved view.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sgdscape.errors import SgdscapeError
from sgdscape.io import published, read_archive
from sgdscape.networks.saved_view import VIEW_SCHEMA


@dataclass(frozen=True)
class TrainingCurvature:
    """Hessian spectra along a recorded training run, at the chosen steps ``S``.

    Attributes:
        steps: ``(S,)`` the recorded steps examined.
        eigenvalues: ``(S, k)`` of the full-data loss at each step's iterate, descending.
        batch_eigenvalues: ``(S, k)`` of that step's minibatch loss (``None`` if not asked).
        lr: the learning rate of the run.
        trace: ``(S,)`` Hutchinson's ``tr H`` of the full-data loss (``None`` if not asked).
        trace_error: ``(S,)`` its standard error.
        density_grid: ``(S, D)`` eigenvalue axis of each step's smoothed spectral density.
        density: ``(S, D)`` the density (unit integral on its grid; ``None`` if not asked).
    """

    steps: np.ndarray
    eigenvalues: np.ndarray
    batch_eigenvalues: np.ndarray | None
    lr: float
    trace: np.ndarray | None = None
    trace_error: np.ndarray | None = None
    density_grid: np.ndarray | None = None
    density: np.ndarray | None = None

    @property
    def sharpness(self) -> np.ndarray:
        """``(S,)`` the top eigenvalue of the full-data loss."""
        return self.eigenvalues[:, 0]

    @property
    def stability_threshold(self) -> float:
        """``2 / lr``: the sharpness above which GD on the local quadratic diverges."""
        return 2.0 / self.lr

    def arrays(self, prefix: str = "curvature_") -> dict[str, np.ndarray]:
        """The record as named arrays (``prefix`` + field name), the ones present only."""
        values = {
            "steps": self.steps,
            "eigenvalues": self.eigenvalues,
            "batch_eigenvalues": self.batch_eigenvalues,
            "lr": np.asarray(self.lr, dtype=np.float64),
            "trace": self.trace,
            "trace_error": self.trace_error,
            "density_grid": self.density_grid,
            "density": self.density,
        }
        return {prefix + k: np.asarray(v) for k, v in values.items() if v is not None}

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, np.ndarray], prefix: str = "curvature_"
    ) -> TrainingCurvature | None:
        """The record stored by :meth:`arrays` (``None`` when ``arrays`` hold none)."""
        if prefix + "steps" not in arrays:
            return None

        def get(name: str) -> np.ndarray | None:
            return arrays.get(prefix + name)

        return cls(
            steps=arrays[prefix + "steps"],
            eigenvalues=arrays[prefix + "eigenvalues"],
            batch_eigenvalues=get("batch_eigenvalues"),
            lr=float(arrays[prefix + "lr"]),
            trace=get("trace"),
            trace_error=get("trace_error"),
            density_grid=get("density_grid"),
            density=get("density"),
        )


@dataclass(frozen=True)
class CurvatureRequest:
    """What ``sgdscape network --curvature SPEC`` computes along the recorded training.

    Attributes:
        k: top eigenvalues per step (``top-k=K``).
        trace: Hutchinson's trace too (``trace``).
        density: the SLQ spectral density too (``density``).
        batch: each step's minibatch eigenvalues too (``batch``).
        steps: how many steps, evenly spaced, first and last included (``steps=N``).
    """

    k: int = 1
    trace: bool = False
    density: bool = False
    batch: bool = False
    steps: int = 10


#: the words of a ``--curvature`` spec
CURVATURE_SPEC_WORDS = ("top-k=K", "trace", "density", "batch", "steps=N")


def parse_curvature_spec(text: str) -> CurvatureRequest:
    """Parse ``"top-k=3,trace,density"`` (any order, comma-separated; see
    :data:`CURVATURE_SPEC_WORDS`) into a :class:`CurvatureRequest`.

    Raises :class:`SgdscapeError` naming the bad item and the allowed ones.
    """
    values: dict[str, Any] = {}
    allowed = ", ".join(CURVATURE_SPEC_WORDS)
    items = [item.strip() for item in str(text).split(",")]
    if not any(items):
        raise SgdscapeError(f"--curvature needs at least one of: {allowed}; got {text!r}.")
    for item in items:
        key, _, number = item.partition("=")
        key = key.strip().lower()
        if key in ("trace", "density", "batch") and not number:
            values[key] = True
        elif key in ("top-k", "steps") and number:
            high = 50 if key == "top-k" else 10_000
            try:
                count = int(number)
            except ValueError:
                count = 0
            if not 1 <= count <= high:
                raise SgdscapeError(
                    f"--curvature {key} must be an integer from 1 to {high}, got {number!r}."
                )
            values["k" if key == "top-k" else "steps"] = count
        else:
            raise SgdscapeError(
                f"--curvature has an unknown item {item!r}; use a comma-separated list of: {allowed}."
            )
    return CurvatureRequest(**values)


def load_training_curvature(path: str | Path) -> TrainingCurvature | None:
    """The curvature record a ``network.npz`` holds (``None`` if it was written without
    ``--curvature``); the archive is checked and read without pickle."""
    path = Path(path)
    arrays = read_archive(published(path.parent, path.name), VIEW_SCHEMA)
    return TrainingCurvature.from_arrays(arrays)
