"""Valley hopping: the fraction of chains per basin, the distribution of first-hop times,
and the mean hop time against lr for several batch sizes (log scale).

Takes the results of :mod:`sgdscape.records.hopping`; recomputes nothing but the basin
fractions of the run it is given (a classification of the recorded iterates).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sgdscape.core.chain_stats import basin_fractions
from sgdscape.records.chain_presets import ChainsRun
from sgdscape.records.hopping import HopScaling, HopTimes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BATCH_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def plot_hopping(
    run: ChainsRun,
    times: HopTimes,
    scaling: HopScaling | None = None,
    *,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Three panels: basin fractions of ``run`` against step; the histogram of its first-hop
    times (density per step) with the exponential law of the same mean; and, with
    ``scaling``, the mean hop time (± 1 standard error) against lr, one line per batch size,
    on a log time axis.

    Args:
        run: a chains run of a model with valleys.
        times: :func:`sgdscape.records.hopping.measure_hop_times` of ``run``.
        scaling: :func:`sgdscape.records.hopping.hop_scaling` of a sweep (optional).
    """
    import matplotlib.pyplot as plt

    panels = 3 if scaling is not None else 2
    fig, axes = plt.subplots(
        ncols=panels, figsize=figsize or (4.4 * panels, 4.0), layout="constrained"
    )
    fractions = basin_fractions(run.chains, run.data)
    ax = axes[0]
    for column, name in enumerate((*fractions.names, "diverged")):
        share = fractions.fractions[:, column]
        if share.any():
            ax.plot(fractions.steps, share, label=name)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("step")
    ax.set_ylabel("fraction of chains")
    ax.set_title("where the chains are", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes[1]
    hopped = times.time[times.time >= 0]
    config = run.chains.config
    if hopped.size:
        bins = np.linspace(0, max(int(hopped.max()), times.every), 31)
        ax.hist(hopped, bins=bins, density=True, color="tab:blue", alpha=0.7, label="first hops")
        t = np.linspace(0, bins[-1], 200)
        mean = times.mean_time
        ax.plot(t, np.exp(-t / mean) / mean, color="black", lw=1.5, label=f"exp, mean {mean:.0f}")
        ax.legend(fontsize=8)
    ax.set_xlabel("first-hop time (steps)")
    ax.set_ylabel("density per step")
    ax.set_title(
        f"{times.hops} of {times.time.size} chains hopped (lr {config.lr:g}, "
        f"batch {config.batch_size})",
        fontsize=10,
    )

    if scaling is not None:
        ax = axes[2]
        for (batch, runs), colour in zip(scaling.runs.items(), BATCH_COLOURS, strict=False):
            usable = [t for t in runs if t.hops > 0]
            lrs = np.array([t.lr for t in usable])
            means = np.array([t.mean_time for t in usable])
            errors = np.array([t.standard_error for t in usable])
            ax.errorbar(
                lrs, means, yerr=errors, marker="o", ms=4, capsize=3, color=colour,
                label=f"batch {batch}",
            )  # fmt: skip
        ax.set_yscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("mean hop time (steps)")
        ax.set_title("mean hop time against lr", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(
        f"{run.chains.n_chains} chains of {config.optimizer} on {config.model} from "
        f"({run.chains.init[0, 0]:.3g}, {run.chains.init[0, 1]:.3g})",
        fontsize=10,
    )
    return fig
