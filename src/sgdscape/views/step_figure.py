"""The notebook's figure, done properly (matplotlib), for a run or a network's view.

For step ``k``: on the left the log loss landscape of the minibatch used at step ``k``
with the iterate, the -gradient arrow (and the -full-gradient arrow); on the right the
log empirical-risk (full-data loss) landscape with the path up to ``k``.

:class:`StepFigure` draws that figure once from a
:class:`~sgdscape.views.step_source.StepSource` (a :class:`~sgdscape.records.run.RunResult`
or a network's :class:`~sgdscape.networks.recording.StochasticView`) and redraws it for any
step, so the static figure (:func:`plot_step`) and the animation
(:mod:`sgdscape.views.animation`) share one drawing code. Colours and the arrow rule come
from :mod:`sgdscape.views.style`; titles from :mod:`sgdscape.views.step_source`.

It stays one module of about 500 lines on purpose: the full draw (:meth:`StepFigure.draw`)
and the repaint of only what a step changes (:meth:`StepFigure.render`, which the
animations use) must paint the same artists in the same order, panels and overlays
included, and keeping both beside each other is what keeps them equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from sgdscape.errors import SgdscapeError
from sgdscape.records.run import RunResult, atomic_path
from sgdscape.views.step_source import (
    StepSource,
    batch_text,
    from_run,
    run_arrow_scale,
    slice_text,
    step_source,
    step_titles,
    view_arrow_scale,
)
from sgdscape.views.style import (
    ARROW_EDGE_COLOUR,
    COLOUR_MAP,
    CONTOUR_LEVELS,
    END_COLOUR,
    HEAD_WIDTH_FRACTION,
    MARKER_EDGE_COLOUR,
    MIN_ARROW_FRACTION,
    MIN_VISIBLE_FRACTION,
    PATH_COLOUR,
    RUN_COLOURS,
    TRUE_GRADIENT_COLOUR,
    WHOLE_PATH_COLOUR,
    Arrows,
    Window,
    arrow_rule,
    safe_log,
    step_factors,
    window_of,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colorbar import Colorbar
    from matplotlib.figure import Figure

    from sgdscape.networks.recording import StochasticView

__all__ = [  # the public names of this module, some of them re-exported from views.style
    "ARROW_EDGE_COLOUR",
    "CONTOUR_LEVELS",
    "MIN_ARROW_FRACTION",
    "MIN_VISIBLE_FRACTION",
    "PATH_COLOUR",
    "RUN_COLOURS",
    "TRUE_GRADIENT_COLOUR",
    "Arrows",
    "Overlay",
    "Panel",
    "StepFigure",
    "arrow_rule",
    "arrow_scale",
    "batch_text",
    "draw_arrow",
    "plot_step",
    "resolve_steps",
    "run_arrows",
    "safe_log",
    "save_figure",
    "slice_text",
    "step_factors",
    "step_titles",
    "window_of",
    "wrap_title",
    "wrap_title_text",
]


def arrow_scale(result: RunResult | StochasticView) -> float:
    """One arrow scale for a whole run or view: its 95th-percentile gradient spans 1/5 of
    the window (:func:`sgdscape.views.style.gradient_scale`)."""
    if isinstance(result, RunResult):
        return run_arrow_scale(result)
    return view_arrow_scale(result)


def run_arrows(
    result: RunResult, names: tuple[str, str] = ("-minibatch gradient", "-full gradient")
) -> tuple[Arrows, Arrows | None]:
    """The drawn ``(minibatch, full)`` arrows of every step of a single-init run.

    ``full`` is ``None`` when the full gradient was not recorded. The vectors are the
    recorded -gradients projected on the slice; see :mod:`sgdscape.views.style`.
    """
    return from_run(result).arrows(names)


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
        surface.w1, surface.w2, safe_log(values), levels=CONTOUR_LEVELS, cmap=COLOUR_MAP
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
    return axes.scatter(
        [np.nan], [np.nan], color=PATH_COLOUR, edgecolor=MARKER_EDGE_COLOUR, zorder=3, s=60
    )


class Panel(Protocol):
    """A further panel of a :class:`StepFigure`, right of the two (the hook for new views,
    e.g. curvature along the path).

    ``setup`` draws what never changes, once; ``draw`` shows ``step`` and returns every
    artist it changed (the animation repaints only those on a kept background).
    """

    def setup(self, axes: Axes, source: StepSource) -> None:
        """Draw the panel's unchanging part on ``axes``."""

    def draw(self, axes: Axes, source: StepSource, step: int) -> Sequence[Any]:
        """Show ``step``; return the artists changed."""


