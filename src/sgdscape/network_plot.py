"""The notebook's two panels for a real network (matplotlib), from a StochasticView.

For step ``k``: on the left the log loss of the minibatch used at step ``k`` on the PCA
plane with the projected iterate and -gradient arrow; on the right the log full-data
loss with the projected path up to ``k``. Mirrors :func:`sgdscape.plot.plot_step`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sgdscape.errors import SgdscapeError
from sgdscape.plot import PATH_COLOUR, safe_log
from sgdscape.stochastic import StochasticView

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _contour(ax: Axes, view: StochasticView, values: np.ndarray, label: str) -> None:
    surface = view.landscape
    filled = ax.contourf(surface.w1, surface.w2, safe_log(values), levels=30, cmap="viridis")
    ax.figure.colorbar(filled, ax=ax, label=label)
    ax.set_xlabel(surface.labels[0])
    ax.set_ylabel(surface.labels[1])
    ax.set_xlim(surface.w1[0], surface.w1[-1])
    ax.set_ylim(surface.w2[0], surface.w2[-1])


def _arrow_scale(view: StochasticView) -> float:
    norms = np.linalg.norm(view.grads_plane, axis=-1)
    norms = norms[np.isfinite(norms)]
    width = float(view.landscape.w1[-1] - view.landscape.w1[0])
    reference = float(np.percentile(norms, 95)) if norms.size else 0.0
    return 0.2 * width / reference if reference > 0 else 1.0


def plot_network_step(
    view: StochasticView, step: int, *, figsize: tuple[float, float] = (13, 5.6)
) -> Figure:
    """The two-panel figure for ``step`` of a recorded network training run."""
    import matplotlib.pyplot as plt

    if not 0 <= step < view.n_steps:
        raise SgdscapeError(f"step must be between 0 and {view.n_steps - 1}, got {step}.")
    path = view.path()
    point = path[step]
    fig, (left, right) = plt.subplots(ncols=2, figsize=figsize, layout="constrained")
    _contour(left, view, view.batch_landscape(step), "log minibatch loss")
    scale = _arrow_scale(view)
    arrow = -scale * view.grads_plane[step]
    if np.isfinite(arrow).all():
        left.annotate(
            "",
            xy=(point[0] + arrow[0], point[1] + arrow[1]),
            xytext=(point[0], point[1]),
            arrowprops={"arrowstyle": "->", "color": PATH_COLOUR, "lw": 2},
        )
        left.plot(
            [],
            [],
            color=PATH_COLOUR,
            label=f"-minibatch gradient at the true iterate, projected × {scale:.2g}",
        )
    left.scatter(
        *point,
        color=PATH_COLOUR,
        edgecolor="black",
        zorder=3,
        s=60,
        label=f"iterate (projected; {view.off_plane[step]:.2g} off the plane)",
    )
    batch = view.batch(step)
    left.set_title(
        f"step {step}: minibatch of {len(batch)} samples, loss {view.batch_loss[step]:.3g}"
    )
    left.legend(loc="lower left", fontsize=8, framealpha=0.8)

    _contour(right, view, view.landscape.risk, "log full-data loss")
    right.plot(path[:, 0], path[:, 1], "-", color="white", alpha=0.35, linewidth=1)
    right.plot(
        path[: step + 1, 0],
        path[: step + 1, 1],
        "-o",
        color=PATH_COLOUR,
        markersize=2.5,
        linewidth=1.5,
        label="path so far (projected)",
    )
    right.scatter(*point, color=PATH_COLOUR, edgecolor="black", zorder=3, s=60)
    right.scatter(*path[-1], marker="*", color="white", edgecolor="black", zorder=3, s=120)
    info = view.info
    right.set_title(
        f"full data ({info.get('n_samples', '?')} samples), loss at step {step}: "
        f"{view.risk[step]:.3g}"
    )
    right.legend(loc="lower left", fontsize=8, framealpha=0.8)
    variance = view.explained_variance
    fig.suptitle(
        f"{info.get('name', 'network')} ({info.get('n_params', '?')} parameters) · "
        f"{info.get('optimizer', '?')} lr={info.get('lr', 0):g} · batch {info.get('batch_size')} · "
        f"step {step}/{view.n_steps - 1} · PCA plane explains "
        f"{100 * float(np.sum(variance)):.1f}% of the path's variance"
    )
    return fig
