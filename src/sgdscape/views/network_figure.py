"""The notebook's two panels for a real network, from a StochasticView.

For step ``k``: on the left the log loss of the minibatch used at step ``k`` on the PCA
plane with the projected iterate and -gradient arrow; on the right the log full-data
loss with the projected path up to ``k``.

A network's view and a 2-parameter run draw through the same code (one
:class:`~sgdscape.views.step_source.StepSource`, one
:class:`~sgdscape.views.step_figure.StepFigure`, one Plotly player); the functions here
keep the names the docs and the CLI use for a network:

- :func:`plot_network_step` (one step) and :func:`animate_network` (GIF/MP4);
- :func:`network_player` packs the view for the standalone HTML page's client-side slider;
- :func:`network_surface` draws the full-data landscape as a Plotly 3-D surface with the
  projected path on it.

Views never recompute the science: every number comes from the StochasticView.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sgdscape.core.landscape import Landscape
from sgdscape.networks.recording import StochasticView
from sgdscape.views.step_figure import plot_step

FRAME_SIZE = (1040, 450)  # pixels of an animation frame

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from matplotlib.figure import Figure

    from sgdscape.views.animation import Progress
    from sgdscape.views.plotly_figures import Player


def plot_network_step(
    view: StochasticView, step: int, *, figsize: tuple[float, float] = (13, 5.6)
) -> Figure:
    """The two-panel figure for ``step`` of a recorded network training run
    (:func:`sgdscape.views.step_figure.plot_step`)."""
    return plot_step(view, step, figsize=figsize)


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
    """Write the view's two-panel figure, one frame per step, as a GIF or an MP4
    (:func:`sgdscape.views.animation.animate`; ``steps`` default to the stored ones,
    ``view.steps``, and each given step must be stored)."""
    from sgdscape.views.animation import animate

    return animate(
        view, path, fps=fps, steps=steps, size=size, dpi=dpi, format=format, progress=progress
    )


def network_player(
    view: StochasticView,
    *,
    steps: Sequence[int] | range | None = None,
    width: int | None = None,
    height: int | None = None,
) -> Player:
    """Pack ``view`` for the standalone page's player
    (:func:`sgdscape.views.plotly_figures.player`)."""
    from sgdscape.views.plotly_figures import HEIGHT, WIDTH, player

    return player(view, steps=steps, width=width or WIDTH, height=height or HEIGHT)


def network_surface(
    view: StochasticView | Landscape, *, log: bool = True, **options: Any
) -> go.Figure:
    """A Plotly 3-D surface of a network's (log) loss on its slice
    (:func:`sgdscape.views.surface.path_surface`): a :class:`StochasticView`'s
    full-data landscape with its projected path, or any
    :class:`~sgdscape.core.landscape.Landscape` (e.g. from
    :func:`sgdscape.slice_landscape`; no path)."""
    from sgdscape.views.surface import path_surface

    return path_surface(view, log=log, **options)
