"""Curvature along the path (matplotlib): sharpness against step, the curvature map, the local
quadratic model, and the spectrum of a real network along its training.

The panels take finished results (:class:`sgdscape.Curvature`, :class:`sgdscape.CurvatureMap`,
:class:`sgdscape.core.curvature.QuadraticModel`, :class:`sgdscape.TrainingCurvature`) and never
recompute the science. Each panel draws into a given ``Axes`` and labels what it draws, so
tests read the numbers back from the artists:

- the stability line is the ``Line2D`` labelled :data:`THRESHOLD_LABEL` (``y = 2 / lr``);
- the eigen-axes of a quadratic model are ``Line2D`` with ``gid`` ``"eigen-axis-0"`` and
  ``"eigen-axis-1"`` (ascending eigenvalue), its level-set ellipse has ``gid`` ``"ellipse"``;
- the regions of a curvature map are hatched ``contourf`` sets with ``gid``
  ``"region:<kind>"`` for each kind of :data:`sgdscape.core.curvature.KINDS` except flat.

Sharpness against step and :class:`SharpnessPanel` live in
:mod:`sgdscape.views.sharpness_figure`, a network's curvature figures
(:func:`plot_training_curvature`, :func:`plot_network_preset`) in
:mod:`sgdscape.views.network_curvature_figure`; all are importable from here as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sgdscape.core.curvature import KINDS, Curvature, CurvatureMap, QuadraticModel, quadratic_model
from sgdscape.errors import SgdscapeError
from sgdscape.records.run import RunResult
from sgdscape.views.network_curvature_figure import (  # importable from here as before
    LINE_COLOURS,
    network_sharpness_panel,
    plot_network_preset,
    plot_training_curvature,
)
from sgdscape.views.sharpness_figure import (  # importable from here as before
    BATCH_LABEL,
    RISK_LABEL,
    THRESHOLD_LABEL,
    SharpnessPanel,
    sharpness_panel,
    threshold_line,
    use_log_scale,
)
from sgdscape.views.step_figure import PATH_COLOUR, RUN_COLOURS, frame_axes, safe_log

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "BATCH_LABEL",
    "EIGEN_COLOURS",
    "HATCHES",
    "LINE_COLOURS",
    "REGION_COLOURS",
    "RISK_LABEL",
    "THRESHOLD_LABEL",
    "SharpnessPanel",
    "curvature_map_panel",
    "network_sharpness_panel",
    "plot_curvature",
    "plot_network_preset",
    "plot_stability",
    "plot_training_curvature",
    "quadratic_axes",
    "region_masks",
    "run_quadratic_model",
    "sharpness_panel",
    "threshold_line",
    "use_log_scale",
]

#: hatch pattern of each region kind on a curvature map (flat regions are left plain)
HATCHES = {"convex": "", "concave": "..", "saddle": "//"}
REGION_COLOURS = {"convex": "none", "concave": "none", "saddle": "none"}
EIGEN_COLOURS = ("white", "tab:red")  # lowest, highest eigenvalue


def region_masks(curvature_map: CurvatureMap) -> dict[str, np.ndarray]:
    """``(G2, G1)`` booleans for each non-flat kind of :data:`KINDS`."""
    return {kind: curvature_map.mask(kind) for kind in KINDS if kind != "flat"}


def curvature_map_panel(
    ax: Axes,
    curvature_map: CurvatureMap,
    *,
    path: np.ndarray | None = None,
    title: str | None = "curvature of the risk",
    colorbar: bool = True,
) -> dict[str, Any]:
    """λmax as a colour map, the saddle and concave regions hatched, and the path on top.

    The colour scale is centred on 0 (red positive, blue negative) when λmax takes both
    signs; the thin black contour is ``λmin = 0``, the edge of the convex region.

    Args:
        path: ``(T, 2)`` iterates in the map's coordinates.

    Returns the artists: ``"mesh"``, ``"regions"`` (kind -> contour set), ``"edge"``,
    ``"path"``.
    """
    from matplotlib.colors import Normalize, TwoSlopeNorm
    from matplotlib.patches import Patch

    top = np.asarray(curvature_map.lambda_max, dtype=np.float64)
    finite = top[np.isfinite(top)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if low < 0 < high:
        norm: Normalize = TwoSlopeNorm(0.0, low, high)
        cmap = "RdBu_r"
    elif high - low <= 1e-6 * max(abs(high), 1e-12):  # constant: a mid-tone, not black
        norm, cmap = Normalize(low - abs(low) - 1e-12, high + abs(high) + 1e-12), "magma"
    else:
        norm, cmap = Normalize(low, high), "magma"
    mesh = ax.pcolormesh(
        curvature_map.w1, curvature_map.w2, top, shading="nearest", norm=norm, cmap=cmap
    )
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, label="λmax of the risk's Hessian")
    regions: dict[str, Any] = {}
    handles = []
    if curvature_map.mask("convex").any():
        handles.append(Patch(facecolor="white", edgecolor="black", label="convex (plain)"))
    for kind, mask in region_masks(curvature_map).items():
        if not mask.any() or not HATCHES[kind]:
            continue
        regions[kind] = ax.contourf(
            curvature_map.w1,
            curvature_map.w2,
            mask.astype(np.float64),
            levels=[0.5, 1.5],
            colors=REGION_COLOURS[kind],
            hatches=[HATCHES[kind]],
        )
        regions[kind].set_gid(f"region:{kind}")
        regions[kind].set_edgecolor((0.1, 0.1, 0.1, 0.6))
        handles.append(Patch(facecolor="white", edgecolor="black", hatch=HATCHES[kind], label=kind))
    edge = None
    lam_min = np.asarray(curvature_map.lambda_min, dtype=np.float64)
    if np.nanmin(lam_min) < 0 < np.nanmax(lam_min):
        edge = ax.contour(
            curvature_map.w1,
            curvature_map.w2,
            lam_min,
            levels=[0.0],
            colors="black",
            linewidths=0.8,
        )
        handles.append(Patch(facecolor="none", edgecolor="black", label="λmin = 0"))
    drawn_path = None
    if path is not None:
        path = np.asarray(path, dtype=np.float64)
        (drawn_path,) = ax.plot(path[:, 0], path[:, 1], "-", color=PATH_COLOUR, linewidth=1.5)
        ax.scatter(*path[0], color=PATH_COLOUR, marker="s", edgecolor="black", zorder=3)
        handles.append(Patch(color=PATH_COLOUR, label="path"))
    frame_axes(ax, curvature_map)
    ax.set_aspect("equal")
    if handles:
        ax.legend(handles=handles, loc="lower left", fontsize=8, framealpha=0.85)
    if title:
        ax.set_title(title)
    return {"mesh": mesh, "regions": regions, "edge": edge, "path": drawn_path}


def quadratic_axes(ax: Axes, model: QuadraticModel, *, label: bool = True) -> dict[str, Any]:
    """Draw the eigen-axes of a local quadratic model (and its ellipse when convex).

    Axis ``k`` runs along eigenvector ``k`` with half-length ``radius / sqrt(|λk|)``: the
    short axis is the sharp direction. Returns ``{"axes": [line0, line1], "ellipse": line}``.
    """
    lines = []
    for k in range(2):
        segment = model.axes[k]
        name = f"λ{'min' if k == 0 else 'max'} = {model.eigenvalues[k]:.3g}" if label else None
        (line,) = ax.plot(
            segment[:, 0],
            segment[:, 1],
            "-",
            color=EIGEN_COLOURS[k],
            linewidth=2.2,
            solid_capstyle="butt",
            label=name,
            zorder=4,
        )
        line.set_gid(f"eigen-axis-{k}")
        lines.append(line)
    ellipse = None
    if model.ellipse is not None:
        (ellipse,) = ax.plot(
            model.ellipse[:, 0],
            model.ellipse[:, 1],
            ":",
            color="white",
            linewidth=1.2,
            label="quadratic model's level set" if label else None,
            zorder=4,
        )
        ellipse.set_gid("ellipse")
    ax.scatter(
        [model.center[0]], [model.center[1]], color=PATH_COLOUR, edgecolor="black", s=50, zorder=5
    )
    return {"axes": lines, "ellipse": ellipse}


def _plane_basis(result: RunResult) -> np.ndarray:
    """``(p, 2)`` the slice's directions (the identity's first columns without a plane)."""
    plane = result.landscape.plane
    if plane is None:
        return np.eye(result.config.model_spec.n_params)[:, :2]
    return np.stack([plane.d1.numpy(), plane.d2.numpy()], axis=1).astype(np.float64)


def run_quadratic_model(
    result: RunResult,
    curvature: Curvature,
    step: int,
    *,
    sharp: float = 0.07,
    longest: float = 0.3,
) -> QuadraticModel:
    """The local quadratic model of the risk at ``step`` of a single-init run, in the plot's
    coordinates: ``D^T H D`` and ``D^T g`` with ``D`` the slice's directions.

    The axes are scaled so that the sharp one (largest ``|λ|``) reaches ``sharp`` of the
    window's width on each side of the iterate; the other is ``sqrt(|λmax| / |λmin|)`` times
    longer, capped at ``longest`` of the width (then it no longer marks the level set).
    """
    if curvature.lambda_max.ndim != 1:
        raise SgdscapeError("the quadratic model is drawn for a single-init run only.")
    if not 0 <= step < curvature.n_steps:
        raise SgdscapeError(f"step must be between 0 and {curvature.n_steps - 1}, got {step}.")
    hessian = np.asarray(curvature.risk_hessian[step], dtype=np.float64)
    if not np.isfinite(hessian).all():
        raise SgdscapeError(f"the run diverged before step {step}; no curvature there.")
    basis = _plane_basis(result)
    trajectory = result.trajectory
    grads = trajectory.full_grads if trajectory.full_grads is not None else trajectory.grads
    gradient = basis.T @ np.asarray(grads[step], dtype=np.float64)
    value = float(trajectory.risk[step]) if trajectory.risk is not None else 0.0
    centre = result.path()[step]
    in_plane = basis.T @ hessian @ basis
    values = np.abs(np.linalg.eigvalsh(0.5 * (in_plane + in_plane.T)))
    width = float(result.landscape.w1[-1] - result.landscape.w1[0])
    tol = max(1e-12, 1e-9 * float(values.max()))
    radius = sharp * width * np.sqrt(max(float(values.max()), tol))
    return quadratic_model(
        in_plane, gradient, value, centre, radius=radius, tol=tol, max_half_length=longest * width
    )


def plot_curvature(
    result: RunResult,
    curvature: Curvature | None = None,
    curvature_map: CurvatureMap | None = None,
    *,
    step: int | None = None,
    figsize: tuple[float, float] = (17, 5.4),
) -> Figure:
    """Three panels: the risk with the path and the quadratic model at ``step`` (default the
    last finite step), the curvature map with the path, and sharpness against step.

    ``curvature`` and ``curvature_map`` default to the result's own
    (:func:`sgdscape.records.run.with_curvature`); a compare run draws every run's sharpness
    and 2/lr line in its colour.
    """
    import matplotlib.pyplot as plt

    records = (curvature,) if curvature is not None else result.curvatures
    found = curvature_map if curvature_map is not None else result.curvature_map
    if not records or found is None:
        raise SgdscapeError(
            "this run holds no curvature; compute it with sgdscape.records.run.with_curvature "
            "(sgdscape run --curvature)."
        )
    fig, (left, middle, right) = plt.subplots(ncols=3, figsize=figsize, layout="constrained")
    first = records[0]
    single = first.lambda_max.ndim == 1
    path = result.path() if single else None
    surface = result.landscape
    filled = left.contourf(
        surface.w1, surface.w2, safe_log(surface.risk), levels=30, cmap="viridis"
    )
    fig.colorbar(filled, ax=left, label="log empirical risk")
    frame_axes(left, surface)
    left.set_aspect("equal")
    left.set_title("empirical risk")
    if single and path is not None:
        left.plot(path[:, 0], path[:, 1], "-", color=PATH_COLOUR, linewidth=1.2, alpha=0.8)
        finite = np.flatnonzero(np.isfinite(first.lambda_max))
        if finite.size:
            chosen = int(finite[-1]) if step is None else int(step)
            quadratic_axes(left, run_quadratic_model(result, first, chosen))
            left.legend(loc="lower left", fontsize=8, framealpha=0.85)
            left.set_title(f"local quadratic model at step {chosen} (eigen-axes)")
    curvature_map_panel(middle, found, path=path)
    if len(records) == 1:
        sharpness_panel(right, first)
    else:
        labels = [label for label, _ in result.trajectories]
        for record, label, colour in zip(records, labels, RUN_COLOURS, strict=False):
            sharpness_panel(right, record, batch=False, colour=colour, name=label)
    return fig


def plot_stability(result: RunResult, *, figsize: tuple[float, float] = (13, 5.0)) -> Figure:
    """Each run's sharpness against its 2/lr line (left) and its risk along the path (right,
    log): a run whose 2/lr line lies below its λmax is unstable and its risk grows."""
    import matplotlib.pyplot as plt

    if not result.curvatures:
        raise SgdscapeError(
            "this run holds no curvature; compute it with sgdscape.records.run.with_curvature "
            "(sgdscape run --curvature)."
        )
    fig, (left, right) = plt.subplots(ncols=2, figsize=figsize, layout="constrained")
    labels = [label for label, _ in result.trajectories]
    several = len(labels) > 1
    for (label, trajectory), record, colour in zip(
        result.trajectories, result.curvatures, RUN_COLOURS, strict=False
    ):
        sharpness_panel(
            left,
            record,
            batch=not several,
            colour=colour,
            name=label if several else None,
            title="sharpness λmax against the stability edge 2 / lr",
        )
        if trajectory.risk is not None:
            risk = np.asarray(trajectory.risk, dtype=np.float64).reshape(-1, trajectory.n_steps)
            for i, row in enumerate(risk):
                right.plot(row, color=colour, label=label if i == 0 else None)
    right.set_yscale("log")
    right.set_xlabel("step")
    right.set_ylabel(f"empirical risk ({result.config.loss_name}) at the iterate")
    right.set_title("risk along each path")
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    return fig
