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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sgdscape.core.curvature import KINDS, Curvature, CurvatureMap, QuadraticModel, quadratic_model
from sgdscape.errors import SgdscapeError
from sgdscape.records.run import RunResult
from sgdscape.views.step_figure import PATH_COLOUR, RUN_COLOURS, frame_axes, safe_log

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from sgdscape.networks.curvature import TrainingCurvature
    from sgdscape.records.presets import NetworkPresetResult

#: label of the stability line ``y = 2 / lr`` in a sharpness panel
THRESHOLD_LABEL = "2 / lr (GD stability edge)"
RISK_LABEL = "λmax of the risk"
BATCH_LABEL = "λmax of the step's minibatch"
#: hatch pattern of each region kind on a curvature map (flat regions are left plain)
HATCHES = {"convex": "", "concave": "..", "saddle": "//"}
REGION_COLOURS = {"convex": "none", "concave": "none", "saddle": "none"}
EIGEN_COLOURS = ("white", "tab:red")  # lowest, highest eigenvalue
#: line colours of several runs on a white panel
LINE_COLOURS = ("tab:blue", "tab:orange", "tab:red", "tab:green", "tab:purple")


def use_log_scale(*series: np.ndarray | None) -> bool:
    """Whether a y axis of these values is better logarithmic: all finite values positive and
    spanning more than a factor 10."""
    values = np.concatenate(
        [np.asarray(s, dtype=np.float64).ravel() for s in series if s is not None]
    )
    values = values[np.isfinite(values)]
    if values.size == 0 or values.min() <= 0:
        return False
    return bool(values.max() / values.min() > 10)


def _rows(values: np.ndarray) -> np.ndarray:
    """``(R, T)``: one row per run of a ``(..., T)`` array."""
    values = np.asarray(values, dtype=np.float64)
    return values.reshape(-1, values.shape[-1])


def _named(label: str, name: str | None) -> str:
    return label if name is None else f"{label} [{name}]"


def threshold_line(
    ax: Axes, steps: np.ndarray, lr: np.ndarray | float, *, colour: str = "black"
) -> Any:
    """Draw ``2 / lr`` against ``steps`` (a horizontal line for a constant lr) and return it."""
    lr = np.broadcast_to(np.asarray(lr, dtype=np.float64), np.shape(steps))
    with np.errstate(divide="ignore"):
        edge = np.where(lr > 0, 2.0 / lr, np.inf)
    (line,) = ax.plot(
        steps,
        edge,
        "--",
        color=colour,
        linewidth=1.2,
        label=THRESHOLD_LABEL,
        drawstyle="steps-post",
    )
    return line


def sharpness_panel(
    ax: Axes,
    curvature: Curvature,
    *,
    batch: bool = True,
    colour: str = PATH_COLOUR,
    name: str | None = None,
    title: str | None = "sharpness along the path",
) -> dict[str, Any]:
    """λmax of the risk (and of each step's minibatch) against step, with the 2/lr line.

    Args:
        curvature: ``lambda_max (..., T)``; several runs (``...``) draw one line each.
        batch: also draw each step's minibatch λmax (thin dots) when recorded.
        name: the run's label, appended to the legend entries ``[name]`` (for compare runs).

    Returns the drawn artists by name: ``"risk"`` (list of lines), ``"batch"`` (list),
    ``"threshold"`` (the 2/lr line or ``None`` without a learning rate).
    """
    steps = np.arange(curvature.n_steps)
    risk = _rows(curvature.lambda_max)
    top = curvature.batch_lambda_max if batch else None
    drawn: dict[str, Any] = {"risk": [], "batch": [], "threshold": None}
    if top is not None:
        for i, row in enumerate(_rows(top)):
            drawn["batch"] += ax.plot(
                steps,
                row,
                ".",
                markersize=2.5,
                color="tab:blue",
                alpha=0.5,
                label=_named(BATCH_LABEL, name) if i == 0 else None,
            )
    for i, row in enumerate(risk):
        drawn["risk"] += ax.plot(
            steps,
            row,
            "-",
            color=colour,
            linewidth=1.8,
            label=_named(RISK_LABEL, name) if i == 0 else None,
        )
    edge = None
    if curvature.lr is not None:
        drawn["threshold"] = threshold_line(
            ax, steps, curvature.lr, colour="black" if name is None else colour
        )
        drawn["threshold"].set_label(_named(THRESHOLD_LABEL, name))
        with np.errstate(divide="ignore"):
            edge = 2.0 / np.asarray(curvature.lr, dtype=np.float64)
    if use_log_scale(risk, edge):
        ax.set_yscale("log")
        for line in drawn["batch"]:  # a minibatch's lambda_max <= 0 has no place on a log axis
            y = np.asarray(line.get_ydata(), dtype=np.float64)
            line.set_ydata(np.where(y > 0, y, np.nan))
        if drawn["batch"] and top is not None and np.nanmin(top) <= 0:
            drawn["batch"][0].set_label(BATCH_LABEL + " (≤ 0 not shown)")
    ax.set_xlabel("step")
    ax.set_ylabel("top Hessian eigenvalue (loss / parameter²)")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return drawn


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


