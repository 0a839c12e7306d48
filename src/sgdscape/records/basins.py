"""Basins of attraction: from a grid of inits, where does each run end?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdscape.errors import check_int
from sgdscape.records.run import RunConfig, config_trajectory, make_data, project


@dataclass(frozen=True)
class Basins:
    """End points of runs started on an ``N x N`` grid of inits over the landscape window.

    Attributes:
        w1, w2: init coordinates, ``(N,)`` each (columns w1, rows w2).
        final: ``(N, N, p)`` parameters after the last step (NaN where diverged).
        final_plane: ``(N, N, 2)`` end points in plot coordinates.
        final_risk: ``(N, N)`` empirical risk at the end point.
        label: ``(N, N)`` basin index of each init (-1 for diverged runs); inits whose end
            points lie within ``tolerance`` of each other share a basin.
        centres: ``(C, 2)`` mean end point of each basin, in plot coordinates.
        tolerance: distance (in plot units) under which end points are one basin.
    """

    w1: np.ndarray
    w2: np.ndarray
    final: np.ndarray
    final_plane: np.ndarray
    final_risk: np.ndarray
    label: np.ndarray
    centres: np.ndarray
    tolerance: float

    @property
    def n_basins(self) -> int:
        """Number of distinct end regions."""
        return int(self.centres.shape[0])


def cluster_end_points(points: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Single-linkage clusters of ``points (M, 2)``: labels ``(M,)`` and centres ``(C, 2)``.

    Two end points share a basin when a chain of end points, each within ``tolerance`` of
    the next, joins them, so a continuous valley of minima is one basin. Non-finite
    points (diverged runs) get label -1. Basins are numbered by decreasing size.
    """
    finite = np.flatnonzero(np.isfinite(points).all(axis=1))
    parent = np.arange(points.shape[0])

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    chosen = points[finite]
    for a, i in enumerate(finite):
        close = np.flatnonzero(np.linalg.norm(chosen[a + 1 :] - chosen[a], axis=1) <= tolerance)
        for j in finite[a + 1 + close]:
            parent[root(int(j))] = root(int(i))
    roots = np.array([root(int(i)) for i in finite], dtype=np.int64)
    unique, counts = np.unique(roots, return_counts=True)
    order = unique[np.argsort(-counts, kind="stable")]
    labels = np.full(points.shape[0], -1, dtype=np.int64)
    rank = {int(r): k for k, r in enumerate(order)}
    labels[finite] = [rank[int(r)] for r in roots]
    centres = np.array([points[labels == k].mean(axis=0) for k in range(len(order))])
    return labels, centres.reshape(-1, 2)


def basins(config: RunConfig, points: int = 25, tolerance: float | None = None) -> Basins:
    """Run ``config``'s optimizer from ``points x points`` inits over its window, in one batch.

    ``tolerance`` defaults to 5% of the window's width.
    """
    points = check_int("points", points, low=2, high=300)
    grid_config = config.replace(inits=f"grid:{points}", compare=())
    data = make_data(grid_config)
    trajectory = config_trajectory(grid_config, data)
    assert trajectory.final_risk is not None  # train records the risk unless told not to
    final = trajectory.final.reshape(points, points, -1)
    final_plane = project(grid_config, trajectory.final).reshape(points, points, 2)
    width = config.w1_range[1] - config.w1_range[0]
    tolerance = 0.05 * width if tolerance is None else float(tolerance)
    labels, centres = cluster_end_points(final_plane.reshape(-1, 2), tolerance)
    return Basins(
        w1=np.linspace(*config.w1_range, points, dtype=np.float32),
        w2=np.linspace(*config.w2_range, points, dtype=np.float32),
        final=final,
        final_plane=final_plane,
        final_risk=trajectory.final_risk.reshape(points, points),
        label=labels.reshape(points, points),
        centres=centres,
        tolerance=tolerance,
    )
