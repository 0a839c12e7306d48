"""Runs of many SGD chains described by one config, and the named chains presets.

:class:`ChainsSetup` is to :func:`sgdscape.chains` what :class:`~sgdscape.records.run.RunConfig`
is to :func:`sgdscape.run`: everything a run needs (data, model, init, lr, batch size, the
landscape window) plus the chains' own settings (``K``, steps, sampling, recorded steps).
:func:`simulate_chains` runs it and returns the chains with their data and risk landscape, which is
what every chains view draws. ``sgdscape chains --preset NAME`` starts from a
:class:`ChainPreset` of :data:`CHAIN_PRESETS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from sgdscape.core.chains import Chains, chains, default_record_steps
from sgdscape.core.landscape import Landscape
from sgdscape.core.problems import Dataset
from sgdscape.errors import SgdscapeError, check_choice, check_int
from sgdscape.records.run import RunConfig, make_data, risk_landscape

#: ``progress(chain_steps_done, chain_steps_total)``
ChainsProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class ChainsSetup:
    """One run of ``n_chains`` chains: ``config`` gives the data, model, init, optimizer,
    lr, batch size and landscape window (its ``epochs``, ``sampling`` and ``compare`` are
    not used); the rest are the chains' own settings.

    Attributes:
        config: the shared run settings.
        n_chains: ``K >= 1``.
        steps: optimizer steps per chain (>= 0).
        sampling: ``"with-replacement"`` or ``"shuffle"``.
        record_steps: steps to keep, or ``None`` for :func:`default_record_steps`.
    """

    config: RunConfig = field(default_factory=RunConfig)
    n_chains: int = 10_000
    steps: int = 500
    sampling: str = "with-replacement"
    record_steps: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        check_int("n_chains", self.n_chains, low=1)
        check_int("steps", self.steps, low=0)
        if self.record_steps is not None:
            steps = np.asarray(self.record_steps)
            if steps.size == 0 or steps.min() < 0 or steps.max() > self.steps:
                raise SgdscapeError(
                    f"record_steps must name steps between 0 and steps={self.steps}, "
                    f"got {list(self.record_steps)}."
                )

    def replace(self, **changes: Any) -> ChainsSetup:
        """A copy with ``changes``: fields of this class, or of its :class:`RunConfig`.

        A new ``steps`` without new ``record_steps`` keeps the recorded steps it still
        covers, plus the new last step."""
        own = {"n_chains", "steps", "sampling", "record_steps"}
        mine = {k: v for k, v in changes.items() if k in own}
        if "steps" in mine and "record_steps" not in mine and self.record_steps is not None:
            last = check_int("steps", mine["steps"], low=0)
            kept = [s for s in self.record_steps if s <= last]
            mine["record_steps"] = tuple(sorted({*kept, last}))
        theirs = {k: v for k, v in changes.items() if k not in own}
        config = self.config.replace(**theirs) if theirs else self.config
        return replace(self, config=config, **mine)

    @property
    def recorded(self) -> np.ndarray:
        """``(S,)`` the steps the run keeps."""
        if self.record_steps is None:
            return default_record_steps(self.steps)
        return np.unique(np.asarray(self.record_steps, dtype=np.int64))


@dataclass(frozen=True)
class ChainsRun:
    """A finished :class:`ChainsSetup`: the chains, their data and the risk on the window
    (``landscape`` is ``None`` for a run made with ``with_landscape=False``, e.g. one point of
    a sweep that is never drawn)."""

    setup: ChainsSetup
    chains: Chains
    data: Dataset
    landscape: Landscape


def simulate_chains(
    setup: ChainsSetup,
    *,
    progress: ChainsProgress | None = None,
    with_landscape: bool = True,
) -> ChainsRun:
    """Run a :class:`ChainsSetup`: data from its config, ``K`` chains, the risk landscape.

    ``progress(done, total)`` counts chain-steps (:func:`sgdscape.chains`).
    """
    config = setup.config
    data = make_data(config)
    result = chains(
        config.model,
        data,
        init=config.init,
        n_chains=setup.n_chains,
        lr=config.lr,
        batch_size=config.batch_size,
        sampling=setup.sampling,
        steps=setup.steps,
        optimizer=config.optimizer,
        optimizer_options=config.optimizer_options,
        schedule=config.schedule,
        schedule_options=config.schedule_options,
        loss=config.loss_name,
        seed=config.seed,
        record_steps=setup.recorded,
        device=config.device,
        progress=progress,
    )
    surface = risk_landscape(config) if with_landscape else None
    return ChainsRun(setup, result, data, surface)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ChainPreset:
    """A named chains experiment: its one-line story, what to look at, and its setup.

    ``figure`` names the extra view the preset is about (``"theory"``: the density with the
    exact theory; ``"hopping"``: first-passage times and their scaling with lr and batch
    size; ``"fan"``: the fan of next steps); ``extra`` holds that view's settings.
    """

    name: str
    story: str
    explanation: str
    setup: ChainsSetup
    figure: str
    extra: dict[str, Any] = field(default_factory=dict)


CHAIN_FIGURES = {
    "theory": "the density of the chains with the exact theory's ellipses",
    "hopping": "first-passage times between valleys and the mean hop time against lr",
    "fan": "the fan of possible next iterates and its mean, the full-gradient step",
}

CHAIN_PRESETS: dict[str, ChainPreset] = {
    p.name: p
    for p in [
        ChainPreset(
            "noise-ball-theory",
            "the noise ball of constant-step SGD, simulated and predicted exactly",
            "On the convex linear regression the chains' cloud drifts to the least-squares "
            "fit and settles into a stationary noise ball instead of a point. Its mean and "
            "covariance at every step follow an exact recursion, whose fixed point (a discrete "
            "Lyapunov equation) is the dashed ellipse that the 20,000 simulated chains fill.",
            ChainsSetup(
                RunConfig(
                    model="linear-regression",
                    init=(-2.0, 2.0),
                    noise_std=0.5,
                    lr=0.1,
                    w1_range=(-3.0, 4.0),
                    w2_range=(-2.0, 3.5),
                ),
                n_chains=20_000,
                steps=300,
                record_steps=(0, 3, 10, 30, 100, 300),
            ),
            "theory",
        ),
        ChainPreset(
            "valley-hopping",
            "SGD noise makes chains hop from one relu-unit valley to its mirror image",
            "Started at (-1.4, -1.4) in the w2 < 0 valley, every single-sample step keeps w1 = w2, "
            "and SGD with lr 0.5 kicks the chains along that line through the saddle at the "
            "origin into the mirror valley; the waiting time is close to exponential. "
            "The mean hop time falls steeply as lr grows and rises steeply with the batch size, "
            "since averaging B samples shrinks the kicks.",
            ChainsSetup(
                RunConfig(init=(-1.4, -1.4), lr=0.5, w1_range=(-3.0, 3.0), w2_range=(-3.0, 3.0)),
                n_chains=2_000,
                steps=2_000,
                record_steps=tuple(range(0, 2_001, 5)),
            ),
            "hopping",
            {
                "lrs": {
                    1: (0.45, 0.5, 0.55, 0.6, 0.7),
                    2: (0.65, 0.7, 0.75, 0.8, 0.9),
                    4: (0.9, 1.0, 1.1),
                },
                "n_chains": 1_000,
                "steps": 2_000,
                "every": 5,
            },
        ),
        ChainPreset(
            "fan-of-steps",
            "the fan of next steps: every sample's SGD step from one iterate, and their mean",
            "From one iterate, single-sample SGD can move to one of n points, one per sample; "
            "their mean is exactly the full-gradient step, and minibatches of 10 make a "
            "narrower fan around the same mean. The chains after one step land on these points.",
            ChainsSetup(
                RunConfig(
                    model="linear-regression",
                    init=(0.0, 1.0),
                    noise_std=0.5,
                    samples=50,
                    lr=0.1,
                    w1_range=(-1.0, 2.5),
                    w2_range=(-0.5, 2.0),
                ),
                n_chains=5_000,
                steps=20,
                record_steps=(0, 1, 2, 5, 20),
            ),
            "fan",
            {"batch_sizes": (1, 10), "n_batches": 2_000},
        ),
    ]
}


def get_chain_preset(name: str) -> ChainPreset:
    """A :class:`ChainPreset` by name (the error lists the valid names)."""
    return CHAIN_PRESETS[check_choice("chains preset", name, CHAIN_PRESETS)]


@dataclass(frozen=True)
class TheoryAgreement:
    """How close the chains' moments are to the exact theory, per recorded step.

    Attributes:
        steps: ``(S,)`` recorded steps (step 0, a fixed start, excluded).
        covariance_error: ``(S,)`` relative error ``||C_emp - C||_F / ||C||_F``.
        mean_z: ``(S,)`` largest ``|mean_emp - mean| / SE`` over the coordinates.
        covariance_z: ``(S,)`` largest gap of a covariance entry in standard errors (the
            SE from the sample fourth moments about the exact mean).
        stationary_error: relative error of the last step's covariance against the
            stationary covariance (the noise ball), NaN if the lr is not stable.
    """

    steps: np.ndarray
    covariance_error: np.ndarray
    mean_z: np.ndarray
    covariance_z: np.ndarray
    stationary_error: float


def theory_agreement(run: ChainsRun) -> TheoryAgreement:
    """Compare the chains of a linear-regression run with the exact moment recursion
    (:func:`sgdscape.core.chain_theory.linear_regression_moments`) at every recorded step."""
    from sgdscape.core.chain_theory import linear_regression_moments, stationary_covariance

    chains_ = run.chains
    config = chains_.config
    steps = chains_.record_steps[chains_.record_steps > 0]
    theory = linear_regression_moments(
        run.data, chains_.init[0], config.lr, config.batch_size, steps
    )
    relative, mean_z, cov_z = [], [], []
    for j, step in enumerate(steps):
        w = chains_.at(int(step)).astype(np.float64)
        w = w[np.isfinite(w).all(axis=1)]
        k = w.shape[0]
        mean, exact = w.mean(axis=0), theory.mean[j]
        mean_z.append(float(np.max(np.abs(mean - exact) / (w.std(axis=0, ddof=1) / np.sqrt(k)))))
        centred = w - exact
        products = centred[:, :, None] * centred[:, None, :]  # (K, p, p)
        gap = np.abs(products.mean(axis=0) - theory.covariance[j])
        cov_z.append(float(np.max(gap / (products.std(axis=0, ddof=1) / np.sqrt(k)))))
        empirical = np.cov(w.T)
        relative.append(
            float(
                np.linalg.norm(empirical - theory.covariance[j])
                / np.linalg.norm(theory.covariance[j])
            )
        )
    try:
        ball = stationary_covariance(run.data, config.lr, config.batch_size).covariance
        last = np.cov(chains_.final[np.isfinite(chains_.final).all(axis=1)].astype(float).T)
        stationary = float(np.linalg.norm(last - ball) / np.linalg.norm(ball))
    except SgdscapeError:
        stationary = float("nan")
    return TheoryAgreement(steps, np.array(relative), np.array(mean_z), np.array(cov_z), stationary)
