"""Loss landscapes: per-sample losses and the empirical risk on a grid of parameters.

The model is evaluated on every grid point at once (broadcast over the grid), in
chunks sized from a memory budget, never one giant broadcast. Which of the four paths
computes it (native, fused, direct, plain) is chosen in :mod:`sgdscape.core.landscape_paths`,
whose names this module re-exports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from sgdscape.core import native
from sgdscape.core.devices import one_thread_when_small, resolve_device
from sgdscape.core.grid import Grid, Plane
from sgdscape.core.kernels import (
    RISK_SAMPLE_BLOCK,
    check_engine,
    fused_fill,
    fused_risk,
    scaled_fill,
    scaled_risk,
)
from sgdscape.core.landscape_paths import (
    BUILD_AMORTISED_OVER,
    BYTES_PER_EVALUATION,
    FUSED_STARTUP_SECONDS,
    RATES,
    START_RATES,
    choose_path,
    estimated_seconds,
    learn_rate,
    plane_split,
    scale_split,
)
from sgdscape.core.losses import Loss, get_loss
from sgdscape.core.models import Model, get_model
from sgdscape.core.problems import Dataset
from sgdscape.errors import SgdscapeError

__all__ = [
    "BUILD_AMORTISED_OVER",
    "BYTES_PER_EVALUATION",
    "DEFAULT_MEMORY_BUDGET",
    "FUSED_STARTUP_SECONDS",
    "RATES",
    "START_RATES",
    "Landscape",
    "Progress",
    "choose_path",
    "estimated_seconds",
    "landscape",
    "learn_rate",
    "per_sample_bytes",
    "plane_split",
    "scale_split",
]

DEFAULT_MEMORY_BUDGET = 2**30  # bytes of working memory: 1 GiB

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Landscape:
    """Losses on a grid, with their coordinates.

    Attributes:
        w1: first plot coordinate, shape ``(G1,)`` (columns).
        w2: second plot coordinate, shape ``(G2,)`` (rows).
        risk: empirical risk (mean loss over samples), shape ``(G2, G1)``.
        sample_loss: loss of every sample, shape ``(n_samples, G2, G1)``, or ``None`` when
            only the risk was computed.
        labels: names of the two coordinates (parameter names for axis-aligned slices).
        loss: name of the loss.
        model: name of the model.
    """

    w1: np.ndarray
    w2: np.ndarray
    risk: np.ndarray
    sample_loss: np.ndarray | None = None
    labels: tuple[str, str] = ("w1", "w2")
    loss: str = "mse"
    model: str = "relu-unit"
    plane: Plane | None = field(default=None, compare=False, repr=False)

    def batch_loss(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Mean loss of the samples ``indices``, shape ``(G2, G1)``; needs ``sample_loss``."""
        if self.sample_loss is None:
            raise SgdscapeError(
                "this landscape holds the risk only; compute the minibatch landscape with "
                "landscape(model, subset_of_data, grid, per_sample=False)."
            )
        index = np.asarray(indices, dtype=np.int64)
        index = index[index >= 0]
        mean: np.ndarray = self.sample_loss[index].mean(axis=0)
        return mean


def per_sample_bytes(n_samples: int, grid: Grid) -> int:
    """Bytes needed to hold every per-sample grid, ``(n_samples, G2, G1)`` in float32."""
    rows, columns = grid.shape
    return 4 * n_samples * rows * columns


