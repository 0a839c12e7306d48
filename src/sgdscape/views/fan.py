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

from sgdscape.core.chain_stats import Fan, fan_of_steps
from sgdscape.core.chains import Chains
from sgdscape.core.landscape import Landscape
from sgdscape.errors import SgdscapeError
from sgdscape.records.run import RunResult

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from sgdscape.views.step_source import StepSource

#: legend labels (also how tests find the artists and traces)
FAN_LABEL = "possible next iterates"
MEAN_LABEL = "their mean"
FULL_STEP_LABEL = "full-gradient step"
#: at most this many spokes (segments from the iterate) are drawn; points are always all drawn
MAX_SPOKES = 400


def crowded(fan: Fan) -> bool:
    """Whether the fan is a sample of many minibatches (batch > 1) rather than one point per
    sample: its points then form a dense band, drawn smaller and translucent (in every surface,
    by :func:`draw_fan` and :func:`fan_traces`) so the arrows and the path stay visible."""
    return bool(fan.batches.shape[1] > 1)


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
    size: float | None = None,
    alpha: float | None = None,
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
        size: marker area of the points (points^2); default 12, or 6 when :func:`crowded`.
        alpha: opacity of the points; default 0.85, or 0.5 when :func:`crowded`.
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
    dense = crowded(fan)
    size = (6.0 if dense else 12.0) if size is None else size
    alpha = (0.5 if dense else 0.85) if alpha is None else alpha
    spoke_artist = None
    if spokes:
        ends = following[:MAX_SPOKES]
        segments = np.stack([np.broadcast_to(w, ends.shape), ends], axis=1)
        spoke_artist = LineCollection(
            list(segments), colors=colour, linewidths=0.5, alpha=0.12 if dense else 0.35
        )
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
    :func:`draw_fan`; a :func:`crowded` fan is drawn smaller and translucent, as there."""
    import plotly.graph_objects as go

    w, following = fan.w[:2], fan.next[:, :2]
    dense = crowded(fan)
    traces = []
    if spokes:
        ends = following[:MAX_SPOKES]
        xs = np.column_stack([np.full(len(ends), w[0]), ends[:, 0], np.full(len(ends), np.nan)])
        ys = np.column_stack([np.full(len(ends), w[1]), ends[:, 1], np.full(len(ends), np.nan)])
        traces.append(
            go.Scatter(
                x=xs.ravel().tolist(), y=ys.ravel().tolist(), mode="lines",
                line={"color": colour, "width": 0.6}, opacity=0.12 if dense else 0.4,
                name="spokes",
                hoverinfo="skip", showlegend=False,
            )
        )  # fmt: skip
    traces += [
        go.Scatter(
            x=following[:, 0], y=following[:, 1], mode="markers", name=_label(fan, label),
            marker={"color": colour, "size": 3 if dense else 5}, opacity=0.35 if dense else 1.0,
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


def run_fan(result: RunResult, step: int, *, n_batches: int | None = None) -> Fan:
    """The fan of next steps at ``step``'s iterate of a single-init 2-parameter run, with the
    run's model, loss, data, learning rate and batch size (batch 1: one point per sample;
    else ``n_batches`` minibatches drawn with the run's seed plus ``step``)."""
    check_fan_run(result)
    config = result.config
    if not 0 <= step < result.n_steps:
        raise SgdscapeError(f"step must be between 0 and {result.n_steps - 1}, got {step}.")
    return fan_of_steps(
        config.model,
        result.data,
        np.asarray(result.trajectory.iterates[step], dtype=np.float64),
        lr=float(config.lr),
        batch_size=int(config.batch_size),
        n_batches=n_batches,
        seed=int(config.seed) + int(step),
        loss=config.loss_name,
    )


