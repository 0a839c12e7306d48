"""The distribution of ``K`` SGD chains (:func:`sgdscape.chains`) drawn over the risk landscape.

One panel per chosen recorded step: the 2-D histogram (density) of the chains' iterates over
the log risk contour, the empirical mean and its 2-sigma covariance ellipse, and, where
exact theory exists (``linear-regression``, plain SGD, constant ``lr``, with-replacement
sampling, mse, one fixed start), the exact mean and 2-sigma ellipse of
:func:`sgdscape.core.chain_theory.linear_regression_moments` (dashed). Models with named
basins (:data:`sgdscape.core.chain_stats.BASINS`) get a last panel: the fraction of chains in
each basin against step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from sgdscape.core.chain_stats import BASINS, basin_fractions
from sgdscape.core.chain_theory import linear_regression_moments, stationary_covariance
from sgdscape.core.chains import Chains
from sgdscape.core.landscape import Landscape
from sgdscape.core.problems import Dataset
from sgdscape.errors import SgdscapeError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: label of the empirical ellipse patch and of the theory ellipse patch
EMPIRICAL_LABEL = "empirical mean, 2σ"
THEORY_LABEL = "exact theory"


def ellipse_parameters(covariance: np.ndarray, n_sigma: float = 2.0) -> tuple[float, float, float]:
    """Full ``(width, height, angle_degrees)`` of the ``n_sigma`` ellipse of a ``(2, 2)``
    covariance: width along the largest eigenvector, angle of that eigenvector from the
    first axis, in ``(-90, 90]`` degrees."""
    values, vectors = np.linalg.eigh(np.asarray(covariance, dtype=np.float64))
    values = np.clip(values, 0.0, None)
    major = vectors[:, 1]
    angle = float(np.degrees(np.arctan2(major[1], major[0])))
    if angle <= -90.0:
        angle += 180.0
    elif angle > 90.0:
        angle -= 180.0
    return (
        2.0 * n_sigma * float(np.sqrt(values[1])),
        2.0 * n_sigma * float(np.sqrt(values[0])),
        angle,
    )


def theory_applies(chains: Chains) -> bool:
    """Whether :func:`linear_regression_moments` is exact for this run."""
    config = chains.config
    return (
        config.model == "linear-regression"
        and config.optimizer == "sgd"
        and all(value == 0 for value in config.optimizer_options.values())  # False == 0
        and config.schedule == "constant"
        and config.sampling == "with-replacement"
        and config.loss == "mse"
        and bool((chains.init == chains.init[0]).all())
    )


def figure_steps(chains: Chains, count: int = 4) -> list[int]:
    """Up to ``count`` recorded steps to draw: the last one and earlier ones evenly spaced
    in record index (after step 0 when more are recorded, since at step 0 a fixed start is
    one point)."""
    s = chains.record_steps.size
    first = 1 if s > count else 0
    index = np.unique(np.round(np.linspace(first, s - 1, min(count, s))).astype(int))
    return [int(chains.record_steps[i]) for i in index]


def _plot_points(chains: Chains, landscape: Landscape, index: int) -> np.ndarray:
    """``(K', 2)`` finite iterates at record ``index`` in plot coordinates."""
    points = chains.iterates[index].astype(np.float64)
    points = points[np.isfinite(points).all(axis=1)]
    if points.shape[1] == 2 and landscape.plane is None:
        return points
    if landscape.plane is None:
        raise SgdscapeError("the landscape of a model with more than 2 parameters needs a plane.")
    import torch

    return landscape.plane.project(torch.as_tensor(points)).double().numpy()


def view_window(
    points: np.ndarray, w1: np.ndarray, w2: np.ndarray, extra: Sequence[np.ndarray] = ()
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis limits that frame the cloud ``points: (K, 2)``: its 0.5-99.5 % range (and any
    ``extra`` ``(2, 2)`` low/high boxes), padded by 30 %, at least 4 % of the landscape window
    and inside it."""
    window = np.array([[w1[0], w2[0]], [w1[-1], w2[-1]]], dtype=np.float64)
    if points.shape[0] == 0:
        return (window[0, 0], window[1, 0]), (window[0, 1], window[1, 1])
    boxes = [np.percentile(points, [0.5, 99.5], axis=0), *extra]
    low = np.min([b[0] for b in boxes], axis=0)
    high = np.max([b[1] for b in boxes], axis=0)
    span = np.maximum((high - low) * 1.3, 0.04 * (window[1] - window[0]))
    centre = 0.5 * (low + high)
    low = np.maximum(centre - span / 2, window[0])
    high = np.minimum(centre + span / 2, window[1])
    outside = high <= low  # the cloud has left the landscape window on that axis: follow it
    low = np.where(outside, centre - span / 2, low)
    high = np.where(outside, centre + span / 2, high)
    return (float(low[0]), float(high[0])), (float(low[1]), float(high[1]))


def _fits(
    centre: np.ndarray, width: float, height: float, middle: np.ndarray, reach: float
) -> bool:
    """Whether an ellipse is finite and within ``reach`` of the panel's ``middle``."""
    sizes = np.array([*centre, width, height], dtype=np.float64)
    return bool(
        np.isfinite(sizes).all()
        and max(width, height) <= reach
        and (np.abs(np.asarray(centre) - middle) <= reach).all()
    )


def draw_density_panel(
    ax: Axes,
    chains: Chains,
    landscape: Landscape,
    index: int,
    theory: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    bins: int = 80,
    log_risk: np.ndarray | None = None,
) -> list[str]:
    """Draw record ``index`` of ``chains`` on ``ax``: log-risk contours, the chains' density
    (chains per unit area, log colour scale), the empirical mean and 2-sigma ellipse and,
    given ``theory = (mean (2,), covariance (2, 2))``, the exact ones (dashed). The axes
    frame the cloud (:func:`view_window`). Returns the notes added to the title.
    """
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Ellipse

    w1, w2 = np.asarray(landscape.w1), np.asarray(landscape.w2)
    if log_risk is None:
        log_risk = np.log10(np.maximum(np.asarray(landscape.risk, dtype=np.float64), 1e-12))
    points = _plot_points(chains, landscape, index)
    extra = []
    if theory is not None:
        m, c = theory
        spread = 3.0 * np.sqrt(np.clip(np.diag(c), 0.0, None))
        extra = [box for box in [np.stack([m - spread, m + spread])] if np.isfinite(box).all()]
    (x0, x1), (y0, y1) = view_window(points, w1, w2, extra)
    cols = (w1 >= x0 - np.ptp(w1) / 20) & (w1 <= x1 + np.ptp(w1) / 20)
    rows = (w2 >= y0 - np.ptp(w2) / 20) & (w2 <= y1 + np.ptp(w2) / 20)
    if cols.sum() >= 2 and rows.sum() >= 2:
        local = log_risk[np.ix_(rows, cols)]
        levels = np.unique(np.linspace(local.min(), local.max(), 14)[1:-1])
        if levels.size:
            ax.contour(
                w1[cols], w2[rows], local, levels=levels, colors="0.55",
                linewidths=0.6, linestyles="solid",
            )  # fmt: skip
    edges = (np.linspace(x0, x1, bins + 1), np.linspace(y0, y1, bins + 1))
    counts, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=edges)
    area = np.diff(edges[0])[:, None] * np.diff(edges[1])[None, :]
    density = counts / (max(points.shape[0], 1) * area)  # chains per unit area
    masked = np.ma.masked_less_equal(density.T, 0.0)
    if masked.count():
        ax.pcolormesh(edges[0], edges[1], masked, cmap="viridis", norm=LogNorm(), alpha=0.85)
    outside = points.shape[0] - int(((points >= [x0, y0]) & (points <= [x1, y1])).all(axis=1).sum())
    notes = []
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    reach = 1e3 * max(x1 - x0, y1 - y0)  # larger ellipses are off the chart (and hang Agg)
    if points.shape[0] >= 2:
        mean = points.mean(axis=0)
        width, height, angle = ellipse_parameters(np.cov(points.T))
        if _fits(mean, width, height, centre, reach):
            ax.add_patch(
                Ellipse(
                    mean, width, height, angle=angle, fill=False, color="crimson",
                    lw=0.8 if height < 0.02 * width else 1.8,  # a thin cloud: keep it visible
                    alpha=0.6 if height < 0.02 * width else 1.0, label=EMPIRICAL_LABEL,
                )
            )  # fmt: skip
            ax.plot(*mean, "+", color="crimson", ms=10, mew=2)
        else:
            notes.append("2σ ellipse off the chart")
    if theory is not None:
        m, c = theory
        width, height, angle = ellipse_parameters(c) if np.isfinite(c).all() else (np.inf,) * 3
        if _fits(m, width, height, centre, reach):
            ax.add_patch(
                Ellipse(
                    (float(m[0]), float(m[1])), width, height, angle=angle, fill=False,
                    color="black", lw=1.6,
                    linestyle="--", label=THEORY_LABEL,
                )
            )  # fmt: skip
            ax.plot(*m, "x", color="black", ms=8, mew=1.5)
        else:
            notes.append("theory off the chart")
    lost = chains.n_chains - points.shape[0]
    notes += [f"{outside} chains outside the panel"] if outside else []
    notes += [f"{lost} chains diverged"] if lost else []
    title = f"step {chains.record_steps[index]}"
    ax.set_title("\n".join([title, *notes]), fontsize=10 if not notes else 9)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel(landscape.labels[0])
    ax.set_ylabel(landscape.labels[1])
    return notes


def plot_chains(
    chains: Chains,
    landscape: Landscape,
    data: Dataset,
    steps: Sequence[int] | None = None,
    bins: int = 80,
) -> Figure:
    """The chains at up to 4 recorded ``steps`` (default :func:`figure_steps`), side by side.

    Args:
        chains: the run; its iterates ``(S, K, p)`` in parameter units.
        landscape: the risk on the plot window (its ``plane`` projects ``p > 2`` parameters).
        data: the samples the chains trained on (for theory and basins).
        steps: recorded steps to draw.
        bins: histogram bins per axis over the landscape window.
    """
    import matplotlib.pyplot as plt

    steps = figure_steps(chains) if steps is None else [int(s) for s in steps]
    wanted = []
    for step in steps:
        hits = np.flatnonzero(chains.record_steps == step)
        if hits.size == 0:
            raise SgdscapeError(
                f"step {step} was not recorded; recorded steps are {chains.record_steps.tolist()}."
            )
        wanted.append(int(hits[0]))
    config = chains.config
    with_basins = config.model in BASINS
    theory = None
    title_theory = ""
    if theory_applies(chains):
        theory = linear_regression_moments(
            data, chains.init[0], config.lr, config.batch_size, steps
        )
        try:
            noise_ball = stationary_covariance(data, config.lr, config.batch_size)
        except SgdscapeError:
            title_theory = "; no stationary covariance (lr above the stable bound)"
        else:
            c = noise_ball.covariance
            title_theory = (
                f"; stationary covariance [[{c[0, 0]:.3g}, {c[0, 1]:.3g}], "
                f"[{c[1, 0]:.3g}, {c[1, 1]:.3g}]]"
            )
    panels = len(wanted) + (1 if with_basins else 0)
    fig, grid_of_axes = plt.subplots(
        ncols=panels, figsize=(3.6 * panels + 0.6, 4.0), layout="constrained", squeeze=False
    )
    axes = list(grid_of_axes[0])
    log_risk = np.log10(np.maximum(np.asarray(landscape.risk, dtype=np.float64), 1e-12))
    for panel, (ax, index) in enumerate(zip(axes, wanted, strict=False)):
        exact = None if theory is None else (theory.mean[panel], theory.covariance[panel])
        draw_density_panel(ax, chains, landscape, index, exact, bins=bins, log_risk=log_risk)
        if panel > 0:
            ax.set_ylabel("")
        if ax.get_legend_handles_labels()[0] and (panel == 0 or not axes[0].get_legend()):
            ax.legend(loc="upper left", fontsize=8, framealpha=0.8)
    if with_basins:
        ax = axes[-1]
        fractions = basin_fractions(chains, data)
        names = (*fractions.names, "diverged")
        for column, name in enumerate(names):
            if name == "diverged" and not fractions.fractions[:, column].any():
                continue
            ax.plot(fractions.steps, fractions.fractions[:, column], marker=".", label=name)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(0, max(float(fractions.steps[-1]), 1.0) * 1.05)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("step")
        ax.set_ylabel("fraction of chains")
        ax.set_title("basins", fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(
        f"{chains.n_chains} chains of {config.optimizer} on {config.model}: lr {config.lr:g}, "
        f"batch {config.batch_size}, {config.sampling}{title_theory}",
        fontsize=10,
    )
    return fig
