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
  slider and a play/pause button without any server. ``player(run, fan=True)`` adds the
  fan of next steps (:mod:`sgdscape.views.fan`) to the left panel, magnified and labelled
  as in the PNGs and the explorer, its points packed per step beside the path.

Both draw a 2-parameter run or a network's view alike, from its
:class:`~sgdscape.views.step_source.StepSource`: titles, arrows and colours are those of the
matplotlib figure. Views never recompute the science: every number comes from the source.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sgdscape.errors import SgdscapeError
from sgdscape.networks.recording import StochasticView
from sgdscape.records.run import RunResult
from sgdscape.views.player_pack import (  # the player's data format, importable from here as before
    PLAYER_JS,
    Player,
    decode_log_grids,
    distinct_batches,
    encode_log_grids,
)
from sgdscape.views.plotly_parts import (
    MARGIN,
    TITLE_FONT_PX,
    TRACES,
    contour_range,
    contour_trace,
    line_trace,
    log_contour,
    panel_domains,
    panel_title,
    plain_values,
    web_titles,
)
from sgdscape.views.sharpness_plotly import (
    SHARPNESS_HEIGHT,
    SHARPNESS_TRACES,
    add_sharpness_row,
    sharpness_marker,
    sharpness_of,
    sharpness_traces,
)
from sgdscape.views.step_source import StepSource, step_source
from sgdscape.views.style import (
    ARROW_EDGE_COLOUR,
    CONTOUR_LEVELS,
    MARKER_EDGE_COLOUR,
    PATH_COLOUR,
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
    "FAN_TRACES",
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
#: the fan's traces in the player, after :data:`TRACES` (and the sharpness row's), in the
#: order :func:`sgdscape.views.fan.fan_traces` returns them
FAN_TRACES = ("fan_spokes", "fan_points", "fan_mean", "fan_full_step")


def _skeleton(source: StepSource, width: int, height: int) -> dict[str, Any]:
    """Figure dict with every trace and axis (on ``source``'s grid), no per-step values.

    A run with curvature (:func:`sharpness_of`) gets the sharpness row below, its traces
    (:data:`SHARPNESS_TRACES`) after :data:`TRACES`, and :data:`SHARPNESS_HEIGHT` more pixels.
    """
    figure = _step_skeleton(source, width, height)
    curvature = sharpness_of(source)
    if curvature is not None:
        add_sharpness_row(figure, curvature, height, panel_domains(width, height)[1][1])
    return figure


def _step_skeleton(source: StepSource, width: int, height: int) -> dict[str, Any]:
    """The two step panels' figure dict (no sharpness row)."""
    surface = source.landscape
    scale = source.arrow_scale
    left_domain, right_domain = panel_domains(width, height)
    labels = surface.labels
    edge = {"color": MARKER_EDGE_COLOUR, "width": 1.5}
    point_marker = {"color": PATH_COLOUR, "size": 12, "line": edge}
    arrow_marker = {"symbol": "arrow", "size": [0, 15], "angleref": "previous"}
    names = source.arrow_names

    def iterate(xaxis: str, yaxis: str) -> dict[str, Any]:  # the iterate, with its hover text
        return line_trace(
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
            **log_contour(
                surface.w1, surface.w2, None, "log minibatch loss", left_domain[1] + 0.01, labels
            ),
            "xaxis": "x",
            "yaxis": "y",
        },
        line_trace(
            f"{names[0]} × {scale:.2g}",  # per step: the arrow rule's label
            PATH_COLOUR,
            xaxis="x",
            yaxis="y",
            mode="lines+markers",
            marker={**arrow_marker, "color": PATH_COLOUR},
            hoverinfo="skip",
        ),
        line_trace(
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
            **log_contour(
                surface.w1, surface.w2, None, source.risk_label, right_domain[1] + 0.01, labels
            ),
            "xaxis": "x2",
            "yaxis": "y2",
        },
        line_trace(
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
            panel_title("", x, 1.0) for x in (sum(left_domain) / 2, sum(right_domain) / 2)
        ],
        "plot_bgcolor": "white",
    }
    return {"data": data, "layout": layout}


def _arrow_xy(arrows: Arrows | None, step: int) -> tuple[list[Any], list[Any]]:
    """The ``x`` and ``y`` of an arrow trace: ``[tail, tip]``, or empty when none is drawn."""
    if arrows is None or not arrows.drawn[step]:
        return [], []
    tail, tip = arrows.tail[step], arrows.tip[step]
    return plain_values(np.array([tail[0], tip[0]])), plain_values(np.array([tail[1], tip[1]]))


