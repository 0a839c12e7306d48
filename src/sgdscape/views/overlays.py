"""Static figures of several trajectories: compare overlays, many inits, basins maps."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sgdscape.core.landscape import Landscape
from sgdscape.records.basins import Basins
from sgdscape.records.run import RunResult
from sgdscape.views.step_figure import RUN_COLOURS, safe_log

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

COLOURS = list(RUN_COLOURS)


def run_losses(result: RunResult) -> list[str]:
    """The loss of each run of ``result`` (base run, then each compare variant)."""
    config = result.config
    return [config.loss_name] + [config.variant(v).loss_name for v in config.compare]


def _risk_panel(
    ax: Axes, surface: Landscape, title: str, label: str = "log empirical risk"
) -> None:
    filled = ax.contourf(surface.w1, surface.w2, safe_log(surface.risk), levels=30, cmap="viridis")
    ax.figure.colorbar(filled, ax=ax, label=label)
    ax.set_xlabel(surface.labels[0])
    ax.set_ylabel(surface.labels[1])
    ax.set_xlim(surface.w1[0], surface.w1[-1])
    ax.set_ylim(surface.w2[0], surface.w2[-1])
    ax.set_aspect("equal")
    ax.set_title(title)


def plot_compare(result: RunResult, *, figsize: tuple[float, float] = (13, 5.6)) -> Figure:
    """Every trajectory of a run (base and compare variants) on its risk landscape, with the
    risk along each path beside it."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(ncols=2, figsize=figsize, layout="constrained")
    losses = run_losses(result)
    _risk_panel(
        left,
        result.landscape,
        f"{len(result.trajectories)} runs on the empirical risk ({losses[0]})",
        f"log empirical risk ({losses[0]})",
    )
    mixed = len(set(losses)) > 1
    for (label, trajectory), colour, loss in zip(
        result.trajectories, COLOURS, losses, strict=False
    ):
        if mixed and f"loss={loss}" not in label:
            label = f"{label} ({loss} risk)"
        if trajectory.iterates.ndim != 2:
            continue
        path = result.path(trajectory)
        left.plot(path[:, 0], path[:, 1], "-", color=colour, linewidth=1.5, label=label)
        left.scatter(*path[0], color=colour, marker="s", edgecolor="black", zorder=3)
        if not trajectory.diverged:
            end = project_final(result, trajectory)
            left.scatter(*end, color=colour, marker="*", s=150, edgecolor="black", zorder=3)
        right.plot(np.arange(trajectory.n_steps), trajectory.risk, color=colour, label=label)
    left.legend(loc="lower left", fontsize=8, framealpha=0.85)
    right.set_yscale("log")
    right.yaxis.tick_right()  # the y-label on the right, away from the colour bar's label
    right.yaxis.set_label_position("right")
    right.set_xlabel("step")
    right.set_ylabel(
        "empirical risk at the iterate, each run in its own loss"
        if mixed
        else f"empirical risk ({losses[0]}) at the iterate"
    )
    right.set_title("risk along each path (■ start, ★ end)")
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    return fig


def project_final(result: RunResult, trajectory: object) -> np.ndarray:
    """The final iterate of ``trajectory`` in plot coordinates."""
    from sgdscape.records.run import project

    return project(result.config, trajectory.final)  # type: ignore[attr-defined]


def plot_paths(result: RunResult, *, figsize: tuple[float, float] = (7, 6)) -> Figure:
    """All trajectories of a batched run (``inits`` scheme) on the risk landscape."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    paths = result.path()
    paths = paths.reshape(-1, *paths.shape[-2:])
    _risk_panel(ax, result.landscape, f"{paths.shape[0]} runs from {result.config.inits}")
    for path in paths:
        ax.plot(path[:, 0], path[:, 1], "-", color="tab:orange", linewidth=0.6, alpha=0.6)
    ends = project_final(result, result.trajectory).reshape(-1, 2)
    ax.scatter(paths[:, 0, 0], paths[:, 0, 1], s=6, color="white", label="start")
    ax.scatter(ends[:, 0], ends[:, 1], s=18, color="tab:red", edgecolor="black", label="end")
    ax.legend(loc="lower left", fontsize=8)
    return fig


def plot_basins(
    basins: Basins, surface: Landscape, *, figsize: tuple[float, float] = (13, 5.6)
) -> Figure:
    """The basins-of-attraction map (each init coloured by where it ends) beside the risk."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    fig, (left, right) = plt.subplots(ncols=2, figsize=figsize, layout="constrained")
    _risk_panel(left, surface, f"end points of {basins.label.size} runs and basin centres")
    ends = basins.final_plane.reshape(-1, 2)
    left.scatter(ends[:, 0], ends[:, 1], s=8, color="tab:orange", label="end points")
    left.scatter(
        basins.centres[:, 0],
        basins.centres[:, 1],
        marker="*",
        s=200,
        color="tab:red",
        edgecolor="black",
        label="basin centres",
    )
    left.legend(loc="lower left", fontsize=8)

    palette = [
        "#1f77b4",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
    ]
    n = max(basins.n_basins, 1)
    colours = ["black"] + [palette[k % len(palette)] for k in range(n)]
    step = (basins.w1[1] - basins.w1[0]) / 2, (basins.w2[1] - basins.w2[0]) / 2
    extent = (
        basins.w1[0] - step[0],
        basins.w1[-1] + step[0],
        basins.w2[0] - step[1],
        basins.w2[-1] + step[1],
    )
    image = right.imshow(
        basins.label + 1,
        origin="lower",
        extent=extent,
        aspect="equal",
        cmap=ListedColormap(colours),
        vmin=-0.5,
        vmax=n + 0.5,
        interpolation="nearest",
    )
    bar = fig.colorbar(image, ax=right, ticks=range(n + 1))
    bar.ax.set_yticklabels(
        ["diverged"]
        + [f"basin {k}: ({c[0]:.2f}, {c[1]:.2f})" for k, c in enumerate(basins.centres)]
    )
    right.set_xlabel(surface.labels[0] + " at init")
    right.set_ylabel(surface.labels[1] + " at init")
    right.set_title("basins of attraction:\ncolour = where the run from this init ends")
    return fig
