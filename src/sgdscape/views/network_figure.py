"""The notebook's two panels for a real network, from a StochasticView.

For step ``k``: on the left the log loss of the minibatch used at step ``k`` on the PCA
plane with the projected iterate and -gradient arrow; on the right the log full-data
loss with the projected path up to ``k``. Mirrors :mod:`sgdscape.views.step_figure` and
:mod:`sgdscape.views.plotly_figures` for a :class:`~sgdscape.records.run.RunResult`:

- :class:`NetworkStepFigure` draws the matplotlib figure once and redraws it for any step;
  :func:`plot_network_step` (one step) and :func:`animate_network` (GIF/MP4) use it.
- :func:`network_player` packs the view for the standalone HTML page's client-side slider
  (the same format and ``PLAYER_JS`` as :func:`sgdscape.views.plotly_figures.player`).
- :func:`network_surface` draws the full-data landscape as a Plotly 3-D surface with the
  projected path on it.

Views never recompute the science: every number comes from the StochasticView.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sgdscape.core.landscape import Landscape
from sgdscape.errors import SgdscapeError
from sgdscape.networks.recording import StochasticView
from sgdscape.views.step_figure import (
    CONTOUR_LEVELS,
    PATH_COLOUR,
    Arrows,
    arrow_rule,
    draw_arrow,
    frame_axes,
    iterate_marker,
    replace_contour,
    safe_log,
    step_factors,
    window_of,
)

FRAME_SIZE = (1040, 450)  # pixels of an animation frame

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from sgdscape.views.animation import Progress
    from sgdscape.views.plotly_figures import Player


def arrow_scale(view: StochasticView) -> float:
    """One arrow scale for the view: the 95th-percentile projected gradient spans 1/5 of the window."""
    norms = np.linalg.norm(np.asarray(view.grads_plane, dtype=np.float64), axis=-1)
    norms = norms[np.isfinite(norms)]
    width = float(view.landscape.w1[-1] - view.landscape.w1[0])
    reference = float(np.percentile(norms, 95)) if norms.size else 0.0
    return 0.2 * width / reference if reference > 0 else 1.0


ARROW_NAME = "-minibatch gradient at the true iterate, projected"


def view_arrows(view: StochasticView) -> Arrows:
    """The drawn -minibatch-gradient arrows of every step (:func:`sgdscape.views.step_figure.arrow_rule`)."""
    vectors = -np.asarray(view.grads_plane, dtype=np.float64)
    window = window_of(view.landscape)
    factors = step_factors(arrow_scale(view), [vectors], window)
    return arrow_rule(view.path()[: view.n_steps], vectors, factors, window, ARROW_NAME)


def shown_steps(view: StochasticView, steps: Sequence[int] | range | None = None) -> list[int]:
    """The steps to show: those given (each must have a stored minibatch landscape) or all
    stored ones (``view.steps``)."""
    stored = [int(s) for s in view.steps]
    if steps is None:
        return stored
    chosen = [int(s) for s in steps]
    if not chosen:
        raise SgdscapeError("the step range is empty; choose steps of the recorded run.")
    have = set(stored)
    missing = [s for s in chosen if s not in have]
    if missing:
        listed = ", ".join(str(s) for s in stored[:10]) + (", …" if len(stored) > 10 else "")
        raise SgdscapeError(
            f"step {missing[0]} has no stored minibatch landscape; stored steps: {listed}."
        )
    return chosen


def network_titles(view: StochasticView, step: int) -> tuple[str, str, str]:
    """``(left, right, figure)`` titles of ``step``."""
    info = view.info
    left = (
        f"step {step}: minibatch of {len(view.batch(step))} samples, "
        f"loss {view.batch_loss[step]:.3g}"
    )
    right = (
        f"full data ({info.get('n_samples', '?')} samples), loss at step {step}: "
        f"{view.risk[step]:.3g}"
    )
    variance = view.explained_variance
    suptitle = (
        f"{_heading(view)} · step {step}/{view.n_steps - 1} · PCA plane explains "
        f"{100 * float(np.sum(variance)):.1f}% of the path's variance"
    )
    return left, right, suptitle


def _heading(view: StochasticView) -> str:
    info = view.info
    return (
        f"{info.get('name', 'network')} ({info.get('n_params', '?')} parameters) · "
        f"{info.get('optimizer', '?')} lr={info.get('lr', 0):g} · batch {info.get('batch_size')}"
    )


# --------------------------------------------------------------------------- matplotlib


class NetworkStepFigure:
    """The two-panel figure of a network's stochastic view, redrawn in place for any step.

    The right panel's full-data contour, the whole faint path and the final point are
    drawn once; :meth:`draw` replaces the left contour, the arrow, the markers, the path
    so far and the titles.
    """

    def __init__(
        self,
        view: StochasticView,
        *,
        figsize: tuple[float, float] = (13, 5.6),
        dpi: float | None = None,
    ) -> None:
        import matplotlib.pyplot as plt

        self.view = view
        self.path = view.path()
        self.arrows = view_arrows(view)
        self.window = window_of(view.landscape)
        self.fig, (self.left, self.right) = plt.subplots(
            ncols=2, figsize=figsize, dpi=dpi, layout="constrained"
        )
        self._transient: list[Any] = []
        self._left_contour: Any = None
        self._left_colorbar: Any = None
        for axes in (self.left, self.right):
            self._frame(axes)
        surface = view.landscape
        filled = self.right.contourf(
            surface.w1, surface.w2, safe_log(surface.risk), levels=CONTOUR_LEVELS, cmap="viridis"
        )
        self.fig.colorbar(filled, ax=self.right, label="log full-data loss")
        path = self.path
        self.right.plot(path[:, 0], path[:, 1], "-", color="white", alpha=0.35, linewidth=1)
        (self._path_line,) = self.right.plot(
            [],
            [],
            "-o",
            color=PATH_COLOUR,
            markersize=2.5,
            linewidth=1.5,
            label="path so far (projected)",
        )
        self._right_point = iterate_marker(self.right)
        self.right.scatter(*path[-1], marker="*", color="white", edgecolor="black", zorder=3, s=120)
        self._left_point = iterate_marker(self.left)
        self.right.legend(loc="lower left", fontsize=8, framealpha=0.8)

    def _frame(self, axes: Axes) -> None:
        frame_axes(axes, self.view.landscape)

    def draw(self, step: int) -> Figure:
        """Show ``step``; returns the figure."""
        view, left = self.view, self.left
        if not 0 <= step < view.n_steps:
            raise SgdscapeError(f"step must be between 0 and {view.n_steps - 1}, got {step}.")
        values = view.batch_landscape(step)  # raises for a step without a stored landscape
        for artist in self._transient:
            artist.remove()
        self._transient = []
        self._left_contour, self._left_colorbar = replace_contour(
            self.fig,
            left,
            view.landscape,
            values,
            self._left_contour,
            self._left_colorbar,
            "log minibatch loss",
        )
        point = self.path[step]
        arrows = self.arrows
        self._transient.append(
            draw_arrow(
                left,
                arrows.tail[step],
                arrows.tip[step],
                PATH_COLOUR,
                arrows.labels[step],
                self.window,
            )
        )
        self._left_point.set_offsets([point])
        self._left_point.set_label(f"iterate (projected; {view.off_plane[step]:.2g} off the plane)")
        self._right_point.set_offsets([point])
        self._path_line.set_data(self.path[: step + 1, 0], self.path[: step + 1, 1])
        left_title, right_title, suptitle = network_titles(view, step)
        left.set_title(left_title)
        self.right.set_title(right_title)
        self.fig.suptitle(suptitle)
        # inside the panel: the layout ignores it (long arrow labels must not shrink the axes)
        left.legend(loc="lower left", fontsize=8, framealpha=0.8).set_in_layout(False)
        return self.fig

    def freeze_layout(self) -> None:
        """Fix the current layout so later frames do not jitter (and draw faster)."""
        self.fig.canvas.draw()
        self.fig.set_layout_engine(None)


def plot_network_step(
    view: StochasticView, step: int, *, figsize: tuple[float, float] = (13, 5.6)
) -> Figure:
    """The two-panel figure for ``step`` of a recorded network training run."""
    if not 0 <= step < view.n_steps:
        raise SgdscapeError(f"step must be between 0 and {view.n_steps - 1}, got {step}.")
    view.batch_landscape(step)  # fail before opening a figure
    return NetworkStepFigure(view, figsize=figsize).draw(step)


def animate_network(
    view: StochasticView,
    path: str | Path,
    *,
    fps: float = 10.0,
    steps: Sequence[int] | range | None = None,
    size: tuple[int, int] = FRAME_SIZE,
    dpi: float = 80.0,
    format: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Write the view's two-panel figure, one frame per step, as a GIF or an MP4.

    Args:
        view: a network's stochastic view.
        path: output file (``.gif``/``.mp4``), written atomically.
        fps: frames (steps) per second.
        steps: the steps to show (each with a stored minibatch landscape); default all
            stored steps, ``view.steps``.
        size: ``(width, height)`` of a frame in pixels; ``dpi``: text size.
        format: ``"gif"`` or ``"mp4"`` (default: from the extension).
        progress: called as ``progress(frames_done, frames_total)``.
    """
    from sgdscape.views.animation import animate_drawing

    return animate_drawing(
        lambda figsize, dpi: NetworkStepFigure(view, figsize=figsize, dpi=dpi),
        path,
        lambda: shown_steps(view, steps),
        fps=fps,
        size=size,
        dpi=dpi,
        format=format,
        progress=progress,
    )


