"""Base Plotly figures of the app, as plain figure dicts (fast to build, JSON-ready).

The server builds what does not change with the step; the browser's clientside
callback (``assets/sgdscape.js``) fills in the step-dependent traces, in place, by
the trace indices fixed here:

- ``batch``: 0 minibatch contour (z per step), 1 iterate, 2-3 legend keys of the arrows;
  arrows are layout annotations.
- ``risk``: 0 risk contour, 1 whole path (faint), 2 path so far, 3 iterate, then per
  pinned run j: ``4 + 2j`` its path, ``5 + 2j`` its iterate at the step.
- ``loss``: 0 minibatch loss, 1 risk along the path, 2 marker at the step, then one
  risk curve per pinned run; the step is a vertical line shape.
- ``noise``: 0 gradient-noise norm, 1 cosine (right axis), 2 marker, then one noise
  curve per pinned run; vertical line shape.
- ``sharpness`` (only with the sharpness panel on): 0 each minibatch's λmax, 1 the risk's
  λmax, 2 the dashed 2/lr line, 3 the marker at the step; vertical line shape.
- with the fan switch on, ``batch`` has four more traces from ``fan_first`` (in the payload):
  the spokes, the possible next iterates, their mean and the full-gradient step
  (:func:`sgdscape.views.fan.fan_traces`), each step's fan coming with the payload.

The chains view's figure (:func:`chains_figure`) is the offline chains page's
(:func:`sgdscape.views.chains_plotly.chains_player`) with its slider's per-step updates
taken out, for the browser to apply.
"""

from __future__ import annotations

import json
from typing import Any

from sgdscape.core.chain_stats import Fan
from sgdscape.core.chains import Chains
from sgdscape.core.curvature import Curvature
from sgdscape.core.landscape import Landscape
from sgdscape.core.problems import Dataset
from sgdscape.records.run import RunResult
from sgdscape.views.chains_plotly import chains_player
from sgdscape.views.fan import fan_label, fan_traces, magnified
from sgdscape.views.plotly_figures import contour_trace, sharpness_traces
from sgdscape.views.step_source import slice_text
from sgdscape.views.style import (
    ARROW_EDGE_COLOUR,
    COSINE_COLOUR,
    MARKER_EDGE_COLOUR,
    RUN_COLOURS,
    TRUE_GRADIENT_COLOUR,
    safe_log,
)

# The colours are the palette of sgdscape.views.style: RUN_COLOURS[0] is the current run
# (its path, iterate and minibatch arrow), then the pinned runs; the browser draws each
# arrow in the colour of its legend key (trace 2 or 3 of the batch figure).
FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12}


def _layout(title: str, x_title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    layout = {
        # the title sits just above the plot and the top margin leaves a strip above it
        # for Plotly's mode bar, which would otherwise cover the title on hover
        "title": {
            "text": title,
            "x": 0.01,
            "xanchor": "left",
            "yref": "paper",
            "y": 1,
            "yanchor": "bottom",
            "pad": {"b": 6},
            "font": {"size": 13},
        },
        "font": FONT,
        "margin": {"l": 55, "r": 10, "t": 56, "b": 80},
        "paper_bgcolor": "white",
        "plot_bgcolor": "#fafafa",
        "xaxis": {"title": {"text": x_title}, "automargin": True},
        "yaxis": {"title": {"text": y_title}, "automargin": True},
        "legend": {
            "orientation": "h",
            "x": 0,
            "y": -0.24,
            "yanchor": "top",
            "font": {"size": 11},
            "bgcolor": "rgba(255,255,255,0.85)",
        },
        "uirevision": "keep",
        "hovermode": "closest",
    }
    layout.update(extra)
    return layout


def _landscape_axes(result: RunResult, layout: dict[str, Any]) -> None:
    w1, w2 = result.landscape.w1, result.landscape.w2
    layout["xaxis"].update(range=[float(w1[0]), float(w1[-1])], constrain="domain")
    layout["yaxis"].update(
        range=[float(w2[0]), float(w2[-1])], scaleanchor="x", scaleratio=1, constrain="domain"
    )
    layout["margin"]["b"] = 100


def _contour(result: RunResult, z: Any, label: str, colorbar: str) -> dict[str, Any]:
    a, b = result.landscape.labels
    trace = contour_trace(
        result.landscape.w1.tolist(),
        result.landscape.w2.tolist(),
        z,
        colorbar,
        colorbar={"thickness": 12, "len": 0.9, "x": 1.0, "xpad": 4},
        hovertemplate=f"{a}=%{{x:.3f}}<br>{b}=%{{y:.3f}}<br>{label}=%{{z:.3f}}<extra></extra>",
    )
    return trace | {"name": label, "showlegend": False}


def _line(x: Any, y: Any, colour: str, width: float, name: str) -> dict[str, Any]:
    """A plotly line trace of ``y`` against ``x`` (lists of the same length)."""
    return {
        "type": "scatter",
        "mode": "lines",
        "x": x,
        "y": y,
        "line": {"color": colour, "width": width},
        "name": name,
    }


def _marker(colour: str, size: int = 12, name: str = "") -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "markers",
        "x": [None],
        "y": [None],
        "marker": {
            "color": colour,
            "size": size,
            "line": {"color": MARKER_EDGE_COLOUR, "width": 1.5},
        },
        "showlegend": False,
        "name": name,
        "hoverinfo": "skip",
    }