def landscape(
    model: str | Model,
    data: Dataset,
    grid: Grid | None = None,
    *,
    loss: str | Loss = "mse",
    plane: Plane | None = None,
    per_sample: bool = True,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    device: str | torch.device = "cpu",
    progress: Progress | None = None,
    engine: str = "auto",
) -> Landscape:
    """Evaluate the loss of every sample at every grid point.

    Args:
        model: a registry name or :class:`Model`.
        data: the samples, ``x, y: (n, 1)``.
        grid: the window of plot coordinates (default: the seed's 100x100 on [-3, 3]^2).
        loss: elementwise loss, by name or object.
        plane: how plot coordinates map to parameters (default: the first two parameters,
            the others at 0).
        per_sample: keep ``sample_loss (n, G2, G1)``; with ``False`` only the risk is
            computed and per-sample grids are never all in memory at once.
        memory_budget: bytes of memory this call may use, output included.
        device: where to compute (``"cpu"``, ``"cuda"``, ``"auto"``).
        progress: called as ``progress(done_chunks, total_chunks)``.
        engine: ``"auto"`` (the path expected to finish first, start-up included: see
            :func:`choose_path`), ``"native"`` (precompiled C kernels,
            :mod:`sgdscape.core.native`), ``"fused"`` (``torch.compile``,
            :mod:`sgdscape.core.kernels`) or ``"plain"`` (the broadcast reference).

    Returns:
        A :class:`Landscape` with float32 numpy arrays on the CPU.

    Examples:
        The seed's experiment: 100 samples of the ground truth on the seed's 100x100 grid.

        >>> from sgdscape import Grid, ground_truth, landscape
        >>> result = landscape("relu-unit", ground_truth(100, seed=0), Grid.square(100))
        >>> result.sample_loss.shape, result.risk.shape
        ((100, 100, 100), (100, 100))
        >>> bool(abs(result.risk - result.sample_loss.mean(axis=0)).max() < 1e-5)
        True

        The risk alone, without keeping every sample's grid:

        >>> landscape("relu-unit", ground_truth(100, seed=0), per_sample=False).sample_loss is None
        True
    """
    model = get_model(model)
    loss_fn = get_loss(loss)
    grid = grid or Grid()
    plane = plane or Plane.through(model.param_names)
    if plane.origin.shape[0] != model.n_params:
        raise SgdscapeError(
            f"the plane has {plane.origin.shape[0]} parameters but model {model.name!r} "
            f"has {model.n_params}."
        )
    budget = int(memory_budget)
    if budget <= 0:
        raise SgdscapeError(f"memory_budget must be a positive number of bytes, got {budget}.")
    engine = check_engine(engine)
    target = resolve_device(device)
    n = len(data)
    rows, columns = grid.shape
    n_points = rows * columns
    output_bytes = 4 * n_points + (per_sample_bytes(n, grid) if per_sample else 0)
    working = budget - output_bytes
    if working < BYTES_PER_EVALUATION * min(n, 1024):
        what = "every per-sample grid" if per_sample else "the risk"
        raise SgdscapeError(
            f"a {columns}x{rows} grid with {n} samples needs {output_bytes / 2**20:.0f} MiB for "
            f"{what}, more than the memory budget of {budget / 2**20:.0f} MiB; use a smaller "
            "grid, per_sample=False, or a larger memory budget."
        )

    w1_axis, w2_axis = grid.axes()
    a = torch.from_numpy(w1_axis).to(target)
    b = torch.from_numpy(w2_axis).to(target)
    x = data.x.to(target).reshape(-1)
    y = data.y.to(target).reshape(-1)

    if target.type == "cuda":  # the chunks also fit what the device has free right now
        free, _ = torch.cuda.mem_get_info(target)
        working = max(1, min(working, int(0.8 * free) - output_bytes))

    split = plane_split(model, plane, a, b) if engine != "plain" else None
    path = choose_path(engine, model, loss_fn, n, n_points, per_sample, split, target, working)
    began = time.perf_counter()
    fused: tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray | None] | None = None
    risk: torch.Tensor | np.ndarray
    sample_loss: torch.Tensor | np.ndarray | None
    if path == "native" and split is not None:
        fused = _native(model, loss_fn.name, *split, x, y, per_sample, progress)
    if fused is None:  # every other path evaluates the model at every grid point
        points = plane.points(a, b).reshape(n_points, model.n_params)
    if path == "fused":
        if split is not None:
            fused = _fused_scaled(model, loss_fn, *split, x, y, per_sample, progress)
        if fused is None:
            fused = _fused(model, loss_fn, points, x, y, per_sample, progress)
    if fused is not None:
        risk, sample_loss = fused
    elif path == "direct":
        risk, sample_loss = _direct(model, loss_fn, points, x, y)
        if progress is not None:
            progress(1, 1)
    else:
        path = "plain"
        risk, sample_loss = _plain(
            model, loss_fn, points, x, y, per_sample, working, target, progress
        )
    if target.type == "cpu":
        learn_rate(path, per_sample, float(n) * n_points, time.perf_counter() - began)

    return Landscape(
        w1=w1_axis,
        w2=w2_axis,
        risk=_numpy(risk).reshape(rows, columns),
        sample_loss=None if sample_loss is None else _numpy(sample_loss).reshape(n, rows, columns),
        labels=plane.labels,
        loss=loss_fn.name,
        model=model.name,
        plane=plane,
    )


