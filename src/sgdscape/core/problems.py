"""Data: the seed's linear ground truth, other synthetic problems, and user data.

A :class:`Dataset` holds ``x`` and ``y`` of shape ``(n_samples, 1)`` (float32, as the
seed notebook). Every sampler takes its randomness from a local ``torch.Generator``
built from ``seed``; the global torch generator is never touched. User data is read from
CSV files by :mod:`sgdscape.core.csv_data`, whose names this module re-exports.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sgdscape.core.csv_data import (
    CSV_BLOCK_BYTES,
    LARGE_CSV_BYTES,
    ByteProgress,
    CsvReport,
    read_csv,
)
from sgdscape.errors import (
    FLOAT32_MAX,
    SgdscapeError,
    check_choice,
    check_int,
    check_range,
    check_seed,
    clip,
    shown,
)

__all__ = [
    "CSV_BLOCK_BYTES",
    "LARGE_CSV_BYTES",
    "PROBLEMS",
    "ByteProgress",
    "CsvReport",
    "Dataset",
    "Problem",
    "ProblemOptions",
    "Sampler",
    "ground_truth",
    "log",
    "make_generator",
    "make_problem",
    "read_csv",
]

log = logging.getLogger("sgdscape")


@dataclass(frozen=True)
class Dataset:
    """Inputs and targets of a 1-D regression or binary classification problem.

    Attributes:
        x: inputs, shape ``(n_samples, 1)``, float32.
        y: targets, shape ``(n_samples, 1)``, float32 (0/1 labels for classification).
        name: where the data came from (a problem name or a file name).
        source: for data read from a file, what was read (rows, columns, skipped lines).
    """

    x: torch.Tensor
    y: torch.Tensor
    name: str = "data"
    source: str = ""

    def __post_init__(self) -> None:
        for label, values in (("x", self.x), ("y", self.y)):
            if not isinstance(values, torch.Tensor):
                raise SgdscapeError(f"Dataset.{label} must be a torch.Tensor, got {type(values)}.")
            if values.ndim != 2 or values.shape[1] != 1:
                raise SgdscapeError(
                    f"Dataset.{label} must have shape (n_samples, 1), got {tuple(values.shape)}."
                )
            if not torch.isfinite(values).all():
                raise SgdscapeError(f"Dataset.{label} contains NaN or infinite values.")
        if self.x.shape[0] != self.y.shape[0]:
            raise SgdscapeError(
                f"x and y must have the same number of samples, got {self.x.shape[0]} "
                f"and {self.y.shape[0]}."
            )
        if self.x.shape[0] < 1:
            raise SgdscapeError("a dataset needs at least one sample, got 0.")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_samples(self) -> int:
        """Number of samples ``n``."""
        return len(self)

    def to(self, device: torch.device | str) -> Dataset:
        """The same data on ``device``."""
        return Dataset(self.x.to(device), self.y.to(device), self.name)

    @classmethod
    def from_arrays(cls, x: object, y: object, name: str = "arrays") -> Dataset:
        """Build a dataset from array-likes of shape ``(n,)`` or ``(n, 1)``."""
        tensors = []
        for label, values in (("x", x), ("y", y)):
            try:
                array = np.asarray(values)
            except (TypeError, ValueError) as error:
                raise SgdscapeError(
                    f"x and y must be numeric arrays: {clip(str(error))}."
                ) from None
            if array.dtype.kind not in "iuf":  # strings, bools and objects are not numbers
                raise SgdscapeError(f"{label} must be numbers, got {shown(values)}.")
            array = array.astype(np.float64)
            big = np.isfinite(array) & (np.abs(array) > FLOAT32_MAX)
            if big.any():
                raise SgdscapeError(
                    f"{label} holds {array[big][0]:g}, outside float32's range "
                    f"(±{FLOAT32_MAX:.4g}); rescale the data."
                )
            tensors.append(torch.from_numpy(array.astype(np.float32)).reshape(-1, 1))
        return cls(tensors[0], tensors[1], name)

    @classmethod
    def from_csv(cls, path: str | Path, *, progress: ByteProgress | None = None) -> Dataset:
        """Read a CSV file with two numeric columns ``x,y`` (see :func:`read_csv`).

        ``progress(bytes_read, bytes_total)`` is called per block for large files. What
        was read (rows, columns, skipped lines) is logged and kept in :attr:`source`.
        """
        values, report = read_csv(path, progress=progress)
        log.info("%s", report)
        return cls(
            torch.from_numpy(np.ascontiguousarray(values[:, :1])),
            torch.from_numpy(np.ascontiguousarray(values[:, 1:])),
            report.path.name,
            str(report),
        )


def make_generator(seed: int | None) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (or from fresh OS entropy when ``None``)."""
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(check_seed("seed", seed))
    return generator


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class ProblemOptions:
    """Knobs shared by the synthetic problems (each problem reads those it needs)."""

    slope: float = 2.0
    noise_std: float = 0.1
    x_range: tuple[float, float] = (-1.0, 1.0)
    student_df: float = 2.0
    outlier_fraction: float = 0.1
    outlier_scale: float = 5.0