def _legend_key(name: str, colour: str) -> dict[str, Any]:
    """A legend entry for an arrow: a line with an arrow head that has a dark edge (so the
    white true-gradient key shows on the light legend); ``line.color`` is the arrow's."""
    return {
        "type": "scatter",
        "mode": "lines+markers",
        "x": [None],
        "y": [None],
        "line": {"color": colour, "width": 3},
        "marker": {
            "color": colour,
            "symbol": "triangle-right",
            "size": 10,
            "line": {"color": ARROW_EDGE_COLOUR, "width": 1},
        },
        "name": name,
        "hoverinfo": "skip",
    }


def _xy(path: list) -> tuple[list, list]:
    return [p[0] for p in path], [p[1] for p in path]


def base_figures(
    result: RunResult, payload: dict[str, Any], pins: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The four base figures ``batch``, ``risk``, ``loss`` and ``noise`` (see module doc)."""
    a, b = result.landscape.labels
    if held := slice_text(result):  # a slice of a bigger model says where it sits
        a = f"{a}   ({held})"
    scale = payload["arrow_scale"]
    steps = list(range(payload["n_steps"]))
    run_name = f"run 1: {payload['label']}" if pins else "path"

    batch_layout = _layout("minibatch loss", a, b)
    _landscape_axes(result, batch_layout)
    batch = {
        "data": [
            _contour(result, [[0.0]], "log loss", "log minibatch loss"),
            _marker(RUN_COLOURS[0]),
            _legend_key(f"−minibatch gradient ×{scale:.2g}", RUN_COLOURS[0]),
            _legend_key(f"−full gradient ×{scale:.2g}", TRUE_GRADIENT_COLOUR),
        ],
        "layout": batch_layout,
    }

    risk_z = safe_log(result.landscape.risk).round(4).tolist()
    xs, ys = _xy(payload["path"])
    risk_layout = _layout(
        f"empirical risk ({payload['samples']} samples) · click to start here", a, b
    )
    _landscape_axes(result, risk_layout)
    risk_data = [
        _contour(result, risk_z, "log risk", "log empirical risk"),
        {
            "type": "scatter",
            "mode": "lines",
            "x": xs,
            "y": ys,
            "line": {"color": RUN_COLOURS[0], "width": 1},
            "opacity": 0.45,
            "showlegend": False,
            "hoverinfo": "skip",
            "name": "whole path",
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": [],
            "y": [],
            "line": {"color": RUN_COLOURS[0], "width": 3},
            "marker": {"size": 5},
            "name": run_name,
            "hoverinfo": "skip",
        },
        _marker(RUN_COLOURS[0], 13, "iterate"),
    ]
    loss_data = [
        _line(steps, payload["batch_loss"], "#bbbbbb", 1, "minibatch loss"),
        _line(steps, payload["risk"], RUN_COLOURS[0], 2.5, "risk" + (" (run 1)" if pins else "")),
        _marker(RUN_COLOURS[0], 10, "step"),
    ]
    noise_data = [
        _line(
            steps,
            payload["noise_norm"],
            RUN_COLOURS[0],
            2,
            "‖g_B − ∇R‖" + (" (run 1)" if pins else ""),
        ),
        {
            "type": "scatter",
            "x": steps,
            "y": payload["cosine"],
            "yaxis": "y2",
            "mode": "markers",
            "marker": {"color": COSINE_COLOUR, "size": 4, "opacity": 0.7},
            "name": "cos(g_B, ∇R)",
        },
        _marker(RUN_COLOURS[0], 10, "step"),
    ]
    for j, pin in enumerate(pins, start=1):
        colour = RUN_COLOURS[j % len(RUN_COLOURS)]
        pxs, pys = _xy(pin["path"])
        pin_steps = list(range(pin["n_steps"]))
        risk_data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": pxs,
                "y": pys,
                "line": {"color": colour, "width": 2.5, "dash": "dash"},
                "name": f"run {j + 1}: {pin['label']}",
                "hoverinfo": "skip",
            }
        )
        risk_data.append(_marker(colour, 11, f"run {j + 1}"))
        dashed = {"type": "scatter", "mode": "lines", "x": pin_steps}
        loss_data.append(
            dashed
            | {"y": pin["risk"], "line": {"color": colour, "dash": "dash"}, "name": f"run {j + 1}"}
        )
        noise_data.append(
            dashed
            | {
                "y": pin["noise_norm"],
                "line": {"color": colour, "dash": "dash"},
                "name": f"run {j + 1}",
            }
        )

    loss_layout = _layout("loss along the run", "step", "loss (log scale)")
    loss_layout["yaxis"]["type"] = "log"
    noise_layout = _layout("gradient noise", "step", "‖g_B − ∇R‖")
    noise_layout["yaxis2"] = {
        "title": {"text": "cosine", "font": {"color": COSINE_COLOUR}},
        "overlaying": "y",
        "side": "right",
        "range": [-1.05, 1.05],
        "tickmode": "array",
        "tickvals": [-1, -0.5, 0, 0.5, 1],
        "showgrid": False,
        "zeroline": False,
        "tickfont": {"color": COSINE_COLOUR},
    }
    noise_layout["margin"]["r"] = 50
    return {
        "batch": batch,
        "risk": {"data": risk_data, "layout": risk_layout},
        "loss": {"data": loss_data, "layout": loss_layout},
        "noise": {"data": noise_data, "layout": noise_layout},
    }


def sharpness_figure(record: Curvature) -> dict[str, Any]:
    """The ``sharpness`` figure: λmax of the risk and of each step's minibatch against step,
    with the dashed 2/lr line (:func:`sgdscape.views.plotly_figures.sharpness_traces`) and
    an empty marker the browser moves to the step."""
    traces, log = sharpness_traces(record)
    data = [trace | {"xaxis": "x", "yaxis": "y"} for trace in traces]
    layout = _layout(
        "sharpness: top Hessian eigenvalue along the run", "step", "λmax (loss / parameter²)"
    )
    layout["yaxis"]["type"] = "log" if log else "linear"
    return {"data": data, "layout": layout}


def fan_figure_traces(fan: Fan, scale: float) -> list[dict[str, Any]]:
    """The fan's four traces on the ``batch`` figure (the widget's: ``fan_traces`` of the
    fan magnified by ``scale``, labelled by ``fan_label``), as plain JSON-ready dicts."""
    traces = fan_traces(magnified(fan, scale), label=fan_label(fan, scale))
    return [_plain(trace.to_plotly_json()) | {"xaxis": "x", "yaxis": "y"} for trace in traces]


def _plain(value: Any) -> Any:
    """``value`` with numpy arrays and numbers as lists and floats, NaN and inf as ``None``
    (plain JSON: no typed arrays)."""
    import math

    import numpy as np

    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def chains_figure(chains: Chains, landscape: Landscape, data: Dataset) -> dict[str, Any]:
    """The chains view: the figure of :func:`sgdscape.views.chains_plotly.chains_player`
    (left: the density of the chains at a step over the risk, their mean, the empirical 2σ
    ellipse and the exact theory's where it applies; right: the fraction of chains per
    basin, or their spread, against step, with the step marked), sized by the page.

    Returns ``figure`` (without the slider), ``updates`` (one per recorded step: the
    slider's ``[trace changes, layout changes, trace indices]``) and ``steps``.
    """
    figure = chains_player(chains, landscape, data)
    slider = figure.layout.sliders[0]
    updates = [_plain(step.args) for step in slider.steps]
    steps = [int(step.label) for step in slider.steps]
    figure.layout.sliders = ()
    # the page's panel is narrower than the offline page: the legend goes below the panels
    # and the density's colour bar takes its title on top, off the right panel's axis title
    figure.update_layout(
        width=None,
        height=None,
        autosize=True,
        font=FONT,
        uirevision="keep",
        legend={"orientation": "h", "x": 0, "y": -0.16, "yanchor": "top"},
        margin={"t": 70, "b": 40, "l": 60, "r": 20},
    )
    figure.update_traces(
        colorbar={"title": {"text": "log10 chains<br>per unit area", "side": "top"}},
        selector={"type": "heatmap"},
    )
    plain = json.loads(figure.to_json())  # plain lists below, never typed arrays
    return {"figure": _plain(_untyped(plain, figure)), "updates": updates, "steps": steps}


def _untyped(plain: dict[str, Any], figure: Any) -> dict[str, Any]:
    """``plain`` (a figure's JSON) with each trace's typed arrays replaced by lists."""
    for index, trace in enumerate(figure.data):
        for key in ("x", "y", "z"):
            value = getattr(trace, key, None)
            if value is not None:
                plain["data"][index][key] = _plain(value)
    return plain
