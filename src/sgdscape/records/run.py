"""Run a config: its data, landscape and trajectory as a :class:`RunResult`.

The config is :class:`~sgdscape.records.config.RunConfig` (re-exported here with the rest of
:mod:`sgdscape.records.config`); :mod:`sgdscape.records.run_files` writes a result as
``run.npz`` and ``config.toml`` and reads it back, and ``run(load_config("config.toml"))``
reproduces identical arrays.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from sgdscape.core.curvature import Curvature, CurvatureMap, curvature, curvature_map
from sgdscape.core.landscape import Landscape, landscape, per_sample_bytes
from sgdscape.core.problems import Dataset, ProblemOptions, make_problem
from sgdscape.core.train import Trajectory, train
from sgdscape.errors import SgdscapeError
from sgdscape.io import atomic_path, output_set
from sgdscape.records.config import (
    DEFAULT_INIT,
    MAX_CONFIG_BYTES,
    MAX_CONFIG_DEPTH,
    MAX_MEMORY_BUDGET,
    RANDOM_INIT,
    VARIANT_FIELDS,
    RunConfig,
    check_optimization,
    load_config,
    parse_inits,
)

__all__ = [
    "DEFAULT_INIT",
    "MAX_CONFIG_BYTES",
    "MAX_CONFIG_DEPTH",
    "MAX_MEMORY_BUDGET",
    "RANDOM_INIT",
    "VARIANT_FIELDS",
    "Progress",
    "RunConfig",
    "RunResult",
    "atomic_path",
    "check_optimization",
    "config_trajectory",
    "initial_points",
    "load_config",
    "make_data",
    "output_set",
    "parse_inits",
    "project",
    "risk_landscape",
    "run",
    "with_curvature",
]

log = logging.getLogger("sgdscape")

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RunResult:
    """A finished run: its config, data, landscape and trajectory."""

    config: RunConfig
    data: Dataset
    landscape: Landscape
    trajectory: Trajectory
    others: tuple[Trajectory, ...] = ()
    #: one :class:`Curvature` per trajectory (this run's, then each variant's), or empty
    curvatures: tuple[Curvature, ...] = ()
    #: the risk's curvature over the landscape window (``None`` unless computed)
    curvature_map: CurvatureMap | None = None

    @property
    def trajectories(self) -> list[tuple[str, Trajectory]]:
        """``(label, trajectory)`` of this run and of each compare variant, in order."""
        return list(zip(self.config.labels, (self.trajectory, *self.others), strict=True))

    @property
    def n_steps(self) -> int:
        """Number of recorded steps."""
        return self.trajectory.n_steps

    def path(self, trajectory: Trajectory | None = None) -> np.ndarray:
        """Iterates in plot coordinates, ``(..., T, 2)`` (projected onto the slice)."""
        return project(self.config, (trajectory or self.trajectory).iterates)

    def batch_landscape(self, step: int) -> np.ndarray:
        """Loss landscape of the minibatch used at ``step``, ``(G2, G1)``.

        Taken from the stored per-sample grids when present, else computed for these
        few samples alone.
        """
        if not 0 <= step < self.n_steps:
            raise SgdscapeError(f"step must be between 0 and {self.n_steps - 1}, got {step}.")
        indices = self.trajectory.batch(step)
        if self.landscape.sample_loss is not None:
            return self.landscape.batch_loss(indices)
        subset = Dataset(self.data.x[indices], self.data.y[indices], self.data.name)
        return landscape(
            self.config.model,
            subset,
            self.config.grid_spec,
            loss=self.config.loss_name,
            plane=self.config.plane(),
            per_sample=False,
            device=self.config.device,
        ).risk


def with_curvature(result: RunResult) -> RunResult:
    """``result`` with the exact Hessians along every trajectory and over the window.

    :attr:`RunResult.curvatures` gets one :class:`Curvature` per trajectory (risk and
    minibatch Hessians at every recorded iterate) and :attr:`RunResult.curvature_map` the
    risk's in-plane curvature on the landscape grid; ``save`` then writes both into run.npz.
    """
    config = result.config
    records = tuple(
        curvature(result, trajectory=trajectory) for _, trajectory in result.trajectories
    )
    found = curvature_map(
        config.model_spec,
        result.data,
        config.grid_spec,
        config.loss_name,
        config.plane(),
        memory_budget=config.memory_budget,
    )
    return dataclasses.replace(result, curvatures=records, curvature_map=found)


def project(config: RunConfig, points: np.ndarray) -> np.ndarray:
    """Plot coordinates ``(..., 2)`` of parameter vectors ``(..., p)`` on the config's slice."""
    import torch

    return config.plane().project(torch.as_tensor(np.asarray(points))).numpy()