def _tips(arrows: Arrows | None, steps: Sequence[int]) -> list[Any] | None:
    """The tips of ``steps``' arrows for ``PLAYER_JS`` (``None`` where none is drawn)."""
    return None if arrows is None else plain_values(arrows.tip[list(steps)])


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
    data[0]["z"], data[0]["customdata"] = (
        plain_values(left_log, 6),
        plain_values(np.exp(left_log), 6),
    )
    data[4]["z"], data[4]["customdata"] = (
        plain_values(risk_log, 6),
        plain_values(np.exp(risk_log), 6),
    )
    for index in (3, 6):
        data[index]["x"], data[index]["y"] = plain_values(point[:1]), plain_values(point[1:])
        data[index]["text"] = [source.point_text(step)]
    data[1]["x"], data[1]["y"] = _arrow_xy(minibatch, step)
    data[1]["name"] = minibatch.labels[step]
    data[2]["x"], data[2]["y"] = _arrow_xy(full, step)
    if full is not None:
        data[2]["name"] = full.labels[step]
    data[5]["x"], data[5]["y"] = (
        plain_values(path[: step + 1, 0]),
        plain_values(path[: step + 1, 1]),
    )
    left_title, right_title, suptitle = source.titles(step)
    layout["annotations"][0]["text"], layout["annotations"][1]["text"] = left_title, right_title
    (layout["title"]["text"],), layout["margin"]["t"] = web_titles([suptitle], width)
    curvature = sharpness_of(source)
    if curvature is not None:
        marker = data[len(TRACES) + SHARPNESS_TRACES.index("sharpness_step")]
        marker["x"], marker["y"] = sharpness_marker(curvature, step)
    return go.Figure(data=data, layout=layout)


def player(
    result: Stepped,
    *,
    steps: Sequence[int] | range | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
    fan: bool = False,
) -> Player:
    """Pack a run or a network's view for :data:`PLAYER_JS`: every shown step, each
    distinct minibatch (as a set of samples) once, the risk last.

    ``result`` is a single-init run, a network's view or their
    :class:`~sgdscape.views.step_source.StepSource`. ``steps`` (default: every step that
    has a minibatch landscape, i.e. all of a run's, a view's stored ones) are the steps
    the slider visits, in order. ``fan``: also draw the fan of next steps on the left
    panel (:func:`sgdscape.views.fan.run_fan` at each shown step; a single-init
    2-parameter run only, else a :class:`~sgdscape.errors.SgdscapeError`), its traces
    :data:`FAN_TRACES` last and its values in ``frames["fan"]``.
    """
    fan_run = _fan_run(result) if fan else None  # refused before any work
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
        "path": plain_values(path[: max(chosen) + 1]),
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
            "lambda_max": plain_values(np.asarray(curvature.lambda_max)),
        }
    frames["title"], top = web_titles([t[2] for t in titles], width)
    skeleton = _skeleton(source, width, height)
    skeleton["layout"]["margin"] = {**skeleton["layout"]["margin"], "t": top}
    frames["fan"] = None
    if fan_run is not None:
        traces, packed = _fan_frames(fan_run, source, chosen)
        frames["fan"] = {**packed, "trace": len(skeleton["data"])}
        skeleton["data"] += traces
    return Player(skeleton, frames)


def _fan_run(result: Stepped) -> RunResult:
    """``result`` when it can have a fan of next steps (a single-init 2-parameter run, as
    :func:`~sgdscape.views.fan.check_fan_run` says), else a :class:`SgdscapeError`."""
    from sgdscape.views.fan import check_fan_run

    if not isinstance(result, RunResult):
        raise SgdscapeError(
            "the fan of next steps is drawn for a single-init 2-parameter run (a RunResult), "
            "not for a network's view or a bare StepSource."
        )
    check_fan_run(result)
    return result


def _fan_frames(
    result: RunResult, source: StepSource, steps: Sequence[int]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The fan of next steps for :data:`PLAYER_JS`: the :data:`FAN_TRACES` (empty, styled by
    :func:`~sgdscape.views.fan.fan_traces`, on the left panel) and, per shown step, what
    they draw, magnified as the panel's arrows are (:func:`~sgdscape.views.fan.fan_scales`).

    ``points`` packs ``(S, 2, N)``: at each of the ``S`` shown steps, the ``x`` and ``y`` of
    the ``N`` magnified next iterates (one per sample, or per minibatch of the run's size),
    16-bit quantised between that step's smallest and largest coordinate by
    :func:`~sgdscape.views.player_pack.encode_log_grids` (the landscapes' packing: a
    quarter of the size of JSON numbers, well under a pixel). Per step ``i``:
    ``mean[i]`` and ``full_step[i]`` ``(2,)`` their mean and the full-gradient step
    (magnified, 7 significant digits), ``label[i]`` the points' legend
    (:func:`~sgdscape.views.fan.fan_label`), ``scale[i]`` the magnification. ``spokes``:
    how many points (the first) get a segment from the iterate.
    """
    from sgdscape.views.fan import MAX_SPOKES, fan_label, fan_scales, fan_traces, magnified, run_fan

    scales = fan_scales(source)
    packed: dict[str, Any] = {"mean": [], "full_step": [], "label": []}
    packed["scale"] = [float(scales[step]) for step in steps]
    template: list[go.Scatter] = []
    points_xy = []
    for step, scale in zip(steps, packed["scale"], strict=True):
        fan = run_fan(result, step)
        template = fan_traces(magnified(fan, scale), label=fan_label(fan, scale))
        _, points, mean, full = template
        points_xy.append(np.stack([np.asarray(points.x), np.asarray(points.y)]))
        packed["mean"].append(plain_values(np.array([mean.x[0], mean.y[0]])))
        packed["full_step"].append(plain_values(np.array([full.x[-1], full.y[-1]])))
        packed["label"].append(points.name)
    packed["points"] = encode_log_grids(np.stack(points_xy))
    packed["spokes"] = MAX_SPOKES
    traces = []
    for name, trace in zip(FAN_TRACES, template, strict=True):
        drawn = trace.to_plotly_json()
        drawn.update(x=[], y=[], xaxis="x", yaxis="y", meta=name)
        traces.append(drawn)
    return traces, packed
