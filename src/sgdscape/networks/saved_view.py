"""A real network's stochastic view as a record, and its ``network.npz`` file.

:class:`StochasticView` holds what :func:`sgdscape.networks.recording.stochastic_view` computes
(the notebook's two panels for a real network); :func:`save_view` writes it to one ``.npz``
atomically and :func:`load_view` reads it back, checked against :data:`VIEW_SCHEMA` and without
pickle.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sgdscape.core.landscape import Landscape
from sgdscape.errors import SgdscapeError
from sgdscape.io import Schema, Spec, published, read_archive, write_atomic
from sgdscape.networks.directions import Directions


@dataclass(frozen=True)
class StochasticView:
    """A real network's training run seen on its PCA plane.

    The same shape of data as a :class:`sgdscape.records.run.RunResult`: a full-data landscape,
    the path in plane coordinates and the minibatch landscape of each step.

    Attributes:
        landscape: the full-data landscape on the plane (``risk (G2, G1)``).
        path_coords: ``(T + 1, 2)`` projected iterates (last row = final iterate).
        steps: ``(S,)`` the steps whose minibatch landscapes are stored.
        batch_landscapes: ``(S, G2, G1)`` loss of the minibatch used at ``steps[i]``.
        batch_indices: ``(T, B)`` minibatch of each step, padded with -1.
        batch_loss: ``(T,)`` minibatch loss at each iterate (true parameters).
        risk: ``(T + 1,)`` full-data loss at each true iterate (off the plane).
        grads_plane: ``(T, 2)`` minibatch gradients projected on the plane.
        explained_variance: ``(2,)`` explained variance ratio of the two components.
        off_plane: ``(T + 1,)`` distance of each true iterate from the plane (the path's
            points are projections; the landscapes are on the plane).
        info: name, optimizer, lr, batch_size, n_samples, kind of directions.
        directions: the plane (not saved; ``None`` after loading).
    """

    landscape: Landscape
    path_coords: np.ndarray
    steps: np.ndarray
    batch_landscapes: np.ndarray
    batch_indices: np.ndarray
    batch_loss: np.ndarray
    risk: np.ndarray
    grads_plane: np.ndarray
    explained_variance: np.ndarray
    off_plane: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    directions: Directions | None = field(default=None, compare=False, repr=False)

    @property
    def n_steps(self) -> int:
        """Number of recorded steps ``T``."""
        return int(self.batch_indices.shape[0])

    def path(self) -> np.ndarray:
        """Iterates in plane coordinates, ``(T + 1, 2)``."""
        return self.path_coords

    def batch(self, step: int) -> np.ndarray:
        """Sample indices of the minibatch used at ``step``."""
        row: np.ndarray = self.batch_indices[step]
        return row[row >= 0]

    def batch_landscape(self, step: int) -> np.ndarray:
        """Loss of the minibatch used at ``step`` on the plane, ``(G2, G1)``."""
        where = np.flatnonzero(self.steps == step)
        if where.size:
            found: np.ndarray = self.batch_landscapes[int(where[0])]
            return found
        if self.landscape.sample_loss is not None:
            return self.landscape.batch_loss(self.batch(step))
        raise SgdscapeError(
            f"step {step} has no stored minibatch landscape; stored steps: "
            f"{', '.join(str(s) for s in self.steps[:10])}{', …' if self.steps.size > 10 else ''}."
        )


def save_view(
    view: StochasticView, path: str | Path, extra: Mapping[str, np.ndarray] | None = None
) -> Path:
    """Write ``view`` to one ``.npz`` file, atomically (per-sample grids are not saved).

    ``extra`` arrays (a curvature record's ``curvature_*``, see :data:`VIEW_SCHEMA`) are
    written beside the view's own.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    more: dict[str, Any] = {name: np.asarray(value) for name, value in (extra or {}).items()}
    np.savez_compressed(
        buffer,
        w1=view.landscape.w1,
        w2=view.landscape.w2,
        risk=view.landscape.risk,
        labels=np.asarray(view.landscape.labels),
        path=view.path_coords,
        steps=view.steps,
        batch_landscapes=view.batch_landscapes,
        batch_indices=view.batch_indices,
        batch_loss=view.batch_loss,
        path_risk=view.risk,
        grads_plane=view.grads_plane,
        explained_variance=view.explained_variance,
        off_plane=view.off_plane,
        info=np.asarray(json.dumps(view.info)),
        loss=np.asarray(view.landscape.loss),
        model=np.asarray(view.landscape.model),
        **more,
    )
    write_atomic(path, buffer.getvalue())
    return path


def load_view(path: str | Path) -> StochasticView:
    """Read a view written by :func:`save_view`, checked against :data:`VIEW_SCHEMA`.

    Raises :class:`SgdscapeError` in one line naming the file, the array and what was
    expected when the file is not a valid view.
    """
    path = Path(path)
    path = published(path.parent, path.name)
    if not path.is_file():
        raise SgdscapeError(f"no saved network view at {str(path)!r}.")
    arrays = read_archive(path, VIEW_SCHEMA)
    return _view_from_arrays(arrays, view_info(path, arrays))


#: the arrays :func:`save_view` writes: ``G1``/``G2`` grid sizes, ``T`` steps, ``S`` stored
#: minibatch landscapes, ``B`` minibatch size
VIEW_SCHEMA = Schema(
    "saved network view",
    {
        "w1": Spec(("G1",), finite=True, increasing=True),
        "w2": Spec(("G2",), finite=True, increasing=True),
        "risk": Spec(("G2", "G1")),
        "labels": Spec((2,), "str", None),
        "loss": Spec((), "str", None),
        "model": Spec((), "str", None),
        "info": Spec((), "str", None),
        "batch_indices": Spec(("T", "B"), "int", "int64", low=-1, rows_used=True),
        "path": Spec(("T+1", 2)),
        "steps": Spec(("S",), "int", "int64", low=0, high="T", increasing=True),
        "batch_landscapes": Spec(("S", "G2", "G1")),
        "batch_loss": Spec(("T",)),
        "path_risk": Spec(("T+1",)),
        "grads_plane": Spec(("T", 2)),
        "explained_variance": Spec((2,), dtype="float64"),
        "off_plane": Spec(("T+1",)),
        # the curvature along the training (sgdscape network --curvature): C measured steps,
        # k eigenvalues each, D points of each spectral density
        "curvature_steps": Spec(
            ("C",), "int", "int64", required=False, low=0, high="T", increasing=True
        ),
        "curvature_eigenvalues": Spec(("C", "k"), dtype="float64", required=False),
        "curvature_batch_eigenvalues": Spec(("C", "k"), dtype="float64", required=False),
        "curvature_lr": Spec((), dtype="float64", required=False, finite=True),
        "curvature_trace": Spec(("C",), dtype="float64", required=False),
        "curvature_trace_error": Spec(("C",), dtype="float64", required=False),
        "curvature_density_grid": Spec(("C", "D"), dtype="float64", required=False),
        "curvature_density": Spec(("C", "D"), dtype="float64", required=False),
    },
    {"G1": 2, "G2": 2},
    "`sgdscape network`",
    "a run's run.npz is read with --from, a network's network.npz with --view",
)
#: the arrays :func:`save_view` writes
VIEW_KEYS = frozenset(VIEW_SCHEMA.arrays)

#: the entries of a view's ``info`` and their types (all optional but ``n_samples``)
INFO_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "optimizer": (str,),
    "directions": (str,),
    "lr": (int, float),
    "batch_size": (int,),
    "epochs": (int,),
    "seed": (int,),
    "n_samples": (int,),
    "n_params": (int,),
    "diverged_step": (int, type(None)),
}


