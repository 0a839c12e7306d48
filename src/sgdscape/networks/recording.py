"""The seed's stochastic view for real networks.

:func:`record_training` trains a *copy* of a model with any ``torch.optim`` optimizer and
records the flattened parameters at every step together with the minibatch indices.
:func:`stochastic_view` projects that path on its PCA plane (Li et al. 2018) and computes,
on that plane, the full-data landscape and the landscape of the minibatch used at each
step: the notebook's two panels for a real network. The view's record and its file
(:class:`StochasticView`, :func:`save_view`, :func:`load_view`) live in
:mod:`sgdscape.networks.saved_view` and are re-exported here.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sgdscape.core.devices import one_thread_when_small, resolve_device
from sgdscape.core.grid import Grid
from sgdscape.core.landscape import DEFAULT_MEMORY_BUDGET
from sgdscape.errors import SgdscapeError
from sgdscape.networks.chunks import Progress
from sgdscape.networks.directions import pca_directions
from sgdscape.networks.evaluation import Evaluator, activation_elements
from sgdscape.networks.losses import LossFn
from sgdscape.networks.parameters import as_tensors, flat_parameters, parameter_layout
from sgdscape.networks.saved_view import (
    INFO_TYPES,
    VIEW_KEYS,
    VIEW_SCHEMA,
    StochasticView,
    load_view,
    save_view,
    view_info,
)
from sgdscape.networks.slices import slice_landscape

__all__ = [
    "INFO_TYPES",
    "MAX_RECORD_BYTES",
    "SINGLE_THREAD_TRAINING_BELOW",
    "VIEW_KEYS",
    "VIEW_SCHEMA",
    "Recording",
    "StochasticView",
    "load_view",
    "plane_window",
    "record_training",
    "save_view",
    "select_steps",
    "stochastic_view",
    "view_info",
]

MAX_RECORD_BYTES = 2 * 2**30
#: below this many activation elements per minibatch, CPU training runs on one thread:
#: an OpenMP region over a few microseconds of work costs more than it saves, and much
#: more on a busy machine (the digits MLP trained 2.8x faster so on a shared 2-core CPU).
SINGLE_THREAD_TRAINING_BELOW = 2**18


def _training_threads(
    model: nn.Module, x: torch.Tensor, batch_size: int, device: torch.device
) -> contextlib.AbstractContextManager[None]:
    """One torch CPU thread while training when a minibatch is small work."""
    if device.type != "cpu" or torch.get_num_threads() == 1:
        return contextlib.nullcontext()
    probe = x[:4].to(torch.float32 if x.is_floating_point() else x.dtype)
    work = activation_elements(copy.deepcopy(model).eval(), probe) * batch_size
    return one_thread_when_small(work, device, SINGLE_THREAD_TRAINING_BELOW)


@dataclass(frozen=True)
class Recording:
    """A recorded training run of a real network.

    Step ``t`` records the iterate *before* the update, as :class:`sgdscape.core.train.Trajectory`.

    Attributes:
        model: a CPU copy of the model at initialisation (the architecture for slicing).
        loss_fn: the mean loss used for training and slicing.
        x, y: the data set ``(n, ...)`` on the CPU.
        iterates: ``(T + 1, p)`` flattened parameters before each step; the last row is the
            final iterate.
        grads: ``(T, p)`` minibatch gradient at each iterate.
        batch_indices: ``(T, B)`` sample indices of each minibatch, padded with -1.
        batch_loss: ``(T,)`` minibatch loss at each iterate.
        optimizer, lr, batch_size, epochs, seed: how it was trained.
        diverged_step: first step whose loss was not finite (-1 if none); recording stops.
        name: a label (the example's name or the model's class).
    """

    model: nn.Module
    loss_fn: LossFn
    x: torch.Tensor
    y: torch.Tensor
    iterates: np.ndarray
    grads: np.ndarray
    batch_indices: np.ndarray
    batch_loss: np.ndarray
    optimizer: str
    lr: float
    batch_size: int
    epochs: int
    seed: int
    diverged_step: int = -1
    name: str = "model"

    @property
    def n_steps(self) -> int:
        """Number of recorded steps ``T``."""
        return int(self.batch_indices.shape[0])

    def batch(self, step: int) -> np.ndarray:
        """Sample indices of the minibatch used at ``step``."""
        row: np.ndarray = self.batch_indices[step]
        return row[row >= 0]


def _optimizer_factory(optimizer: str | Callable[..., torch.optim.Optimizer]) -> tuple[Any, str]:
    if callable(optimizer) and not isinstance(optimizer, str):
        return optimizer, getattr(optimizer, "__name__", type(optimizer).__name__)
    by_name = {
        name.lower(): getattr(torch.optim, name)
        for name in dir(torch.optim)
        if isinstance(getattr(torch.optim, name), type)
        and issubclass(getattr(torch.optim, name), torch.optim.Optimizer)
        and name != "Optimizer"
    }
    key = str(optimizer).lower()
    if key not in by_name:
        raise SgdscapeError(
            f"unknown optimizer {optimizer!r}; choose a torch.optim class name: "
            f"{', '.join(sorted(by_name))}."
        )
    return by_name[key], by_name[key].__name__


def record_training(
    model: nn.Module,
    loss_fn: LossFn,
    data: Any,
    *,
    optimizer: str | Callable[..., torch.optim.Optimizer] = "sgd",
    lr: float = 0.1,
    batch_size: int = 32,
    epochs: int = 1,
    seed: int = 0,
    optimizer_options: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
    max_steps: int | None = None,
    name: str | None = None,
) -> Recording:
    """Train a copy of ``model`` and record every iterate and minibatch.

    Minibatches are drawn without replacement, a fresh permutation per epoch from a
    ``torch.Generator`` seeded with ``seed``; the last, smaller batch of an epoch is kept.
    The user's model is never modified.

    Args:
        optimizer: a ``torch.optim`` class name (case-insensitive, e.g. ``"sgd"``,
            ``"adam"``) or a callable ``optimizer(params, lr=lr, **options)``.
        max_steps: stop after this many steps (default: ``epochs`` full epochs).
    """
    x, y = as_tensors(data)
    n = int(x.shape[0])
    if not np.isfinite(lr) or lr <= 0:
        raise SgdscapeError(f"lr must be a positive finite number, got {lr}.")
    if int(batch_size) < 1 or int(batch_size) > n:
        raise SgdscapeError(
            f"batch_size must be between 1 and {n} (the samples), got {batch_size}."
        )
    if int(epochs) < 1:
        raise SgdscapeError(f"epochs must be a positive integer, got {epochs}.")
    factory, optimizer_name = _optimizer_factory(optimizer)
    target = resolve_device(device)
    _, shapes = parameter_layout(model)
    p = sum(int(np.prod(s)) for s in shapes)
    per_epoch = -(-n // int(batch_size))
    steps = (
        int(epochs) * per_epoch if max_steps is None else min(int(max_steps), epochs * per_epoch)
    )
    if 8 * p * (steps + 1) > MAX_RECORD_BYTES:
        raise SgdscapeError(
            f"recording {steps} steps of {p} parameters needs "
            f"{8 * p * (steps + 1) / 2**30:.1f} GiB; use fewer steps (max_steps) or a smaller model."
        )
    template = copy.deepcopy(model).cpu().float()
    with _training_threads(template, x, int(batch_size), target):
        trained = copy.deepcopy(template).to(target).train()
        for parameter in trained.parameters():
            parameter.requires_grad_(True)
        try:
            opt = factory(trained.parameters(), lr=lr, **dict(optimizer_options or {}))
        except TypeError as error:
            raise SgdscapeError(f"bad optimizer options for {optimizer_name}: {error}.") from None
        xs = x.to(target, torch.float32 if x.is_floating_point() else x.dtype)
        ys = y.to(target)
        generator = torch.Generator().manual_seed(int(seed))
        iterates = np.full((steps + 1, p), np.nan, dtype=np.float32)
        grads = np.full((steps, p), np.nan, dtype=np.float32)
        batch_indices = np.full((steps, int(batch_size)), -1, dtype=np.int64)
        batch_loss = np.full(steps, np.nan, dtype=np.float32)
        diverged = -1
        step = 0
        for _ in range(int(epochs)):
            order = torch.randperm(n, generator=generator)
            for start in range(0, n, int(batch_size)):
                if step >= steps:
                    break
                index = order[start : start + int(batch_size)]
                iterates[step] = flat_parameters(trained).numpy()
                batch_indices[step, : index.numel()] = index.numpy()
                opt.zero_grad(set_to_none=False)
                device_index = index.to(target)
                loss = loss_fn(trained(xs[device_index]), ys[device_index])
                torch.autograd.backward(loss)
                batch_loss[step] = float(loss.detach())
                grads[step] = (
                    torch.cat(
                        [
                            (q.grad if q.grad is not None else torch.zeros_like(q))
                            .detach()
                            .reshape(-1)
                            for q in trained.parameters()
                        ]
                    )
                    .cpu()
                    .numpy()
                )
                if not np.isfinite(batch_loss[step]) or not np.isfinite(grads[step]).all():
                    diverged = step
                    break
                opt.step()
                step += 1
            if diverged >= 0 or step >= steps:
                break
        if diverged >= 0:
            iterates, grads = iterates[: diverged + 1], grads[:diverged]
            batch_indices, batch_loss = batch_indices[:diverged], batch_loss[:diverged]
        else:
            iterates[step] = flat_parameters(trained).numpy()
    return Recording(
        model=template,
        loss_fn=loss_fn,
        x=x.cpu(),
        y=y.cpu(),
        iterates=iterates,
        grads=grads,
        batch_indices=batch_indices,
        batch_loss=batch_loss,
        optimizer=optimizer_name,
        lr=float(lr),
        batch_size=int(batch_size),
        epochs=int(epochs),
        seed=int(seed),
        diverged_step=diverged,
        name=name or type(model).__name__,
    )


def plane_window(path: np.ndarray, points: int, margin: float = 0.3) -> Grid:
    """A grid around a projected path ``(T, 2)``: its extent plus ``margin`` of its span."""
    low, high = path.min(axis=0).astype(np.float64), path.max(axis=0).astype(np.float64)
    span = np.maximum(high - low, 1e-3 * max(float(np.max(high - low)), 1e-6))
    low, high = low - margin * span, high + margin * span
    return Grid((float(low[0]), float(high[0]), points), (float(low[1]), float(high[1]), points))


def select_steps(steps: Sequence[int] | int | None, n_steps: int) -> np.ndarray:
    """Steps to store: a list, a count (evenly spaced, first and last included) or all."""
    if steps is None:
        return np.arange(n_steps)
    if isinstance(steps, bool):  # a bool is an int to Python, never a count here
        raise SgdscapeError(f"steps must be a list, a positive count or None, got {steps}.")
    if isinstance(steps, int):
        if steps < 1:
            raise SgdscapeError(f"steps must be a positive count, got {steps}.")
        return np.unique(np.linspace(0, n_steps - 1, min(steps, n_steps)).round().astype(int))
    chosen = np.asarray(list(steps), dtype=np.int64)
    bad = chosen[(chosen < 0) | (chosen >= n_steps)]
    if bad.size:
        raise SgdscapeError(
            f"step {int(bad[0])} is out of range; steps run from 0 to {n_steps - 1}."
        )
    return np.unique(chosen)


def stochastic_view(
    recording: Recording,
    *,
    grid: int | Grid = 41,
    steps: Sequence[int] | int | None = None,
    margin: float = 0.3,
    device: str | torch.device = "cpu",
    batch_size: int | None = None,
    backend: str | Any = "local",
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: Progress | None = None,
    checkpoint_dir: str | Path | None = None,
    precision: str = "float32",
) -> StochasticView:
    """Project a recording on its PCA plane and compute full and minibatch landscapes.

    The full landscape keeps every sample's loss when ``n * G2 * G1`` floats fit in half
    the memory budget; every minibatch landscape is then the mean over its samples (exact
    for a mean loss). Otherwise the minibatch landscapes of ``steps`` are computed one by
    one on their own samples.

    Args:
        grid: points per axis (the window is the path's extent plus ``margin``) or a Grid.
        steps: the steps whose minibatch landscapes are stored (list, count or ``None`` =
            all).
        precision: ``"float32"`` or mixed precision for the landscapes (see
            :func:`sgdscape.networks.slicing.slice_landscape`).
    """
    if recording.n_steps < 2:
        raise SgdscapeError("the recording has fewer than 2 steps; nothing to project.")
    directions = pca_directions(recording.model, recording.iterates)
    path = directions.project(recording.iterates)
    window = grid if isinstance(grid, Grid) else plane_window(path, int(grid), margin)
    chosen = select_steps(steps, recording.n_steps)
    rows, columns = window.shape
    n = int(recording.x.shape[0])
    per_sample = 4 * n * rows * columns <= memory_budget // 2
    data = (recording.x, recording.y)
    surface = slice_landscape(
        recording.model,
        recording.loss_fn,
        data,
        directions=directions,
        grid=window,
        device=device,
        batch_size=batch_size,
        backend=backend,
        progress=progress,
        per_sample=per_sample,
        memory_budget=memory_budget,
        checkpoint_dir=checkpoint_dir,
        precision=precision,
    )
    if per_sample:
        batches = np.stack([surface.batch_loss(recording.batch(int(k))) for k in chosen])
    else:
        batches = np.stack(
            [
                slice_landscape(
                    recording.model,
                    recording.loss_fn,
                    (recording.x[recording.batch(int(k))], recording.y[recording.batch(int(k))]),
                    directions=directions,
                    grid=window,
                    device=device,
                    memory_budget=memory_budget,
                    precision=precision,
                ).risk
                for k in chosen
            ]
        )
    evaluator = Evaluator(
        recording.model,
        recording.loss_fn,
        data,
        device=device,
        batch_size=batch_size,
        memory_budget=memory_budget,
    )
    risk, _ = evaluator.evaluate_points(torch.from_numpy(recording.iterates))
    basis = np.stack([directions.d1.numpy(), directions.d2.numpy()], axis=1)
    grads_plane = np.linalg.lstsq(basis, recording.grads.T, rcond=None)[0].T.astype(np.float32)
    on_plane = directions.origin.double().numpy() + path.astype(np.float64) @ basis.T
    off_plane = np.linalg.norm(recording.iterates - on_plane, axis=1).astype(np.float32)
    info = {
        "name": recording.name,
        "optimizer": recording.optimizer,
        "lr": recording.lr,
        "batch_size": recording.batch_size,
        "epochs": recording.epochs,
        "seed": recording.seed,
        "n_samples": n,
        "n_params": int(directions.origin.numel()),
        "directions": directions.kind,
        "diverged_step": recording.diverged_step,
    }
    return StochasticView(
        landscape=surface,
        path_coords=path,
        steps=chosen,
        batch_landscapes=batches.astype(np.float32),
        batch_indices=recording.batch_indices,
        batch_loss=recording.batch_loss,
        risk=risk.cpu().numpy(),
        grads_plane=grads_plane,
        explained_variance=np.asarray(directions.explained_variance, dtype=np.float64),
        off_plane=off_plane,
        info=info,
        directions=directions,
    )
