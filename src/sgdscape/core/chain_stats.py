"""Summaries of many SGD chains: moments, basins, first passages and the fan of next steps.

Pure functions of a :class:`sgdscape.core.chains.Chains` (or of plain arrays) returning frozen
results that carry their steps and coordinates, so a view can draw them directly.

Basins here are *named regions fixed in advance* (:data:`BASINS`), not the data-driven
clusters of :func:`sgdscape.records.basins.cluster_end_points` (single linkage of end points,
numbered by size): fractions against step and first passages need labels that mean the
same region at every step, and this core module may not import the records layer.
For relu-unit they are the seed figure's two mirror valleys and its dead plateau,
written as explicit inequalities (:func:`_relu_unit_rule`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from sgdscape.core.chains import Chains
from sgdscape.core.kernels import closed_form_available, closed_form_gradient
from sgdscape.core.losses import Loss, get_loss
from sgdscape.core.models import Model, get_model
from sgdscape.core.problems import Dataset, make_generator
from sgdscape.errors import SgdscapeError, check_choice, check_int, check_positive


@dataclass(frozen=True)
class ChainMoments:
    """Mean and covariance of the chains at each recorded step (finite chains only).

    Attributes:
        steps: ``(S,)`` recorded steps.
        mean: ``(S, p)`` float64, in parameter units.
        covariance: ``(S, p, p)`` float64 (unbiased, divisor ``count - 1``).
        count: ``(S,)`` number of finite chains behind each row.
    """

    steps: np.ndarray
    mean: np.ndarray
    covariance: np.ndarray
    count: np.ndarray


def chain_moments(chains: Chains) -> ChainMoments:
    """Per recorded step, the mean ``(S, p)`` and covariance ``(S, p, p)`` of the finite chains."""
    iterates = chains.iterates.astype(np.float64)
    steps, _, p = iterates.shape
    mean = np.full((steps, p), np.nan)
    covariance = np.full((steps, p, p), np.nan)
    count = np.zeros(steps, dtype=np.int64)
    for s in range(steps):
        finite = iterates[s][np.isfinite(iterates[s]).all(axis=1)]
        count[s] = finite.shape[0]
        if count[s] >= 1:
            mean[s] = finite.mean(axis=0)
        if count[s] >= 2:
            centred = finite - mean[s]
            covariance[s] = centred.T @ centred / (count[s] - 1)
    return ChainMoments(chains.record_steps, mean, covariance, count)


# --------------------------------------------------------------------------- basins

BasinRule = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class BasinSpec:
    """Named regions of parameter space: ``rule(w (..., p), x (n,)) -> labels (...)`` int
    in ``0 ... len(names) - 1`` (non-finite iterates are labelled -1 by the caller)."""

    names: tuple[str, ...]
    rule: BasinRule
    description: str


def _relu_unit_rule(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    w1, w2 = w[..., 0], w[..., 1]
    # dead: relu(w2 x_i) = 0 for every sample, or w1 = 0: the unit predicts 0 everywhere
    # and its gradient vanishes (the plateau SGD cannot leave)
    active = (w2[..., None] * x > 0).any(axis=-1)
    dead = ~active | (w1 == 0)
    label = np.full(w1.shape, 3, dtype=np.int64)  # mixed signs: the unit fits -slope
    label[(w2 > 0) & (w1 > 0)] = 0
    label[(w2 < 0) & (w1 < 0)] = 1
    label[dead] = 2
    return label


def _sign_rule(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.where(w[..., 1] >= 0, 0, 1).astype(np.int64)


BASINS: dict[str, BasinSpec] = {
    "relu-unit": BasinSpec(
        ("w2>0 valley", "w2<0 valley", "dead plateau", "mixed signs"),
        _relu_unit_rule,
        "w1*relu(w2*x): w2>0, w1>0 fits the x>0 half (the valley w1*w2 = slope); w2<0, "
        "w1<0 fits the x<0 half; dead where relu(w2*x_i) = 0 for all samples or w1 = 0; "
        "mixed signs (w1*w2 < 0) is the transient region between them",
    ),
    "linear-product": BasinSpec(
        ("w2>=0 branch", "w2<0 branch"),
        _sign_rule,
        "w1*w2*x: the two branches of the hyperbola of minima, by the sign of w2",
    ),
    "tanh-unit": BasinSpec(
        ("w2>=0", "w2<0"),
        _sign_rule,
        "w1*tanh(w2*x): the mirror images (w1, w2) and (-w1, -w2), by the sign of w2",
    ),
}


def classify(
    w: np.ndarray, data: Dataset, basins: str | Model | BasinSpec = "relu-unit"
) -> np.ndarray:
    """Basin label of every iterate ``w: (..., p)`` -> ``(...)`` int64; -1 if not finite."""
    spec = _basin_spec(basins)
    w = np.asarray(w, dtype=np.float64)
    x = data.x.detach().cpu().double().numpy().reshape(-1)
    finite = np.isfinite(w).all(axis=-1)
    label = spec.rule(np.where(finite[..., None], w, 0.0), x)
    return np.where(finite, label, -1)


def _basin_spec(basins: str | Model | BasinSpec) -> BasinSpec:
    if isinstance(basins, BasinSpec):
        return basins
    name = basins.name if isinstance(basins, Model) else basins
    return BASINS[check_choice("basin rule (model)", name, BASINS)]


@dataclass(frozen=True)
class BasinFractions:
    """Which basin each chain is in at each recorded step.

    Attributes:
        steps: ``(S,)`` recorded steps.
        names: ``(C,)`` basin names; ``fractions`` has one more column, ``"diverged"``.
        labels: ``(S, K)`` int64 basin of each chain (-1 diverged).
        fractions: ``(S, C + 1)`` fraction of chains per basin, then diverged; rows sum to 1.
    """

    steps: np.ndarray
    names: tuple[str, ...]
    labels: np.ndarray
    fractions: np.ndarray


def basin_fractions(
    chains: Chains, data: Dataset, basins: str | Model | BasinSpec | None = None
) -> BasinFractions:
    """Classify every recorded iterate and count the fraction of chains per basin and step.

    ``basins`` defaults to the rule of the chains' model (:data:`BASINS`).
    """
    spec = _basin_spec(chains.config.model if basins is None else basins)
    labels = classify(chains.iterates, data, spec)
    counts = np.stack([(labels == c).sum(axis=1) for c in range(len(spec.names))], axis=1)
    counts = np.concatenate([counts, (labels == -1).sum(axis=1)[:, None]], axis=1)
    return BasinFractions(chains.record_steps, spec.names, labels, counts / labels.shape[1])


@dataclass(frozen=True)
class FirstPassage:
    """First recorded step at which each chain is in another basin than at step ``steps[0]``.

    Times are known only to the resolution of the recorded steps (the first record at or
    after the true passage); chains that never leave are censored at the last record.

    Attributes:
        steps: ``(S,)`` recorded steps.
        start: ``(K,)`` basin at the first record.
        time: ``(K,)`` int64 step of the first passage, -1 if none (censored).
        target: ``(K,)`` basin entered at that step, -1 if none (or diverged).
        survival: ``(S,)`` fraction of chains still in their start basin at each step.
    """

    steps: np.ndarray
    start: np.ndarray
    time: np.ndarray
    target: np.ndarray
    survival: np.ndarray

    def histogram(self, bins: int | np.ndarray = 20) -> tuple[np.ndarray, np.ndarray]:
        """Counts ``(bins,)`` and edges ``(bins + 1,)`` of the finite passage times."""
        passed = self.time[self.time >= 0]
        return np.histogram(passed, bins=bins)

    @property
    def mean_time(self) -> float:
        """Mean passage time of the chains that left (NaN if none did)."""
        passed = self.time[self.time >= 0]
        return float(passed.mean()) if passed.size else float("nan")


def first_passage(labels: np.ndarray, steps: np.ndarray) -> FirstPassage:
    """First passages from basin labels ``(S, K)`` recorded at ``steps (S,)``."""
    labels = np.asarray(labels)
    steps = np.asarray(steps, dtype=np.int64)
    if labels.ndim != 2 or labels.shape[0] != steps.shape[0]:
        raise SgdscapeError(
            f"labels must have shape (S, K) with S = {steps.shape[0]} steps, got {labels.shape}."
        )
    moved = labels != labels[0]
    left = moved.any(axis=0)
    first = moved.argmax(axis=0)
    chains = np.arange(labels.shape[1])
    time = np.where(left, steps[first], -1)
    target = np.where(left, labels[first, chains], -1)
    survival = 1.0 - np.logical_or.accumulate(moved, axis=0).mean(axis=1)
    return FirstPassage(steps, labels[0].copy(), time, target, survival)


# --------------------------------------------------------------------------- fan of steps


@dataclass(frozen=True)
class Fan:
    """From one iterate, the possible next SGD iterates and their mean.

    Attributes:
        w: ``(p,)`` the current iterate.
        next: ``(N, p)`` one next iterate ``w - lr g_batch`` per minibatch.
        batches: ``(N, B)`` sample indices of each minibatch.
        mean: ``(p,)`` mean of ``next``.
        full_step: ``(p,)`` the full-gradient step ``w - lr grad R(w)`` (the expectation of
            ``next`` under with-replacement sampling; equal to ``mean`` for ``B = 1``).
        lr: the learning rate.
    """

    w: np.ndarray
    next: np.ndarray
    batches: np.ndarray
    mean: np.ndarray
    full_step: np.ndarray
    lr: float


def _gradients(
    model: Model, loss: Loss, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Gradient ``(N, p)`` of the mean loss of each row of ``x, y: (N, b)`` at ``w: (p,)``."""
    wk = w.expand(x.shape[0], -1)
    if closed_form_available(model, loss):
        return closed_form_gradient(model, loss, wk, x, y)[1]

    def one(wi: torch.Tensor, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return loss(model.function(wi, xi), yi).mean()

    with torch.enable_grad():
        grads: torch.Tensor = torch.func.vmap(torch.func.grad(one))(wk.contiguous(), x, y)
        return grads


def fan_of_steps(
    model: str | Model,
    data: Dataset,
    w: object,
    lr: float,
    batch_size: int = 1,
    n_batches: int | None = None,
    seed: int = 0,
    loss: str | Loss = "mse",
) -> Fan:
    """The fan of next SGD iterates from ``w``: one per sample (``B = 1``, ``n_batches``
    ``None``), else ``n_batches`` (default 1024) minibatches of ``B`` indices drawn with
    replacement from ``make_generator(seed)``; computed in float64."""
    model = get_model(model)
    loss_fn = get_loss(loss)
    lr = check_positive("learning rate", lr)
    n = len(data)
    batch_size = check_int("batch size", batch_size, low=1, high=n)
    point = torch.as_tensor(np.asarray(w, dtype=np.float64)).reshape(-1)
    if point.shape[0] != model.n_params or not torch.isfinite(point).all():
        raise SgdscapeError(
            f"w must be {model.n_params} finite numbers ({', '.join(model.param_names)}), "
            f"got {w!r}."
        )
    x = data.x.detach().cpu().double().reshape(-1)
    y = data.y.detach().cpu().double().reshape(-1)
    if batch_size == 1 and n_batches is None:
        batches = torch.arange(n)[:, None]
    else:
        count = check_int("n_batches", 1024 if n_batches is None else n_batches, low=1)
        batches = torch.randint(n, (count, batch_size), generator=make_generator(seed))
    with torch.no_grad():
        grads = _gradients(model, loss_fn, point, x[batches], y[batches])
        full = _gradients(model, loss_fn, point, x[None], y[None])[0]
    following = (point - lr * grads).numpy()
    return Fan(
        w=point.numpy(),
        next=following,
        batches=batches.numpy(),
        mean=following.mean(axis=0),
        full_step=(point - lr * full).numpy(),
        lr=lr,
    )
