"""The full-data risk and gradient at every recorded iterate, computed after a run.

The training loop does only what is sequential (the minibatch gradient and the update);
the empirical risk ``(T, K)`` and its gradient ``(T, K, p)`` at all ``T * K`` iterates are
one vectorised, chunked pass here instead of a full-data evaluation inside every step.

For a model that is a multiple of one fixed feature of ``x`` per sign of a parameter
(the seed's ``w1 * relu(w2 * x) = w1 |w2| relu(sign(w2) x)``) and the squared error, the
risk is a parabola in that multiple, fixed by three moments of the data: no pass over the
samples at all (:func:`moment_path`). ``engine="auto"`` uses it for large paths (from
:data:`PATH_MOMENTS_MIN_EVALUATIONS`); it is exact up to float32 rounding (the moments are
float64), where the per-sample mean is exact up to the rounding of its sum.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from sgdscape.core import native
from sgdscape.core.devices import new_record, one_thread_when_small
from sgdscape.core.kernels import (
    SINGLE_THREAD_BELOW,
    closed_form_available,
    closed_form_gradient,
    fused_gradient,
    is_builtin,
)
from sgdscape.core.losses import Loss
from sgdscape.core.models import Model

#: ``engine="auto"`` compiles the path's risk and gradient from this many evaluations: the
#: eager closed form runs at about 1e8/s here, a warm compiled kernel starts in a second
PATH_FUSE_MIN_EVALUATIONS = int(float(os.environ.get("SGDSCAPE_PATH_FUSE_MIN", "2e8")))

#: loss evaluations per chunk of :func:`path_quantities` (about 1 MiB per temporary: cache-sized)
PATH_CHUNK_EVALUATIONS = 2**18

#: ``engine="auto"`` takes the path's risk and gradient from the data's moments
#: (:func:`moment_path`) from this many evaluations (points x samples); below it the
#: per-sample closed form, bit-equal to autograd, is fast enough
PATH_MOMENTS_MIN_EVALUATIONS = int(float(os.environ.get("SGDSCAPE_PATH_MOMENTS_MIN", "1e7")))

#: iterates per chunk of :func:`moment_path` (256 KiB per float64 temporary)
MOMENT_CHUNK = 2**15

#: points per second of :func:`moment_path` in torch and in the native kernel (start values
#: measured on the loaded 2-core machine; raised to the best this process reaches)
MOMENT_RATES: dict[str, float] = {"torch": 1e8, "native": 4e8}


def path_quantities(
    model: Model,
    loss: Loss,
    points: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    engine: str = "auto",
    gradient: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Empirical risk ``(N,)`` and its gradient ``(N, p)`` at ``N`` parameter points ``(N, p)``.

    All recorded iterates of a run at once, in chunks of about
    :data:`PATH_CHUNK_EVALUATIONS` loss evaluations: one vectorised pass instead of a
    full-data evaluation inside every step. Closed-form gradients for the built-in models
    (compiled when the work is large or ``engine="fused"``), autograd otherwise; the
    gradient is ``None`` when ``gradient=False``.
    """
    n_points, n = points.shape[0], x.shape[-1]
    risk = torch.empty(n_points, dtype=points.dtype, device=points.device)
    full = torch.empty_like(points) if gradient else None
    closed_form = engine != "plain" and closed_form_available(model, loss)
    fused = closed_form and (engine == "fused" or float(n_points) * n >= PATH_FUSE_MIN_EVALUATIONS)
    # eager chunks stay cache-sized; a fused kernel never materialises (rows, n)
    rows = max(1, PATH_CHUNK_EVALUATIONS * (16 if fused else 1) // max(n, 1))
    for lo in range(0, n_points, rows):
        chunk = points[lo : lo + rows].detach()
        if not gradient:
            with torch.no_grad():
                risk[lo : lo + rows] = loss(model(chunk, x), y).mean(dim=-1)
            continue
        if closed_form:
            with torch.no_grad():
                value, grad = (fused_gradient if fused else closed_form_gradient)(
                    model, loss, chunk, x, y
                )
        else:
            with torch.enable_grad():
                chunk = chunk.clone().requires_grad_(True)
                value = loss(model(chunk, x), y).mean(dim=-1)
                (grad,) = torch.autograd.grad(value.sum(), chunk)
        risk[lo : lo + rows] = value.detach()
        assert full is not None
        full[lo : lo + rows] = grad
    return risk, full


@dataclass(frozen=True)
class Parabola:
    """The squared-error risk along one branch, ``R(c) = a (c - c_best)^2 + r_best``.

    Attributes:
        a: ``mean f(x)^2`` of the branch's feature ``f``.
        c_best: the best multiple ``mean f y / a`` (0 when ``a`` is 0).
        r_best: the risk there, ``mean y^2 - a c_best^2`` (at least 0).
    """

    a: float
    c_best: float
    r_best: float

    @classmethod
    def of(cls, feature: torch.Tensor, y: torch.Tensor) -> Parabola:
        """From the feature ``(n,)`` and targets ``(n,)``, in float64."""
        f, t = feature.double(), y.double()
        a, b, c = float((f * f).mean()), float((f * t).mean()), float((t * t).mean())
        if a <= 0:
            return cls(0.0, 0.0, c)
        return cls(a, b / a, max(c - b * b / a, 0.0))


def _relu_unit_parabolas(x: torch.Tensor, y: torch.Tensor) -> tuple[Parabola, Parabola]:
    """``w1 relu(w2 x) = c relu(s x)`` with ``c = w1 |w2|``, ``s = sign(w2)``: the
    parabolas of ``s = +1`` and ``s = -1``."""
    return Parabola.of(torch.relu(x), y), Parabola.of(torch.relu(-x), y)


#: models with moment forms (with the ``mse`` loss): registry name to the two branches
MOMENT_MODELS: dict[str, Callable[[torch.Tensor, torch.Tensor], tuple[Parabola, Parabola]]] = {
    "relu-unit": _relu_unit_parabolas,
}


def moment_path_available(model: Model, loss: Loss) -> bool:
    """Whether :func:`moment_path` knows ``model`` and ``loss``."""
    return is_builtin(model, loss) and model.name in MOMENT_MODELS and loss.name == "mse"


def uses_moments(model: Model, loss: Loss, engine: str, evaluations: float) -> bool:
    """Whether the path's ``evaluations`` (points x samples) come from :func:`moment_path`:
    ``engine="auto"``, a large path, and a model and loss it knows."""
    return (
        engine == "auto"
        and evaluations >= PATH_MOMENTS_MIN_EVALUATIONS
        and moment_path_available(model, loss)
    )


def risk_at(
    model: Model, loss: Loss, points: torch.Tensor, x: torch.Tensor, y: torch.Tensor, moments: bool
) -> torch.Tensor:
    """The empirical risk ``(K,)`` at ``points: (K, p)``: from the moments (as the path's,
    when ``moments``), else the per-sample mean."""
    if moments:
        return moment_path(model, loss, points.T[None], x, y)[0][0]
    return loss(model(points, x), y).mean(dim=-1)


Branches = tuple[torch.Tensor, torch.Tensor]  # (positive, negative) 0-d float64 constants


def _moment_chunk(
    iterates: torch.Tensor,
    risk: torch.Tensor,
    full: torch.Tensor,
    a_of: Branches,
    best_of: Branches,
    floor_of: Branches,
) -> None:
    """:func:`moment_path` on a cache-sized chunk: iterates ``(rows, 2, K)`` into risk
    ``(rows, K)`` and gradient ``(rows, 2, K)``, in float64 (``c - c_best`` cancels near
    the minimum) and rounded once."""
    w1, w2 = iterates[:, 0].double(), iterates[:, 1].double()  # (rows, K)
    up = w2 > 0
    a = torch.where(up, *a_of)
    size = w2.abs()
    e = torch.mul(w1, size).sub_(torch.where(up, *best_of))  # c - c_best
    risk.copy_(torch.mul(e, e).mul_(a).add_(torch.where(up, *floor_of)))
    e.mul_(a).mul_(2.0)  # dR/dc
    full[:, 0] = size.mul_(e)
    full[:, 1] = e.mul_(w1).mul_(w2.sign_())


def native_moments(model: Model, n_points: int, device: torch.device) -> bool:
    """Whether :func:`moment_path` runs in the native kernel
    (:func:`sgdscape.core.native.relu_moments`: the same float64 operations, so the same
    bits): the relu unit on the CPU, when its expected time, start-up included
    (:func:`sgdscape.core.native.startup_charge`), is below torch's at :data:`MOMENT_RATES`."""
    if device.type != "cpu" or model.name != "relu-unit":
        return False
    native_seconds = native.startup_charge() + n_points / MOMENT_RATES["native"]
    return native_seconds < n_points / MOMENT_RATES["torch"]


def _native_moment_path(
    iterates: torch.Tensor, risk: torch.Tensor, full: torch.Tensor, branches: tuple[Parabola, ...]
) -> int | None:
    """:func:`moment_path`'s values in the C kernel; the count of points that are not
    finite, or ``None`` (nothing written) when the kernel cannot run."""
    if native.library() is None or iterates.dtype != torch.float32:
        return None
    positive, negative = branches
    constants = np.array(
        [positive.a, negative.a, positive.c_best, negative.c_best, positive.r_best, negative.r_best]
    )
    points = iterates.detach().contiguous().numpy()
    return native.relu_moments(
        points, risk.numpy(), full.numpy(), constants, torch.get_num_threads()
    )


def moment_path(
    model: Model,
    loss: Loss,
    iterates: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Risk ``(T, K)`` and gradient ``(T, p, K)`` at the iterates ``(T, p, K)`` from moments.

    For ``w1 relu(w2 x)`` and the squared error, with ``c = w1 |w2|``:
    ``R = a (c - c_best)^2 + r_best`` on the branch of ``sign(w2)``,
    ``dR/dw1 = 2 a (c - c_best) |w2|`` and ``dR/dw2 = 2 a (c - c_best) w1 sign(w2)``.
    Computed in float64 and rounded once: more accurate than the float32 per-sample mean.
    Points where that is not finite (diverged or overflowing iterates) are evaluated per
    sample instead, so they get the reference's inf or NaN. On the CPU the same operations
    may run in one C loop (:func:`native_moments`), with the same results bit for bit.
    """
    branches = MOMENT_MODELS[model.name](x, y)
    n_steps, n_params, n_inits = iterates.shape
    risk = new_record((n_steps, n_inits), iterates.device)
    full = new_record((n_steps, n_params, n_inits), iterates.device)
    began = time.perf_counter()
    if native_moments(model, n_steps * n_inits, iterates.device):
        bad = _native_moment_path(iterates, risk, full, branches)
        if bad is not None:
            _learn("native", n_steps * n_inits, time.perf_counter() - began)
            return _per_sample_where_not_finite(model, loss, iterates, x, y, risk, full, bad == 0)

    def constants(name: str) -> Branches:  # 0-d float64: torch.where rounds floats to float32
        positive, negative = (
            torch.tensor(getattr(branch, name), dtype=torch.float64, device=iterates.device)
            for branch in branches
        )
        return positive, negative

    a_of, best_of, floor_of = constants("a"), constants("c_best"), constants("r_best")
    rows = max(1, MOMENT_CHUNK // max(n_inits, 1))
    with one_thread_when_small(rows * n_inits, iterates.device, SINGLE_THREAD_BELOW):
        for lo in range(0, n_steps, rows):
            hi = lo + rows
            _moment_chunk(
                iterates[lo:hi],
                risk[lo:hi],
                full[lo:hi],
                a_of,
                best_of,
                floor_of,
            )
        finite = bool(torch.isfinite(risk.sum())) and bool(torch.isfinite(full.sum()))
    seconds = time.perf_counter() - began
    _learn("torch", n_steps * n_inits, seconds)
    if model.name == "relu-unit" and iterates.device.type == "cpu":
        native.torch_seconds_spent += seconds
    return _per_sample_where_not_finite(model, loss, iterates, x, y, risk, full, finite)


def _learn(kernel: str, n_points: int, seconds: float) -> None:
    """Keep the best rate a kernel reached on calls of at least 1e5 points."""
    if n_points >= 1e5 and seconds > 0:
        MOMENT_RATES[kernel] = max(MOMENT_RATES[kernel], n_points / seconds)


def _per_sample_where_not_finite(
    model: Model,
    loss: Loss,
    iterates: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    risk: torch.Tensor,
    full: torch.Tensor,
    finite: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``risk``, ``full`` with the points whose values are not finite evaluated per sample
    (skipped when ``finite`` says every value is)."""
    if not finite:  # rare: evaluate the points that are not finite per sample
        bad = ~(torch.isfinite(risk) & torch.isfinite(full).all(dim=1))  # (T, K)
        points = iterates.transpose(1, 2)[bad]  # (N, p)
        value, grad = path_quantities(model, loss, points, x, y, engine="plain")
        risk[bad] = value
        assert grad is not None
        full.transpose(1, 2)[bad] = grad
    return risk, full


def path_records(
    model: Model,
    loss: Loss,
    iterates: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    engine: str,
    risk: bool,
    full_gradient: bool,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The risk ``(T, K)`` and full gradient ``(T, K, p)`` at the iterates ``(T, p, K)``.

    Each is ``None`` when not asked for (neither is computed when neither is asked for).
    """
    if not (risk or full_gradient):
        return None, None
    n_steps, n_params, n_inits = iterates.shape
    if uses_moments(model, loss, engine, float(n_steps) * n_inits * x.shape[-1]):
        path_risk, path_full = moment_path(model, loss, iterates, x, y)
        return (
            path_risk if risk else None,
            path_full.transpose(1, 2) if full_gradient else None,
        )
    path = iterates.transpose(1, 2).reshape(-1, n_params)
    full_risk, full_grad = path_quantities(
        model, loss, path, x, y, engine=engine, gradient=full_gradient
    )
    return (
        full_risk.reshape(n_steps, n_inits) if risk else None,
        None if full_grad is None else full_grad.reshape(n_steps, n_inits, n_params),
    )