def network_sharpness_panel(ax: Axes, record: TrainingCurvature) -> dict[str, Any]:
    """Top-k eigenvalues of the full-data loss (and each step's minibatch) against step, with
    the 2/lr line. Returns ``{"risk": lines, "batch": lines, "threshold": line}``."""
    drawn: dict[str, Any] = {"risk": [], "batch": [], "threshold": None}
    steps = np.asarray(record.steps)
    k = record.eigenvalues.shape[1]
    for j in range(k):
        drawn["risk"] += ax.plot(
            steps,
            record.eigenvalues[:, j],
            "o-" if j == 0 else "-",
            color=PATH_COLOUR,
            markersize=3,
            linewidth=1.8 if j == 0 else 0.9,
            alpha=1.0 if j == 0 else 0.6,
            label=RISK_LABEL if j == 0 else (f"λ2..λ{k}" if j == 1 else None),
        )
    if record.batch_eigenvalues is not None:
        drawn["batch"] += ax.plot(
            steps,
            record.batch_eigenvalues[:, 0],
            ".",
            color="tab:blue",
            alpha=0.6,
            label=BATCH_LABEL,
        )
    drawn["threshold"] = ax.axhline(
        record.stability_threshold,
        color="black",
        linestyle="--",
        linewidth=1.2,
        label=THRESHOLD_LABEL,
    )
    if use_log_scale(record.eigenvalues[:, 0], np.array([record.stability_threshold])):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("top Hessian eigenvalues")
    ax.set_title(f"sharpness along training (lr = {record.lr:g})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return drawn


def plot_training_curvature(
    record: TrainingCurvature,
    *,
    loss: np.ndarray | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Sharpness against step with 2/lr (and ``loss (T,)`` on a twin axis when given), then
    the Hessian trace against step and the spectral density, when the record holds them."""
    import matplotlib.pyplot as plt

    panels = 1 + (record.trace is not None) + (record.density is not None)
    fig, axes = plt.subplots(
        ncols=panels, figsize=figsize or (6.2 * panels, 4.8), layout="constrained", squeeze=False
    )
    first = axes[0, 0]
    network_sharpness_panel(first, record)
    if loss is not None:
        twin = first.twinx()
        twin.plot(np.arange(len(loss)), loss, color="tab:gray", linewidth=0.8, alpha=0.7)
        twin.set_ylabel("minibatch loss", color="tab:gray")
        twin.set_yscale("log")
    index = 1
    if record.trace is not None:
        ax = axes[0, index]
        error = record.trace_error if record.trace_error is not None else None
        ax.errorbar(record.steps, record.trace, yerr=error, fmt="o-", color="tab:purple", ms=3)
        ax.set_xlabel("step")
        ax.set_ylabel("tr H (Hutchinson, ± 1 s.e.)")
        ax.set_title("Hessian trace along training")
        ax.grid(alpha=0.3)
        index += 1
    if record.density is not None and record.density_grid is not None:
        ax = axes[0, index]
        shown = np.unique(np.linspace(0, len(record.steps) - 1, 3).round().astype(int))
        colours = plt.get_cmap("viridis")(np.linspace(0.1, 0.85, len(shown)))
        for colour, i in zip(colours, shown, strict=True):
            ax.plot(
                record.density_grid[i],
                record.density[i],
                color=colour,
                label=f"step {int(record.steps[i])}",
            )
        ax.set_yscale("log")
        peak = float(np.nanmax(record.density))
        ax.set_ylim(max(1e-6, peak * 1e-7), peak * 3)
        ax.set_xlabel("eigenvalue")
        ax.set_ylabel("spectral density (SLQ)")
        ax.set_title("Hessian spectrum")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
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


def plot_network_preset(result: NetworkPresetResult) -> Figure:
    """A network preset's figure: each run's sharpness against its 2/lr line, with its loss.

    ``layout="per-run"`` gives one panel per run (sharpness and 2/lr on the left axis, the
    loss of every step in grey on a log axis at the right); ``"overlay"`` draws every run's
    sharpness on one panel and their final sharpness (mean of the last measured steps) as
    bars beside it.
    """
    import matplotlib.pyplot as plt

    preset = result.preset
    runs = list(zip(result.labels, result.recordings, result.curvatures, strict=True))
    if preset.layout == "overlay":
        fig, (left, right) = plt.subplots(ncols=2, figsize=(13, 5.0), layout="constrained")
        for (label, _, record), colour in zip(runs, LINE_COLOURS, strict=False):
            left.plot(record.steps, record.sharpness, "-", color=colour, label=label)
            left.axhline(record.stability_threshold, color=colour, linestyle="--", linewidth=1)
        left.set_yscale("log")
        left.set_xlabel("step")
        left.set_ylabel("sharpness λmax (full-data loss)")
        left.set_title("sharpness along training (dashed: each run's 2 / lr)")
        left.grid(alpha=0.3)
        left.legend(fontsize=8)
        final = result.final_sharpness()
        colours = [LINE_COLOURS[i % len(LINE_COLOURS)] for i in range(len(final))]
        bars = right.bar(range(len(final)), final, color=colours)
        for bar in bars:
            bar.set_gid("final-sharpness")
        right.set_xticks(range(len(final)), list(result.labels), fontsize=9)
        right.bar_label(bars, fmt="%.2f")
        right.set_ylabel(f"final sharpness (mean of the last {preset.last} steps)")
        right.set_title("where each run ends: smaller batch or larger lr, flatter")
        right.grid(alpha=0.3, axis="y")
        return fig
    fig, axes = plt.subplots(
        ncols=len(runs), figsize=(6.5 * len(runs), 5.0), layout="constrained", squeeze=False
    )
    for ax, (label, recording, record) in zip(axes[0], runs, strict=True):
        network_sharpness_panel(ax, record)
        ax.set_title(f"{label}: sharpness meets 2 / lr = {record.stability_threshold:.3g}")
        twin = ax.twinx()
        loss = np.asarray(recording.batch_loss, dtype=np.float64)
        twin.plot(np.arange(loss.size), loss, color="tab:gray", linewidth=0.9, alpha=0.8)
        twin.set_yscale("log")
        twin.set_ylabel("training loss (every step)", color="tab:gray")
    return fig


class SharpnessPanel:
    """A :class:`sgdscape.views.step_figure.Panel`: sharpness against step beside the two
    step panels, with the 2/lr line and a marker on the step drawn.

    Switch it on with ``StepFigure(result, panels=[SharpnessPanel(curvature)])`` (or
    :meth:`of` a result that holds its curvature); ``sgdscape run --curvature`` adds it to
    every step figure. The marker is the ``Line2D`` with ``gid`` ``"sharpness-step"``.
    """

    def __init__(self, curvature: Curvature) -> None:
        if curvature.lambda_max.ndim != 1:
            raise SgdscapeError("the sharpness panel is drawn for a single-init run only.")
        self.curvature = curvature
        self.marker: Any = None

    @classmethod
    def of(cls, result: RunResult) -> SharpnessPanel:
        """The panel of a result's first trajectory (:func:`~sgdscape.records.run.with_curvature`)."""
        if not result.curvatures:
            raise SgdscapeError(
                "this run holds no curvature; compute it with "
                "sgdscape.records.run.with_curvature (sgdscape run --curvature)."
            )
        return cls(result.curvatures[0])

    def setup(self, axes: Axes, source: Any) -> None:
        """Draw the whole run's sharpness and the 2/lr line once."""
        sharpness_panel(axes, self.curvature, title="sharpness along the path")
        (self.marker,) = axes.plot(
            [np.nan], [np.nan], "o", color=PATH_COLOUR, markeredgecolor="black", zorder=5
        )
        self.marker.set_gid("sharpness-step")

    def draw(self, axes: Axes, source: Any, step: int) -> list[Any]:
        """Put the marker on ``step``'s λmax; return it."""
        value = float(self.curvature.lambda_max[step])
        self.marker.set_data([step], [value])
        return [self.marker]
