"""Plotly views of a run: the notebook's two panels, and a player that scrubs through steps.

Left: log loss of the minibatch used at step ``k`` with the iterate, the -minibatch-gradient
arrow and the -full-gradient arrow. Right: log empirical risk with the path up to ``k``.

- :func:`step_figure` is a complete ``plotly.graph_objects.Figure`` of one step (for the
  web app, notebooks, or ``fig.show()``).
- :func:`surface_figure`, :func:`path_surface` and :func:`run_surface` (3-D surfaces with
  a path on them) live in :mod:`sgdscape.views.surface` and are importable from here too.
- :func:`player` packs a whole run for a browser: a figure skeleton, the per-step
  quantities and the *distinct* minibatch landscapes, each stored once as log values
  quantised to 16 bits, delta-coded along rows, split into byte planes, gzipped and
  base64-encoded (the seed run's 100 landscapes of 100x100 take about 0.5 MB; the format,
  :class:`Player` and :data:`PLAYER_JS` live in :mod:`sgdscape.views.player_pack` and are
  importable from here too). :data:`PLAYER_JS` decodes it in the page and drives a step
  slider and a play/pause button without any server.

Both draw a 2-parameter run or a network's view alike, from its
:class:`~sgdscape.views.step_source.StepSource`: titles, arrows and colours are those of the
matplotlib figure. Views never recompute the science: every number comes from the source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sgdscape.core.curvature import Curvature
from sgdscape.networks.recording import StochasticView
from sgdscape.records.run import RunResult
from sgdscape.views.player_pack import (  # the player's data format, importable from here as before
    PLAYER_JS,
    Player,
    decode_log_grids,
    distinct_batches,
    encode_log_grids,
)
from sgdscape.views.sharpness_style import (
    BATCH_LABEL,
    RISK_LABEL,
    THRESHOLD_LABEL,
    use_log_scale,
)
from sgdscape.views.step_figure import wrap_title_text
from sgdscape.views.step_source import StepSource, step_source
from sgdscape.views.style import (
    ARROW_EDGE_COLOUR,
    CONTOUR_LEVELS,
    MARKER_EDGE_COLOUR,
    PATH_COLOUR,
    PLOTLY_COLOUR_SCALE,
    TRUE_GRADIENT_COLOUR,
    Arrows,
    safe_log,
)
from sgdscape.views.surface import (  # the 3-D surfaces, importable from here as before
    PATH_LIFT,
    SURFACE_HEIGHT,
    SURFACE_WIDTH,
    path_surface,
    run_surface,
    surface_figure,
    surface_heights,
)

if TYPE_CHECKING:
    import plotly.graph_objects as go

Stepped = RunResult | StochasticView | StepSource  # what the step views draw (step_source)
__all__ = [
    "HEIGHT",
    "PATH_LIFT",
    "PLAYER_JS",
    "SHARPNESS_HEIGHT",
    "SHARPNESS_TRACES",
    "SURFACE_HEIGHT",
    "SURFACE_WIDTH",
    "TRACES",
    "WIDTH",
    "Player",
    "contour_range",
    "contour_trace",
    "decode_log_grids",
    "distinct_batches",
    "encode_log_grids",
    "path_surface",
    "player",
    "run_surface",
    "sharpness_of",
    "sharpness_traces",
    "step_figure",
    "surface_figure",
    "surface_heights",
    "web_titles",
]
WIDTH, HEIGHT = 1200, 600  # pixels of the Plotly figure

# Trace order of both figures; PLAYER_JS relies on it.
TRACES = ("minibatch", "minibatch_arrow", "full_arrow", "iterate", "risk", "path", "iterate_right")
# A run with curvature (its StepSource's extras["curvature"]) adds a row below, these traces
# after TRACES: each minibatch's and the risk's λmax against step, the 2/lr line, and the
# marker on the shown step (PLAYER_JS moves it; frames["sharpness"] gives its index).
SHARPNESS_TRACES = ("sharpness_batch", "sharpness_risk", "sharpness_threshold", "sharpness_step")
SHARPNESS_HEIGHT = 300  # pixels the sharpness row adds to the figure's height


def _plain(values: np.ndarray, digits: int = 7) -> list[Any]:
    """A JSON-ready nested list with ``digits`` significant digits and ``None`` for NaN/inf."""
    array = np.asarray(values, dtype=np.float64)
    flat = [float(f"{v:.{digits}g}") if math.isfinite(v) else None for v in array.ravel()]
    if array.ndim <= 1:
        return flat
    return np.array(flat, dtype=object).reshape(array.shape).tolist()


def contour_trace(
    x: Any, y: Any, z: Any, title: str, *, colorbar: dict[str, Any], hovertemplate: str
) -> dict[str, Any]:
    """A filled-contour trace dict of a log landscape ``z (G2, G1)`` on axes ``x (G1,)``,
    ``y (G2,)``: the palette's colour scale, ``CONTOUR_LEVELS`` levels, no lines, and a
    colour bar titled ``title`` (``colorbar`` adds its position and size)."""
    return {
        "type": "contour",
        "x": x,
        "y": y,
        "z": z,
        "colorscale": PLOTLY_COLOUR_SCALE,
        "ncontours": CONTOUR_LEVELS,
        "contours": {"coloring": "fill", "showlines": False},
        "line": {"width": 0},
        "colorbar": {"title": {"text": title, "side": "right"}, **colorbar},
        "hovertemplate": hovertemplate,
    }


def _contour(
    x: np.ndarray, y: np.ndarray, z: Any, label: str, colorbar_x: float, labels: tuple[str, str]
) -> dict[str, Any]:
    return contour_trace(
        _plain(x),
        _plain(y),
        z,
        label,
        colorbar={"x": colorbar_x, "len": 0.9, "thickness": 14},
        hovertemplate=(
            f"{labels[0]} = %{{x:.4g}}<br>{labels[1]} = %{{y:.4g}}<br>"
            f"{label} = %{{z:.4g}}<br>loss = %{{customdata:.4g}}<extra></extra>"
        ),
    )


def contour_range(z: np.ndarray) -> dict[str, Any]:
    """The colour range and levels of one log grid ``z (G2, G1)``, as contour trace keys.

    Every Plotly surface fixes them per step: ``CONTOUR_LEVELS`` equal steps from the
    grid's finite min to its max (``PLAYER_JS`` and the web app do the same in the
    browser), so the colour bar always shows the range of the step drawn.
    """
    finite = np.asarray(z, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    hi = hi if hi > lo else lo + 1.0
    return {
        "zauto": False,
        "zmin": lo,
        "zmax": hi,
        "autocontour": False,
        "contours": {
            "coloring": "fill",
            "showlines": False,
            "start": lo,
            "end": hi,
            "size": (hi - lo) / CONTOUR_LEVELS,
        },
    }


def _line(name: str, colour: str, *, xaxis: str, yaxis: str, **extra: Any) -> dict[str, Any]:
    trace = {
        "type": "scatter",
        "name": name,
        "x": [],
        "y": [],
        "xaxis": xaxis,
        "yaxis": yaxis,
        "line": {"color": colour, "width": 3},
        "marker": {"color": colour},
    }
    trace.update(extra)
    return trace


MARGIN = {"l": 60, "r": 20, "t": 90, "b": 80}
TITLE_FONT_PX = 15  # the figure title's font size; long titles wrap to the figure's width
TITLE_LINE_PX = 20  # height of one more title line, added to the top margin


def web_titles(titles: Sequence[str], width: int) -> tuple[list[str], int]:
    """Figure titles wrapped to ``width`` pixels, as Plotly text (``<br>`` breaks).

    Returns the wrapped titles and the top margin (pixels) that fits the longest of them
    above the panels' own titles.
    """
    chars = max(20, int(0.9 * (width - MARGIN["l"] - MARGIN["r"]) / (0.6 * TITLE_FONT_PX)))
    wrapped = [wrap_title_text(title, chars) for title in titles]
    lines = max((text.count("\n") + 1 for text in wrapped), default=1)
    return [text.replace("\n", "<br>") for text in wrapped], MARGIN["t"] + max(
        0, lines - 2
    ) * TITLE_LINE_PX


def _panels(width: int, height: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """x-domains of two square panels, each followed by room for its colour bar."""
    plot_width = width - MARGIN["l"] - MARGIN["r"]
    plot_height = height - MARGIN["t"] - MARGIN["b"]
    # after each panel: 150 px at least for its colour bar, the bar's label and the next
    # panel's tick labels and axis title (narrow players would otherwise overlap them)
    side = min(plot_height / plot_width, 0.36, 0.5 - 150 / plot_width)
    gap = (1.0 - 2 * side) / 2  # colour bar and spacing after each panel
    return (0.0, side), (side + gap, 2 * side + gap)


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
            _line(
                BATCH_LABEL + (" (≤ 0 not shown)" if hidden else ""),
                "#1f77b4",
                xaxis="x3",
                yaxis="y3",
                x=steps.tolist(),
                y=_plain(shown),
                mode="markers",
                marker={"color": "#1f77b4", "size": 4, "opacity": 0.6},
                hovertemplate="step %{x}<br>minibatch λmax = %{y:.4g}<extra></extra>",
            )
        )
    else:
        traces.append(_line(BATCH_LABEL, "#1f77b4", xaxis="x3", yaxis="y3", showlegend=False))
    traces.append(
        _line(
            RISK_LABEL,
            PATH_COLOUR,
            xaxis="x3",
            yaxis="y3",
            x=steps.tolist(),
            y=_plain(risk),
            mode="lines",
            line={"color": PATH_COLOUR, "width": 2.5},
            hovertemplate="step %{x}<br>risk λmax = %{y:.4g}<extra></extra>",
        )
    )
    traces.append(
        _line(
            THRESHOLD_LABEL,
            "black",
            xaxis="x3",
            yaxis="y3",
            x=[] if edge is None else steps.tolist(),
            y=[] if edge is None else _plain(edge),
            mode="lines",
            line={"color": "black", "width": 1.5, "dash": "dash", "shape": "hv"},
            hovertemplate="step %{x}<br>2 / lr = %{y:.4g}<extra></extra>",
            **({} if edge is not None else {"showlegend": False}),
        )
    )
    traces.append(
        _line(
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


def _add_sharpness_row(
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
    layout["annotations"].append(
        {
            "text": "sharpness along the path: λmax of the risk and of each step's minibatch",
            "x": right_end / 2,
            "y": bottom,
            "xref": "paper",
            "yref": "paper",
            "xanchor": "center",
            "yanchor": "bottom",
            "showarrow": False,
            "font": {"size": 13},
        }
    )
    layout["legend"]["y"] = -60 / total


def _skeleton(source: StepSource, width: int, height: int) -> dict[str, Any]:
    """Figure dict with every trace and axis (on ``source``'s grid), no per-step values.

    A run with curvature (:func:`sharpness_of`) gets the sharpness row below, its traces
    (:data:`SHARPNESS_TRACES`) after :data:`TRACES`, and :data:`SHARPNESS_HEIGHT` more pixels.
    """
    figure = _step_skeleton(source, width, height)
    curvature = sharpness_of(source)
    if curvature is not None:
        _add_sharpness_row(figure, curvature, height, _panels(width, height)[1][1])
    return figure


def _sharpness_step(curvature: Curvature, step: int) -> tuple[list[Any], list[Any]]:
    """The ``x`` and ``y`` of the sharpness marker at ``step``."""
    return [step], _plain(np.asarray(curvature.lambda_max)[step : step + 1])


def _step_skeleton(source: StepSource, width: int, height: int) -> dict[str, Any]:
    """The two step panels' figure dict (no sharpness row)."""
    surface = source.landscape
    scale = source.arrow_scale
    left_domain, right_domain = _panels(width, height)
    labels = surface.labels
    edge = {"color": MARKER_EDGE_COLOUR, "width": 1.5}
    point_marker = {"color": PATH_COLOUR, "size": 12, "line": edge}
    arrow_marker = {"symbol": "arrow", "size": [0, 15], "angleref": "previous"}
    names = source.arrow_names

    def iterate(xaxis: str, yaxis: str) -> dict[str, Any]:  # the iterate, with its hover text
        return _line(
            "iterate",
            PATH_COLOUR,
            xaxis=xaxis,
            yaxis=yaxis,
            mode="markers",
            marker=point_marker,
            showlegend=False,
            hovertemplate="%{text}<extra></extra>",
        )

    data = [
        {
            **_contour(
                surface.w1, surface.w2, None, "log minibatch loss", left_domain[1] + 0.01, labels
            ),
            "xaxis": "x",
            "yaxis": "y",
        },
        _line(
            f"{names[0]} × {scale:.2g}",  # per step: the arrow rule's label
            PATH_COLOUR,
            xaxis="x",
            yaxis="y",
            mode="lines+markers",
            marker={**arrow_marker, "color": PATH_COLOUR},
            hoverinfo="skip",
        ),
        _line(
            f"{names[1]} × {scale:.2g}",
            TRUE_GRADIENT_COLOUR,
            xaxis="x",
            yaxis="y",
            mode="lines+markers",
            marker={
                **arrow_marker,
                "color": TRUE_GRADIENT_COLOUR,
                "line": {"color": ARROW_EDGE_COLOUR, "width": 1},
            },
            hoverinfo="skip",
            **({} if source.true_gradients is not None else {"showlegend": False}),
        ),
        iterate("x", "y"),
        {
            **_contour(
                surface.w1, surface.w2, None, source.risk_label, right_domain[1] + 0.01, labels
            ),
            "xaxis": "x2",
            "yaxis": "y2",
        },
        _line(
            source.path_label,
            PATH_COLOUR,
            xaxis="x2",
            yaxis="y2",
            mode="lines+markers",
            marker={"color": PATH_COLOUR, "size": 6},
            hovertemplate=f"{labels[0]} = %{{x:.4g}}<br>{labels[1]} = %{{y:.4g}}<extra>path</extra>",
        ),
        iterate("x2", "y2"),
    ]
    # equal units on both axes, except for a projected path (its PC2 usually spans far
    # less than PC1: the panels are filled instead)
    equal_units = not source.projected
    y_units = {"scaleanchor": "x", "constrain": "domain"} if equal_units else {}
    y2_units = {"scaleanchor": "x2", "constrain": "domain"} if equal_units else {}

    def axis(label: str, values: np.ndarray, domain: tuple[float, float], **extra: Any) -> dict:
        return {
            "title": {"text": label},
            "range": [float(values[0]), float(values[-1])],
            "domain": list(domain),
            "showgrid": False,
            "zeroline": False,
            **extra,
        }

    layout = {
        "width": width,
        "height": height,
        "margin": dict(MARGIN),
        # hung from the top, so the extra lines of a wrapped title grow into the top margin
        "title": {
            "text": "",
            "x": 0.5,
            "xanchor": "center",
            "y": 1.0,
            "yref": "container",
            "yanchor": "top",
            "pad": {"t": 22},
            "font": {"size": TITLE_FONT_PX},
        },
        "xaxis": axis(labels[0], surface.w1, left_domain),
        "yaxis": axis(labels[1], surface.w2, (0.0, 1.0), **y_units),
        "xaxis2": axis(labels[0], surface.w1, right_domain),
        "yaxis2": axis(labels[1], surface.w2, (0.0, 1.0), anchor="x2", **y2_units),
        "legend": {
            "orientation": "h",
            "x": 0.5,
            "xanchor": "center",
            "y": -0.16 if source.projected else -0.12,  # below the taller panels' axis titles
            "yanchor": "top",
            "bgcolor": "#e8e8e8",
        },
        "annotations": [
            {
                "text": "",
                "x": x,
                "y": 1.0,
                "xref": "paper",
                "yref": "paper",
                "xanchor": "center",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 13},
            }
            for x in (sum(left_domain) / 2, sum(right_domain) / 2)
        ],
        "plot_bgcolor": "white",
    }
    return {"data": data, "layout": layout}