def check_fan_run(result: RunResult) -> None:
    """Raise a :class:`SgdscapeError` unless ``result`` is one run of a 2-parameter model
    plotted on its own axes (the fan is drawn in parameter coordinates)."""
    iterates = np.asarray(result.trajectory.iterates)
    if iterates.ndim != 2 or result.others:
        raise SgdscapeError("the fan of next steps is drawn for a single-init run only.")
    plane = result.landscape.plane
    on_own_axes = plane is None or (
        np.allclose(plane.origin.numpy(), 0)
        and np.allclose(plane.d1.numpy(), [1, 0])
        and np.allclose(plane.d2.numpy(), [0, 1])
    )
    if iterates.shape[1] != 2 or not on_own_axes:
        raise SgdscapeError(
            f"the fan of next steps is drawn for a 2-parameter model only; "
            f"{result.config.model} has {iterates.shape[1]} parameters."
        )


def fan_scales(source: StepSource) -> np.ndarray:
    """``(T,)`` the magnification of each step's fan: the step figure's arrow factor over the
    learning rate, so that the full-gradient step lands on the tip of the -full-gradient
    arrow (and, for batch 1, the step's own sample on the -minibatch-gradient arrow)."""
    from sgdscape.views.style import step_factors

    minibatch = -np.asarray(source.minibatch_gradients, dtype=np.float64)
    true = (
        None
        if source.true_gradients is None
        else -np.asarray(source.true_gradients, dtype=np.float64)
    )
    return step_factors(source.arrow_scale, [minibatch, true], source.window) / source.lr


class FanOverlay:
    """A :class:`sgdscape.views.step_figure.Overlay`: the fan of next steps over the left
    (minibatch) panel of a run's step figure, recomputed at each step's iterate and
    magnified as the panel's arrows are (:func:`fan_scales`).

    Switch it on with ``StepFigure(result, overlays=[FanOverlay(result)])``;
    ``sgdscape run --fan`` adds it to every step PNG. :attr:`fan` and :attr:`scale` are the
    last step's fan and magnification.
    """

    def __init__(
        self, result: RunResult, *, n_batches: int | None = None, colour: str = "tab:orange"
    ) -> None:
        check_fan_run(result)
        self.result = result
        self.n_batches = n_batches
        self.colour = colour
        self.scales: np.ndarray | None = None
        self.fan: Fan | None = None
        self.scale = 1.0
        self.artists: list[Any] = []

    def setup(self, axes: Axes, source: StepSource) -> None:
        """Compute every step's magnification (the step figure's arrow factors)."""
        self.scales = fan_scales(source)

    def draw(self, axes: Axes, source: StepSource, step: int) -> list[Any]:
        """Remove the previous step's fan and draw ``step``'s; return its artists."""
        if self.scales is None:
            self.setup(axes, source)
        assert self.scales is not None
        for artist in self.artists:
            artist.remove()
        self.fan = run_fan(self.result, step, n_batches=self.n_batches)
        self.scale = float(self.scales[step])
        before = set(map(id, axes.get_children()))
        drawn = draw_fan(axes, self.fan, colour=self.colour, scale=self.scale)
        spokes = drawn["spokes"]
        if spokes is not None:
            spokes.set_gid("fan-spokes")
        drawn["points"].set_gid("fan-points")
        drawn["mean"].set_gid("fan-mean")
        drawn["full_step"].set_gid("fan-full-step")
        # everything draw_fan added (the iterate's ring too), so the next step removes it all
        self.artists = [a for a in axes.get_children() if id(a) not in before]
        return list(self.artists)


def magnified(fan: Fan, scale: float) -> Fan:
    """``fan`` with every displacement from its iterate ``scale`` times longer (``next``,
    ``mean`` and ``full_step``), as :func:`draw_fan` draws it with ``scale``; for
    :func:`fan_traces`, which draws a fan as it is."""
    import dataclasses

    def stretch(points: np.ndarray) -> np.ndarray:
        return fan.w + scale * (np.asarray(points, dtype=np.float64) - fan.w)

    return dataclasses.replace(
        fan, next=stretch(fan.next), mean=stretch(fan.mean), full_step=stretch(fan.full_step)
    )


def fan_label(fan: Fan, scale: float = 1.0) -> str:
    """The legend label of a fan's points, naming its batches and the magnification."""
    return _label(fan, None) + (f" × {scale:.3g}" if scale != 1.0 else "")
