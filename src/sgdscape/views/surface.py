"""3-D Plotly surfaces of a landscape, with a run's or a network view's path drawn on it.

- :func:`surface_figure` draws any :class:`~sgdscape.core.landscape.Landscape` (log loss by
  default) with an optional path on the surface;
- :func:`path_surface` draws the risk of a run or a network's view (their
  :class:`~sgdscape.views.step_source.StepSource`) with its path; :func:`run_surface` is
  its name for a run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sgdscape.core.landscape import Landscape
from sgdscape.errors import SgdscapeError
from sgdscape.networks.recording import StochasticView
from sgdscape.records.run import RunResult
from sgdscape.views.step_source import StepSource, step_source
from sgdscape.views.style import END_COLOUR, MARKER_EDGE_COLOUR, PATH_COLOUR, safe_log

if TYPE_CHECKING:
    import plotly.graph_objects as go

SURFACE_WIDTH, SURFACE_HEIGHT = 900, 720  # pixels of the 3-D surface figure
PATH_LIFT = 0.01  # the path is drawn this fraction of the z range above the surface


def surface_heights(x: np.ndarray, y: np.ndarray, z: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of a grid ``z (G2, G1)`` on axes ``x (G1,)``, ``y (G2,)``.

    ``points (K, 2)`` are ``(x, y)`` pairs; points outside the grid or not finite give NaN.
    Both axes must be increasing.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    z = np.asarray(z, np.float64)
    points = np.asarray(points, np.float64).reshape(-1, 2)
    px, py = points[:, 0], points[:, 1]
    inside = (
        np.isfinite(points).all(axis=1)
        & (px >= x[0])
        & (px <= x[-1])
        & (py >= y[0])
        & (py <= y[-1])
    )
    px, py = np.where(inside, px, x[0]), np.where(inside, py, y[0])
    i = np.clip(np.searchsorted(x, px, side="right") - 1, 0, len(x) - 2)
    j = np.clip(np.searchsorted(y, py, side="right") - 1, 0, len(y) - 2)
    tx = (px - x[i]) / (x[i + 1] - x[i])
    ty = (py - y[j]) / (y[j + 1] - y[j])
    heights = (
        (1 - tx) * (1 - ty) * z[j, i]
        + tx * (1 - ty) * z[j, i + 1]
        + (1 - tx) * ty * z[j + 1, i]
        + tx * ty * z[j + 1, i + 1]
    )
    return np.where(inside, heights, np.nan)


def surface_figure(
    surface: Landscape,
    *,
    path: np.ndarray | None = None,
    log: bool = True,
    title: str = "",
    z_label: str | None = None,
    path_name: str = "path",
    lift: float = PATH_LIFT,
    width: int = SURFACE_WIDTH,
    height: int = SURFACE_HEIGHT,
) -> go.Figure:
    """A 3-D Plotly surface of ``surface.risk`` with an optional path drawn on it.

    Args:
        surface: the landscape; ``x = w1 (G1,)``, ``y = w2 (G2,)``, ``z = risk (G2, G1)``
            (through :func:`sgdscape.views.step_figure.safe_log` when ``log``).
        path: ``(K, 2)`` points in the landscape's coordinates, drawn as a 3-D line on the
            surface: each point's height is the bilinear interpolation of the drawn grid,
            raised by ``lift`` times the z range so the surface does not hide it (points
            outside the grid are not drawn). The first point is a circle, the last a diamond.
        log: draw the log loss (default) or the loss.
        title: figure title.
        z_label: z-axis title (default ``"log loss"`` / ``"loss"``).
        width: figure width in pixels.
        height: figure height in pixels.

    Returns:
        A ``plotly.graph_objects.Figure``: trace 0 the ``Surface``, then (with ``path``)
        the ``Scatter3d`` line and the start and end markers.
    """
    import plotly.graph_objects as go

    risk = np.asarray(surface.risk, dtype=np.float64)
    z = safe_log(risk) if log else risk
    z_label = z_label or ("log loss" if log else "loss")
    labels = surface.labels
    finite = z[np.isfinite(z)]
    span = float(np.ptp(finite)) if finite.size else 0.0
    figure = go.Figure(
        go.Surface(
            x=np.asarray(surface.w1, np.float64),
            y=np.asarray(surface.w2, np.float64),
            z=z,
            colorscale="Viridis",
            colorbar={"title": {"text": z_label, "side": "right"}, "thickness": 16, "len": 0.75},
            contours={"z": {"show": True, "usecolormap": True, "project": {"z": True}}},
            hovertemplate=(
                f"{labels[0]} = %{{x:.4g}}<br>{labels[1]} = %{{y:.4g}}<br>"
                f"{z_label} = %{{z:.4g}}<extra></extra>"
            ),
            name="landscape",
        )
    )
    if path is not None:
        points = np.asarray(path, dtype=np.float64).reshape(-1, 2)
        heights = surface_heights(surface.w1, surface.w2, z, points) + lift * span
        shown = np.isfinite(heights)
        xs, ys, zs = (np.where(shown, v, np.nan) for v in (points[:, 0], points[:, 1], heights))
        hover = (
            f"step %{{customdata}}<br>{labels[0]} = %{{x:.4g}}<br>{labels[1]} = %{{y:.4g}}"
            "<extra>path</extra>"
        )
        figure.add_trace(
            go.Scatter3d(
                x=xs,
                y=ys,
                z=zs,
                customdata=np.arange(len(points)),
                mode="lines+markers",
                line={"color": PATH_COLOUR, "width": 6},
                marker={"color": PATH_COLOUR, "size": 2},
                name=path_name,
                hovertemplate=hover,
            )
        )
        for index, symbol, name in ((0, "circle", "start"), (-1, "diamond", "end")):
            figure.add_trace(
                go.Scatter3d(
                    x=xs[[index]],
                    y=ys[[index]],
                    z=zs[[index]],
                    mode="markers",
                    marker={
                        "color": PATH_COLOUR if index == 0 else END_COLOUR,
                        "size": 7,
                        "symbol": symbol,
                        "line": {"color": MARKER_EDGE_COLOUR, "width": 2},
                    },
                    name=name,
                    hoverinfo="skip",
                )
            )
    figure.update_layout(
        width=width,
        height=height,
        title={"text": title, "x": 0.5, "xanchor": "center"},
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        scene={
            "xaxis": {"title": {"text": labels[0]}},
            "yaxis": {"title": {"text": labels[1]}},
            "zaxis": {"title": {"text": z_label}},
            "aspectmode": "manual",
            "aspectratio": {"x": 1, "y": 1, "z": 0.6},
            "camera": {"eye": _camera_eye(surface, path)},
        },
        legend={"x": 0.01, "y": 0.98, "bgcolor": "rgba(255,255,255,0.7)"},
    )
    return figure


def _camera_eye(surface: Landscape, path: np.ndarray | None) -> dict[str, float]:
    """A diagonal view from the corner opposite the path's start (so the path, which
    usually starts high, runs down towards the viewer instead of hiding behind a ridge)."""
    sx, sy = 1.0, 1.0
    start = None if path is None else np.asarray(path, dtype=np.float64).reshape(-1, 2)[0]
    if start is not None and np.isfinite(start).all():
        centre = (
            (float(surface.w1[0]) + float(surface.w1[-1])) / 2,
            (float(surface.w2[0]) + float(surface.w2[-1])) / 2,
        )
        sx = -1.0 if start[0] > centre[0] else 1.0
        sy = -1.0 if start[1] > centre[1] else 1.0
    return {"x": 1.5 * sx, "y": 1.5 * sy, "z": 1.1}


def path_surface(
    result: RunResult | StochasticView | StepSource | Landscape, *, log: bool = True, **options: Any
) -> go.Figure:
    """:func:`surface_figure` of a run's or a network view's risk with its path on it.

    Args:
        result: a single-init run, a network's view, their
            :class:`~sgdscape.views.step_source.StepSource`, or a bare
            :class:`~sgdscape.core.landscape.Landscape` (no path).
        log: draw the log risk (default) or the risk.
        **options: passed to :func:`surface_figure` (``title``, ``width``, ``lift``, ...).

    Returns:
        A ``plotly.graph_objects.Figure`` whose trace 0 is the ``Surface``.
    """
    if isinstance(result, Landscape):
        options.setdefault("title", f"{result.model}: {result.loss} on a 2-D slice")
        return surface_figure(result, log=log, **options)
    if not isinstance(result, RunResult | StochasticView | StepSource):
        raise SgdscapeError(
            "a surface draws a RunResult, a StochasticView or a Landscape, got "
            f"{type(result).__name__}."
        )
    source = step_source(result)
    options.setdefault("title", source.surface_title)
    options.setdefault("z_label", source.risk_label if log else source.risk_name)
    if source.projected:
        options.setdefault("path_name", "path (projected)")
    return surface_figure(source.landscape, path=source.path, log=log, **options)


def run_surface(result: RunResult, *, log: bool = True, **options: Any) -> go.Figure:
    """:func:`path_surface` of a run's empirical risk with its path (``result.path()``)."""
    return path_surface(result, log=log, **options)
