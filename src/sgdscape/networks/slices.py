"""Loss landscapes of any PyTorch model on a 2-D slice of its parameters, and on a 1-D line.

A slice is the affine map ``theta(a, b) = origin + a*d1 + b*d2`` of the flattened
parameters (Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets"): the grid's
points are split into chunks (:class:`ChunkPlan`, optionally checkpointed on disk) and each
chunk is evaluated by an :class:`~sgdscape.networks.evaluation.Evaluator`, in this process
(:func:`evaluate_chunks`) or on a Ray cluster (:mod:`sgdscape.networks.ray_backend`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sgdscape.core.grid import Grid
from sgdscape.core.landscape import DEFAULT_MEMORY_BUDGET, Landscape
from sgdscape.errors import SgdscapeError
from sgdscape.networks.chunks import ChunkPlan, Progress, chunk_fingerprint, evaluate_chunks
from sgdscape.networks.directions import Directions
from sgdscape.networks.evaluation import Evaluator
from sgdscape.networks.losses import LossFn, loss_name
from sgdscape.networks.parameters import as_flat, parameter_layout


def _as_grid(grid: Grid | int | None) -> Grid:
    if grid is None:
        return Grid.square(41, -1.0, 1.0)
    if isinstance(grid, Grid):
        return grid
    if isinstance(grid, int) and not isinstance(grid, bool):
        return Grid.square(grid, -1.0, 1.0)
    raise SgdscapeError(f"grid must be a Grid or a number of points per axis, got {grid!r}.")


def grid_coords(grid: Grid) -> torch.Tensor:
    """Slice coordinates of every grid point, ``(G2*G1, 2)``, rows (w2) major."""
    w1, w2 = grid.axes()
    b, a = np.meshgrid(w2, w1, indexing="ij")
    return torch.from_numpy(np.stack([a.reshape(-1), b.reshape(-1)], axis=1))


def slice_landscape(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    *,
    directions: Directions,
    grid: Grid | int | None = None,
    device: str | torch.device = "cpu",
    batch_size: int | None = None,
    backend: str | Any = "local",
    progress: Progress | None = None,
    per_sample: bool = False,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    checkpoint_dir: str | Path | None = None,
    chunk_points: int | None = None,
    use_algebra: bool = True,
    precision: str = "float32",
) -> Landscape:
    """The loss of ``model`` on the 2-D slice ``directions`` over ``grid``.

    Args:
        model: any ``nn.Module`` taking one input tensor; never modified (it is copied and
            evaluated in eval mode).
        loss_fn: ``loss_fn(output, target)`` returning the *mean* loss of a batch (e.g.
            ``nn.CrossEntropyLoss()``).
        data: ``(x, y)`` tensors or a ``DataLoader``; moved to ``device`` once.
        directions: the slice (:func:`random_directions`, :func:`pca_directions`, ...).
        grid: a :class:`Grid` of slice coordinates ``(a, b)``, or a number of points per
            axis on ``[-1, 1]^2`` (default 41).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        batch_size: samples per evaluation batch (default: sized from ``memory_budget``).
        backend: ``"local"``, ``"ray"`` or a :class:`sgdscape.core.distributed.RayBackend`.
        progress: called as ``progress(done_chunks, total_chunks)``.
        per_sample: also keep every sample's loss, ``sample_loss: (n, G2, G1)``.
        memory_budget: bytes of working memory per worker.
        checkpoint_dir: save every finished chunk there; a rerun resumes from them.
        chunk_points: grid points per chunk (default: sized from ``memory_budget``).
        use_algebra: use the first-layer algebra when the model allows it.
        precision: ``"float32"``, or ``"bfloat16"`` / ``"float16"`` for mixed precision
            through ``torch.autocast`` (for GPUs: the products in half precision, the
            losses summed in float32; expect about 1% relative error).

    Returns:
        A :class:`~sgdscape.core.landscape.Landscape`: ``w1 (G1,)``, ``w2 (G2,)`` slice
        coordinates, ``risk (G2, G1)``, ``sample_loss (n, G2, G1) | None``.

    Examples:
        A small MLP on random data; the centre of the slice, ``(a, b) = (0, 0)``, is the model
        itself, so its risk is the model's own loss:

        >>> import torch
        >>> from torch import nn
        >>> from sgdscape import random_directions, slice_landscape
        >>> with torch.random.fork_rng():
        ...     _ = torch.manual_seed(0)
        ...     model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 3))
        >>> generator = torch.Generator().manual_seed(0)
        >>> x, y = torch.randn(64, 2, generator=generator), torch.randint(0, 3, (64,), generator=generator)
        >>> plane = random_directions(model, seed=0)
        >>> view = slice_landscape(model, nn.CrossEntropyLoss(), (x, y), directions=plane, grid=5)
        >>> view.risk.shape, view.w1.tolist()
        ((5, 5), [-1.0, -0.5, 0.0, 0.5, 1.0])
        >>> own = nn.CrossEntropyLoss()(model(x), y).item()
        >>> bool(abs(view.risk[2, 2] - own) < 1e-5)
        True
    """
    grid = _as_grid(grid)
    if (tuple(directions.names), directions.shapes) != parameter_layout(model):
        raise SgdscapeError(
            "the directions were made for another model (parameter layout differs)."
        )
    evaluator = Evaluator(
        model,
        loss_fn,
        data,
        device=device,
        batch_size=batch_size,
        memory_budget=memory_budget,
        use_algebra=use_algebra,
        precision=precision,
    )
    coords = grid_coords(grid)
    chunk = int(chunk_points) if chunk_points else evaluator.chunk
    if chunk < 1:
        raise SgdscapeError(f"chunk_points must be a positive integer, got {chunk_points}.")
    plan = ChunkPlan(
        coords,
        chunk,
        None if checkpoint_dir is None else Path(checkpoint_dir),
        per_sample=per_sample,
    )
    plan.fingerprint = chunk_fingerprint(evaluator, directions, coords)
    done = plan.prepare()
    if done and progress is not None:
        progress(len(done), len(plan.starts))
    if backend == "local":
        done = evaluate_chunks(evaluator, directions, plan, done, progress)
    else:
        from sgdscape.networks.ray_backend import evaluate_chunks_on_ray

        done = evaluate_chunks_on_ray(backend, evaluator, directions, plan, done, progress)
    rows, columns = grid.shape
    risk = np.concatenate([done[i][0] for i in range(len(plan.starts))])
    samples = None
    if per_sample:
        samples = np.concatenate([done[i][1] for i in range(len(plan.starts))], axis=1)
        samples = samples.reshape(evaluator.n, rows, columns)
    w1, w2 = grid.axes()
    return Landscape(
        w1=w1,
        w2=w2,
        risk=risk.reshape(rows, columns),
        sample_loss=samples,
        labels=directions.labels,
        loss=loss_name(loss_fn),
        model=type(model).__name__,
        plane=directions.plane,
    )


@dataclass(frozen=True)
class LineLandscape:
    """Loss along the line ``theta(t) = start + t * (end - start)``.

    Attributes:
        t: ``(G,)`` interpolation coefficients (0 = start, 1 = end).
        risk: ``(G,)`` loss there.
    """

    t: np.ndarray
    risk: np.ndarray
    label: str = "start → end"


def line_landscape(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    start: Any,
    end: Any,
    *,
    points: int = 51,
    t_range: tuple[float, float] = (-0.5, 1.5),
    device: str | torch.device = "cpu",
    batch_size: int | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> LineLandscape:
    """1-D linear interpolation between two parameter sets (modules, dicts or vectors)."""
    if int(points) < 2:
        raise SgdscapeError(f"a line needs at least 2 points, got {points}.")
    names, shapes = parameter_layout(model)
    a = as_flat(start, model, "start")
    d = as_flat(end, model, "end") - a
    directions = Directions(a, d, torch.zeros_like(d), names, shapes, ("t", ""), kind="line")
    evaluator = Evaluator(
        model, loss_fn, data, device=device, batch_size=batch_size, memory_budget=memory_budget
    )
    t = np.linspace(t_range[0], t_range[1], int(points), dtype=np.float32)
    coords = torch.from_numpy(np.stack([t, np.zeros_like(t)], axis=1))
    risk, _ = evaluator.evaluate_plane(directions, coords)
    return LineLandscape(t, risk.cpu().numpy())
