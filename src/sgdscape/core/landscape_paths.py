"""How a landscape is computed: the cost model that picks a path, and the scale split.

:func:`sgdscape.core.landscape.landscape` computes on one of four paths: ``"native"``
(precompiled C kernels), ``"fused"`` (``torch.compile``), ``"direct"`` (one broadcast)
or ``"plain"`` (the chunked reference). :func:`choose_path` picks the one expected to
finish first, start-up included, from :data:`RATES` (updated by :func:`learn_rate` after
every call); :func:`plane_split` and :func:`scale_split` find grids whose first axis
moves only a model's scale parameter, which the native and fused paths exploit.
"""

from __future__ import annotations

import torch

from sgdscape.core import native
from sgdscape.core.grid import Plane
from sgdscape.core.kernels import SCALE_PARAMETER, is_builtin, is_warm, wants_fused
from sgdscape.core.losses import Loss
from sgdscape.core.models import MODELS, Model

#: plain path, per (point, sample): two float32 temporaries alive at once, the float64 copy
#: that a float64 sum makes, and a margin for the allocator
BYTES_PER_EVALUATION = 20

#: loss evaluations per second of each CPU path, ``(path, per_sample)``: the values a
#: process starts from (conservative, measured on a loaded 2-core machine); :data:`RATES`
#: holds them updated with what this process measured.
START_RATES: dict[tuple[str, bool], float] = {
    ("native", True): 1.5e9,  # per-sample grids into fresh memory, risk included
    ("native", False): 5e9,
    ("fused", True): 4e8,
    ("fused", False): 5e9,
    ("direct", True): 2e8,
    ("plain", True): 1e8,
    ("plain", False): 1e8,
}

RATES = dict(START_RATES)

#: ``auto`` charges a call a share of the one-time native build: 1/this (the library then
#: serves every later call and process on the machine). Work that would take a quarter of
#: the build on the other paths triggers it; the seed's small run (milliseconds) does not.
BUILD_AMORTISED_OVER = 4

#: per-sample landscapes of at most this many evaluations always take the ``direct`` path
#: (milliseconds; the seed's run is 1e6): their result never depends on the process's history
DIRECT_BELOW_EVALUATIONS = 2 * 10**6

#: seconds the first ``torch.compile``'d landscape call of a process costs before computing
#: (inductor's start with its disk cache warm: 3.5 s measured, up to 20 s under load).
FUSED_STARTUP_SECONDS = 5.0


def learn_rate(path: str, per_sample: bool, evaluations: float, seconds: float) -> None:
    """Remember the best rate a path ran at in this process (calls of at least 1e7
    evaluations). The best, not the last: on a shared machine a descheduled call would
    otherwise make a fast path look slow and flip the next choice."""
    key = (path, per_sample)
    if evaluations >= 1e7 and seconds > 0 and key in RATES:
        RATES[key] = max(RATES[key], evaluations / seconds)


def estimated_seconds(
    path: str, per_sample: bool, evaluations: float, startup: float = 0.0
) -> float:
    """Start-up plus ``evaluations`` at the path's known rate."""
    rate = RATES.get((path, per_sample), RATES[("plain", per_sample)])
    return startup + evaluations / rate