def make_data(config: RunConfig, *, progress: Progress | None = None) -> Dataset:
    """The config's data: its CSV file, or a draw from its problem with its seed.

    ``progress("reading data", bytes_read, bytes_total)`` follows a large CSV file.
    """
    if config.data is not None:
        report = None if progress is None else lambda d, t: progress("reading data", d, t)
        return Dataset.from_csv(config.data, progress=report)
    options = ProblemOptions(slope=config.slope, noise_std=config.noise_std, x_range=config.x_range)
    return make_problem(config.problem, config.samples, seed=config.seed, options=options)


def run(config: RunConfig | None = None, *, progress: Progress | None = None) -> RunResult:
    """Compute the data, landscape and trajectory a config describes.

    ``progress(stage, done, total)`` is called as the landscape chunks finish.

    Examples:
        The seed's experiment, smaller: 20 samples, a 25x25 window, one SGD pass.

        >>> import sgdscape
        >>> result = sgdscape.run(sgdscape.RunConfig(samples=20, grid=25))
        >>> result.trajectory.iterates.shape  # one (w1, w2) per step
        (20, 2)
        >>> [round(float(w), 6) for w in result.trajectory.iterates[0]]  # the seed's init
        [1.2, -2.3]
        >>> result.landscape.risk.shape, result.landscape.sample_loss.shape
        ((25, 25), (20, 25, 25))
    """
    config = config or RunConfig()
    data = make_data(config, progress=progress)
    if config.batch_size > len(data):
        raise SgdscapeError(
            f"batch_size {config.batch_size} is larger than the data ({len(data)} samples); "
            f"use at most {len(data)}."
        )
    model = config.model_spec
    grid = config.grid_spec
    per_sample = per_sample_bytes(len(data), grid) <= config.memory_budget // 2
    if not per_sample:
        log.warning(
            "per-sample grids (%.0f MiB) exceed half the memory budget: sample_loss is left "
            "out of run.npz; figures compute the minibatch landscapes they need.",
            per_sample_bytes(len(data), grid) / 2**20,
        )
    surface = landscape(
        model,
        data,
        grid,
        loss=config.loss_name,
        plane=config.plane(model),
        per_sample=per_sample,
        memory_budget=config.memory_budget,
        device=config.device,
        progress=None if progress is None else lambda d, t: progress("landscape", d, t),
    )
    trajectories = [
        config_trajectory(variant, data)
        for variant in [config, *(config.variant(v) for v in config.compare)]
    ]
    return RunResult(config, data, surface, trajectories[0], tuple(trajectories[1:]))


def risk_landscape(config: RunConfig) -> Landscape:
    """The risk landscape of a config's data, model and window (no per-sample grids)."""
    return landscape(
        config.model_spec,
        make_data(config),
        config.grid_spec,
        loss=config.loss_name,
        plane=config.plane(),
        per_sample=False,
        memory_budget=config.memory_budget,
        device=config.device,
    )


def initial_points(config: RunConfig) -> torch.Tensor | None:
    """The init(s) of a config: ``(p,)``, ``(K, p)`` for an ``inits`` scheme, or ``None``.

    ``grid:N`` places ``N x N`` inits on the landscape window (through the slice plane);
    ``random:K`` draws ``K`` inits from the model's rule with the sampling seed.
    """
    model = config.model_spec
    if config.inits is None:
        return None if config.init is None else torch.tensor(config.init, dtype=torch.float32)
    kind, count = parse_inits(config.inits)
    if kind == "random":
        generator = torch.Generator().manual_seed(_sampling_seed(config) + 1)
        return model.init(count, generator=generator)
    a = torch.linspace(*config.w1_range, count)
    b = torch.linspace(*config.w2_range, count)
    return config.plane(model).points(a, b).reshape(count * count, model.n_params)


def _sampling_seed(config: RunConfig) -> int:
    return config.seed if config.sampling_seed is None else config.sampling_seed


def config_trajectory(config: RunConfig, data: Dataset) -> Trajectory:
    """Train as ``config`` says on ``data`` (its init(s), optimizer, sampling, schedule)."""
    return train(
        config.model_spec,
        data,
        init=initial_points(config),
        lr=config.lr,
        optimizer=config.optimizer,
        optimizer_options=config.optimizer_options,
        loss=config.loss_name,
        batch_size=config.batch_size,
        epochs=config.epochs,
        sampling=config.sampling,
        schedule=config.schedule,
        schedule_options=config.schedule_options,
        seed=_sampling_seed(config),
        device=config.device,
    )
