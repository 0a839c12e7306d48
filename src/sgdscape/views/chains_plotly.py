"""The chains as one Plotly figure with a slider over the recorded steps (for a standalone page).

Left: log-risk contours, the density of the chains at the slider's step (a heatmap of
log10 chains per unit area, on a window that follows the cloud), their mean, the empirical
2-sigma ellipse and, where exact theory applies, the theory's ellipse (dashed). Right: the
fraction of chains per basin against step (or, for models without basins, each parameter's
spread, empirical and exact), with the current step marked. Each slider step is a Plotly
``update`` of those traces and of the left axes' ranges, so the page needs no frames and no
server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sgdscape.core.chain_stats import BASINS, basin_fractions, chain_moments
from sgdscape.core.chains import Chains
from sgdscape.core.landscape import Landscape
from sgdscape.core.problems import Dataset
from sgdscape.views.chains_animation import exact_moments, record_index
from sgdscape.views.chains_figure import EMPIRICAL_LABEL, THEORY_LABEL, _plot_points, view_window

if TYPE_CHECKING:
    import plotly.graph_objects as go

#: names of the traces the slider updates (tests read them back by name)
DENSITY_NAME = "density of the chains"
MEAN_NAME = "empirical mean"
STEP_MARKER_NAME = "current step"
#: points on an ellipse (plus one that closes it): angles ``2 pi k / ELLIPSE_POINTS``
ELLIPSE_POINTS = 100


def ellipse_points(mean: np.ndarray, covariance: np.ndarray, n_sigma: float = 2.0) -> np.ndarray:
    """``(ELLIPSE_POINTS + 1, 2)`` points of the ``n_sigma`` ellipse of ``covariance`` around
    ``mean``: ``mean + n_sigma * L u(theta)`` with ``L L^T = covariance`` and ``theta`` evenly
    spaced (the last point repeats the first)."""
    values, vectors = np.linalg.eigh(np.asarray(covariance, dtype=np.float64))
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    theta = 2 * np.pi * np.arange(ELLIPSE_POINTS + 1) / ELLIPSE_POINTS
    circle = np.stack([np.cos(theta), np.sin(theta)])
    return np.asarray(mean, dtype=np.float64)[None, :] + n_sigma * (root @ circle).T


def _round(values: np.ndarray, digits: int = 6) -> list[Any]:
    """JSON-ready floats (NaN as None)."""
    rounded = np.round(np.asarray(values, dtype=np.float64), digits)
    return [None if not np.isfinite(v) else float(v) for v in rounded.ravel()]


def chains_player(
    chains: Chains,
    landscape: Landscape,
    data: Dataset,
    *,
    steps: Sequence[int] | None = None,
    bins: int = 60,
    width: int = 1100,
    height: int = 560,
) -> go.Figure:
    """The Plotly figure with a slider over ``steps`` (default every recorded step).

    Args:
        chains: the run.
        landscape: the risk on the window (its contours are drawn once).
        data: the samples the chains trained on (theory and basins).
        steps: recorded steps the slider visits.
        bins: density bins per axis of the (moving) window.
        width, height: figure size in pixels.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    chosen = [int(s) for s in (chains.record_steps if steps is None else steps)]
    indices = [record_index(chains, s) for s in chosen]
    theory = exact_moments(chains, data)
    w1, w2 = np.asarray(landscape.w1), np.asarray(landscape.w2)
    log_risk = np.log10(np.maximum(np.asarray(landscape.risk, dtype=np.float64), 1e-12))
    fig = make_subplots(
        rows=1, cols=2, column_widths=[0.55, 0.45], horizontal_spacing=0.2,
        subplot_titles=(
            f"step {chosen[0]}",
            "basins" if chains.config.model in BASINS else "spread against step",
        ),
    )  # fmt: skip
    fig.add_trace(
        go.Contour(
            x=w1, y=w2, z=log_risk, contours={"coloring": "lines"}, ncontours=30,
            line={"width": 0.7}, colorscale=[[0, "#999"], [1, "#999"]], showscale=False,
            name="log risk", hoverinfo="skip",
        ),
        row=1, col=1,
    )  # fmt: skip
    frames: list[dict[str, Any]] = []
    for index in indices:
        points = _plot_points(chains, landscape, index)
        exact = None if theory is None else (theory.mean[index], theory.covariance[index])
        extra = []
        if exact is not None:
            spread = 3.0 * np.sqrt(np.clip(np.diag(exact[1]), 0.0, None))
            box = np.stack([exact[0] - spread, exact[0] + spread])
            extra = [box] if np.isfinite(box).all() else []
        (x0, x1), (y0, y1) = view_window(points, w1, w2, extra)
        edges = (np.linspace(x0, x1, bins + 1), np.linspace(y0, y1, bins + 1))
        counts, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=edges)
        area = np.diff(edges[0])[:, None] * np.diff(edges[1])[None, :]
        density = counts / (max(points.shape[0], 1) * area)
        with np.errstate(divide="ignore"):
            logd = np.where(density > 0, np.log10(density), np.nan).T
        frame: dict[str, Any] = {
            "x": 0.5 * (edges[0][1:] + edges[0][:-1]),
            "y": 0.5 * (edges[1][1:] + edges[1][:-1]),
            "z": logd,
            "range": ((x0, x1), (y0, y1)),
            "mean": points.mean(axis=0) if len(points) else np.full(2, np.nan),
            "ellipse": (
                ellipse_points(points.mean(axis=0), np.cov(points.T))
                if len(points) >= 2
                else np.full((ELLIPSE_POINTS + 1, 2), np.nan)
            ),
            "theory": None if exact is None else ellipse_points(*exact),
            "step": int(chains.record_steps[index]),
        }
        frames.append(frame)
    first = frames[0]
    dynamic = [
        go.Heatmap(
            x=_round(first["x"]), y=_round(first["y"]), z=first["z"].tolist(),
            colorscale="Viridis", name=DENSITY_NAME, opacity=0.85,
            colorbar={
                "title": {"text": "log10 chains<br>per unit area", "side": "right"},
                "x": 0.455, "xanchor": "left", "len": 0.9, "thickness": 12,
            },
            hovertemplate="%{x:.3g}, %{y:.3g}: 10^%{z:.2f}<extra></extra>",
        ),
        go.Scatter(
            x=_round(first["mean"][:1]), y=_round(first["mean"][1:]), mode="markers",
            marker={"symbol": "cross-thin", "size": 14, "line": {"width": 3, "color": "crimson"}},
            name=MEAN_NAME,
        ),
        go.Scatter(
            x=_round(first["ellipse"][:, 0]), y=_round(first["ellipse"][:, 1]), mode="lines",
            line={"color": "crimson", "width": 2}, name=EMPIRICAL_LABEL,
        ),
    ]  # fmt: skip
    if theory is not None:
        dynamic.append(
            go.Scatter(
                x=_round(first["theory"][:, 0]),
                y=_round(first["theory"][:, 1]),
                mode="lines",
                line={"color": "black", "width": 2, "dash": "dash"},
                name=THEORY_LABEL,
            )
        )
    start = len(fig.data)
    for trace in dynamic:
        fig.add_trace(trace, row=1, col=1)
    _right_panel(fig, chains, data, theory)
    marker_index = len(fig.data)
    fig.add_trace(
        go.Scatter(
            x=[first["step"], first["step"]], y=[0, 1], mode="lines", yaxis="y2",
            line={"color": "crimson", "width": 1.5}, name=STEP_MARKER_NAME, showlegend=False,
        ),
        row=1, col=2,
    )  # fmt: skip
    # the marker spans the right panel's height whatever its y scale: paper coordinates
    fig.data[-1].update(yaxis="y3")
    fig.update_layout(yaxis3={"overlaying": "y2", "range": [0, 1], "visible": False})
    slider_steps = []
    traces = [*range(start, start + len(dynamic)), marker_index]
    for frame in frames:
        update: dict[str, list[Any]] = {
            "x": [_round(frame["x"]), _round(frame["mean"][:1]), _round(frame["ellipse"][:, 0])],
            "y": [_round(frame["y"]), _round(frame["mean"][1:]), _round(frame["ellipse"][:, 1])],
            "z": [np.round(frame["z"], 4).tolist(), None, None],
        }
        if theory is not None:
            update["x"].append(_round(frame["theory"][:, 0]))
            update["y"].append(_round(frame["theory"][:, 1]))
            update["z"].append(None)
        update["x"].append([frame["step"], frame["step"]])
        update["y"].append([0, 1])
        update["z"].append(None)
        (x0, x1), (y0, y1) = frame["range"]
        layout = {
            "xaxis.range": [x0, x1],
            "yaxis.range": [y0, y1],
            "annotations[0].text": f"step {frame['step']}",
        }
        slider_steps.append(
            {
                "method": "update",
                "label": str(frame["step"]),
                "args": [update, layout, traces],
            }
        )
    (x0, x1), (y0, y1) = first["range"]
    config = chains.config
    fig.update_layout(
        width=width,
        height=height,
        title={
            "text": f"{chains.n_chains} chains of {config.optimizer} on {config.model}: "
            f"lr {config.lr:g}, batch {config.batch_size}, {config.sampling}",
            "font": {"size": 14},
        },
        xaxis={"range": [x0, x1], "title": {"text": landscape.labels[0]}},
        yaxis={"range": [y0, y1], "title": {"text": landscape.labels[1]}},
        xaxis2={"title": {"text": "step"}},
        sliders=[
            {
                "active": 0,
                "steps": slider_steps,
                "currentvalue": {"prefix": "step "},
                "pad": {"t": 40},
            }
        ],
        legend={"x": 1.02, "y": 1.0},
        margin={"t": 70, "b": 40},
    )
    return fig