class Overlay(Protocol):
    """Something drawn over the LEFT (minibatch) panel of a :class:`StepFigure` at every step
    (e.g. the fan of next steps, :class:`sgdscape.views.fan.FanOverlay`).

    ``setup`` runs once; ``draw`` shows ``step`` on the left axes (removing what it drew for
    the previous step) and returns every artist it added or changed there.
    """

    def setup(self, axes: Axes, source: StepSource) -> None:
        """Prepare for ``source`` (the left axes are given; draw nothing that changes)."""

    def draw(self, axes: Axes, source: StepSource, step: int) -> Sequence[Any]:
        """Show ``step`` over the left panel; return the artists added or changed."""


class StepFigure:
    """The two-panel figure of a run or a network's view, redrawn in place for any step.

    ``source`` is a single-init :class:`~sgdscape.records.run.RunResult`, a network's
    :class:`~sgdscape.networks.recording.StochasticView` or their
    :class:`~sgdscape.views.step_source.StepSource`. The right panel's risk contour is drawn
    once (for a projected path, also the whole path faintly and its end);
    :meth:`draw` replaces the left contour, arrows, markers, path and titles. Used by
    :func:`plot_step` (one step) and by :func:`sgdscape.views.animation.animate` (every
    frame on one figure). ``panels`` (:class:`Panel`) add columns on the right; the
    figure's width grows by half of ``figsize``'s for each. ``overlays`` (:class:`Overlay`)
    draw over the left panel at every step. ``pyplot=False``: the figure is a plain
    :class:`~matplotlib.figure.Figure` on an Agg canvas that pyplot never sees (no pyplot
    import, no figure manager; the same pixels), for writing files.
    """

    def __init__(
        self,
        source: RunResult | StochasticView | StepSource,
        *,
        figsize: tuple[float, float] = (13, 5.6),
        dpi: float | None = None,
        panels: Sequence[Panel] = (),
        overlays: Sequence[Overlay] = (),
        pyplot: bool = True,
    ) -> None:
        self.source = step_source(source)
        self.result = source if isinstance(source, RunResult) else None
        source = self.source
        self.path = source.path
        self.window = source.window
        self.arrows = source.arrows()
        self.panels = tuple(panels)
        self.overlays = tuple(overlays)
        self._overlay_artists: list[Any] = []
        width = figsize[0] * (1 + len(self.panels) / 2)
        self.fig = _new_figure((width, figsize[1]), dpi, pyplot=pyplot)
        columns = self.fig.subplots(ncols=2 + len(self.panels), squeeze=False)
        self.left, self.right, *self.panel_axes = columns[0]
        self._panel_artists: list[Any] = []
        self._transient: list[Any] = []
        self._left_contour: Any = None
        self._left_colorbar: Colorbar | None = None
        self._background: Any = None  # the unchanging pixels, once :meth:`render` ran
        for axes in (self.left, self.right):
            self._frame(axes)
        surface = source.landscape
        filled = self.right.contourf(
            surface.w1,
            surface.w2,
            safe_log(surface.risk),
            levels=CONTOUR_LEVELS,
            cmap=COLOUR_MAP,
        )
        self.fig.colorbar(filled, ax=self.right, label=source.risk_label)
        path = self.path
        if source.projected:  # where the projected path goes, faintly, under the path so far
            self.right.plot(
                path[:, 0], path[:, 1], "-", color=WHOLE_PATH_COLOUR, alpha=0.35, linewidth=1
            )
        others = source.others
        (self._path_line,) = self.right.plot(
            [],
            [],
            "-o",
            color=PATH_COLOUR,
            markersize=2.5 if source.projected else 4,
            linewidth=1.5 if source.projected else 2,
            label=f"{source.label} (left panel)" if others else source.path_label,
        )
        # the other runs of a compare run: their paths up to the same step
        self._other_paths = []
        for (label, other), colour in zip(others, RUN_COLOURS[1:], strict=False):
            (line,) = self.right.plot([], [], "-", color=colour, linewidth=1.5, label=label)
            line.set_zorder(2.5)  # over the first run's path
            self._other_paths.append((other, line))
        self._right_point = iterate_marker(self.right)
        if source.projected:
            self.right.scatter(
                *path[-1],
                marker="*",
                color=END_COLOUR,
                edgecolor=MARKER_EDGE_COLOUR,
                zorder=3,
                s=120,
            )
        self._left_point = iterate_marker(self.left)
        self.right.legend(loc="lower left", fontsize=8, framealpha=0.8)
        for panel, axes in zip(self.panels, self.panel_axes, strict=True):
            panel.setup(axes, source)
        for overlay in self.overlays:
            overlay.setup(self.left, source)

    def _frame(self, axes: Axes) -> None:
        frame_axes(axes, self.source.landscape)
        if not self.source.projected:  # a projected path's PC2 spans far less than PC1
            axes.set_aspect("equal")

    def draw(self, step: int) -> Figure:
        """Show ``step``; returns the figure."""
        source, left = self.source, self.left
        values = source.minibatch_landscape(source.check_step(step))
        for artist in self._transient:
            artist.remove()
        self._transient = []
        self._left_contour, self._left_colorbar = replace_contour(
            self.fig,
            left,
            source.landscape,
            values,
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
        self._overlay_artists = [
            artist for overlay in self.overlays for artist in overlay.draw(left, source, step)
        ]
        self._left_point.set_offsets([point])
        if (label := source.point_label(step)) is not None:
            self._left_point.set_label(label)
        self._right_point.set_offsets([point])
        self._path_line.set_data(self.path[: step + 1, 0], self.path[: step + 1, 1])
        for other, line in self._other_paths:
            line.set_data(other[: step + 1, 0], other[: step + 1, 1])
        left_title, right_title, suptitle = source.titles(step)
        left.set_title(left_title)
        self.right.set_title(right_title)
        self.fig.suptitle(wrap_title(suptitle, self.fig))
        # inside the panel: the layout ignores it (long arrow labels must not shrink the axes)
        # (where an overlay draws over the panel, wherever it hides the least)
        where = "best" if self.overlays else "lower left"
        left.legend(loc=where, fontsize=8, framealpha=0.8).set_in_layout(False)
        self._panel_artists = [
            artist
            for panel, axes in zip(self.panels, self.panel_axes, strict=True)
            for artist in panel.draw(axes, source, step)
        ]
        return self.fig

    def freeze_layout(self) -> None:
        """Fix the current layout so later frames do not jitter (and draw faster)."""
        self.fig.canvas.draw()
        self.fig.set_layout_engine(None)

    def _changing(self) -> list[Any]:
        """The artists :meth:`draw` changes, in the order a full draw paints them."""
        left, right = self.left, self.right
        assert self._left_colorbar is not None
        on_left = [
            self._left_contour,
            *left.spines.values(),  # over the new contour's edges, as in a full draw
            self._left_point,
            *reversed(self._transient),  # the true-gradient arrow under the minibatch one
            left.get_legend(),
            left.title,
        ]
        if self._overlay_artists:  # interleaved as a full draw does: by zorder, then as added
            order = {id(artist): i for i, artist in enumerate(left.get_children())}
            on_left = sorted(
                [a for a in (*on_left, *self._overlay_artists) if a is not None],
                key=lambda artist: (artist.get_zorder(), order.get(id(artist), -1)),
            )
        return [
            *on_left,
            self._left_colorbar.ax,  # its ticks follow the step's range
            self._path_line,
            *(line for _, line in self._other_paths),  # a compare run's other paths (zorder 2.5)
            self._right_point,
            right.get_legend(),  # over the path, as in a full draw
            right.title,
            *self._panel_artists,
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


def _new_figure(size: tuple[float, float], dpi: float | None, *, pyplot: bool) -> Figure:
    """An empty figure of ``size`` inches with the constrained layout: pyplot's, or a plain
    one on an Agg canvas (matplotlib's default ``dpi`` when ``None``)."""
    if pyplot:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=size, dpi=dpi, layout="constrained")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_step(
    result: RunResult | StochasticView | StepSource,
    step: int,
    *,
    figsize: tuple[float, float] = (13, 5.6),
) -> Figure:
    """The two-panel figure for ``step`` of a single-init run or a network's view."""
    source = step_source(result)
    source.minibatch_landscape(source.check_step(step))  # fail before opening a figure
    return StepFigure(source, figsize=figsize).draw(step)


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Save ``fig`` to ``path`` atomically and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path
