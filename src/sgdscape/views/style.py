"""The look every step view shares: one palette, ``safe_log`` and the one arrow rule.

Matplotlib (:mod:`sgdscape.views.step_figure`), the Plotly figures and player
(:mod:`sgdscape.views.plotly_figures`), the Jupyter explorer and the web app all take their
colours and their arrows from here, so a colour or an arrow means the same on every surface.

Colours are CSS hex strings (or CSS names), which matplotlib and Plotly both read.

Examples:
    >>> import numpy as np
    >>> from sgdscape.views.style import arrow_rule
    >>> arrows = arrow_rule(np.zeros((1, 2)), np.array([[1.0, 0.0]]), 0.5, (-1, 1, -1, 1), "-g")
    >>> arrows.tip[0].tolist(), arrows.labels[0]
    ([0.5, 0.0], '-g × 0.5')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# --------------------------------------------------------------------------- the palette

#: the path, the iterate and the -minibatch-gradient arrow (matplotlib's ``tab:orange``)
PATH_COLOUR = "#ff7f0e"
#: the -true (full) gradient arrow: white, drawn with a dark edge where the surface can
TRUE_GRADIENT_COLOUR = "white"
#: the dark edge of arrows and markers, which keeps a white arrow visible on light colours
ARROW_EDGE_COLOUR = "black"
MARKER_EDGE_COLOUR = "black"
#: the whole path drawn faintly under the path so far, and the marker of its end
WHOLE_PATH_COLOUR = "white"
END_COLOUR = "white"
#: one colour per run of a compare run or per pinned run of the app (the first is the path's)
RUN_COLOURS = (PATH_COLOUR, "#ff3df5", "#00e5ff", "#ff2a2a", "white", "#bcbd22", "#8c564b")
#: the cosine between minibatch and true gradient (the app's noise panel)
COSINE_COLOUR = "#1f77b4"
#: the colour map of every landscape, and the number of its filled contour levels
COLOUR_MAP = "viridis"
PLOTLY_COLOUR_SCALE = "Viridis"  # the same map, by the name plotly.js knows it
CONTOUR_LEVELS = 30


def safe_log(values: np.ndarray) -> np.ndarray:
    """``log(values)`` where zeros (and tiny values) are clipped to the smallest positive value.

    A landscape with exact zeros (a perfect fit) then has no -inf holes.

    Examples:
        >>> safe_log(np.array([0.0, 1.0, np.e])).round(3).tolist()
        [0.0, 0.0, 1.0]
    """
    values = np.asarray(values, dtype=np.float64)
    positive = values[np.isfinite(values) & (values > 0)]
    floor = max(float(positive.min()) if positive.size else 1.0, 1e-30)
    return np.log(np.clip(values, floor, None))


# --------------------------------------------------------------------------- the arrow rule
#
# Every surface (matplotlib, the Plotly player and figures, the Jupyter explorer, the web
# app, the network views) draws the -gradient arrows of a step from :func:`arrow_rule`:
#
# 0. a view has one arrow scale (:func:`gradient_scale`): its 95th-percentile gradient
#    spans 1/5 of the window;
# 1. a zero or non-finite vector draws no arrow, and its label says so ("= 0 (no arrow)");
# 2. the arrows of a step share one factor (:func:`step_factors`): the view's scale, raised
#    so that the longer arrow spans at least MIN_ARROW_FRACTION of the window; the label
#    gives the factor;
# 3. an arrow still shorter than MIN_VISIBLE_FRACTION of the window (too short for its
#    head) is drawn at that length along the same direction, and its label says so;
# 4. an arrow is cut where it leaves the window (its head then sits on the panel edge),
#    and its label says so; an iterate outside the window draws no arrow.
#
# Surfaces only draw the segments ``tail -> tip`` and show the labels.

MIN_ARROW_FRACTION = 0.08  # the longer arrow of a step spans at least this much of the window
MIN_VISIBLE_FRACTION = 0.06  # no drawn arrow is shorter than this fraction of the window
HEAD_WIDTH_FRACTION = 0.02  # matplotlib arrow heads: width 2% and length 3% of the window
SCALE_PERCENTILE = 95  # the gradient norm that spans SCALE_FRACTION of the window
SCALE_FRACTION = 0.2

Window = tuple[float, float, float, float]  # (w1 low, w1 high, w2 low, w2 high)


def window_of(surface: Any) -> Window:
    """The plot window ``(x0, x1, y0, y1)`` of a landscape (its grid's first and last points)."""
    return (
        float(surface.w1[0]),
        float(surface.w1[-1]),
        float(surface.w2[0]),
        float(surface.w2[-1]),
    )


def gradient_scale(gradients: np.ndarray, width: float) -> float:
    """One arrow scale (plot units per gradient unit) for a whole view (rule 0 above).

    ``gradients`` are ``(T, p)`` vectors (any ``p``: in parameter space or in the plane);
    rows that are not finite are ignored. The 95th-percentile norm then spans 1/5 of the
    window ``width``; 1 when no gradient is finite and nonzero.

    Examples:
        >>> gradient_scale(np.array([[3.0, 4.0]]), 10.0)
        0.4
    """
    grads = np.asarray(gradients, dtype=np.float64)  # float64: no overflow in norms
    grads = grads.reshape(-1, grads.shape[-1]) if grads.size else grads.reshape(0, 1)
    norms = np.linalg.norm(grads[np.isfinite(grads).all(-1)], axis=-1)
    norms = norms[np.isfinite(norms)]
    reference = float(np.percentile(norms, SCALE_PERCENTILE)) if norms.size else 0.0
    return SCALE_FRACTION * float(width) / reference if reference > 0 else 1.0


def _norms(vectors: np.ndarray) -> np.ndarray:
    """``(T,)`` norms of ``(T, 2)`` vectors, 0 where not finite."""
    vectors = np.asarray(vectors, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        norms = np.hypot(vectors[:, 0], vectors[:, 1])
    return np.where(np.isfinite(norms), norms, 0.0)


def step_factors(scale: float, vectors: Sequence[np.ndarray | None], window: Window) -> np.ndarray:
    """``(T,)`` the factor of each step's arrows (rule 2 above).

    ``vectors`` are the step's unscaled vectors ``(T, 2)`` in plot coordinates (``None``
    for an arrow that is not recorded); the factor is ``scale``, raised at steps whose
    longer vector would span less than ``MIN_ARROW_FRACTION`` of the window width.
    """
    given = [np.asarray(v, dtype=np.float64) for v in vectors if v is not None]
    longest = np.max(np.stack([_norms(v) for v in given]), axis=0) * abs(scale)
    width = window[1] - window[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        boost = np.where(longest > 0, MIN_ARROW_FRACTION * width / longest, 1.0)
    return abs(scale) * np.maximum(boost, 1.0)


@dataclass(frozen=True)
class Arrows:
    """The arrows of several steps as drawn (see the arrow rule above).

    Attributes:
        tail: ``(T, 2)`` where each arrow starts (the iterate), NaN where none is drawn.
        tip: ``(T, 2)`` where its head points to, NaN where none is drawn.
        labels: ``T`` legend texts, e.g. ``"-minibatch gradient × 0.53"`` or
            ``"-minibatch gradient = 0 (no arrow)"``.
    """

    tail: np.ndarray
    tip: np.ndarray
    labels: tuple[str, ...]

    @property
    def drawn(self) -> np.ndarray:
        """``(T,)`` whether step ``t`` draws an arrow."""
        return np.isfinite(self.tip).all(axis=1)


def arrow_rule(
    points: np.ndarray,
    vectors: np.ndarray,
    factors: np.ndarray | float,
    window: Window,
    name: str,
) -> Arrows:
    """Apply the arrow rule to the arrows ``points + factors * vectors`` of ``T`` steps.

    Args:
        points: ``(T, 2)`` the iterates (arrow tails), plot coordinates.
        vectors: ``(T, 2)`` the unscaled vectors (e.g. -gradient) in plot coordinates.
        factors: ``(T,)`` or a scalar: plot units per vector unit (:func:`step_factors`).
        window: the panel ``(x0, x1, y0, y1)``.
        name: what the arrow is, for the labels (e.g. ``"-minibatch gradient"``).
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    vectors = np.asarray(vectors, dtype=np.float64).reshape(-1, 2)
    factors = np.broadcast_to(np.asarray(factors, dtype=np.float64), (len(points),))
    x0, x1, y0, y1 = window
    width = x1 - x0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        finite_vector = np.asarray(np.isfinite(vectors).all(axis=1))
        norms = _norms(vectors)
        zero = finite_vector & (norms == 0)
        point_ok = np.asarray(np.isfinite(points).all(axis=1))
        inside = (
            point_ok
            & (points[:, 0] >= x0)
            & (points[:, 0] <= x1)
            & (points[:, 1] >= y0)
            & (points[:, 1] <= y1)
        )
        delta = np.where(finite_vector[:, None], vectors, 0.0) * factors[:, None]
        length = np.hypot(delta[:, 0], delta[:, 1])
        minimum = MIN_VISIBLE_FRACTION * width
        lengthened = finite_vector & ~zero & (length < minimum)
        unit = delta / np.where(length > 0, length, 1.0)[:, None]
        delta = np.where(lengthened[:, None], unit * minimum, delta)
        # the largest fraction of delta that stays in the window, per axis
        reach = []
        for axis, low, high in ((0, x0, x1), (1, y0, y1)):
            d, p = delta[:, axis], points[:, axis]
            room = np.where(d > 0, (high - p) / d, np.where(d < 0, (low - p) / d, np.inf))
            reach.append(room)
        fraction = np.clip(np.minimum(*reach), 0.0, 1.0)
        clipped = fraction < 1.0
        drawn = finite_vector & ~zero & inside & (fraction * np.hypot(*delta.T) > 0)
        tip = points + fraction[:, None] * delta
    nan = np.full_like(points, np.nan)
    labels = []
    for t in range(len(points)):
        if not point_ok[t]:
            labels.append(f"{name}: iterate not finite (no arrow)")
        elif not finite_vector[t]:
            labels.append(f"{name} not finite (no arrow)")
        elif zero[t]:
            labels.append(f"{name} = 0 (no arrow)")
        elif not inside[t]:
            labels.append(f"{name}: iterate outside the panel (no arrow)")
        elif not drawn[t]:
            labels.append(f"{name} points out of the panel (no arrow)")
        else:
            notes = (["drawn at the minimum length"] if lengthened[t] else []) + (
                ["cut at the panel edge"] if clipped[t] else []
            )
            labels.append(
                f"{name} × {factors[t]:.2g}" + (f" ({', '.join(notes)})" if notes else "")
            )
    return Arrows(
        tail=np.where(drawn[:, None], points, nan),
        tip=np.where(drawn[:, None], tip, nan),
        labels=tuple(labels),
    )
