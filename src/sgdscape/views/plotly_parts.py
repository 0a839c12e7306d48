"""The pieces every Plotly step figure is built from: trace order, JSON-ready values, contour
and line traces, margins, titles and the two panels' domains.

Shared by :mod:`sgdscape.views.plotly_figures` (the step figure and the player) and
:mod:`sgdscape.views.sharpness_plotly` (the sharpness row), so neither imports the other's
private names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from sgdscape.views.step_figure import wrap_title_text
from sgdscape.views.style import CONTOUR_LEVELS, PLOTLY_COLOUR_SCALE

# Trace order of both figures; PLAYER_JS relies on it.
TRACES = ("minibatch", "minibatch_arrow", "full_arrow", "iterate", "risk", "path", "iterate_right")


def plain_values(values: np.ndarray, digits: int = 7) -> list[Any]:
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


def log_contour(
    x: np.ndarray, y: np.ndarray, z: Any, label: str, colorbar_x: float, labels: tuple[str, str]
) -> dict[str, Any]:
    """:func:`contour_trace` of a step panel: axes ``x (G1,)``, ``y (G2,)`` and hover text."""
    return contour_trace(
        plain_values(x),
        plain_values(y),
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


def line_trace(name: str, colour: str, *, xaxis: str, yaxis: str, **extra: Any) -> dict[str, Any]:
    """A scatter trace dict named ``name`` on axes ``xaxis``/``yaxis``, empty until a step fills it."""
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


def panel_domains(width: int, height: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """x-domains of two square panels, each followed by room for its colour bar."""
    plot_width = width - MARGIN["l"] - MARGIN["r"]
    plot_height = height - MARGIN["t"] - MARGIN["b"]
    # after each panel: 150 px at least for its colour bar, the bar's label and the next
    # panel's tick labels and axis title (narrow players would otherwise overlap them)
    side = min(plot_height / plot_width, 0.36, 0.5 - 150 / plot_width)
    gap = (1.0 - 2 * side) / 2  # colour bar and spacing after each panel
    return (0.0, side), (side + gap, 2 * side + gap)


def panel_title(text: str, x: float, y: float) -> dict[str, Any]:
    """A panel's title: an annotation centred at paper coordinates ``(x, y)``, above ``y``."""
    return {
        "text": text,
        "x": x,
        "y": y,
        "xref": "paper",
        "yref": "paper",
        "xanchor": "center",
        "yanchor": "bottom",
        "showarrow": False,
        "font": {"size": 13},
    }