def _numpy(values: torch.Tensor | np.ndarray) -> np.ndarray:
    return values if isinstance(values, np.ndarray) else values.cpu().numpy()


def sample_blocks(n: int) -> list[tuple[int, int]]:
    """The ``(start, stop)`` ranges that split ``n`` samples into blocks of at most
    ``RISK_SAMPLE_BLOCK``, in order (the unit of work and of progress of the risk paths)."""
    return [(s0, min(s0 + RISK_SAMPLE_BLOCK, n)) for s0 in range(0, n, RISK_SAMPLE_BLOCK)]


def _fresh(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """An uninitialised float32 output; on the CPU numpy's memory, which numpy backs with
    transparent huge pages (``madvise``) so that first touch faults 2 MiB at a time."""
    if device.type != "cpu":
        return torch.empty(shape, device=device)
    return torch.from_numpy(np.empty(shape, dtype=np.float32))


def _native(
    model: Model,
    loss: str,
    scale: torch.Tensor,
    rows: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    per_sample: bool,
    progress: Progress | None,
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """:func:`_fused_scaled` on the native kernels: risk ``(P,)`` and per-sample losses
    ``(n, P)`` as numpy arrays, the per-sample ones written once into fresh numpy memory
    (huge pages, first-touched by the thread that computes them); ``None`` if the kernels
    are unavailable or the data is not float32."""
    if native.library() is None or not (
        scale.dtype == rows.dtype == x.dtype == y.dtype == torch.float32
    ):
        return None
    n, n_rows, columns = x.shape[0], rows.shape[0], scale.shape[0]
    threads = torch.get_num_threads()
    scale_values = np.ascontiguousarray(scale.cpu().numpy())
    targets = np.ascontiguousarray(y.cpu().numpy())
    total = np.zeros((n_rows, columns))
    sample_loss = np.empty((n, n_rows, columns), dtype=np.float32) if per_sample else None
    blocks = sample_blocks(n)
    with torch.no_grad():
        for done, (s0, s1) in enumerate(blocks, start=1):
            with one_thread_when_small(n_rows * (s1 - s0), x.device, 2**22):
                hidden = model.function(rows, x[s0:s1]).cpu().numpy()  # (G2, b)
            hidden = np.ascontiguousarray(hidden)
            native.scaled_risk(total, scale_values, hidden, targets[s0:s1], loss, threads)
            if sample_loss is not None:
                native.scaled_fill(
                    sample_loss[s0:s1],
                    scale_values,
                    np.ascontiguousarray(hidden.T),
                    targets[s0:s1],
                    loss,
                    threads,
                )
            if progress is not None:
                progress(done, len(blocks))
    risk = (total / n).astype(np.float32).reshape(-1)
    return risk, None if sample_loss is None else sample_loss.reshape(n, -1)


def _fused_scaled(
    model: Model,
    loss_fn: Loss,
    scale: torch.Tensor,
    rows: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    per_sample: bool,
    progress: Progress | None,
) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """:func:`_fused` for a grid split by :func:`scale_split`: the model's hidden values are
    computed once per grid row and sample, every loss once per grid point and sample."""
    n, columns, n_rows = x.shape[0], scale.shape[0], rows.shape[0]
    blocks = sample_blocks(n)
    total = len(blocks) * (2 if per_sample else 1)
    total_loss = torch.zeros(n_rows, columns, dtype=torch.float64, device=x.device)
    sample_loss = _fresh((n, n_rows, columns), x.device) if per_sample else None
    with torch.no_grad():
        for done, (s0, s1) in enumerate(blocks, start=1):
            hidden = model.function(rows, x[s0:s1]).contiguous()  # (G2, block)
            summed = scaled_risk(model, loss_fn, scale, hidden, y[s0:s1])
            if summed is None:
                return None
            total_loss += summed
            if sample_loss is not None and not scaled_fill(
                model, loss_fn, sample_loss[s0:s1], scale, hidden, y[s0:s1]
            ):
                return None
            if progress is not None:
                progress(done * (2 if per_sample else 1), total)
    risk = (total_loss / n).float().reshape(-1)
    return risk, None if sample_loss is None else sample_loss.reshape(n, -1)


def _fused(
    model: Model,
    loss_fn: Loss,
    points: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    per_sample: bool,
    progress: Progress | None,
) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """Risk ``(P,)`` and per-sample losses ``(n, P)`` from fused kernels; ``None`` if unavailable.

    The kernels never hold a ``(points, samples)`` intermediate: the risk is one reduction
    kernel, and per-sample losses are written in place into their output, a block of
    sample rows at a time (for progress).
    """
    n_points, n = points.shape[0], x.shape[0]
    wt = points.T.contiguous()  # (p, P): one contiguous row per parameter
    point_blocks = 16 if progress is not None else 1
    blocks = sample_blocks(n)
    total = point_blocks * len(blocks) + (point_blocks if per_sample else 0)
    done = 0
    risk = torch.empty(n_points, device=points.device)
    step = max(1, -(-n_points // point_blocks))
    for start in range(0, n_points, step):
        stop = min(start + step, n_points)
        part = wt[:, start:stop].contiguous()
        total_loss = torch.zeros(stop - start, dtype=torch.float64, device=points.device)
        for s0, s1 in blocks:
            summed = fused_risk(model, loss_fn, part, x[s0:s1], y[s0:s1])
            if summed is None:
                return None
            total_loss += summed
            done += 1
            if progress is not None:
                progress(done, total)
        risk[start:stop] = total_loss / n
    if not per_sample:
        return risk, None
    sample_loss = _fresh((n, n_points), points.device)
    step = max(1, -(-n // point_blocks))
    for start in range(0, n, step):
        stop = min(start + step, n)
        if not fused_fill(
            model, loss_fn, sample_loss[start:stop], wt, x[start:stop], y[start:stop]
        ):
            return None
        done += 1
        if progress is not None:
            progress(done, total)
    return risk, sample_loss


def _direct(
    model: Model, loss_fn: Loss, points: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Small runs of built-in models: one broadcast laid out ``(n, P)`` as the output is.

    The built-in models and losses are elementwise in ``x``, so samples can sit on a
    leading axis: the per-sample grids come out in their final layout (no transposed
    copy) and the risk is their mean. Same arithmetic as the plain path.
    """
    with torch.no_grad():
        values = loss_fn.function(model.function(points[None], x[:, None, None]), y[:, None, None])[
            ..., 0
        ]  # (n, P)
        return values.mean(dim=0), values


def _plain(
    model: Model,
    loss_fn: Loss,
    points: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    per_sample: bool,
    working: int,
    target: torch.device,
    progress: Progress | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The reference: plain broadcast torch, in chunks sized from ``working`` bytes."""
    n_points, n = points.shape[0], x.shape[0]
    evaluations = max(1, working // BYTES_PER_EVALUATION)
    sample_chunk = int(min(n, evaluations))
    point_chunk = int(max(1, min(n_points, evaluations // sample_chunk)))

    risk = torch.empty(n_points, device=target)
    sample_loss = _fresh((n, n_points), target) if per_sample else None
    starts = range(0, n_points, point_chunk)
    with torch.no_grad():
        for done, start in enumerate(starts, start=1):
            stop = min(start + point_chunk, n_points)
            w = points[start:stop]
            if sample_chunk == n:
                values = loss_fn(model(w, x), y)  # (chunk, n)
                risk[start:stop] = values.mean(dim=-1)
                if sample_loss is not None:
                    sample_loss[:, start:stop] = values.T
            else:
                total = torch.zeros(stop - start, device=target, dtype=torch.float64)
                for s0 in range(0, n, sample_chunk):
                    s1 = min(s0 + sample_chunk, n)
                    values = loss_fn(model(w, x[s0:s1]), y[s0:s1])
                    total += values.sum(dim=-1, dtype=torch.float64)
                    if sample_loss is not None:
                        sample_loss[s0:s1, start:stop] = values.T
                risk[start:stop] = (total / n).float()
            if progress is not None:
                progress(done, len(starts))
    return risk, sample_loss
