"""Standalone outputs of a chains run: the slider page (HTML) and the animation (GIF/MP4).

:func:`export_chains_html` writes :func:`sgdscape.views.chains_plotly.chains_player` as one
self-contained page (plotly.js inlined, opens from ``file://``), through
:func:`sgdscape.surfaces.export.export_figure_html`. The animation is
:func:`sgdscape.views.chains_animation.animate_chains`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sgdscape.core.chains import Chains
from sgdscape.core.landscape import Landscape
from sgdscape.core.problems import Dataset
from sgdscape.surfaces.export import export_figure_html


def export_chains_html(
    chains: Chains,
    landscape: Landscape,
    data: Dataset,
    path: str | Path,
    *,
    steps: Sequence[int] | None = None,
    title: str | None = None,
) -> Path:
    """Write the chains' slider page to ``path`` (``.html``/``.htm``, atomically).

    Args:
        chains: the run.
        landscape: the risk on the plot window.
        data: the samples the chains trained on.
        path: the page to write.
        steps: recorded steps the slider visits (default all).
        title: the page's heading (default: the figure's title).
    """
    from sgdscape.views.chains_plotly import chains_player

    about = (
        "Drag the slider: the density of the chains at that step, their mean and 2-sigma "
        "ellipse (and the exact theory's, dashed, where it applies); right, the basin "
        "fractions or the spread against step."
    )
    figure = chains_player(chains, landscape, data, steps=steps)
    return export_figure_html(figure, path, title=title, about=about)