def _right_panel(fig: go.Figure, chains: Chains, data: Dataset, theory: Any) -> None:
    """Basin fractions (or the parameters' spread) against step on the right axes."""
    import plotly.graph_objects as go

    if chains.config.model in BASINS:
        fractions = basin_fractions(chains, data)
        for column, name in enumerate((*fractions.names, "diverged")):
            share = fractions.fractions[:, column]
            if share.any():
                fig.add_trace(
                    go.Scatter(
                        x=fractions.steps.tolist(), y=_round(share), mode="lines", name=name
                    ),
                    row=1,
                    col=2,
                )
        fig.update_yaxes(range=[-0.02, 1.02], title_text="fraction of chains", row=1, col=2)
    else:
        moments = chain_moments(chains)
        for j, name in enumerate(chains.param_names[:2]):
            fig.add_trace(
                go.Scatter(
                    x=moments.steps.tolist(), y=_round(np.sqrt(moments.covariance[:, j, j])),
                    mode="lines+markers", name=f"std {name}",
                ),
                row=1, col=2,
            )  # fmt: skip
            if theory is not None:
                fig.add_trace(
                    go.Scatter(
                        x=theory.steps.tolist(),
                        y=_round(np.sqrt(np.clip(theory.covariance[:, j, j], 0, None))),
                        mode="lines", line={"color": "black", "dash": "dash", "width": 1},
                        name=f"exact std {name}",
                    ),
                    row=1, col=2,
                )  # fmt: skip
        fig.update_yaxes(type="log", title_text="spread of the chains", row=1, col=2)
    steps = chains.record_steps
    gaps = np.diff(steps)
    if gaps.size and np.all(gaps == gaps[0]):  # evenly recorded: a linear step axis
        fig.update_xaxes(range=[0, float(steps[-1]) * 1.02], row=1, col=2)
    else:  # geometric records: log axis (step 0 is off it)
        last = max(float(steps[-1]), 1.0)
        fig.update_xaxes(type="log", range=[-0.1, np.log10(last) + 0.05], row=1, col=2)
