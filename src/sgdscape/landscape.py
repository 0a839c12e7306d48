"""Loss landscapes: per-sample losses and the empirical risk on a grid of parameters.

The model is evaluated on every grid point at once (broadcast over the grid), in
chunks sized from a memory budget, never one giant broadcast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from sgdscape.devices import resolve_device
from sgdscape.errors import SgdscapeError
from sgdscape.grid import Grid, Plane
from sgdscape.losses import Loss, get_loss
from sgdscape.models import Model, get_model
from sgdscape.problems import Dataset

DEFAULT_MEMORY_BUDGET = 2**30  # bytes of working memory: 1 GiB
BYTES_PER_EVALUATION = 16  # float32 prediction, loss and two temporaries per (point, sample)

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
        return self.sample_loss[index].mean(axis=0)


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

    Returns:
        A :class:`Landscape` with float32 numpy arrays on the CPU.
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
    points = plane.points(a, b).reshape(n_points, model.n_params)
    x = data.x.to(target).reshape(-1)
    y = data.y.to(target).reshape(-1)

    evaluations = max(1, working // BYTES_PER_EVALUATION)
    sample_chunk = int(min(n, evaluations))
    point_chunk = int(max(1, min(n_points, evaluations // sample_chunk)))

    risk = torch.empty(n_points, device=target)
    sample_loss = torch.empty(n, n_points, device=target) if per_sample else None
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

    return Landscape(
        w1=w1_axis,
        w2=w2_axis,
        risk=risk.reshape(rows, columns).cpu().numpy(),
        sample_loss=None
        if sample_loss is None
        else sample_loss.reshape(n, rows, columns).cpu().numpy(),
        labels=plane.labels,
        loss=loss_fn.name,
        model=model.name,
        plane=plane,
    )
