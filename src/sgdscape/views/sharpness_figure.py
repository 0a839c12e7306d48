"""Sharpness against step (matplotlib): the panel, the ``2 / lr`` stability line, and the
:class:`SharpnessPanel` that puts them beside the two step panels.

The stability line is the ``Line2D`` labelled :data:`THRESHOLD_LABEL` (``y = 2 / lr``); the
step marker of :class:`SharpnessPanel` has ``gid`` ``"sharpness-step"``. Every name here is
importable from :mod:`sgdscape.views.curvature_figure` too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sgdscape.core.curvature import Curvature
from sgdscape.errors import SgdscapeError
from sgdscape.records.run import RunResult
from sgdscape.views.sharpness_style import (  # the labels and the log rule, shared with Plotly
    BATCH_LABEL,
    RISK_LABEL,
    THRESHOLD_LABEL,
    use_log_scale,
)
from sgdscape.views.step_figure import PATH_COLOUR

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "BATCH_LABEL",
    "RISK_LABEL",
    "THRESHOLD_LABEL",
    "SharpnessPanel",
    "sharpness_panel",
    "threshold_line",
    "use_log_scale",
]


def _rows(values: np.ndarray) -> np.ndarray:
    """``(R, T)``: one row per run of a ``(..., T)`` array."""
    values = np.asarray(values, dtype=np.float64)
    return values.reshape(-1, values.shape[-1])


def _named(label: str, name: str | None) -> str:
    return label if name is None else f"{label} [{name}]"


def threshold_line(
    ax: Axes, steps: np.ndarray, lr: np.ndarray | float, *, colour: str = "black"
) -> Any:
    """Draw ``2 / lr`` against ``steps`` (a horizontal line for a constant lr) and return it."""
    lr = np.broadcast_to(np.asarray(lr, dtype=np.float64), np.shape(steps))
    with np.errstate(divide="ignore"):
        edge = np.where(lr > 0, 2.0 / lr, np.inf)
    (line,) = ax.plot(
        steps,
        edge,
        "--",
        color=colour,
        linewidth=1.2,
        label=THRESHOLD_LABEL,
        drawstyle="steps-post",
    )
    return line


def sharpness_panel(
    ax: Axes,
    curvature: Curvature,
    *,
    batch: bool = True,
    colour: str = PATH_COLOUR,
    name: str | None = None,
    title: str | None = "sharpness along the path",
) -> dict[str, Any]:
    """λmax of the risk (and of each step's minibatch) against step, with the 2/lr line.

    Args:
        curvature: ``lambda_max (..., T)``; several runs (``...``) draw one line each.
        batch: also draw each step's minibatch λmax (thin dots) when recorded.
        name: the run's label, appended to the legend entries ``[name]`` (for compare runs).

    Returns the drawn artists by name: ``"risk"`` (list of lines), ``"batch"`` (list),
    ``"threshold"`` (the 2/lr line or ``None`` without a learning rate).
    """
    steps = np.arange(curvature.n_steps)
    risk = _rows(curvature.lambda_max)
    top = curvature.batch_lambda_max if batch else None
    drawn: dict[str, Any] = {"risk": [], "batch": [], "threshold": None}
    if top is not None:
        for i, row in enumerate(_rows(top)):
            drawn["batch"] += ax.plot(
                steps,
                row,
                ".",
                markersize=2.5,
                color="tab:blue",
                alpha=0.5,
                label=_named(BATCH_LABEL, name) if i == 0 else None,
            )
    for i, row in enumerate(risk):
        drawn["risk"] += ax.plot(
            steps,
            row,
            "-",
            color=colour,
            linewidth=1.8,
            label=_named(RISK_LABEL, name) if i == 0 else None,
        )
    edge = None
    if curvature.lr is not None:
        drawn["threshold"] = threshold_line(
            ax, steps, curvature.lr, colour="black" if name is None else colour
        )
        drawn["threshold"].set_label(_named(THRESHOLD_LABEL, name))
        with np.errstate(divide="ignore"):
            edge = 2.0 / np.asarray(curvature.lr, dtype=np.float64)
    if use_log_scale(risk, edge):
        ax.set_yscale("log")
        for line in drawn["batch"]:  # a minibatch's lambda_max <= 0 has no place on a log axis
            y = np.asarray(line.get_ydata(), dtype=np.float64)
            line.set_ydata(np.where(y > 0, y, np.nan))
        if drawn["batch"] and top is not None and np.nanmin(top) <= 0:
            drawn["batch"][0].set_label(BATCH_LABEL + " (≤ 0 not shown)")
    ax.set_xlabel("step")
    ax.set_ylabel("top Hessian eigenvalue (loss / parameter²)")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return drawn


class SharpnessPanel:
    """A :class:`sgdscape.views.step_figure.Panel`: sharpness against step beside the two
    step panels, with the 2/lr line and a marker on the step drawn.

    Switch it on with ``StepFigure(result, panels=[SharpnessPanel(curvature)])`` (or
    :meth:`of` a result that holds its curvature); ``sgdscape run --curvature`` adds it to
    every step figure. The marker is the ``Line2D`` with ``gid`` ``"sharpness-step"``.
    """

    def __init__(self, curvature: Curvature) -> None:
        if curvature.lambda_max.ndim != 1:
            raise SgdscapeError("the sharpness panel is drawn for a single-init run only.")
        self.curvature = curvature
        self.marker: Any = None

    @classmethod
    def of(cls, result: RunResult) -> SharpnessPanel:
        """The panel of a result's first trajectory (:func:`~sgdscape.records.run.with_curvature`)."""
        if not result.curvatures:
            raise SgdscapeError(
                "this run holds no curvature; compute it with "
                "sgdscape.records.run.with_curvature (sgdscape run --curvature)."
            )
        return cls(result.curvatures[0])

    def setup(self, axes: Axes, source: Any) -> None:
        """Draw the whole run's sharpness and the 2/lr line once."""
        sharpness_panel(axes, self.curvature, title="sharpness along the path")
        (self.marker,) = axes.plot(
            [np.nan], [np.nan], "o", color=PATH_COLOUR, markeredgecolor="black", zorder=5
        )
        self.marker.set_gid("sharpness-step")

    def draw(self, axes: Axes, source: Any, step: int) -> list[Any]:
        """Put the marker on ``step``'s λmax; return it."""
        value = float(self.curvature.lambda_max[step])
        self.marker.set_data([step], [value])
        return [self.marker]
