"""Hopping between valleys: first-passage times of many chains and how they scale.

A *hop* is a chain's first arrival, at a recorded step, in a valley other than the one it
started in (:data:`VALLEYS` names the valleys among a model's basins of
:data:`sgdscape.core.chain_stats.BASINS`; transient regions such as relu-unit's mixed-sign
quadrants do not count). A chain that diverges first, or never arrives, is *censored*: its
exposure is the last recorded step at which it was finite.

The mean hop time is estimated as total exposure over number of hops, the maximum-likelihood
mean of an exponential waiting time with censoring: it uses the chains that have not hopped
yet instead of dropping them, which would bias the mean towards the run's length.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sgdscape.core.chain_stats import BASINS, basin_fractions
from sgdscape.errors import SgdscapeError
from sgdscape.records.chain_presets import ChainsRun, ChainsSetup, simulate_chains

#: which basins of each model count as valleys a chain can hop between
VALLEYS: dict[str, tuple[str, ...]] = {
    "relu-unit": ("w2>0 valley", "w2<0 valley"),
    "linear-product": ("w2>=0 branch", "w2<0 branch"),
    "tanh-unit": ("w2>=0", "w2<0"),
}


@dataclass(frozen=True)
class HopTimes:
    """First hops of ``K`` chains between valleys.

    Attributes:
        time: ``(K,)`` int64 recorded step of the first arrival in another valley, -1 if none.
        exposure: ``(K,)`` int64 steps observed before the hop or the censoring.
        start: ``(K,)`` basin label at the first record.
        lr: the run's learning rate.
        batch_size: the run's batch size.
        every: spacing of the records (times are rounded up to it).
    """

    time: np.ndarray
    exposure: np.ndarray
    start: np.ndarray
    lr: float
    batch_size: int
    every: int

    @property
    def hops(self) -> int:
        """Number of chains that hopped."""
        return int((self.time >= 0).sum())

    @property
    def mean_time(self) -> float:
        """Censored exponential estimate of the mean hop time in steps (inf without hops)."""
        return float(self.exposure.sum() / self.hops) if self.hops else float("inf")

    @property
    def standard_error(self) -> float:
        """Standard error of :attr:`mean_time` (``mean / sqrt(hops)``; inf without hops)."""
        return self.mean_time / np.sqrt(self.hops) if self.hops else float("inf")


def hop_times(labels: np.ndarray, steps: np.ndarray, valleys: Sequence[int]) -> HopTimes:
    """First arrival of each chain in a valley other than its start, from basin labels.

    Args:
        labels: ``(S, K)`` int basin label per recorded step and chain (-1 diverged).
        steps: ``(S,)`` increasing recorded steps, ``steps[0]`` the start.
        valleys: labels that count as valleys.

    Returns:
        A :class:`HopTimes` (``lr`` and ``batch_size`` left at NaN and 0).
    """
    labels = np.asarray(labels)
    steps = np.asarray(steps, dtype=np.int64)
    if labels.ndim != 2 or labels.shape[0] != steps.shape[0] or steps.size < 2:
        raise SgdscapeError(
            f"labels must have shape (S, K) with S = {steps.shape[0]} >= 2 recorded steps, "
            f"got {labels.shape}."
        )
    start = labels[0]
    arrived = np.isin(labels, list(valleys)) & (labels != start)
    hopped = arrived.any(axis=0)
    first = arrived.argmax(axis=0)
    time = np.where(hopped, steps[first], -1)
    finite = labels >= 0
    # last record at which the chain was still finite (its exposure when censored)
    last_finite = np.where(finite.any(axis=0), finite.shape[0] - 1 - finite[::-1].argmax(axis=0), 0)
    diverged_early = ~finite.all(axis=0)
    censor = np.where(diverged_early, steps[last_finite], steps[-1])
    exposure = np.where(hopped, time, censor) - steps[0]
    every = int(np.diff(steps).max())
    return HopTimes(time, exposure.astype(np.int64), start, float("nan"), 0, every)


def measure_hop_times(run: ChainsRun) -> HopTimes:
    """:func:`hop_times` of a finished chains run on a model with valleys."""
    model = run.chains.config.model
    if model not in VALLEYS:
        raise SgdscapeError(
            f"hopping needs a model with valleys ({', '.join(VALLEYS)}), got {model!r}."
        )
    fractions = basin_fractions(run.chains, run.data)
    names = BASINS[model].names
    valleys = [names.index(name) for name in VALLEYS[model]]
    times = hop_times(fractions.labels, fractions.steps, valleys)
    config = run.chains.config
    return HopTimes(
        times.time, times.exposure, times.start, config.lr, config.batch_size, times.every
    )


@dataclass(frozen=True)
class HopScaling:
    """Mean hop time for each ``(batch size, lr)`` of a sweep.

    Attributes:
        runs: ``{batch_size: [HopTimes per lr, in increasing lr]}``.
    """

    runs: Mapping[int, tuple[HopTimes, ...]]

    def table(self) -> list[tuple[int, float, float, float, float]]:
        """Rows ``(batch_size, lr, mean_time, standard_error, fraction_hopped)``."""
        return [
            (b, t.lr, t.mean_time, t.standard_error, t.hops / t.time.size)
            for b, times in self.runs.items()
            for t in times
        ]


def hop_scaling(
    setup: ChainsSetup,
    lrs: Mapping[int, Sequence[float]],
    *,
    n_chains: int | None = None,
    steps: int | None = None,
    every: int = 5,
    progress: Callable[[int, int], None] | None = None,
) -> HopScaling:
    """Mean hop time against lr for several batch sizes, each from its own chains run.

    Args:
        setup: the base run (its data, model, init, sampling); lr and batch size are swept.
        lrs: ``{batch_size: learning rates}``.
        n_chains: chains per run (default the setup's).
        steps: steps per run (default the setup's).
        every: record every ``every`` steps (the time resolution).
        progress: ``progress(runs_done, runs_total)``.
    """
    n_chains = setup.n_chains if n_chains is None else n_chains
    steps = setup.steps if steps is None else steps
    record = tuple(range(0, steps + 1, every)) + ((steps,) if steps % every else ())
    total = sum(len(values) for values in lrs.values())
    done = 0
    runs: dict[int, tuple[HopTimes, ...]] = {}
    for batch_size, values in lrs.items():
        found = []
        for lr in sorted(values):
            one = setup.replace(
                lr=float(lr),
                batch_size=int(batch_size),
                n_chains=n_chains,
                steps=steps,
                record_steps=record,
            )
            found.append(measure_hop_times(simulate_chains(one, with_landscape=False)))
            done += 1
            if progress is not None:
                progress(done, total)
        runs[int(batch_size)] = tuple(found)
    return HopScaling(runs)