Sampler = Callable[[int, torch.Generator, ProblemOptions], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Problem:
    """A named data generator with the loss it is meant for."""

    name: str
    sample: Sampler
    description: str
    default_loss: str = "mse"


def _uniform_x(n: int, generator: torch.Generator, options: ProblemOptions) -> torch.Tensor:
    low, high = options.x_range
    return torch.empty(n, 1).uniform_(low, high, generator=generator)


def _gaussian_noise(n: int, generator: torch.Generator, std: float) -> torch.Tensor:
    return torch.empty(n, 1).normal_(0.0, std, generator=generator)


def _linear(
    n: int, generator: torch.Generator, options: ProblemOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    x = _uniform_x(n, generator, options)
    epsilon = _gaussian_noise(n, generator, options.noise_std)
    return x, options.slope * x + epsilon


def _student_t(
    n: int, generator: torch.Generator, options: ProblemOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    x = _uniform_x(n, generator, options)
    # t = z / sqrt(chi2_df / df), with chi2 drawn as a Gamma(df/2, 2) from the same generator
    z = torch.empty(n, 1).normal_(0.0, 1.0, generator=generator)
    gamma = torch._standard_gamma(torch.full((n, 1), options.student_df / 2.0), generator=generator)
    t = z / torch.sqrt(2.0 * gamma / options.student_df)
    return x, options.slope * x + options.noise_std * t


def _outliers(
    n: int, generator: torch.Generator, options: ProblemOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _linear(n, generator, options)
    is_outlier = torch.rand(n, 1, generator=generator) < options.outlier_fraction
    sign = torch.where(torch.rand(n, 1, generator=generator) < 0.5, -1.0, 1.0)
    return x, torch.where(is_outlier, y + sign * options.outlier_scale, y)


def _absolute(
    n: int, generator: torch.Generator, options: ProblemOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    x = _uniform_x(n, generator, options)
    return x, options.slope * x.abs() + _gaussian_noise(n, generator, options.noise_std)


def _sine(
    n: int, generator: torch.Generator, options: ProblemOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    x = _uniform_x(n, generator, options)
    y = options.slope * torch.sin(math.pi * x) + _gaussian_noise(n, generator, options.noise_std)
    return x, y


def _positive_x(
    n: int, generator: torch.Generator, options: ProblemOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    return _linear(n, generator, ProblemOptions(**{**options.__dict__, "x_range": (0.0, 1.0)}))


def _blobs(
    n: int, generator: torch.Generator, options: ProblemOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    labels = (torch.rand(n, 1, generator=generator) < 0.5).float()
    centre = options.slope / 2.0 * (2.0 * labels - 1.0)
    x = centre + torch.empty(n, 1).normal_(0.0, max(options.noise_std, 1e-6), generator=generator)
    return x, labels


PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in [
        Problem("linear", _linear, "the seed's y = slope*x + Gaussian noise, x ~ U(x-range)"),
        Problem(
            "student-t", _student_t, "linear truth with heavy-tailed Student-t noise (df options)"
        ),
        Problem("outliers", _outliers, "linear truth where a fraction of targets jump by ±scale"),
        Problem("abs", _absolute, "nonlinear truth y = slope*|x| + noise: one ReLU cannot fit it"),
        Problem("sin", _sine, "nonlinear truth y = slope*sin(pi x) + noise"),
        Problem("positive-x", _positive_x, "linear truth with x drawn from [0, 1] only"),
        Problem(
            "blobs",
            _blobs,
            "two classes: x ~ N(±slope/2, noise-std), labels 0/1, for the logistic loss",
            default_loss="logistic",
        ),
    ]
}


def make_problem(
    name: str,
    n_samples: int = 100,
    *,
    seed: int | None = None,
    options: ProblemOptions | None = None,
) -> Dataset:
    """Draw ``n_samples`` points from the named problem (see :data:`PROBLEMS`)."""
    problem = PROBLEMS[check_choice("problem", name, PROBLEMS)]
    n = check_int("n_samples", n_samples, low=1)
    options = options or ProblemOptions()
    if not options.noise_std >= 0 or not math.isfinite(options.noise_std):
        raise SgdscapeError(f"noise_std must be a finite number >= 0, got {options.noise_std}.")
    if not 0.0 <= options.outlier_fraction <= 1.0:
        raise SgdscapeError(
            f"outlier_fraction must be between 0 and 1, got {options.outlier_fraction}."
        )
    if not options.student_df > 0:
        raise SgdscapeError(f"student_df must be > 0, got {options.student_df}.")
    check_range("x_range", options.x_range)
    x, y = problem.sample(n, make_generator(seed), options)
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise SgdscapeError(
            f"problem {name!r} with slope={options.slope:g}, noise_std={options.noise_std:g}, "
            f"x_range=({options.x_range[0]:g}, {options.x_range[1]:g}) and outlier_scale="
            f"{options.outlier_scale:g} draws values beyond float32's range "
            f"(±{FLOAT32_MAX:.4g}); use smaller values."
        )
    return Dataset(x.float(), y.float(), name)


def ground_truth(
    n_samples: int = 100,
    *,
    slope: float = 2.0,
    noise_std: float = 0.1,
    x_range: tuple[float, float] = (-1.0, 1.0),
    seed: int | None = None,
) -> Dataset:
    """The seed notebook's data: ``y = slope * x + eps``, ``x ~ U(x_range)``, ``eps ~ N(0, noise_std)``.

    For a given ``seed`` it draws exactly what the notebook's ``sample_from_ground_truth``
    draws after ``torch.manual_seed(seed)`` (x first, then the noise), from a local
    generator. Shapes: ``x, y: (n_samples, 1)``.
    """
    options = ProblemOptions(slope=float(slope), noise_std=float(noise_std), x_range=x_range)
    return make_problem("linear", n_samples, seed=seed, options=options)