# --------------------------------------------------------------------------- plotly


def _point_text(view: StochasticView, step: int, point: np.ndarray) -> str:
    labels = view.landscape.labels
    return (
        f"step {step}<br>{labels[0]} = {point[0]:.4g}<br>{labels[1]} = {point[1]:.4g}<br>"
        f"minibatch loss = {float(view.batch_loss[step]):.4g}<br>"
        f"full-data loss = {float(view.risk[step]):.4g}<br>"
        f"{float(view.off_plane[step]):.3g} off the plane"
    )


def network_player(
    view: StochasticView,
    *,
    steps: Sequence[int] | range | None = None,
    width: int | None = None,
    height: int | None = None,
) -> Player:
    """Pack ``view`` for the standalone page's ``PLAYER_JS`` (client-side step slider).

    The same format as :func:`sgdscape.views.plotly_figures.player`: the left panel the log
    loss of the minibatch of each shown step (each distinct minibatch packed once) with
    the projected iterate and the projected -minibatch-gradient arrow, the right panel the
    log full-data loss with the projected path so far. ``steps`` default to the stored
    ones (``view.steps``); each given step must be stored.
    """
    from sgdscape.views.plotly_figures import (
        HEIGHT,
        WIDTH,
        Player,
        _plain,
        _skeleton,
        distinct_batches,
        encode_log_grids,
    )

    chosen = shown_steps(view, steps)
    scale = arrow_scale(view)
    path = view.path()
    figure = _skeleton(
        view.landscape,
        scale,
        width or WIDTH,
        height or HEIGHT,
        right_label="log full-data loss",
    )
    for axis in ("yaxis", "yaxis2"):  # PC2 usually spans far less than PC1: fill the panels
        figure["layout"][axis].pop("scaleanchor", None)
        figure["layout"][axis].pop("constrain", None)
    figure["layout"]["legend"]["y"] = -0.16  # below the x-axis titles of the taller panels
    data = figure["data"]
    data[1]["name"] = ARROW_NAME  # per step: the arrow rule's label
    data[2]["showlegend"] = False  # no full gradient is recorded for a network
    data[5]["name"] = "path so far (projected)"
    first_step, which = distinct_batches(chosen, view.batch)
    grids = [safe_log(view.batch_landscape(step)) for step in first_step]
    grids.append(safe_log(view.landscape.risk))
    titles = [network_titles(view, step) for step in chosen]
    arrows = view_arrows(view)
    frames = {
        "steps": chosen,
        "landscape": which,
        "risk_landscape": len(first_step),
        "grids": encode_log_grids(np.stack(grids)),
        "path": _plain(path[: max(chosen) + 1]),
        "minibatch_tip": _plain(arrows.tip[chosen]),
        "minibatch_label": [arrows.labels[step] for step in chosen],
        "full_tip": None,
        "full_label": None,
        "contour_levels": CONTOUR_LEVELS,
        "point_text": [_point_text(view, step, path[step]) for step in chosen],
        "left_title": [t[0] for t in titles],
        "right_title": [t[1] for t in titles],
        "title": [t[2] for t in titles],
    }
    return Player(figure, frames)


