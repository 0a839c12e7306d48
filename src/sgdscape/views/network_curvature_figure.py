"""A real network's curvature along its training (matplotlib): its top Hessian eigenvalues
against step with ``2 / lr``, the Hessian trace and spectral density, and a network preset's
figure (each run's sharpness against its stability edge, with its loss).

The panels take finished results (:class:`sgdscape.TrainingCurvature`,
:class:`sgdscape.records.presets.NetworkPresetResult`) and never recompute the science.
Every name here is importable from :mod:`sgdscape.views.curvature_figure` too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from sgdscape.views.sharpness_style import BATCH_LABEL, RISK_LABEL, THRESHOLD_LABEL, use_log_scale
from sgdscape.views.style import PATH_COLOUR

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from sgdscape.networks.curvature import TrainingCurvature
    from sgdscape.records.presets import NetworkPresetResult

__all__ = [
    "LINE_COLOURS",
    "network_sharpness_panel",
    "plot_network_preset",
    "plot_training_curvature",
]

#: line colours of several runs on a white panel
LINE_COLOURS = ("tab:blue", "tab:orange", "tab:red", "tab:green", "tab:purple")


def network_sharpness_panel(ax: Axes, record: TrainingCurvature) -> dict[str, Any]:
    """Top-k eigenvalues of the full-data loss (and each step's minibatch) against step, with
    the 2/lr line. Returns ``{"risk": lines, "batch": lines, "threshold": line}``."""
    drawn: dict[str, Any] = {"risk": [], "batch": [], "threshold": None}
    steps = np.asarray(record.steps)
    k = record.eigenvalues.shape[1]
    for j in range(k):
        drawn["risk"] += ax.plot(
            steps,
            record.eigenvalues[:, j],
            "o-" if j == 0 else "-",
            color=PATH_COLOUR,
            markersize=3,
            linewidth=1.8 if j == 0 else 0.9,
            alpha=1.0 if j == 0 else 0.6,
            label=RISK_LABEL if j == 0 else (f"λ2..λ{k}" if j == 1 else None),
        )
    if record.batch_eigenvalues is not None:
        drawn["batch"] += ax.plot(
            steps,
            record.batch_eigenvalues[:, 0],
            ".",
            color="tab:blue",
            alpha=0.6,
            label=BATCH_LABEL,
        )
    drawn["threshold"] = ax.axhline(
        record.stability_threshold,
        color="black",
        linestyle="--",
        linewidth=1.2,
        label=THRESHOLD_LABEL,
    )
    if use_log_scale(record.eigenvalues[:, 0], np.array([record.stability_threshold])):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("top Hessian eigenvalues")
    ax.set_title(f"sharpness along training (lr = {record.lr:g})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return drawn


def plot_training_curvature(
    record: TrainingCurvature,
    *,
    loss: np.ndarray | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Sharpness against step with 2/lr (and ``loss (T,)`` on a twin axis when given), then
    the Hessian trace against step and the spectral density, when the record holds them."""
    import matplotlib.pyplot as plt

    panels = 1 + (record.trace is not None) + (record.density is not None)
    fig, axes = plt.subplots(
        ncols=panels, figsize=figsize or (6.2 * panels, 4.8), layout="constrained", squeeze=False
    )
    first = axes[0, 0]
    network_sharpness_panel(first, record)
    if loss is not None:
        twin = first.twinx()
        twin.plot(np.arange(len(loss)), loss, color="tab:gray", linewidth=0.8, alpha=0.7)
        twin.set_ylabel("minibatch loss", color="tab:gray")
        twin.set_yscale("log")
    index = 1
    if record.trace is not None:
        ax = axes[0, index]
        error = record.trace_error if record.trace_error is not None else None
        ax.errorbar(record.steps, record.trace, yerr=error, fmt="o-", color="tab:purple", ms=3)
        ax.set_xlabel("step")
        ax.set_ylabel("tr H (Hutchinson, ± 1 s.e.)")
        ax.set_title("Hessian trace along training")
        ax.grid(alpha=0.3)
        index += 1
    if record.density is not None and record.density_grid is not None:
        ax = axes[0, index]
        shown = np.unique(np.linspace(0, len(record.steps) - 1, 3).round().astype(int))
        colours = plt.get_cmap("viridis")(np.linspace(0.1, 0.85, len(shown)))
        for colour, i in zip(colours, shown, strict=True):
            ax.plot(
                record.density_grid[i],
                record.density[i],
                color=colour,
                label=f"step {int(record.steps[i])}",
            )
        ax.set_yscale("log")
        peak = float(np.nanmax(record.density))
        ax.set_ylim(max(1e-6, peak * 1e-7), peak * 3)
        ax.set_xlabel("eigenvalue")
        ax.set_ylabel("spectral density (SLQ)")
        ax.set_title("Hessian spectrum")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def plot_network_preset(result: NetworkPresetResult) -> Figure:
    """A network preset's figure: each run's sharpness against its 2/lr line, with its loss.

    ``layout="per-run"`` gives one panel per run (sharpness and 2/lr on the left axis, the
    loss of every step in grey on a log axis at the right); ``"overlay"`` draws every run's
    sharpness on one panel and their final sharpness (mean of the last measured steps) as
    bars beside it.
    """
    import matplotlib.pyplot as plt

    preset = result.preset
    runs = list(zip(result.labels, result.recordings, result.curvatures, strict=True))
    if preset.layout == "overlay":
        fig, (left, right) = plt.subplots(ncols=2, figsize=(13, 5.0), layout="constrained")
        for (label, _, record), colour in zip(runs, LINE_COLOURS, strict=False):
            left.plot(record.steps, record.sharpness, "-", color=colour, label=label)
            left.axhline(record.stability_threshold, color=colour, linestyle="--", linewidth=1)
        left.set_yscale("log")
        left.set_xlabel("step")
        left.set_ylabel("sharpness λmax (full-data loss)")
        left.set_title("sharpness along training (dashed: each run's 2 / lr)")
        left.grid(alpha=0.3)
        left.legend(fontsize=8)
        final = result.final_sharpness()
        colours = [LINE_COLOURS[i % len(LINE_COLOURS)] for i in range(len(final))]
        bars = right.bar(range(len(final)), final, color=colours)
        for bar in bars:
            bar.set_gid("final-sharpness")
        right.set_xticks(range(len(final)), list(result.labels), fontsize=9)
        right.bar_label(bars, fmt="%.2f")
        right.set_ylabel(f"final sharpness (mean of the last {preset.last} steps)")
        right.set_title("where each run ends: smaller batch or larger lr, flatter")
        right.grid(alpha=0.3, axis="y")
        return fig
    fig, axes = plt.subplots(
        ncols=len(runs), figsize=(6.5 * len(runs), 5.0), layout="constrained", squeeze=False
    )
    for ax, (label, recording, record) in zip(axes[0], runs, strict=True):
        network_sharpness_panel(ax, record)
        ax.set_title(f"{label}: sharpness meets 2 / lr = {record.stability_threshold:.3g}")
        twin = ax.twinx()
        loss = np.asarray(recording.batch_loss, dtype=np.float64)
        twin.plot(np.arange(loss.size), loss, color="tab:gray", linewidth=0.9, alpha=0.8)
        twin.set_yscale("log")
        twin.set_ylabel("training loss (every step)", color="tab:gray")
    return fig
