"""Exact curvature of the 2-parameter lab: Hessians along a path, a curvature map, quadratic models.

For a model ``f(w, x)`` (:mod:`sgdscape.core.models`) and an elementwise loss ``l`` (:mod:`sgdscape.core.losses`)
the empirical risk is ``R(w) = mean_i l(f(w, x_i), y_i)`` and a minibatch loss is the same mean over
the samples of that step's batch. Their Hessians are computed exactly by reverse-over-reverse ``torch.func.jacrev``,
vmapped over iterates; with ``p`` parameters they are ``(p, p)`` matrices in loss units per
parameter unit squared.

Gradient descent on a quadratic with top Hessian eigenvalue ``lambda_max > 0`` is stable only while
``lr < 2 / lambda_max``: :attr:`Curvature.stability_threshold` is that bound, next to ``lr``.

The quadratic model drawn at an iterate lives in :mod:`sgdscape.core.quadratic` (numpy only);
its names are re-exported here.

Only torch and numpy (the core layer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sgdscape.core.grid import Grid, Plane
from sgdscape.core.losses import Loss, get_loss
from sgdscape.core.models import Model, get_model
from sgdscape.core.problems import Dataset
from sgdscape.core.quadratic import QuadraticModel, quadratic_model
from sgdscape.errors import SgdscapeError, check_positive

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "KINDS",
    "Curvature",
    "CurvatureMap",
    "QuadraticModel",
    "classify",
    "curvature",
    "curvature_map",
    "hessians",
    "quadratic_model",
]

DEFAULT_MEMORY_BUDGET = 256 * 2**20
"""Bytes the intermediate tensors of one chunk may take (a rough bound)."""

KINDS: tuple[str, ...] = ("flat", "convex", "concave", "saddle")
"""Codes of :attr:`CurvatureMap.kind`: index 0 flat/degenerate, 1 convex, 2 concave, 3 saddle."""


def _hessian(function: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """``torch.func.jacrev(torch.func.jacrev(function))``: the exact Hessian in its first argument.

    Reverse-over-reverse instead of ``torch.func.hessian`` (forward-over-reverse): the same
    numbers, but torch's forward mode scripts its JVP decompositions on first use in a process,
    which costs seconds and raises torch's own ``torch.jit.script`` DeprecationWarning.
    """
    return torch.func.jacrev(torch.func.jacrev(function))


def _threshold(lambda_max: np.ndarray) -> np.ndarray:
    """``2 / lambda_max`` where ``lambda_max > 0``, ``inf`` where it is <= 0, NaN where NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(lambda_max > 0, 2.0 / lambda_max, np.inf)
    return np.where(np.isnan(lambda_max), np.nan, out)


@dataclass(frozen=True)
class Curvature:
    """Exact Hessians along a recorded path. ``...`` is the shape of the inits' batch (often empty).

    Attributes:
        iterates: ``(..., T, p)`` the points where the Hessians are taken.
        risk_hessian: ``(..., T, p, p)`` Hessian of the empirical risk.
        batch_hessian: ``(..., T, p, p)`` Hessian of step t's minibatch loss (``None`` without
            ``batch_indices``).
        risk_eigenvalues, batch_eigenvalues: ``(..., T, p)`` eigenvalues, ascending.
        risk_eigenvectors, batch_eigenvectors: ``(..., T, p, p)``; column ``k`` belongs to
            eigenvalue ``k`` (unit norm, sign as ``torch.linalg.eigh`` returns it).
        lr: ``(T,)`` learning rate used by step t (``None`` if not given).
        param_names: names of the ``p`` parameters.

    Steps whose iterate is not finite (a diverged run) hold NaN.
    """

    iterates: np.ndarray
    risk_hessian: np.ndarray
    risk_eigenvalues: np.ndarray
    risk_eigenvectors: np.ndarray
    batch_hessian: np.ndarray | None = None
    batch_eigenvalues: np.ndarray | None = None
    batch_eigenvectors: np.ndarray | None = None
    lr: np.ndarray | None = None
    param_names: tuple[str, ...] = ("w1", "w2")

    @property
    def n_steps(self) -> int:
        """Number of steps ``T``."""
        return int(self.iterates.shape[-2])

    @property
    def lambda_max(self) -> np.ndarray:
        """``(..., T)`` top eigenvalue of the risk Hessian (the sharpness)."""
        return self.risk_eigenvalues[..., -1]

    @property
    def batch_lambda_max(self) -> np.ndarray | None:
        """``(..., T)`` top eigenvalue of each step's minibatch Hessian."""
        return None if self.batch_eigenvalues is None else self.batch_eigenvalues[..., -1]

    @property
    def stability_threshold(self) -> np.ndarray:
        """``(..., T)`` the largest stable GD learning rate ``2 / lambda_max`` of the risk (inf if <= 0)."""
        return _threshold(self.lambda_max)

    @property
    def batch_stability_threshold(self) -> np.ndarray | None:
        """``(..., T)`` ``2 / lambda_max`` of each minibatch loss (inf where its top eigenvalue <= 0)."""
        top = self.batch_lambda_max
        return None if top is None else _threshold(top)


