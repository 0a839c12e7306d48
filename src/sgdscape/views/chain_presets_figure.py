"""The figure each chains preset is about (:data:`sgdscape.records.chain_presets.CHAIN_PRESETS`).

``theory``: the density of the chains with the exact theory (:func:`plot_chains`);
``hopping``: :func:`plot_hopping` with the preset's lr and batch-size sweep;
``fan``: :func:`plot_fan` of the preset's batch sizes from its init, beside the chains after
one step. :func:`preset_note` is the measured sentence printed under the figure (CLI and gallery).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from sgdscape.core.chain_stats import fan_of_steps
from sgdscape.records.chain_presets import ChainPreset, ChainsRun, theory_agreement
from sgdscape.records.hopping import hop_scaling, measure_hop_times

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class PresetFigure:
    """A preset's figure, its file name and the measured note that goes with it."""

    figure: Figure
    name: str
    note: str


def preset_figure(
    preset: ChainPreset,
    run: ChainsRun,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> PresetFigure:
    """Draw ``preset``'s own view of ``run`` (a run of ``preset.setup``, possibly changed).

    ``progress(done, total)`` follows the hopping sweep, whose runs have the preset's
    chains and steps but never more than ``run``'s (so a smaller run sweeps less).
    """
    if preset.figure == "theory":
        from sgdscape.views.chains_figure import plot_chains

        return PresetFigure(
            plot_chains(run.chains, run.landscape, run.data), "chains.png", theory_note(run)
        )
    if preset.figure == "hopping":
        from sgdscape.views.hopping_figure import plot_hopping

        extra: dict[str, Any] = preset.extra
        scaling = hop_scaling(
            run.setup,
            extra["lrs"],
            n_chains=min(extra["n_chains"], run.setup.n_chains),
            steps=min(extra["steps"], run.setup.steps),
            every=extra["every"],
            progress=progress,
        )
        times = measure_hop_times(run)
        matched = [
            f"batch {b} needs lr {lr:.2f}"
            for b, lr in lr_for_mean_time(scaling, times.mean_time).items()
            if np.isfinite(lr)
        ]
        note = (
            f"Measured: {times.hops} of {times.time.size} chains hopped within "
            f"{run.setup.steps} steps, mean hop time {times.mean_time:.0f} ± "
            f"{times.standard_error:.0f} steps at lr {run.chains.config.lr:g}, batch "
            f"{run.chains.config.batch_size}. To hop as fast, "
            + ", ".join(matched)
            + " (log-linear interpolation of the sweep)."
        )
        return PresetFigure(plot_hopping(run, times, scaling), "hopping.png", note)
    from sgdscape.views.fan import plot_fan

    config = run.setup.config
    fans = [
        fan_of_steps(
            config.model,
            run.data,
            run.chains.init[0],
            config.lr,
            batch_size=b,
            n_batches=None if b == 1 else preset.extra.get("n_batches", 1024),
            loss=config.loss_name,
        )
        for b in preset.extra.get("batch_sizes", (1,))
    ]
    parts = []
    for f in fans:
        gap = np.linalg.norm(f.mean - f.full_step)
        if _standard_errors(f) == 0.0:
            parts.append(f"batch 1 (all {f.next.shape[0]} samples): {gap:.1e}, float rounding")
        else:
            parts.append(
                f"batch {f.batches.shape[1]} ({f.next.shape[0]} sampled minibatches): "
                f"{gap:.1e}, {_standard_errors(f):.1f} standard errors"
            )
    gaps = "; ".join(parts)
    note = f"Measured: distance from the fan's mean to the full-gradient step, {gaps}."
    return PresetFigure(plot_fan(fans, run.landscape, run.chains), "fan.png", note)


def _standard_errors(fan: Any) -> float:
    """Largest gap between the fan's mean and the full step, per coordinate, in standard
    errors of a mean of ``N`` sampled minibatches (0 for the exact per-sample fan)."""
    if fan.batches.shape[1] == 1 and fan.next.shape[0] == np.unique(fan.batches).size:
        return 0.0
    se = fan.next.std(axis=0, ddof=1) / np.sqrt(fan.next.shape[0])
    return float(np.max(np.abs(fan.mean - fan.full_step) / se))


def lr_for_mean_time(scaling: Any, target: float) -> dict[int, float]:
    """Per batch size, the lr at which the mean hop time equals ``target`` steps: linear
    interpolation of log mean time against lr between the two sweep points that bracket it
    (NaN when none do)."""
    found = {}
    for batch, runs in scaling.runs.items():
        usable = [t for t in runs if t.hops > 0]
        lrs = np.array([t.lr for t in usable])
        logs = np.log([t.mean_time for t in usable])
        found[batch] = float("nan")
        for i in range(len(usable) - 1):
            a, b = logs[i], logs[i + 1]
            if min(a, b) <= np.log(target) <= max(a, b) and a != b:
                share = (np.log(target) - a) / (b - a)
                found[batch] = float(lrs[i] + share * (lrs[i + 1] - lrs[i]))
                break
    return found


def theory_note(run: ChainsRun) -> str:
    """One sentence: how close the chains' covariance is to the exact theory."""
    agreement = theory_agreement(run)
    return (
        f"Measured with {run.chains.n_chains:,} chains at steps "
        f"{', '.join(str(s) for s in agreement.steps)}: the empirical covariance is within "
        f"{100 * agreement.covariance_error.max():.1f} % (Frobenius norm) of the exact one, "
        f"every covariance entry within {agreement.covariance_z.max():.1f} standard errors and "
        f"the mean within {agreement.mean_z.max():.1f}; at step {run.setup.steps} the cloud's "
        f"covariance is {100 * agreement.stationary_error:.1f} % from the stationary noise ball."
    )