def network_surface(
    view: StochasticView | Landscape, *, log: bool = True, **options: Any
) -> go.Figure:
    """A Plotly 3-D surface of a network's (log) loss on its slice.

    Args:
        view: a :class:`StochasticView` (its full-data landscape, with the projected path
            ``view.path() (T + 1, 2)`` drawn on the surface) or any
            :class:`~sgdscape.core.landscape.Landscape` (e.g. from
            :func:`sgdscape.slice_landscape`; no path).
        log: draw the log loss (default) or the loss.
        **options: passed to :func:`sgdscape.views.plotly_figures.surface_figure` (``title``,
            ``width``, ``height``, ``lift``, ...).

    Returns:
        A ``plotly.graph_objects.Figure`` whose trace 0 is the ``Surface``.
    """
    from sgdscape.views.plotly_figures import surface_figure

    if isinstance(view, Landscape):
        options.setdefault("title", f"{view.model}: {view.loss} on a 2-D slice")
        return surface_figure(view, log=log, **options)
    if not isinstance(view, StochasticView):
        raise SgdscapeError(
            f"network_surface takes a StochasticView or a Landscape, got {type(view).__name__}."
        )
    variance = view.explained_variance
    options.setdefault(
        "title",
        f"{_heading(view)}<br>full data ({view.info.get('n_samples', '?')} samples) · "
        f"PCA plane explains {100 * float(np.sum(variance)):.1f}% of the path's variance",
    )
    options.setdefault("z_label", "log full-data loss" if log else "full-data loss")
    options.setdefault("path_name", "path (projected)")
    return surface_figure(view.landscape, path=view.path(), log=log, **options)