def _arrow_xy(arrows: Arrows | None, step: int) -> tuple[list[Any], list[Any]]:
    """The ``x`` and ``y`` of an arrow trace: ``[tail, tip]``, or empty when none is drawn."""
    if arrows is None or not arrows.drawn[step]:
        return [], []
    tail, tip = arrows.tail[step], arrows.tip[step]
    return _plain(np.array([tail[0], tip[0]])), _plain(np.array([tail[1], tip[1]]))


def _tips(arrows: Arrows | None, steps: Sequence[int]) -> list[Any] | None:
    """The tips of ``steps``' arrows for ``PLAYER_JS`` (``None`` where none is drawn)."""
    return None if arrows is None else _plain(arrows.tip[list(steps)])


def step_figure(
    result: Stepped, step: int, *, width: int = WIDTH, height: int = HEIGHT
) -> go.Figure:
    """The two-panel Plotly figure of ``step`` (complete: contours, arrows, path, hover).

    ``result`` is a single-init run, a network's view or their
    :class:`~sgdscape.views.step_source.StepSource`; ``width`` and ``height`` are in
    pixels; a run's panels are square.
    """
    import plotly.graph_objects as go

    source = step_source(result)
    left_log = safe_log(source.minibatch_landscape(source.check_step(step)))
    figure = _skeleton(source, width, height)
    data, layout = figure["data"], figure["layout"]
    path = source.path
    point = path[step]
    minibatch, full = source.arrows()
    risk_log = safe_log(source.landscape.risk)
    data[0].update(contour_range(left_log))
    data[0]["z"], data[0]["customdata"] = _plain(left_log, 6), _plain(np.exp(left_log), 6)
    data[4]["z"], data[4]["customdata"] = _plain(risk_log, 6), _plain(np.exp(risk_log), 6)
    for index in (3, 6):
        data[index]["x"], data[index]["y"] = _plain(point[:1]), _plain(point[1:])
        data[index]["text"] = [source.point_text(step)]
    data[1]["x"], data[1]["y"] = _arrow_xy(minibatch, step)
    data[1]["name"] = minibatch.labels[step]
    data[2]["x"], data[2]["y"] = _arrow_xy(full, step)
    if full is not None:
        data[2]["name"] = full.labels[step]
    data[5]["x"], data[5]["y"] = _plain(path[: step + 1, 0]), _plain(path[: step + 1, 1])
    left_title, right_title, suptitle = source.titles(step)
    layout["annotations"][0]["text"], layout["annotations"][1]["text"] = left_title, right_title
    (layout["title"]["text"],), layout["margin"]["t"] = web_titles([suptitle], width)
    curvature = sharpness_of(source)
    if curvature is not None:
        marker = data[len(TRACES) + SHARPNESS_TRACES.index("sharpness_step")]
        marker["x"], marker["y"] = _sharpness_step(curvature, step)
    return go.Figure(data=data, layout=layout)


