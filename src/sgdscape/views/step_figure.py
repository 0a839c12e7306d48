"""The notebook's figure, done properly (matplotlib).

For step ``k``: on the left the log loss landscape of the minibatch used at step ``k``
with the iterate, the -gradient arrow (and the -full-gradient arrow); on the right the
log empirical-risk landscape with the path up to ``k``.

:class:`StepFigure` draws that figure once and redraws it for any step, so the static
figure (:func:`plot_step`) and the animation (:mod:`sgdscape.views.animation`) share one drawing
code. The helpers :func:`step_titles` and :func:`run_arrows` (the one arrow rule of every
surface, :func:`arrow_rule`) also feed the Plotly views.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from sgdscape.errors import SgdscapeError
from sgdscape.records.run import RunResult, atomic_path

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colorbar import Colorbar
    from matplotlib.figure import Figure

MIN_ARROW_FRACTION = 0.08  # the longer arrow of a step spans at least this much of the window
MIN_VISIBLE_FRACTION = 0.06  # no drawn arrow is shorter than this fraction of the window
HEAD_WIDTH_FRACTION = 0.02  # matplotlib arrow heads: width 2% and length 3% of the window
PATH_COLOUR = "tab:orange"
#: one colour per run of a compare run (the first is the path's), on the risk landscape
RUN_COLOURS = (PATH_COLOUR, "tab:red", "tab:cyan", "tab:pink", "white", "tab:olive", "tab:brown")
TRUE_GRADIENT_COLOUR = "white"
ARROW_EDGE_COLOUR = "black"  # a dark edge keeps the white arrow (and its legend key) visible
CONTOUR_LEVELS = 30


def safe_log(values: np.ndarray) -> np.ndarray:
    """``log(values)`` where zeros (and tiny values) are clipped to the smallest positive value.

    A landscape with exact zeros (a perfect fit) then has no -inf holes.
    """
    values = np.asarray(values, dtype=np.float64)
    positive = values[np.isfinite(values) & (values > 0)]
    floor = max(float(positive.min()) if positive.size else 1.0, 1e-30)
    return np.log(np.clip(values, floor, None))


def arrow_scale(result: RunResult) -> float:
    """One arrow scale for the whole run: the 95th-percentile gradient spans 1/5 of the window."""
    grads = np.asarray(result.trajectory.grads, dtype=np.float64)  # float64: no overflow in norms
    norms = np.linalg.norm(grads[np.isfinite(grads).all(-1)], axis=-1)
    norms = norms[np.isfinite(norms)]
    width = float(result.landscape.w1[-1] - result.landscape.w1[0])
    reference = float(np.percentile(norms, 95)) if norms.size else 0.0
    return 0.2 * width / reference if reference > 0 else 1.0


def _gradient_in_plane(result: RunResult, gradient: np.ndarray) -> np.ndarray:
    """Plot coordinates of parameter-space vectors ``(..., p) -> (..., 2)``."""
    plane = result.landscape.plane
    gradient = np.asarray(gradient, dtype=np.float64)
    if plane is None:
        return gradient[..., :2]
    basis = np.stack([plane.d1.numpy(), plane.d2.numpy()], axis=1).astype(np.float64)
    flat = gradient.reshape(-1, gradient.shape[-1])
    solved = np.linalg.lstsq(basis, flat.T, rcond=None)[0].T
    return solved.reshape(*gradient.shape[:-1], 2)


# --------------------------------------------------------------------------- the arrow rule
#
# Every surface (matplotlib, the Plotly player and figures, the Jupyter explorer, the web
# app, the network views) draws the -gradient arrows of a step from :func:`arrow_rule`:
#
# 1. a zero or non-finite vector draws no arrow, and its label says so ("= 0 (no arrow)");
# 2. the arrows of a step share one factor (:func:`step_factors`): the run's scale, raised
#    so that the longer arrow spans at least MIN_ARROW_FRACTION of the window; the label
#    gives the factor;
# 3. an arrow still shorter than MIN_VISIBLE_FRACTION of the window (too short for its
#    head) is drawn at that length along the same direction, and its label says so;
# 4. an arrow is cut where it leaves the window (its head then sits on the panel edge),
#    and its label says so; an iterate outside the window draws no arrow.
#
# Surfaces only draw the segments ``tail -> tip`` and show the labels.

Window = tuple[float, float, float, float]  # (w1 low, w1 high, w2 low, w2 high)


def window_of(surface: Any) -> Window:
    """The plot window ``(x0, x1, y0, y1)`` of a landscape (its grid's first and last points)."""
    return (
        float(surface.w1[0]),
        float(surface.w1[-1]),
        float(surface.w2[0]),
        float(surface.w2[-1]),
    )


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


def run_arrows(
    result: RunResult, names: tuple[str, str] = ("-minibatch gradient", "-full gradient")
) -> tuple[Arrows, Arrows | None]:
    """The drawn ``(minibatch, full)`` arrows of every step of a single-init run.

    ``full`` is ``None`` when the full gradient was not recorded. The vectors are the
    recorded -gradients projected on the slice; see the arrow rule above.
    """
    trajectory = result.trajectory
    minibatch = -_gradient_in_plane(result, trajectory.grads)
    full = (
        None
        if trajectory.full_grads is None
        else -_gradient_in_plane(result, trajectory.full_grads)
    )
    window = window_of(result.landscape)
    factors = step_factors(arrow_scale(result), [minibatch, full], window)
    path = result.path()[: result.n_steps]
    arrows = arrow_rule(path, minibatch, factors, window, names[0])
    return arrows, None if full is None else arrow_rule(path, full, factors, window, names[1])


def draw_arrow(
    axes: Axes,
    tail: np.ndarray,
    tip: np.ndarray,
    colour: str,
    label: str,
    window: Window,
    zorder: float = 4,
) -> Any:
    """Draw one arrow of :func:`arrow_rule` on matplotlib ``axes``, or a legend key only.

    A drawn arrow is a ``FancyArrow`` from ``tail (2,)`` to ``tip (2,)`` whose head never
    exceeds the arrow's length, with a dark edge; an arrow not drawn (NaN ``tip``) gets
    a dotted legend line that carries ``label``. Returns the artist added to ``axes``.
    """
    if not np.isfinite(tip).all():
        (key,) = axes.plot([], [], linestyle=":", linewidth=2, color=colour, label=label)
        return key
    length = float(np.hypot(*(tip - tail)))
    width = window[1] - window[0]
    head_width = HEAD_WIDTH_FRACTION * width
    head_length = min(1.5 * head_width, 0.75 * length)
    return axes.arrow(
        *tail,
        *(tip - tail),
        width=0.2 * head_width,
        head_width=head_width,
        head_length=head_length,
        length_includes_head=True,
        facecolor=colour,
        edgecolor=ARROW_EDGE_COLOUR,
        linewidth=0.6,
        label=label,
        zorder=zorder,
    )


def resolve_steps(steps: Sequence[int] | range | None, n_steps: int) -> list[int]:
    """The steps to show, checked against the run's ``0..n_steps-1``; ``None`` = all."""
    if steps is None:
        return list(range(n_steps))
    chosen = [int(step) for step in steps]
    if not chosen:
        raise SgdscapeError(f"the step range is empty; choose steps within 0..{n_steps - 1}.")
    bad = [step for step in chosen if not 0 <= step < n_steps]
    if bad:
        raise SgdscapeError(f"step {bad[0]} is outside the run's steps 0..{n_steps - 1}.")
    return chosen


def batch_text(batch: np.ndarray) -> str:
    """Short text for a minibatch's sample indices: ``[7]``, ``[40–49]`` or ``[3, 17, 42, …]``.

    Consecutive indices collapse to a range, others show the first three, so that the
    title of a batch of any size fits above its panel.
    """
    indices = [int(i) for i in batch]
    if len(indices) <= 3:
        return "[" + ", ".join(str(i) for i in indices) + "]"
    if indices == list(range(indices[0], indices[0] + len(indices))):
        return f"[{indices[0]}–{indices[-1]}]"
    return "[" + ", ".join(str(i) for i in indices[:3]) + ", …]"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def slice_text(result: RunResult, step: int | None = None) -> str:
    """Where the plotted 2-D slice sits in a model with more than two parameters.

    An axis-aligned slice names the held parameters and their values, and (given
    ``step``) the iterate's own values of them, which training moves off the slice:
    ``"slice at b = 0.5 (iterate: b = 0.117)"``. A slice along two directions gives its
    origin and the iterate's distance from the plane. Empty for a two-parameter model
    plotted on its own axes.
    """
    plane = result.landscape.plane
    names = tuple(result.trajectory.param_names)
    if plane is None or len(names) <= 2:
        return ""
    d1, d2, origin = (t.numpy().astype(np.float64) for t in (plane.d1, plane.d2, plane.origin))
    iterate = None
    if step is not None:
        iterate = np.asarray(result.trajectory.iterates[step], dtype=np.float64)
    if plane.is_axis_aligned:
        held = [i for i in range(len(names)) if d1[i] == 0 and d2[i] == 0]
        text = "slice at " + ", ".join(f"{names[i]} = {origin[i]:.3g}" for i in held)
        if iterate is not None and np.isfinite(iterate).all():
            text += " (iterate: " + ", ".join(f"{names[i]} = {iterate[i]:.3g}" for i in held)
            text += ")"
        return text
    text = "plane through (" + ", ".join(f"{v:.3g}" for v in origin) + ") along two directions"
    if iterate is not None and np.isfinite(iterate).all():
        basis = np.stack([d1, d2], axis=1)
        offset = iterate - origin
        residual = offset - basis @ np.linalg.lstsq(basis, offset, rcond=None)[0]
        text += f" (iterate {np.linalg.norm(residual):.3g} off it)"
    return text


def step_titles(result: RunResult, step: int) -> tuple[str, str, str]:
    """``(left, right, figure)`` titles of ``step``.

    The figure title names the model, optimizer and step; a second line (after ``"\\n"``;
    the Plotly views write it as ``<br>``) gives the slice of a model with more than two
    parameters (:func:`slice_text`) and, for a compare run, which run the minibatch panel
    shows.
    """
    trajectory = result.trajectory
    batch = trajectory.batch(step)
    left = f"step {step}: loss of minibatch {batch_text(batch)} ({_plural(len(batch), 'sample')})"
    config = result.config
    right = f"empirical risk ({config.loss_name}, {len(result.data)} samples): " + (
        "not recorded" if trajectory.risk is None else f"{trajectory.risk[step]:.3g}"
    )
    parts = [
        config.model,
        f"{config.optimizer} lr={config.lr:g}",
        f"batch {config.batch_size}",
        f"step {step}/{result.n_steps - 1}",
    ]
    if trajectory.diverged:
        parts.append(f"diverged at step {trajectory.diverged_step}")
    notes = [slice_text(result, step)]
    if result.others:
        notes.append(
            f"minibatch and arrows of run 1 of {len(result.trajectories)} "
            f"({result.config.labels[0]})"
        )
    lines = [" · ".join(parts), " · ".join(note for note in notes if note)]
    return left, right, "\n".join(line for line in lines if line)


def wrap_title_text(title: str, chars: int) -> str:
    """``title`` with each line broken so no line exceeds ``chars`` characters.

    Lines break first at the `` · `` separators, then, for a part still too long, at spaces;
    a single word longer than ``chars`` stays whole. Existing line breaks are kept.
    """
    import textwrap

    lines: list[str] = []
    for given in title.split("\n"):
        lines.append("")
        for part in given.split(" · "):
            pieces = textwrap.wrap(part, chars, break_long_words=False) or [""]
            for number, piece in enumerate(pieces):
                if number == 0 and lines[-1] and len(lines[-1]) + 3 + len(piece) <= chars:
                    lines[-1] += " · " + piece
                elif number == 0 and not lines[-1]:
                    lines[-1] = piece
                else:
                    lines.append(piece)
    return "\n".join(lines)


def wrap_title(title: str, fig: Figure, fontsize: float | None = None) -> str:
    """``title`` broken further (see :func:`wrap_title_text`) so each line fits ``fig``'s width.

    The width is estimated from the font size (an average glyph is about 0.6 em wide, with a
    margin), so no draw is needed.
    """
    import matplotlib as mpl
    from matplotlib.font_manager import FontProperties

    size = fontsize or FontProperties(size=mpl.rcParams["figure.titlesize"]).get_size_in_points()
    return wrap_title_text(title, max(20, int(0.9 * fig.get_figwidth() * 72 / (0.6 * size))))


def frame_axes(axes: Axes, surface: Any) -> None:
    """Label ``axes`` with the landscape's axis names and fit them to its grid window."""
    axes.set_xlabel(surface.labels[0])
    axes.set_ylabel(surface.labels[1])
    axes.set_xlim(surface.w1[0], surface.w1[-1])
    axes.set_ylim(surface.w2[0], surface.w2[-1])


def replace_contour(
    fig: Figure,
    axes: Axes,
    surface: Any,
    values: np.ndarray,
    contour: Any,
    colorbar: Colorbar | None,
    label: str,
) -> tuple[Any, Colorbar]:
    """Draw ``log(values) (G2, G1)`` on ``surface``'s grid in ``axes``, replacing ``contour``
    and updating ``colorbar`` in place; returns the new contour and colour bar.

    The levels are ``CONTOUR_LEVELS`` steps over this grid's own range, so the colour bar
    always shows the range of the step drawn.
    """
    if contour is not None:
        contour.remove()
    contour = axes.contourf(
        surface.w1, surface.w2, safe_log(values), levels=CONTOUR_LEVELS, cmap="viridis"
    )
    if colorbar is None:
        return contour, fig.colorbar(contour, ax=axes, label=label)
    # Point the existing colour bar at the new contour: re-creating it every frame stacks
    # callbacks until a long animation hits RecursionError.
    colorbar.boundaries, colorbar.values = contour.levels, contour.cvalues
    colorbar.update_normal(contour)
    return contour, colorbar


def iterate_marker(axes: Axes) -> Any:
    """An empty scatter marker for the current iterate (moved with ``set_offsets``)."""
    return axes.scatter([np.nan], [np.nan], color=PATH_COLOUR, edgecolor="black", zorder=3, s=60)


class StepFigure:
    """The two-panel figure of a single-init run, redrawn in place for any step.

    The right panel's risk contour is drawn once; :meth:`draw` replaces the left
    contour, arrows, markers, path and titles. Used by :func:`plot_step` (one step)
    and by :func:`sgdscape.views.animation.animate` (every frame on one figure).
    """

    def __init__(
        self,
        result: RunResult,
        *,
        figsize: tuple[float, float] = (13, 5.6),
        dpi: float | None = None,
    ) -> None:
        import matplotlib.pyplot as plt

        if result.trajectory.iterates.ndim != 2:
            raise ValueError("plot_step draws a single-init run; pick one row of a batched run.")
        self.result = result
        self.path = result.path()
        self.window = window_of(result.landscape)
        self.arrows = run_arrows(result)
        self.fig, (self.left, self.right) = plt.subplots(
            ncols=2, figsize=figsize, dpi=dpi, layout="constrained"
        )
        self._transient: list[Any] = []
        self._left_contour: Any = None
        self._left_colorbar: Colorbar | None = None
        self._background: Any = None  # the unchanging pixels, once :meth:`render` ran
        for axes in (self.left, self.right):
            self._frame(axes)
        filled = self.right.contourf(
            result.landscape.w1,
            result.landscape.w2,
            safe_log(result.landscape.risk),
            levels=CONTOUR_LEVELS,
            cmap="viridis",
        )
        self.fig.colorbar(filled, ax=self.right, label="log empirical risk")
        labels = result.config.labels
        (self._path_line,) = self.right.plot(
            [],
            [],
            "-o",
            color=PATH_COLOUR,
            markersize=4,
            linewidth=2,
            label=f"{labels[0]} (left panel)" if result.others else "path so far",
        )
        # the other runs of a compare run: their paths up to the same step
        self._other_paths = []
        for (label, trajectory), colour in zip(
            result.trajectories[1:], RUN_COLOURS[1:], strict=False
        ):
            if trajectory.iterates.ndim == 2:
                (line,) = self.right.plot([], [], "-", color=colour, linewidth=1.5, label=label)
                line.set_zorder(2.5)  # over the first run's path
                self._other_paths.append((result.path(trajectory), line))
        self._right_point = iterate_marker(self.right)
        self._left_point = iterate_marker(self.left)
        self.right.legend(loc="lower left", fontsize=8, framealpha=0.8)

    def _frame(self, axes: Axes) -> None:
        frame_axes(axes, self.result.landscape)
        axes.set_aspect("equal")

    def draw(self, step: int) -> Figure:
        """Show ``step``; returns the figure."""
        result, left = self.result, self.left
        if not 0 <= step < result.n_steps:
            raise ValueError(f"step must be between 0 and {result.n_steps - 1}, got {step}.")
        for artist in self._transient:
            artist.remove()
        self._transient = []
        self._left_contour, self._left_colorbar = replace_contour(
            self.fig,
            left,
            result.landscape,
            result.batch_landscape(step),
            self._left_contour,
            self._left_colorbar,
            "log minibatch loss",
        )

        point = self.path[step]
        colours = (PATH_COLOUR, TRUE_GRADIENT_COLOUR)
        for arrows, colour, zorder in zip(self.arrows, colours, (5, 4), strict=True):
            if arrows is not None:  # the minibatch arrow on top, listed first
                self._transient.append(
                    draw_arrow(
                        left,
                        arrows.tail[step],
                        arrows.tip[step],
                        colour,
                        arrows.labels[step],
                        self.window,
                        zorder,
                    )
                )
        self._left_point.set_offsets([point])
        self._right_point.set_offsets([point])
        self._path_line.set_data(self.path[: step + 1, 0], self.path[: step + 1, 1])
        for other, line in self._other_paths:
            line.set_data(other[: step + 1, 0], other[: step + 1, 1])
        left_title, right_title, suptitle = step_titles(result, step)
        left.set_title(left_title)
        self.right.set_title(right_title)
        self.fig.suptitle(wrap_title(suptitle, self.fig))
        # inside the panel: the layout ignores it (long arrow labels must not shrink the axes)
        left.legend(loc="lower left", fontsize=8, framealpha=0.8).set_in_layout(False)
        return self.fig

    def freeze_layout(self) -> None:
        """Fix the current layout so later frames do not jitter (and draw faster)."""
        self.fig.canvas.draw()
        self.fig.set_layout_engine(None)

    def _changing(self) -> list[Any]:
        """The artists :meth:`draw` changes, in the order a full draw paints them."""
        left, right = self.left, self.right
        assert self._left_colorbar is not None
        return [
            self._left_contour,
            *left.spines.values(),  # over the new contour's edges, as in a full draw
            self._left_point,
            *reversed(self._transient),  # the true-gradient arrow under the minibatch one
            left.get_legend(),
            left.title,
            self._left_colorbar.ax,  # its ticks follow the step's range
            self._path_line,
            *(line for _, line in self._other_paths),  # a compare run's other paths (zorder 2.5)
            self._right_point,
            right.get_legend(),  # over the path, as in a full draw
            right.title,
            getattr(self.fig, "_suptitle", None),  # matplotlib keeps this artist private
        ]

    def render(self) -> np.ndarray:
        """The figure's pixels, ``(H, W, 4)`` uint8 RGBA, after :meth:`freeze_layout`.

        The first call paints everything that never changes (axes, ticks, the risk
        contour and its colour bar) once and keeps it; every call restores that and
        paints only the artists of the current step on top, which gives the same pixels
        as a full draw at a fraction of the cost (text layout dominates a full draw).
        """
        # every raster backend's canvas is an Agg canvas (blitting and buffer_rgba)
        canvas = cast("FigureCanvasAgg", self.fig.canvas)
        changing = [artist for artist in self._changing() if artist is not None]
        for artist in changing:
            artist.set_animated(True)
        if self._background is None:
            canvas.draw()  # skips the animated artists
            self._background = canvas.copy_from_bbox(self.fig.bbox)
        canvas.restore_region(self._background)
        for artist in changing:
            self.fig.draw_artist(artist)
        return np.asarray(canvas.buffer_rgba())


def plot_step(result: RunResult, step: int, *, figsize: tuple[float, float] = (13, 5.6)) -> Figure:
    """The two-panel figure for ``step`` of a single-init run."""
    return StepFigure(result, figsize=figsize).draw(step)


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Save ``fig`` to ``path`` atomically and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path
