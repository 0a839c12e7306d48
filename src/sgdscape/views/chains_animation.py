"""The density of ``K`` chains over the risk, frame by frame over the recorded steps (GIF/MP4).

:class:`ChainsDrawing` is a :class:`sgdscape.views.animation.Drawing`: ``draw(step)`` redraws
the left panel for a recorded step (the density, the empirical and, where exact, the theory
2-sigma ellipses, framing the cloud as it moves and shrinks) and moves the step marker on the
right panel (the fraction of chains per basin, or for models without basins the spread of
each parameter, empirical and exact). :func:`animate_chains` writes it with
:func:`sgdscape.views.animation.animate_drawing`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sgdscape.core.chain_stats import BASINS, basin_fractions, chain_moments
from sgdscape.core.chain_theory import linear_regression_moments
from sgdscape.core.chains import Chains
from sgdscape.core.landscape import Landscape
from sgdscape.core.problems import Dataset
from sgdscape.errors import SgdscapeError
from sgdscape.views.animation import DEFAULT_DPI, DEFAULT_FPS, Progress, animate_drawing
from sgdscape.views.chains_figure import draw_density_panel, theory_applies

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_CHAINS_SIZE = (960, 420)


def record_index(chains: Chains, step: int) -> int:
    """Index of recorded ``step`` in ``chains.record_steps`` (an error names the recorded ones)."""
    hits = np.flatnonzero(chains.record_steps == int(step))
    if hits.size == 0:
        raise SgdscapeError(
            f"step {step} was not recorded; recorded steps are {chains.record_steps.tolist()}."
        )
    return int(hits[0])


def exact_moments(chains: Chains, data: Dataset) -> Any:
    """The exact moments at every recorded step when the theory applies, else ``None``."""
    if not theory_applies(chains):
        return None
    config = chains.config
    return linear_regression_moments(
        data, chains.init[0], config.lr, config.batch_size, chains.record_steps
    )


class ChainsDrawing:
    """Two panels redrawn for any recorded step: the chains' density over the risk, and the
    basin fractions (or the parameters' spread) against step with the current step marked.

    Attributes:
        fig: the matplotlib figure.
        left, right: its axes.
        step: the step drawn last (None before the first draw).
    """

    def __init__(
        self,
        chains: Chains,
        landscape: Landscape,
        data: Dataset,
        *,
        figsize: tuple[float, float] = (12.0, 5.25),
        dpi: float = DEFAULT_DPI,
        bins: int = 60,
    ) -> None:
        import matplotlib.pyplot as plt

        self.chains, self.landscape, self.data, self.bins = chains, landscape, data, bins
        self.theory = exact_moments(chains, data)
        self.log_risk = np.log10(np.maximum(np.asarray(landscape.risk, dtype=np.float64), 1e-12))
        self.fig: Figure = plt.figure(figsize=figsize, dpi=dpi, layout="constrained")
        self.left, self.right = self.fig.subplots(ncols=2, width_ratios=[1.15, 1.0])
        self.step: int | None = None
        self._draw_right()
        config = chains.config
        self.fig.suptitle(
            f"{chains.n_chains} chains of {config.optimizer} on {config.model}: lr {config.lr:g}, "
            f"batch {config.batch_size}, {config.sampling}",
            fontsize=10,
        )

    def _draw_right(self) -> None:
        ax, chains = self.right, self.chains
        if chains.config.model in BASINS:
            fractions = basin_fractions(chains, self.data)
            for column, name in enumerate((*fractions.names, "diverged")):
                share = fractions.fractions[:, column]
                if share.any():
                    ax.plot(fractions.steps, share, marker=".", ms=3, label=name)
            ax.set_ylim(-0.02, 1.02)
            ax.set_ylabel("fraction of chains")
            ax.set_title("basins", fontsize=10)
        else:
            moments = chain_moments(chains)
            names = chains.param_names
            for j, colour in zip(
                range(min(len(names), 2)), ("tab:blue", "tab:orange"), strict=False
            ):
                spread = np.sqrt(moments.covariance[:, j, j])
                ax.plot(
                    moments.steps, spread, marker=".", ms=3, color=colour, label=f"std {names[j]}"
                )
                if self.theory is not None:
                    exact = np.sqrt(np.clip(self.theory.covariance[:, j, j], 0, None))
                    ax.plot(
                        self.theory.steps, exact, "--", color="black", lw=1,
                        label="exact theory" if j == 0 else None,
                    )  # fmt: skip
            ax.set_yscale("log", nonpositive="mask")
            ax.set_ylabel("spread of the chains")
            ax.set_title("spread against step", fontsize=10)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(0, max(float(chains.record_steps[-1]), 1.0) * 1.05)
        ax.set_xlabel("step")
        ax.legend(fontsize=8, loc="best")
        self._marker = ax.axvline(float(chains.record_steps[0]), color="crimson", lw=1.2)

    def draw(self, step: int) -> Figure:
        """Redraw for recorded ``step``."""
        index = record_index(self.chains, step)
        ax = self.left
        ax.clear()
        exact = None
        if self.theory is not None:
            exact = (self.theory.mean[index], self.theory.covariance[index])
        notes = draw_density_panel(
            ax, self.chains, self.landscape, index, exact, bins=self.bins, log_risk=self.log_risk
        )
        # always two title lines, so the layout frozen at the first frame fits every frame
        ax.set_title(f"step {step}\n{'; '.join(notes)}", fontsize=9)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize=8, framealpha=0.8)
        self._marker.set_xdata([float(step), float(step)])
        self.step = int(step)
        return self.fig

    def freeze_layout(self) -> None:
        """Fix the current layout so later frames do not jitter."""
        self.fig.canvas.draw()
        self.fig.set_layout_engine("none")


def animate_chains(
    chains: Chains,
    landscape: Landscape,
    data: Dataset,
    path: str | Path,
    *,
    steps: Sequence[int] | None = None,
    fps: float = DEFAULT_FPS,
    size: tuple[int, int] = DEFAULT_CHAINS_SIZE,
    dpi: float = DEFAULT_DPI,
    format: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Write :class:`ChainsDrawing` as a GIF or MP4, one frame per recorded step.

    Args:
        chains: the run.
        landscape: the risk on the plot window.
        data: the samples the chains trained on.
        path: ``.gif`` or ``.mp4`` (written atomically).
        steps: recorded steps to show (default all of them).
        fps, size, dpi, format, progress: as :func:`sgdscape.views.animation.animate`.
    """

    def chosen() -> list[int]:
        if steps is None:
            return [int(s) for s in chains.record_steps]
        wanted = [int(s) for s in steps]
        for step in wanted:
            record_index(chains, step)
        if not wanted:
            raise SgdscapeError("steps must name at least one recorded step.")
        return wanted

    return animate_drawing(
        lambda figsize, dpi: ChainsDrawing(chains, landscape, data, figsize=figsize, dpi=dpi),
        path,
        chosen,
        fps=fps,
        size=size,
        dpi=dpi,
        format=format,
        progress=progress,
    )