def choose_path(
    engine: str,
    model: Model,
    loss: Loss,
    n: int,
    n_points: int,
    per_sample: bool,
    split: tuple[torch.Tensor, torch.Tensor] | None,
    device: torch.device,
    working: int,
) -> str:
    """Which path computes this landscape: ``"native"``, ``"fused"``, ``"direct"`` or
    ``"plain"``.

    ``engine="auto"`` takes the path with the smallest expected time, start-up included:
    the native kernels cost nothing once loaded in this process and, before that, a quarter
    of a typical build (:data:`sgdscape.core.native.DEFAULT_BUILD_SECONDS`; one build serves
    every later call, :data:`BUILD_AMORTISED_OVER`) whether or not the library is already on
    disk, so the path a command takes, and its result to the last bit, does not depend on the
    cache's state; a compiled kernel costs
    :data:`FUSED_STARTUP_SECONDS` until it has run in this process. Rates are
    :data:`RATES`, updated from every call. So the seed's small run never builds or
    compiles anything, and large work pays each start-up once per machine or process.
    On CUDA, ``auto`` fuses large work (:func:`sgdscape.core.kernels.wants_fused`).
    """
    evaluations = float(n) * n_points
    native_ok = (
        split is not None
        and device.type == "cpu"
        and loss.name in native.LOSSES
        and is_builtin(model, loss)
    )
    if engine == "plain":
        return "plain"
    if engine == "native":
        return "native" if native_ok and native.library() is not None else "plain"
    if engine == "fused" or (
        device.type != "cpu" and wants_fused(engine, model, loss, evaluations)
    ):
        return "fused"
    direct_ok = (
        per_sample and is_builtin(model, loss) and n * n_points * BYTES_PER_EVALUATION <= working
    )
    if device.type != "cpu" or not is_builtin(model, loss):
        return "direct" if direct_ok else "plain"
    if direct_ok and evaluations <= DIRECT_BELOW_EVALUATIONS:
        # small per-sample work takes the one broadcast whatever this process measured or
        # loaded before, so it gives the same bits in any process (the CLI, the app, a
        # notebook that already ran a large landscape)
        return "direct"
    costs = {"plain": estimated_seconds("plain", per_sample, evaluations)}
    if direct_ok:
        costs["direct"] = estimated_seconds("direct", True, evaluations)
    if native_ok:
        startup = native.startup_seconds()  # 0 loaded, inf unavailable, else a load or build
        if not native.loaded() and startup != float("inf"):
            # a process's first use is charged the same whether or not the library is already
            # on disk (a share of a typical build: one build serves every later call and
            # process), so a run's path, and so its float rounding, never depends on the
            # cache's state: the same command gives the same run.npz on every run
            startup = native.DEFAULT_BUILD_SECONDS / BUILD_AMORTISED_OVER
        costs["native"] = estimated_seconds("native", per_sample, evaluations, startup)
    kinds = ("scaled-risk", "scaled-fill") if split is not None else ("risk", "fill")
    warm = all(is_warm(kind, model, loss, device) for kind in kinds[: 2 if per_sample else 1])
    costs["fused"] = estimated_seconds(
        "fused", per_sample, evaluations, 0.0 if warm else FUSED_STARTUP_SECONDS
    )
    return min(costs, key=costs.__getitem__)


def plane_split(
    model: Model, plane: Plane, a: torch.Tensor, b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """:func:`scale_split` of ``plane.points(a, b)`` without building the ``(G2, G1, p)``
    points: the split exists exactly when the first direction moves only the scale
    parameter and the second leaves it alone (then ``origin + a*d1 + b*d2`` puts the same
    value at every row of the scale coordinate and the same at every column of the others,
    as :func:`scale_split` checks point by point). ``scale`` and ``rows`` are then read from
    the first grid row and column, so they equal the full grid's values bit for bit."""
    index = SCALE_PARAMETER.get(model.name)
    builtin = MODELS.get(model.name)
    if index is None or builtin is None or builtin.function is not model.function:
        return None
    d1, d2 = plane.d1, plane.d2
    others = torch.cat([d1[:index], d1[index + 1 :]])
    if bool(d2[index] != 0) or bool((others != 0).any()):
        return None
    if not (bool(torch.isfinite(a).all()) and bool(torch.isfinite(b).all())):
        return None
    scale = plane.points(a, b[:1])[0, :, index].contiguous()
    rows = plane.points(a[:1], b)[:, 0].clone()
    rows[:, index] = 1.0
    return scale, rows


def scale_split(
    model: Model, grid_points: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(scale (G1,), rows (G2, p))`` when the grid's first axis moves only the model's
    scale parameter (:data:`sgdscape.core.kernels.SCALE_PARAMETER`): then the point ``(g2, g1)``
    is ``rows[g2]`` with the scale parameter set to ``scale[g1]``, and ``rows`` hold 1 there.
    ``None`` for any other grid or model. Checked on the points themselves, exactly.

    Args:
        grid_points: ``(G2, G1, p)`` parameters at every grid point.
    """
    index = SCALE_PARAMETER.get(model.name)
    builtin = MODELS.get(model.name)
    if index is None or builtin is None or builtin.function is not model.function:
        return None
    scale = grid_points[0, :, index]
    others = torch.cat([grid_points[..., :index], grid_points[..., index + 1 :]], dim=-1)
    if not (
        torch.equal(grid_points[..., index], scale.expand_as(grid_points[..., index]))
        and torch.equal(others, others[:, :1].expand_as(others))
    ):
        return None
    rows = grid_points[:, 0].clone()
    rows[:, index] = 1.0
    return scale.contiguous(), rows
