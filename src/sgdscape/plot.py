"""The notebook's figure, done properly (matplotlib).

For step ``k``: on the left the log loss landscape of the minibatch used at step ``k``
with the iterate, the -gradient arrow (and the -full-gradient arrow); on the right the
log empirical-risk landscape with the path up to ``k``.

:class:`StepFigure` draws that figure once and redraws it for any step, so the static
figure (:func:`plot_step`) and the animation (:mod:`sgdscape.animate`) share one drawing
code. The helpers :func:`step_titles` and :func:`step_arrows` also feed the Plotly views.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sgdscape.errors import SgdscapeError
from sgdscape.run import RunResult, atomic_path

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colorbar import Colorbar
    from matplotlib.figure import Figure

MIN_ARROW_FRACTION = 0.08
PATH_COLOUR = "tab:orange"
#: one colour per run of a compare run (the first is the path's), on the risk landscape
RUN_COLOURS = (PATH_COLOUR, "tab:red", "tab:cyan", "tab:pink", "white", "tab:olive", "tab:brown")
TRUE_GRADIENT_COLOUR = "white"
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


def step_arrows(
    result: RunResult, scale: float | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The drawn arrows of every step, in plot coordinates.

    Returns ``(minibatch, full)``: ``-scale * gradient`` projected on the slice, each
    ``(T, 2)`` (``full`` is ``None`` when the full gradient was not recorded). ``scale``
    defaults to :func:`arrow_scale`.
    """
    scale = arrow_scale(result) if scale is None else scale
    trajectory = result.trajectory
    minibatch = -scale * _gradient_in_plane(result, trajectory.grads)
    full = (
        None
        if trajectory.full_grads is None
        else -scale * _gradient_in_plane(result, trajectory.full_grads)
    )
    return minibatch, full


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
    right = (
        f"empirical risk ({config.loss_name}, {len(result.data)} samples): "
        f"{trajectory.risk[step]:.3g}"
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


def wrap_title(title: str, fig: Figure, fontsize: float | None = None) -> str:
    """``title`` broken further at its `` · `` separators so each line fits ``fig``'s width.

    The width is estimated from the font size (an average glyph is about 0.6 em wide, with a
    margin), so no draw is needed.
    """
    import matplotlib as mpl
    from matplotlib.font_manager import FontProperties

    size = fontsize or FontProperties(size=mpl.rcParams["figure.titlesize"]).get_size_in_points()
    chars = max(20, int(0.9 * fig.get_figwidth() * 72 / (0.6 * size)))
    lines: list[str] = []
    for given in title.split("\n"):
        lines.append("")
        for part in given.split(" · "):
            if not lines[-1]:
                lines[-1] = part
            elif len(lines[-1]) + 3 + len(part) <= chars:
                lines[-1] += " · " + part
            else:
                lines.append(part)
    return "\n".join(lines)


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
    and redrawing ``colorbar`` in place; returns the new contour and colour bar."""
    if contour is not None:
        contour.remove()
    contour = axes.contourf(
        surface.w1, surface.w2, safe_log(values), levels=CONTOUR_LEVELS, cmap="viridis"
    )
    if colorbar is None:
        return contour, fig.colorbar(contour, ax=axes, label=label)
    colorbar_axes = colorbar.ax
    colorbar_axes.clear()
    return contour, fig.colorbar(contour, cax=colorbar_axes, label=label)


def iterate_marker(axes: Axes) -> Any:
    """An empty scatter marker for the current iterate (moved with ``set_offsets``)."""
    return axes.scatter([np.nan], [np.nan], color=PATH_COLOUR, edgecolor="black", zorder=3, s=60)


class StepFigure:
    """The two-panel figure of a single-init run, redrawn in place for any step.

    The right panel's risk contour is drawn once; :meth:`draw` replaces the left
    contour, arrows, markers, path and titles. Used by :func:`plot_step` (one step)
    and by :func:`sgdscape.animate.animate` (every frame on one figure).
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
        self.scale = arrow_scale(result)
        self.arrows = step_arrows(result, self.scale)
        self.head = 0.02 * float(result.landscape.w1[-1] - result.landscape.w1[0])
        self.fig, (self.left, self.right) = plt.subplots(
            ncols=2, figsize=figsize, dpi=dpi, layout="constrained"
        )
        self._transient: list[Any] = []
        self._left_contour: Any = None
        self._left_colorbar: Colorbar | None = None
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

    def _boost(self, step: int) -> float:
        """Extra factor so that the longer arrow of a step spans at least 8% of the window.

        The run-wide :func:`arrow_scale` keeps magnitudes comparable across steps; late,
        small gradients would otherwise be invisible dots. The legend gives the factor used.
        """
        minibatch, full = self.arrows
        arrows = [minibatch[step]] + ([] if full is None else [full[step]])
        length = max(float(np.linalg.norm(a)) for a in arrows)
        width = float(self.result.landscape.w1[-1] - self.result.landscape.w1[0])
        if not np.isfinite(length) or length <= 0:
            return 1.0
        return max(1.0, MIN_ARROW_FRACTION * width / length)

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
        minibatch, full = self.arrows
        boost = self._boost(step)
        if np.isfinite(minibatch[step]).all() and np.isfinite(point).all():
            for arrow, colour, what in (
                (minibatch[step], PATH_COLOUR, "minibatch"),
                (None if full is None else full[step], TRUE_GRADIENT_COLOUR, "full"),
            ):
                if arrow is None:
                    continue
                self._transient.append(
                    left.arrow(
                        *point,
                        *(boost * arrow),
                        head_width=self.head,
                        length_includes_head=True,
                        color=colour,
                        label=f"-{what} gradient × {self.scale * boost:.2g}",
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
        if self._transient:
            left.legend(loc="lower left", fontsize=8, framealpha=0.8)
        elif left.get_legend() is not None:  # no arrows at a non-finite step
            left.get_legend().remove()
        return self.fig

    def freeze_layout(self) -> None:
        """Fix the current layout so later frames do not jitter (and draw faster)."""
        self.fig.canvas.draw()
        self.fig.set_layout_engine(None)


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