def player(
    result: Stepped,
    *,
    steps: Sequence[int] | range | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Player:
    """Pack a run or a network's view for :data:`PLAYER_JS`: every shown step, each
    distinct minibatch (as a set of samples) once, the risk last.

    ``result`` is a single-init run, a network's view or their
    :class:`~sgdscape.views.step_source.StepSource`. ``steps`` (default: every step that
    has a minibatch landscape, i.e. all of a run's, a view's stored ones) are the steps
    the slider visits, in order.
    """
    source = step_source(result)
    chosen = source.resolve_steps(steps)
    path = source.path
    minibatch, full = source.arrows()
    first_step, which = distinct_batches(chosen, lambda step: source.batches[step])
    grids = [safe_log(source.minibatch_landscape(step)) for step in first_step]
    grids.append(safe_log(source.landscape.risk))
    titles = [source.titles(step) for step in chosen]
    frames = {
        "steps": chosen,
        "landscape": which,
        "risk_landscape": len(first_step),
        "grids": encode_log_grids(np.stack(grids)),
        "path": _plain(path[: max(chosen) + 1]),
        "minibatch_tip": _tips(minibatch, chosen),
        "minibatch_label": [minibatch.labels[step] for step in chosen],
        "full_tip": _tips(full, chosen),
        "full_label": None if full is None else [full.labels[step] for step in chosen],
        "contour_levels": CONTOUR_LEVELS,
        "point_text": [source.point_text(step) for step in chosen],
        "left_title": [t[0] for t in titles],
        "right_title": [t[1] for t in titles],
        "sharpness": None,
    }
    curvature = sharpness_of(source)
    if curvature is not None:
        frames["sharpness"] = {
            "trace": len(TRACES) + SHARPNESS_TRACES.index("sharpness_step"),
            "lambda_max": _plain(np.asarray(curvature.lambda_max)),
        }
    frames["title"], top = web_titles([t[2] for t in titles], width)
    skeleton = _skeleton(source, width, height)
    skeleton["layout"]["margin"] = {**skeleton["layout"]["margin"], "t": top}
    return Player(skeleton, frames)
