"""The notebook's figure, done properly (matplotlib).

For step ``k``: on the left the log loss landscape of the minibatch used at step ``k``
with the iterate, the -gradient arrow (and the -full-gradient arrow); on the right the
log empirical-risk landscape with the path up to ``k``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sgdscape.run import RunResult, atomic_path

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PATH_COLOUR = "tab:orange"
TRUE_GRADIENT_COLOUR = "white"


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
    grads = np.asarray(result.trajectory.grads, dtype=np.float64)
    norms = np.linalg.norm(grads[np.isfinite(grads).all(-1)], axis=-1)
    norms = norms[np.isfinite(norms)]
    width = float(result.landscape.w1[-1] - result.landscape.w1[0])
    reference = float(np.percentile(norms, 95)) if norms.size else 0.0
    return 0.2 * width / reference if reference > 0 else 1.0


def _contour(ax: Axes, result: RunResult, values: np.ndarray, label: str) -> None:
    surface = result.landscape
    filled = ax.contourf(surface.w1, surface.w2, safe_log(values), levels=30, cmap="viridis")
    ax.figure.colorbar(filled, ax=ax, label=label)
    ax.set_xlabel(surface.labels[0])
    ax.set_ylabel(surface.labels[1])
    ax.set_xlim(surface.w1[0], surface.w1[-1])
    ax.set_ylim(surface.w2[0], surface.w2[-1])
    ax.set_aspect("equal")


def _gradient_in_plane(result: RunResult, gradient: np.ndarray) -> np.ndarray:
    plane = result.landscape.plane
    if plane is None:
        return gradient[:2]
    basis = np.stack([plane.d1.numpy(), plane.d2.numpy()], axis=1)
    return np.linalg.lstsq(basis, gradient, rcond=None)[0]


def plot_step(result: RunResult, step: int, *, figsize: tuple[float, float] = (13, 5.6)) -> Figure:
    """The two-panel figure for ``step`` of a single-init run."""
    import matplotlib.pyplot as plt

    trajectory = result.trajectory
    if trajectory.iterates.ndim != 2:
        raise ValueError("plot_step draws a single-init run; pick one row of a batched run.")
    path = result.path()
    batch = trajectory.batch(step)
    fig, (left, right) = plt.subplots(ncols=2, figsize=figsize, layout="constrained")

    _contour(left, result, result.batch_landscape(step), "log minibatch loss")
    point = path[step]
    scale = arrow_scale(result)
    head = 0.02 * float(result.landscape.w1[-1] - result.landscape.w1[0])
    step_arrow = -scale * _gradient_in_plane(result, trajectory.grads[step])
    if np.isfinite(step_arrow).all() and np.isfinite(point).all():
        left.arrow(
            *point,
            *step_arrow,
            head_width=head,
            length_includes_head=True,
            color=PATH_COLOUR,
            label=f"-minibatch gradient × {scale:.2g}",
        )
        if trajectory.full_grads is not None:
            true_arrow = -scale * _gradient_in_plane(result, trajectory.full_grads[step])
            left.arrow(
                *point,
                *true_arrow,
                head_width=head,
                length_includes_head=True,
                color=TRUE_GRADIENT_COLOUR,
                label=f"-full gradient × {scale:.2g}",
            )
    left.scatter(*point, color=PATH_COLOUR, edgecolor="black", zorder=3, s=60)
    shown = ", ".join(str(i) for i in batch[:6]) + (", …" if len(batch) > 6 else "")
    left.set_title(f"step {step}: loss of minibatch [{shown}] ({len(batch)} sample(s))")
    if left.get_legend_handles_labels()[0]:
        left.legend(loc="lower left", fontsize=8, framealpha=0.8)

    _contour(right, result, result.landscape.risk, "log empirical risk")
    right.plot(
        path[: step + 1, 0],
        path[: step + 1, 1],
        "-o",
        color=PATH_COLOUR,
        markersize=4,
        linewidth=2,
        label="path so far",
    )
    right.scatter(*point, color=PATH_COLOUR, edgecolor="black", zorder=3, s=60)
    right.set_title(
        f"empirical risk ({len(result.data)} samples), risk at step {step}: "
        f"{trajectory.risk[step]:.3g}"
    )
    right.legend(loc="lower left", fontsize=8, framealpha=0.8)
    config = result.config
    fig.suptitle(
        f"{config.model} · {config.optimizer} lr={config.lr:g} · batch {config.batch_size} · "
        f"step {step}/{result.n_steps - 1}"
        + (f" · diverged at step {trajectory.diverged_step}" if trajectory.diverged else "")
    )
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Save ``fig`` to ``path`` atomically and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path) as temporary:
        fig.savefig(temporary, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path