def _as_data(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x: (n,), y: (n,))`` from a :class:`Dataset` or an ``(x, y)`` pair."""
    if isinstance(data, Dataset):
        x, y = data.x, data.y
    else:
        try:
            x, y = data
        except (TypeError, ValueError):
            raise SgdscapeError(
                f"data must be a Dataset or an (x, y) pair, got {type(data).__name__}."
            ) from None
    x = torch.as_tensor(x).reshape(-1)
    y = torch.as_tensor(y).reshape(-1)
    if x.shape != y.shape or x.numel() == 0:
        raise SgdscapeError(
            f"x and y must hold the same positive number of samples, got {x.numel()} and {y.numel()}."
        )
    return x, y


def _objective(
    model: Model, loss: Loss, x: torch.Tensor, y: torch.Tensor
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``(w: (p,), weights: (m, n)) -> (m,)``: weighted sums of the per-sample losses at ``w``."""

    def objective(w: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return weights @ loss(model(w, x), y)

    return objective


def _batch_weights(batch_indices: np.ndarray, n: int) -> torch.Tensor:
    """``(T, n)`` weights: how often sample i is in step t's batch over the batch size (-1 = padding)."""
    index = torch.as_tensor(np.asarray(batch_indices), dtype=torch.int64)
    if index.ndim != 2:
        raise SgdscapeError(f"batch_indices must have shape (T, B), got {tuple(index.shape)}.")
    if index.numel() and (int(index.max()) >= n or int(index.min()) < -1):
        raise SgdscapeError(
            f"batch_indices must lie between -1 (padding) and {n - 1}, "
            f"got values from {int(index.min())} to {int(index.max())}."
        )
    valid = index >= 0
    sizes = valid.sum(dim=1, keepdim=True)
    if bool((sizes == 0).any()):
        raise SgdscapeError("every step needs at least one sample in its batch; a row is all -1.")
    counts = torch.zeros(index.shape[0], n, dtype=torch.float64)
    counts.scatter_add_(1, index.clamp_min(0), valid.to(torch.float64))
    return counts / sizes


def _eigh(hessian: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (ascending) and eigenvectors of ``(..., p, p)``; non-finite matrices give NaN."""
    finite = torch.isfinite(hessian).all(dim=-1).all(dim=-1)
    safe = torch.where(finite[..., None, None], hessian, torch.zeros_like(hessian))
    safe = 0.5 * (safe + safe.transpose(-1, -2))
    values, vectors = torch.linalg.eigh(safe)
    nan = torch.tensor(float("nan"), dtype=hessian.dtype)
    values = torch.where(finite[..., None], values, nan)
    vectors = torch.where(finite[..., None, None], vectors, nan)
    return values, vectors


def hessians(
    model: str | Model,
    data: Any,
    iterates: np.ndarray | torch.Tensor,
    batch_indices: np.ndarray | None = None,
    loss: str | Loss = "mse",
    *,
    lr: np.ndarray | float | None = None,
    dtype: torch.dtype = torch.float64,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> Curvature:
    """Exact Hessians of the risk (and of each step's minibatch loss) at every iterate.

    Args:
        model: a registry name or :class:`Model` ``f(w: (..., p), x: (n,)) -> (..., n)``.
        data: a :class:`Dataset` or ``(x, y)`` with ``n`` samples.
        iterates: ``(..., T, p)`` parameters (a Trajectory's ``iterates``).
        batch_indices: ``(T, B)`` sample indices of step t's batch, padded with -1; the
            minibatch loss is the mean over the batch's entries (repeats count).
        loss: the elementwise loss name or :class:`Loss`.
        lr: ``(T,)`` or one number, the learning rate of each step (kept for comparison).
        dtype: the precision of the computation (float64 by default: it is cheap for small p).
        memory_budget: bytes for one chunk of iterates (a rough bound on intermediates).

    Returns:
        a :class:`Curvature`.
    """
    spec = get_model(model)
    loss_spec = get_loss(loss)
    x, y = (t.to(dtype) for t in _as_data(data))
    w = torch.as_tensor(np.asarray(iterates), dtype=dtype)
    p = spec.n_params
    if w.ndim < 2 or w.shape[-1] != p:
        raise SgdscapeError(
            f"iterates must have shape (..., T, {p}) for model {spec.name!r}, got {tuple(w.shape)}."
        )
    lead, steps = w.shape[:-2], w.shape[-2]
    n = x.numel()
    weights = torch.full((steps, 1, n), 1.0 / n, dtype=dtype)
    if batch_indices is not None:
        batch = _batch_weights(batch_indices, n).to(dtype)
        if batch.shape[0] != steps:
            raise SgdscapeError(
                f"batch_indices has {batch.shape[0]} steps, the iterates have {steps}."
            )
        weights = torch.cat([weights, batch[:, None, :]], dim=1)  # (T, m, n)
    m = weights.shape[1]
    flat = w.reshape(-1, steps, p)
    weights_all = weights.expand(flat.shape[0], steps, m, n).reshape(-1, m, n)
    points = flat.reshape(-1, p)
    hess_fn = torch.func.vmap(_hessian(_objective(spec, loss_spec, x, y)))
    per_point = max(1, n * (p + 2) * (p + 2) * m * 8 * 4)
    chunk = max(1, memory_budget // per_point)
    finite = torch.isfinite(points).all(dim=-1)
    safe_points = torch.where(finite[:, None], points, torch.zeros_like(points))
    parts = [
        hess_fn(safe_points[i : i + chunk], weights_all[i : i + chunk])
        for i in range(0, points.shape[0], chunk)
    ]
    result = torch.cat(parts) if parts else torch.zeros(0, m, p, p, dtype=dtype)
    result = torch.where(finite[:, None, None, None], result, torch.nan)
    result = result.reshape(*lead, steps, m, p, p)
    values, vectors = _eigh(result)
    lr_array = None
    if lr is not None:
        lr_array = np.broadcast_to(np.asarray(lr, dtype=np.float64), (steps,)).copy()
    extra: dict[str, Any] = {}
    if batch_indices is not None:
        extra = {
            "batch_hessian": result[..., 1, :, :].numpy(),
            "batch_eigenvalues": values[..., 1, :].numpy(),
            "batch_eigenvectors": vectors[..., 1, :, :].numpy(),
        }
    return Curvature(
        iterates=w.numpy(),
        risk_hessian=result[..., 0, :, :].numpy(),
        risk_eigenvalues=values[..., 0, :].numpy(),
        risk_eigenvectors=vectors[..., 0, :, :].numpy(),
        lr=lr_array,
        param_names=spec.param_names,
        **extra,
    )


def curvature(
    result: Any, *, trajectory: Any | None = None, dtype: torch.dtype = torch.float64
) -> Curvature:
    """The per-step curvature record of a run: ``sgdscape.curvature(sgdscape.run(config))``.

    Args:
        result: a :class:`sgdscape.RunResult` (anything with ``config.model_spec``,
            ``config.loss_name``, ``data`` and ``trajectory``).
        trajectory: one of ``result.trajectories``' trajectories (default: the main one).

    Returns:
        a :class:`Curvature` with the risk and minibatch Hessians at every recorded iterate
        ``(..., T, p, p)`` and the run's learning rate per step.

    Examples:
        >>> import numpy as np
        >>> import sgdscape
        >>> result = sgdscape.run(sgdscape.RunConfig(samples=20, grid=25))
        >>> record = sgdscape.curvature(result)
        >>> record.risk_hessian.shape  # a 2x2 Hessian of the risk at each of the 20 iterates
        (20, 2, 2)
        >>> bool(np.allclose(record.risk_hessian, np.swapaxes(record.risk_hessian, -1, -2)))
        True
        >>> bool(np.allclose(record.stability_threshold, 2 / record.lambda_max))  # GD-stable below
        True
    """
    try:
        config, data, chosen = result.config, result.data, trajectory or result.trajectory
        model, loss_name = config.model_spec, config.loss_name
    except AttributeError:
        raise SgdscapeError(
            f"curvature needs a RunResult from sgdscape.records.run, got {type(result).__name__}."
        ) from None
    return hessians(
        model,
        data,
        chosen.iterates,
        chosen.batch_indices,
        loss_name,
        lr=chosen.lr,
        dtype=dtype,
    )


@dataclass(frozen=True)
class CurvatureMap:
    """Curvature of the risk over a landscape window, in the plane's coordinates ``(a, b)``.

    Attributes:
        w1, w2: ``(G1,)``, ``(G2,)`` the window's axes (plane coordinates).
        hessian: ``(G2, G1, 2, 2)`` Hessian of ``R(origin + a*d1 + b*d2)`` in ``(a, b)``.
        eigenvalues: ``(G2, G1, 2)`` ascending.
        kind: ``(G2, G1)`` int8 codes into :data:`KINDS` (flat, convex, concave, saddle).
        tol: the eigenvalue magnitude below which a direction counts as flat.
        labels: the axis labels.
    """

    w1: np.ndarray
    w2: np.ndarray
    hessian: np.ndarray
    eigenvalues: np.ndarray
    kind: np.ndarray
    tol: float
    labels: tuple[str, str] = ("w1", "w2")

    @property
    def lambda_max(self) -> np.ndarray:
        """``(G2, G1)`` top eigenvalue of the in-plane Hessian."""
        return self.eigenvalues[..., -1]

    @property
    def lambda_min(self) -> np.ndarray:
        """``(G2, G1)`` lowest eigenvalue of the in-plane Hessian."""
        return self.eigenvalues[..., 0]

    def mask(self, kind: str) -> np.ndarray:
        """``(G2, G1)`` booleans: where the landscape is ``kind`` (one of :data:`KINDS`)."""
        if kind not in KINDS:
            raise SgdscapeError(
                f"unknown curvature kind {kind!r}; choose one of: {', '.join(KINDS)}."
            )
        inside: np.ndarray = self.kind == KINDS.index(kind)
        return inside


def classify(eigenvalues: np.ndarray, tol: float) -> np.ndarray:
    """Codes into :data:`KINDS` for eigenvalues ``(..., 2)`` (ascending): convex if both > tol,
    concave if both < -tol, saddle if one > tol and the other < -tol, flat otherwise."""
    low, high = eigenvalues[..., 0], eigenvalues[..., -1]
    kind = np.zeros(low.shape, dtype=np.int8)
    kind[low > tol] = 1
    kind[high < -tol] = 2
    kind[(high > tol) & (low < -tol)] = 3
    return kind


def curvature_map(
    model: str | Model,
    data: Any,
    grid: Grid,
    loss: str | Loss = "mse",
    plane: Plane | None = None,
    *,
    tol: float = 1e-6,
    dtype: torch.dtype = torch.float64,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> CurvatureMap:
    """Exact in-plane Hessian of the risk at every grid point, its eigenvalues and their signs.

    Args:
        model: as :func:`hessians`.
        data: as :func:`hessians`.
        loss: as :func:`hessians`.
        grid: the window of plane coordinates ``(a, b)``.
        plane: the slice ``w(a, b) = origin + a*d1 + b*d2`` (default: the model's first two
            parameters, the others at 0). The Hessian is that of ``(a, b) -> R(w(a, b))``,
            i.e. ``D^T H D`` with ``D = [d1 d2]``.
        tol: eigenvalues within ``[-tol, tol]`` count as flat (loss units per coordinate unit^2).
        memory_budget: bytes for one chunk of grid points (a rough bound on intermediates).
    """
    spec = get_model(model)
    loss_spec = get_loss(loss)
    tol = check_positive("tol", tol, allow_zero=True)
    plane = plane or Plane.through(spec.param_names)
    if plane.origin.shape[0] != spec.n_params:
        raise SgdscapeError(
            f"the plane has {plane.origin.shape[0]} parameters, model {spec.name!r} has {spec.n_params}."
        )
    x, y = (t.to(dtype) for t in _as_data(data))
    n = x.numel()
    a_axis, b_axis = grid.axes()
    origin, d1, d2 = (t.to(dtype) for t in (plane.origin, plane.d1, plane.d2))

    def risk(coords: torch.Tensor) -> torch.Tensor:
        w = origin + coords[0] * d1 + coords[1] * d2
        return loss_spec(spec(w, x), y).mean()

    hess_fn = torch.func.vmap(_hessian(risk))
    a = torch.as_tensor(a_axis, dtype=dtype)
    b = torch.as_tensor(b_axis, dtype=dtype)
    coords = torch.stack(torch.meshgrid(a, b, indexing="xy"), dim=-1).reshape(-1, 2)
    per_point = max(1, n * (spec.n_params + 4) * 8 * 16)
    chunk = max(1, memory_budget // per_point)
    parts = [hess_fn(coords[i : i + chunk]) for i in range(0, coords.shape[0], chunk)]
    hessian = torch.cat(parts).reshape(*grid.shape, 2, 2)
    values, _ = _eigh(hessian)
    eigenvalues = values.numpy()
    return CurvatureMap(
        w1=a_axis,
        w2=b_axis,
        hessian=hessian.numpy(),
        eigenvalues=eigenvalues,
        kind=classify(eigenvalues, tol),
        tol=tol,
        labels=plane.labels,
    )