def view_info(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The view's ``info`` table, checked: a JSON object with :data:`INFO_TYPES`, whose
    ``n_samples`` bounds ``batch_indices``."""

    def fail(what: str) -> SgdscapeError:
        return SgdscapeError(f"{str(path)!r} is not a valid saved network view: {what}.")

    try:
        info = json.loads(str(arrays["info"]))
    except (ValueError, RecursionError):
        raise fail("array 'info' is not JSON; expected a JSON object") from None
    if not isinstance(info, dict):
        raise fail(f"array 'info' holds a JSON {type(info).__name__}; expected a JSON object")
    for key, types in INFO_TYPES.items():
        value = info.get(key)
        if key in info and (isinstance(value, bool) or not isinstance(value, types)):
            allowed = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise fail(f"info entry {key!r} is {repr(value)[:40]}; expected {allowed}")
    n = info.get("n_samples")
    if not isinstance(n, int) or n < 1:
        raise fail(f"info entry 'n_samples' is {n!r}; expected a positive integer")
    largest = int(arrays["batch_indices"].max())
    if largest >= n:
        raise fail(
            f"array 'batch_indices' holds the index {largest}; expected values in [-1, {n}) "
            f"for info's n_samples = {n}"
        )
    return info


def _view_from_arrays(a: dict[str, np.ndarray], info: dict[str, Any]) -> StochasticView:
    surface = Landscape(
        a["w1"],
        a["w2"],
        a["risk"],
        labels=tuple(str(s) for s in a["labels"]),  # type: ignore[arg-type]
        loss=str(a["loss"]),
        model=str(a["model"]),
    )
    return StochasticView(
        landscape=surface,
        path_coords=a["path"],
        steps=a["steps"],
        batch_landscapes=a["batch_landscapes"],
        batch_indices=a["batch_indices"],
        batch_loss=a["batch_loss"],
        risk=a["path_risk"],
        grads_plane=a["grads_plane"],
        explained_variance=a["explained_variance"],
        off_plane=a["off_plane"],
        info=info,
    )
