"""Curvature in the run archive: the arrays ``run.npz`` holds for ``sgdscape run --curvature``.

Each trajectory's :class:`sgdscape.Curvature` is stored under its trajectory prefix (``""`` or
``compare{i}_``) followed by ``curvature_``: the risk and minibatch Hessians ``(K?, T, p, p)``,
their eigenvalues ``(K?, T, p)`` and eigenvectors ``(K?, T, p, p)``. Their coordinates are the
trajectory's own: step ``t`` is row ``t`` of ``iterates`` and ``lr``. The window's
:class:`sgdscape.CurvatureMap` is stored as ``curvature_map_*`` on the grid ``w1``, ``w2`` of the
landscape: the in-plane Hessian ``(G2, G1, 2, 2)``, its eigenvalues ``(G2, G1, 2)``, the region
codes ``(G2, G1)`` into :data:`sgdscape.core.curvature.KINDS` and the flatness tolerance.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sgdscape.core.curvature import KINDS, Curvature, CurvatureMap
from sgdscape.io import Spec

#: Curvature attribute -> archive name (after the ``curvature_`` prefix)
CURVATURE_ARRAYS = {
    "risk_hessian": "risk_hessian",
    "risk_eigenvalues": "risk_eigenvalues",
    "risk_eigenvectors": "risk_eigenvectors",
    "batch_hessian": "batch_hessian",
    "batch_eigenvalues": "batch_eigenvalues",
    "batch_eigenvectors": "batch_eigenvectors",
}
MAP_PREFIX = "curvature_map_"


def curvature_arrays(curvature: Curvature, prefix: str = "") -> dict[str, np.ndarray]:
    """A trajectory's curvature as named float64 arrays ``{prefix}curvature_<name>``."""
    out = {}
    for attribute, name in CURVATURE_ARRAYS.items():
        value = getattr(curvature, attribute)
        if value is not None:
            out[f"{prefix}curvature_{name}"] = np.asarray(value, dtype=np.float64)
    return out


def curvature_specs(prefix: str, k: str, t: str) -> dict[str, Spec]:
    """The optional archive specs of one trajectory's curvature (``k`` its batch symbol, ``t``
    its step symbol)."""
    shapes: dict[str, tuple[str | int, ...]] = {
        "risk_hessian": (k, t, "p", "p"),
        "risk_eigenvalues": (k, t, "p"),
        "risk_eigenvectors": (k, t, "p", "p"),
        "batch_hessian": (k, t, "p", "p"),
        "batch_eigenvalues": (k, t, "p"),
        "batch_eigenvectors": (k, t, "p", "p"),
    }
    return {
        f"{prefix}curvature_{name}": Spec(dims, dtype="float64", required=False)
        for name, dims in shapes.items()
    }


def curvature_from_arrays(
    arrays: Mapping[str, np.ndarray],
    prefix: str,
    *,
    iterates: np.ndarray,
    lr: np.ndarray,
    param_names: tuple[str, ...],
) -> Curvature | None:
    """The trajectory's :class:`Curvature` stored by :func:`curvature_arrays` (``None`` if
    the archive holds none)."""
    values = {
        attribute: arrays.get(f"{prefix}curvature_{name}")
        for attribute, name in CURVATURE_ARRAYS.items()
    }
    if any(values[a] is None for a in ("risk_hessian", "risk_eigenvalues", "risk_eigenvectors")):
        return None
    return Curvature(
        iterates=np.asarray(iterates, dtype=np.float64),
        lr=np.asarray(lr, dtype=np.float64),
        param_names=param_names,
        **values,  # type: ignore[arg-type]
    )


def map_arrays(found: CurvatureMap) -> dict[str, np.ndarray]:
    """The curvature map as ``curvature_map_*`` arrays (its axes are the landscape's)."""
    return {
        MAP_PREFIX + "hessian": np.asarray(found.hessian, dtype=np.float64),
        MAP_PREFIX + "eigenvalues": np.asarray(found.eigenvalues, dtype=np.float64),
        MAP_PREFIX + "kind": np.asarray(found.kind, dtype=np.int64),
        MAP_PREFIX + "tol": np.asarray(found.tol, dtype=np.float64),
    }


#: the archive specs of the curvature map (all optional)
MAP_SPECS = {
    MAP_PREFIX + "hessian": Spec(("G2", "G1", 2, 2), dtype="float64", required=False),
    MAP_PREFIX + "eigenvalues": Spec(("G2", "G1", 2), dtype="float64", required=False),
    MAP_PREFIX + "kind": Spec(("G2", "G1"), "int", "int64", required=False, low=0, high=len(KINDS)),
    MAP_PREFIX + "tol": Spec((), dtype="float64", required=False, finite=True),
}


def map_from_arrays(
    arrays: Mapping[str, np.ndarray], labels: tuple[str, str]
) -> CurvatureMap | None:
    """The :class:`CurvatureMap` stored by :func:`map_arrays` (``None`` if absent)."""
    if any(name not in arrays for name in MAP_SPECS):
        return None
    return CurvatureMap(
        w1=arrays["w1"],
        w2=arrays["w2"],
        hessian=arrays[MAP_PREFIX + "hessian"],
        eigenvalues=arrays[MAP_PREFIX + "eigenvalues"],
        kind=arrays[MAP_PREFIX + "kind"].astype(np.int8),
        tol=float(arrays[MAP_PREFIX + "tol"]),
        labels=labels,
    )
