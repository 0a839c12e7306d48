"""The fan of next steps: from the current iterate, every possible next SGD iterate.

A :class:`sgdscape.core.chain_stats.Fan` holds the ``N`` possible next iterates (one per
sample for single-sample SGD, or a large sample of minibatches), their mean and the
full-gradient step. :func:`draw_fan` draws it on any matplotlib axes in parameter coordinates
(the left, per-sample/minibatch panel of the step figure, or a panel of its own);
:func:`fan_traces` builds the same picture as Plotly traces. :func:`plot_fan` is the
fan-of-steps figure: fans of two batch sizes on the risk, beside the chains after one step.

Examples:
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> import sgdscape
    >>> from sgdscape.views.fan import draw_fan
    >>> data = sgdscape.make_problem("linear", 30, seed=0)
    >>> fan = sgdscape.fan_of_steps("relu-unit", data, (-1.0, -1.2), lr=0.1)
    >>> fig, ax = plt.subplots()
    >>> artists = draw_fan(ax, fan)
    >>> artists["points"].get_offsets().shape  # one possible next iterate per sample
    (30, 2)
    >>> plt.close(fig)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sgdscape.core.chain_stats import Fan
from sgdscape.core.chains import Chains
from sgdscape.core.landscape import Landscape

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: legend labels (also how tests find the artists and traces)
FAN_LABEL = "possible next iterates"
MEAN_LABEL = "their mean"
FULL_STEP_LABEL = "full-gradient step"
#: at most this many spokes (segments from the iterate) are drawn; points are always all drawn
MAX_SPOKES = 400


def _label(fan: Fan, label: str | None) -> str:
    if label is not None:
        return label
    batch = fan.batches.shape[1]
    what = "one per sample" if batch == 1 else f"{fan.next.shape[0]} minibatches of {batch}"
    return f"{FAN_LABEL} ({what})"


def draw_fan(
    ax: Axes,
    fan: Fan,
    *,
    colour: str = "tab:orange",
    label: str | None = None,
    spokes: bool = True,
    project: Any = None,
    size: float = 12.0,
    alpha: float = 0.85,
    scale: float = 1.0,
) -> dict[str, Any]:
    """Draw ``fan`` on ``ax``: a spoke from the iterate to each possible next iterate (up to
    :data:`MAX_SPOKES`), the points, their mean (``+``) and the full-gradient step (a white
    ``x`` with an arrow from the iterate).

    Args:
        ax: matplotlib axes in parameter coordinates (or the plane's, with ``project``).
        fan: from :func:`sgdscape.fan_of_steps`.
        colour: of spokes and points.
        label: legend label of the points (default names the fan's batches).
        spokes: draw the segments from the iterate.
        project: ``(M, p) -> (M, 2)`` plot coordinates for models with more than 2
            parameters (default: the first two coordinates).
        size: marker area of the points (points^2).
        alpha: opacity of the points.
        scale: draw every displacement from the iterate ``scale`` times longer (as the step
            figure magnifies its gradient arrows); the legend says so when it is not 1.

    Returns:
        The artists: ``spokes`` (LineCollection or None), ``points`` (PathCollection),
        ``mean`` and ``full_step`` (Line2D), ``arrow`` (FancyArrowPatch).
    """
    from matplotlib.collections import LineCollection
    from matplotlib.patches import FancyArrowPatch

    to_plot = (lambda v: np.asarray(v)[..., :2]) if project is None else project
    w = to_plot(fan.w[None])[0]
    following = w + scale * (to_plot(fan.next) - w)
    mean = w + scale * (to_plot(fan.mean[None])[0] - w)
    full = w + scale * (to_plot(fan.full_step[None])[0] - w)
    if label is None and scale != 1.0:
        label = f"{_label(fan, None)} × {scale:.3g}"
    spoke_artist = None
    if spokes:
        ends = following[:MAX_SPOKES]
        segments = np.stack([np.broadcast_to(w, ends.shape), ends], axis=1)
        spoke_artist = LineCollection(list(segments), colors=colour, linewidths=0.5, alpha=0.35)
        ax.add_collection(spoke_artist)
    points = ax.scatter(
        following[:, 0], following[:, 1], s=size, color=colour, alpha=alpha, lw=0,
        label=_label(fan, label), zorder=3,
    )  # fmt: skip
    arrow = FancyArrowPatch(
        tuple(w), tuple(full), arrowstyle="-|>", mutation_scale=12, color="white",
        lw=1.6, zorder=4, shrinkA=0, shrinkB=0,
    )  # fmt: skip
    ax.add_patch(arrow)
    (full_marker,) = ax.plot(
        *full, "o", mfc="none", mec="white", ms=15, mew=2.0, zorder=5, label=FULL_STEP_LABEL
    )
    (mean_marker,) = ax.plot(*mean, "+", color="black", ms=13, mew=2.0, zorder=6, label=MEAN_LABEL)
    ax.plot(*w, "o", color="black", mfc="white", ms=6, zorder=6)
    return {
        "spokes": spoke_artist,
        "points": points,
        "mean": mean_marker,
        "full_step": full_marker,
        "arrow": arrow,
    }


def fan_traces(
    fan: Fan, *, colour: str = "#ff7f0e", label: str | None = None, spokes: bool = True
) -> list[go.Scatter]:
    """The fan as Plotly traces (first two coordinates): spokes (one trace, segments split by
    ``None``), points, the mean, the full-gradient step. Trace names are the labels of
    :func:`draw_fan`."""
    import plotly.graph_objects as go

    w, following = fan.w[:2], fan.next[:, :2]
    traces = []
    if spokes:
        ends = following[:MAX_SPOKES]
        xs = np.column_stack([np.full(len(ends), w[0]), ends[:, 0], np.full(len(ends), np.nan)])
        ys = np.column_stack([np.full(len(ends), w[1]), ends[:, 1], np.full(len(ends), np.nan)])
        traces.append(
            go.Scatter(
                x=xs.ravel().tolist(), y=ys.ravel().tolist(), mode="lines",
                line={"color": colour, "width": 0.6}, opacity=0.4, name="spokes",
                hoverinfo="skip", showlegend=False,
            )
        )  # fmt: skip
    traces += [
        go.Scatter(
            x=following[:, 0], y=following[:, 1], mode="markers", name=_label(fan, label),
            marker={"color": colour, "size": 5},
        ),
        go.Scatter(
            x=[fan.mean[0]], y=[fan.mean[1]], mode="markers", name=MEAN_LABEL,
            marker={"symbol": "cross-thin", "size": 16, "line": {"width": 3, "color": colour}},
        ),
        go.Scatter(
            x=[w[0], fan.full_step[0]], y=[w[1], fan.full_step[1]], mode="lines+markers",
            name=FULL_STEP_LABEL, line={"color": "black", "width": 2},
            marker={"symbol": ["circle-open", "x"], "size": [8, 11], "color": "black"},
        ),
    ]  # fmt: skip
    return traces


def fan_window(fans: Sequence[Fan], pad: float = 0.25) -> tuple[tuple[float, float], ...]:
    """Axis limits ``((x0, x1), (y0, y1))`` holding the iterate and every fan point, padded."""
    points = np.concatenate([np.vstack([f.w[None, :2], f.next[:, :2]]) for f in fans])
    low, high = points.min(axis=0), points.max(axis=0)
    span = np.maximum(high - low, 1e-6) * (1 + 2 * pad)
    centre = (low + high) / 2
    return tuple((float(c - s / 2), float(c + s / 2)) for c, s in zip(centre, span, strict=True))


def _inside(axis: np.ndarray, low: float, high: float) -> np.ndarray:
    """Indices of the grid ``axis`` within ``[low, high]`` plus one point each side
    (all of it when fewer than two fall inside)."""
    inside = np.flatnonzero((axis >= low) & (axis <= high))
    if inside.size < 2:
        return np.arange(axis.size)
    return np.arange(max(inside[0] - 1, 0), min(inside[-1] + 2, axis.size))


def plot_fan(
    fans: Sequence[Fan],
    landscape: Landscape,
    chains: Chains | None = None,
    *,
    colours: Sequence[str] = ("tab:orange", "tab:cyan", "tab:pink"),
    figsize: tuple[float, float] = (12.5, 5.4),
) -> Figure:
    """The fan-of-steps figure: each fan (e.g. batch 1 and batch 10) on the log risk around
    the iterate; beside it, when ``chains`` is given (started at the fans' iterate), where
    the chains are after one step, with the batch-1 fan's points ringed."""
    import matplotlib.pyplot as plt

    from sgdscape.views.step_figure import safe_log

    ncols = 2 if chains is not None else 1
    fig, axes = plt.subplots(ncols=ncols, figsize=figsize, layout="constrained", squeeze=False)
    (x0, x1), (y0, y1) = fan_window(fans)
    w1, w2 = np.asarray(landscape.w1), np.asarray(landscape.w2)
    cols = _inside(w1, x0, x1)
    rows = _inside(w2, y0, y1)
    local = safe_log(np.asarray(landscape.risk))[np.ix_(rows, cols)]
    for ax in axes[0]:
        filled = ax.contourf(w1[cols], w2[rows], local, levels=30, cmap="viridis")
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.set_xlabel(landscape.labels[0])
        ax.set_ylabel(landscape.labels[1])
    fig.colorbar(filled, ax=list(axes[0]), label="log empirical risk", shrink=0.9)
    left = axes[0][0]
    for fan, colour in zip(reversed(fans), reversed(colours[: len(fans)]), strict=False):
        single = fan.batches.shape[1] == 1
        draw_fan(
            left, fan, colour=colour, spokes=single, size=16 if single else 4,
            alpha=0.9 if single else 0.35,
        )  # fmt: skip
    handles, labels = left.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    left.legend(unique.values(), unique.keys(), loc="lower left", fontsize=8, framealpha=0.85)
    gap = np.linalg.norm(fans[0].mean - fans[0].full_step)
    left.set_title(
        f"from w = ({fans[0].w[0]:.3g}, {fans[0].w[1]:.3g}), lr {fans[0].lr:g}: "
        f"|mean - full step| = {gap:.1e}",
        fontsize=10,
    )
    if chains is not None:
        ax = axes[0][1]
        after = chains.at(1) if 1 in chains.record_steps else chains.iterates[1]
        unique_points, counts = np.unique(after.astype(np.float64), axis=0, return_counts=True)
        ax.scatter(
            unique_points[:, 0], unique_points[:, 1], s=10 + 3000 * counts / counts.sum(),
            color="tab:red", alpha=0.8, lw=0, label=f"{chains.n_chains} chains after 1 step",
            zorder=3,
        )  # fmt: skip
        one = fans[0]
        ax.scatter(
            one.next[:, 0], one.next[:, 1], s=60, facecolors="none", edgecolors="white",
            lw=0.8, label="the batch-1 fan's points", zorder=4,
        )  # fmt: skip
        ax.plot(*chains.at(0)[0, :2], "o", color="black", mfc="white", ms=6, zorder=5)
        ax.legend(loc="lower left", fontsize=8, framealpha=0.85)
        ax.set_title(
            f"{len(unique_points)} distinct places after one step (area ∝ share of chains)",
            fontsize=10,
        )
    return fig
