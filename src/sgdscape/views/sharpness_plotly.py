"""The sharpness row of the Plotly step figure and player: each minibatch's and the risk's
top Hessian eigenvalue against step, the 2/lr line, and a marker on the step shown.

A run with curvature (its :class:`~sgdscape.views.step_source.StepSource`'s
``extras["curvature"]``) gets this row below the two step panels; its traces follow
:data:`~sgdscape.views.plotly_parts.TRACES` in the order of :data:`SHARPNESS_TRACES`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sgdscape.core.curvature import Curvature
from sgdscape.views.plotly_parts import MARGIN, TRACES, line_trace, panel_title, plain_values
from sgdscape.views.sharpness_style import BATCH_LABEL, RISK_LABEL, THRESHOLD_LABEL, use_log_scale
from sgdscape.views.step_source import StepSource
from sgdscape.views.style import MARKER_EDGE_COLOUR, PATH_COLOUR

# A run with curvature (its StepSource's extras["curvature"]) adds a row below, these traces
# after TRACES: each minibatch's and the risk's λmax against step, the 2/lr line, and the
# marker on the shown step (PLAYER_JS moves it; frames["sharpness"] gives its index).
SHARPNESS_TRACES = ("sharpness_batch", "sharpness_risk", "sharpness_threshold", "sharpness_step")
SHARPNESS_HEIGHT = 300  # pixels the sharpness row adds to the figure's height


def sharpness_of(source: StepSource) -> Curvature | None:
    """The curvature record a step view draws as its sharpness row, or ``None``."""
    found = source.extras.get("curvature")
    return found if isinstance(found, Curvature) else None


def sharpness_traces(curvature: Curvature) -> tuple[list[dict[str, Any]], bool]:
    """The traces of :data:`SHARPNESS_TRACES` on axes ``x3``/``y3`` (the marker empty) and
    whether the y axis is logarithmic (:func:`~sgdscape.views.sharpness_figure.use_log_scale`)."""
    steps = np.arange(curvature.n_steps)
    risk = np.asarray(curvature.lambda_max, dtype=np.float64)
    edge = None
    if curvature.lr is not None:
        lr = np.broadcast_to(np.asarray(curvature.lr, dtype=np.float64), steps.shape)
        with np.errstate(divide="ignore"):
            edge = np.where(lr > 0, 2.0 / lr, np.inf)
    log = use_log_scale(risk, edge)
    top = curvature.batch_lambda_max
    traces = []
    if top is not None:
        top = np.asarray(top, dtype=np.float64)
        shown = np.where(top > 0, top, np.nan) if log else top
        hidden = log and bool(np.nanmin(top) <= 0)
        traces.append(
            line_trace(
                BATCH_LABEL + (" (≤ 0 not shown)" if hidden else ""),
                "#1f77b4",
                xaxis="x3",
                yaxis="y3",
                x=steps.tolist(),
                y=plain_values(shown),
                mode="markers",
                marker={"color": "#1f77b4", "size": 4, "opacity": 0.6},
                hovertemplate="step %{x}<br>minibatch λmax = %{y:.4g}<extra></extra>",
            )
        )
    else:
        traces.append(line_trace(BATCH_LABEL, "#1f77b4", xaxis="x3", yaxis="y3", showlegend=False))
    traces.append(
        line_trace(
            RISK_LABEL,
            PATH_COLOUR,
            xaxis="x3",
            yaxis="y3",
            x=steps.tolist(),
            y=plain_values(risk),
            mode="lines",
            line={"color": PATH_COLOUR, "width": 2.5},
            hovertemplate="step %{x}<br>risk λmax = %{y:.4g}<extra></extra>",
        )
    )
    traces.append(
        line_trace(
            THRESHOLD_LABEL,
            "black",
            xaxis="x3",
            yaxis="y3",
            x=[] if edge is None else steps.tolist(),
            y=[] if edge is None else plain_values(edge),
            mode="lines",
            line={"color": "black", "width": 1.5, "dash": "dash", "shape": "hv"},
            hovertemplate="step %{x}<br>2 / lr = %{y:.4g}<extra></extra>",
            **({} if edge is not None else {"showlegend": False}),
        )
    )
    traces.append(
        line_trace(
            "λmax at the step",
            PATH_COLOUR,
            xaxis="x3",
            yaxis="y3",
            mode="markers",
            marker={
                "color": PATH_COLOUR,
                "size": 11,
                "line": {"color": MARKER_EDGE_COLOUR, "width": 1.5},
            },
            showlegend=False,
            hovertemplate="step %{x}<br>risk λmax = %{y:.4g}<extra></extra>",
        )
    )
    return traces, log


def add_sharpness_row(
    figure: dict[str, Any], curvature: Curvature, height: int, right_end: float
) -> None:
    """Grow ``figure`` (a :func:`_skeleton` of ``height`` pixels) by :data:`SHARPNESS_HEIGHT`
    and put the sharpness panel in the new row below the two step panels."""
    layout = figure["layout"]
    plot_height = height - MARGIN["t"] - MARGIN["b"]
    total = plot_height + SHARPNESS_HEIGHT
    top = SHARPNESS_HEIGHT / total  # the step panels keep their own height in pixels
    bottom = (SHARPNESS_HEIGHT - 80) / total  # room for the step panels' axis titles
    layout["height"] = height + SHARPNESS_HEIGHT
    layout["yaxis"]["domain"] = [top, 1.0]
    layout["yaxis2"]["domain"] = [top, 1.0]
    for contour in figure["data"][0], figure["data"][TRACES.index("risk")]:  # bars beside them
        bar = contour["colorbar"]
        bar.update(y=(1.0 + top) / 2, yanchor="middle", len=bar.get("len", 0.9) * (1.0 - top))
    traces, log = sharpness_traces(curvature)
    figure["data"].extend(traces)
    layout["xaxis3"] = {
        "title": {"text": "step"},
        "domain": [0.0, right_end],
        "anchor": "y3",
        "range": [-0.5, curvature.n_steps - 0.5],
        "showgrid": True,
        "gridcolor": "#e5e5e5",
        "zeroline": False,
    }
    layout["yaxis3"] = {
        "title": {"text": "top Hessian eigenvalue"},
        "domain": [0.0, bottom],
        "anchor": "x3",
        "type": "log" if log else "linear",
        "showgrid": True,
        "gridcolor": "#e5e5e5",
        "zeroline": False,
    }
    title = "sharpness along the path: λmax of the risk and of each step's minibatch"
    layout["annotations"].append(panel_title(title, right_end / 2, bottom))
    layout["legend"]["y"] = -60 / total


def sharpness_marker(curvature: Curvature, step: int) -> tuple[list[Any], list[Any]]:
    """The ``x`` and ``y`` of the sharpness marker at ``step``."""
    return [step], plain_values(np.asarray(curvature.lambda_max)[step : step + 1])
