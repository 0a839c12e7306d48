"""Optimizer trajectories, one or many initialisations at once, everything recorded.

All ``K`` initialisations form one ``(K, p)`` parameter tensor and one ``torch.optim``
optimizer; the loss is summed over initialisations, so each row receives exactly its
own gradient and the ``K`` runs are independent (every optimizer here is elementwise).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from sgdscape.devices import resolve_device
from sgdscape.errors import SgdscapeError, check_choice, check_int, check_positive
from sgdscape.kernels import (
    FUSE_MIN_EVALUATIONS,
    check_engine,
    closed_form_available,
    closed_form_gradient,
    finite_step,
    fused_gradient,
    fused_step,
)
from sgdscape.losses import Loss, get_loss
from sgdscape.models import Model, get_model
from sgdscape.optimizers import OptimizerSpec, get_optimizer, make_scheduler
from sgdscape.problems import Dataset, make_generator

SAMPLINGS = {
    "in-order": "samples in their stored order, every epoch (the seed)",
    "shuffle": "a fresh random permutation every epoch",
    "with-replacement": "each minibatch drawn uniformly with replacement",
}


@dataclass(frozen=True)
class Trajectory:
    """Everything recorded along an optimizer run. ``...`` is the shape of the inits' batch.

    Step ``t`` records the iterate *before* the update and the quantities at it.

    Attributes:
        iterates: ``(..., T, p)`` iterate before step t.
        grads: ``(..., T, p)`` minibatch gradient at that iterate.
        full_grads: ``(..., T, p)`` full-batch gradient there (``None`` if not recorded).
        batch_indices: ``(T, B)`` sample indices of each minibatch, padded with -1.
        batch_loss: ``(..., T)`` minibatch loss at the iterate.
        risk: ``(..., T)`` empirical risk at the iterate.
        lr: ``(T,)`` learning rate used by step t.
        final: ``(..., p)`` iterate after the last step.
        final_risk: ``(...)`` empirical risk at ``final``.
        diverged_step: ``(...)`` first step whose iterate, loss or gradient is not finite
            (-1 if none). Later steps of that run hold NaN.
        param_names: names of the ``p`` parameters.
    """

    iterates: np.ndarray
    grads: np.ndarray
    full_grads: np.ndarray | None
    batch_indices: np.ndarray
    batch_loss: np.ndarray
    risk: np.ndarray
    lr: np.ndarray
    final: np.ndarray
    final_risk: np.ndarray
    diverged_step: np.ndarray
    param_names: tuple[str, ...] = ("w1", "w2")

    @property
    def n_steps(self) -> int:
        """Number of recorded steps ``T``."""
        return int(self.lr.shape[0])

    @property
    def diverged(self) -> np.ndarray | bool:
        """Whether each run hit inf or NaN."""
        flags = self.diverged_step >= 0
        return bool(flags) if flags.ndim == 0 else flags

    def batch(self, step: int) -> np.ndarray:
        """Sample indices of the minibatch used at ``step`` (padding removed)."""
        row = self.batch_indices[step]
        return row[row >= 0]

    @property
    def noise(self) -> np.ndarray:
        """Gradient noise ``grads - full_grads``, ``(..., T, p)``."""
        if self.full_grads is None:
            raise SgdscapeError("the full gradient was not recorded (record_full_gradient=False).")
        return self.grads - self.full_grads

    @property
    def noise_norm(self) -> np.ndarray:
        """Euclidean norm of the gradient noise per step, ``(..., T)``."""
        if self.full_grads is None:
            raise SgdscapeError("the full gradient was not recorded (record_full_gradient=False).")
        with np.errstate(over="ignore", invalid="ignore"):
            noise = self.grads.astype(np.float64) - self.full_grads.astype(np.float64)
            return np.linalg.norm(noise, axis=-1)

    @property
    def cosine(self) -> np.ndarray:
        """Cosine between the minibatch and the full gradient per step, ``(..., T)`` (NaN if one is 0)."""
        if self.full_grads is None:
            raise SgdscapeError("the full gradient was not recorded (record_full_gradient=False).")
        grads, full = self.grads.astype(np.float64), self.full_grads.astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            dot = (grads * full).sum(-1)
            norms = np.linalg.norm(grads, axis=-1) * np.linalg.norm(full, axis=-1)
            return np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), np.nan)


def minibatch_schedule(
    n_samples: int,
    batch_size: int,
    epochs: int,
    sampling: str = "in-order",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sample indices of every step, ``(T, B)`` int64, the last batch of an epoch padded with -1.

    ``T = epochs * ceil(n_samples / batch_size)``.
    """
    check_choice("sampling", sampling, SAMPLINGS)
    steps_per_epoch = math.ceil(n_samples / batch_size)
    padded = steps_per_epoch * batch_size
    epochs_rows = []
    for _ in range(epochs):
        if sampling == "with-replacement":
            order = torch.randint(n_samples, (padded,), generator=generator)
        else:
            order = (
                torch.randperm(n_samples, generator=generator)
                if sampling == "shuffle"
                else torch.arange(n_samples)
            )
            order = torch.cat([order, order.new_full((padded - n_samples,), -1)])
        epochs_rows.append(order.reshape(steps_per_epoch, batch_size))
    return torch.cat(epochs_rows)


def as_init(init: object, model: Model) -> torch.Tensor:
    """Validate an init as a float32 tensor of shape ``(p,)`` or ``(K, p)``."""
    try:
        tensor = torch.as_tensor(np.asarray(init, dtype=np.float32))
    except (TypeError, ValueError):
        raise SgdscapeError(f"init must be numbers, got {init!r}.") from None
    if tensor.ndim not in (1, 2) or tensor.shape[-1] != model.n_params or tensor.numel() == 0:
        raise SgdscapeError(
            f"init must have shape ({model.n_params},) or (K, {model.n_params}) for model "
            f"{model.name!r} ({', '.join(model.param_names)}), got {tuple(tensor.shape)}."
        )
    if not torch.isfinite(tensor).all():
        raise SgdscapeError("init contains NaN or infinite values.")
    return tensor


def train(
    model: str | Model,
    data: Dataset,
    *,
    init: object = None,
    lr: float = 0.05,
    optimizer: str | type[torch.optim.Optimizer] | OptimizerSpec = "sgd",
    optimizer_options: Mapping[str, object] | None = None,
    loss: str | Loss = "mse",
    batch_size: int = 1,
    epochs: int = 1,
    shuffle: bool = False,
    sampling: str | None = None,
    schedule: str = "constant",
    schedule_options: Mapping[str, float] | None = None,
    seed: int | None = None,
    device: str | torch.device = "cpu",
    record_full_gradient: bool = True,
    engine: str = "auto",
) -> Trajectory:
    """Run an optimizer from ``init`` and record every step.

    Args:
        model: registry name, :class:`Model`, or ``nn.Module``.
        data: the samples.
        init: ``(p,)`` or ``(K, p)``; ``None`` draws one init from the model's rule with ``seed``.
        lr: learning rate (> 0).
        optimizer: ``torch.optim`` optimizer by name or class; ``optimizer_options`` its
            hyperparameters (``momentum``, ``nesterov``, ``betas``, ...).
        loss: elementwise loss by name or object.
        batch_size: samples per step (``len(data)`` gives full-batch gradient descent).
        epochs: passes over the data.
        shuffle: shorthand for ``sampling="shuffle"``.
        sampling: ``"in-order"`` (the seed), ``"shuffle"`` or ``"with-replacement"``.
        schedule: learning-rate schedule name, ``schedule_options`` its options.
        seed: seeds the minibatch order and a drawn init (a local generator).
        device: where to compute.
        record_full_gradient: also record the full-batch gradient at every iterate.
        engine: ``"auto"`` or ``"fused"`` use closed-form gradients for the built-in models
            and losses (:mod:`sgdscape.kernels`); ``"plain"`` always uses autograd (the
            reference). Both drive the same ``torch.optim`` optimizer.

    Returns:
        A :class:`Trajectory`; with defaults and ``init=(1.2, -2.3), lr=0.05`` it equals
        the seed notebook's ``train``.
    """
    model = get_model(model)
    loss_fn = get_loss(loss)
    spec = get_optimizer(optimizer)
    lr = check_positive("learning rate", lr)
    n = len(data)
    batch_size = check_int("batch size", batch_size, low=1)
    if batch_size > n:
        raise SgdscapeError(
            f"batch size {batch_size} is larger than the data ({n} samples); use at most {n}."
        )
    epochs = check_int("epochs", epochs, low=1)
    if sampling is None:
        sampling = "shuffle" if shuffle else "in-order"
    elif shuffle and sampling != "shuffle":
        raise SgdscapeError(f"shuffle=True contradicts sampling={sampling!r}; give only one.")
    engine = check_engine(engine)
    closed_form = engine != "plain" and closed_form_available(model, loss_fn)
    target = resolve_device(device)
    generator = make_generator(seed)
    start = model.init(generator=generator) if init is None else as_init(init, model)
    batches = minibatch_schedule(n, batch_size, epochs, sampling, generator)

    single = start.ndim == 1
    w = start.reshape(-1, model.n_params).to(target).clone().requires_grad_(True)
    n_inits, n_steps = w.shape[0], batches.shape[0]
    optim = spec.build([w], lr, optimizer_options or {})
    scheduler = make_scheduler(optim, schedule, n_steps, schedule_options)
    x = data.x.to(target).reshape(-1)
    y = data.y.to(target).reshape(-1)

    def record(*shape: int) -> torch.Tensor:
        # time-major (T, K, ...): each step writes one contiguous block, transposed once at
        # the end; every step up to the last one run is written, so no fill is needed
        return torch.empty((n_steps, n_inits, *shape), device=target)

    iterates, grads = record(model.n_params), record(model.n_params)
    full_grads = record(model.n_params) if record_full_gradient else None
    batch_loss, risk = record(), record()
    lrs = torch.zeros(n_steps, dtype=torch.float64)
    diverged_step = torch.full((n_inits,), -1, dtype=torch.int64, device=target)
    batches_on_device = batches.to(target)
    in_order = (batches[:, :n] == torch.arange(n)).all(dim=1) if batch_size == n else None
    # the full-data gradient at every step is most of the arithmetic: fuse it when it pays
    full_gradient_of = closed_form_gradient
    if closed_form and (engine == "fused" or float(n_inits) * n * n_steps >= FUSE_MIN_EVALUATIONS):
        full_gradient_of = fused_gradient

    last = n_steps - 1
    for t in range(n_steps):
        row = batches[t]
        index = batches_on_device[t][: int((row >= 0).sum())]
        finite = None
        if (
            closed_form
            and full_gradient_of is fused_gradient
            and not (index.shape[0] == n and bool(in_order[t]))
        ):
            with torch.no_grad():  # one compiled call for everything the step records
                minibatch_loss, gradient, full_risk, full_gradient, finite = fused_step(
                    model, loss_fn, w, x[index], y[index], x, y
                )
                if full_grads is not None:
                    full_grads[t] = full_gradient
        elif closed_form:
            with torch.no_grad():
                whole = index.shape[0] == n and bool(in_order[t])
                minibatch_loss, gradient = (full_gradient_of if whole else closed_form_gradient)(
                    model, loss_fn, w, x if whole else x[index], y if whole else y[index]
                )
                if whole:  # the minibatch is the data, in order: nothing to recompute
                    full_risk, full_gradient = minibatch_loss, gradient
                else:
                    full_risk, full_gradient = full_gradient_of(model, loss_fn, w, x, y)
                if full_grads is not None:
                    full_grads[t] = full_gradient
        else:
            minibatch_loss = loss_fn(model(w, x[index]), y[index]).mean(dim=-1)  # (K,)
            (gradient,) = torch.autograd.grad(minibatch_loss.sum(), w)
            full_risk = loss_fn(model(w, x), y).mean(dim=-1)
            if full_grads is not None:
                (full_gradient,) = torch.autograd.grad(full_risk.sum(), w)
                full_grads[t] = full_gradient
        with torch.no_grad():
            iterates[t] = w
            grads[t] = gradient
            batch_loss[t] = minibatch_loss
            risk[t] = full_risk
            lrs[t] = optim.param_groups[0]["lr"]
            if finite is None:
                finite = finite_step(w, gradient, minibatch_loss)
            diverged_step = torch.where(
                (diverged_step < 0) & ~finite, torch.full_like(diverged_step, t), diverged_step
            )
        if bool((diverged_step >= 0).all()):
            last = t
            break
        w.grad = gradient
        optim.step()
        if scheduler is not None:
            scheduler.step()

    with torch.no_grad():
        final = w.detach().clone()
        final_risk = loss_fn(model(final, x), y).mean(dim=-1)
        steps = torch.arange(n_steps, device=target)
        after = (diverged_step[None, :] >= 0) & (steps[:, None] > diverged_step[None, :])
        for tensor in (iterates, grads, full_grads):
            if tensor is not None:
                tensor[after] = math.nan
        batch_loss[after] = math.nan
        risk[after] = math.nan
        dead = diverged_step >= 0
        final[dead] = math.nan
        final_risk[dead] = math.nan

    keep = last + 1

    def out(tensor: torch.Tensor | None, time_axis: bool = True) -> np.ndarray | None:
        if tensor is None:
            return None
        array = tensor[:keep].transpose(0, 1) if time_axis else tensor  # a strided view
        array = array.detach().cpu().numpy()
        return array[0] if single else array

    return Trajectory(
        iterates=out(iterates),
        grads=out(grads),
        full_grads=out(full_grads),
        batch_indices=batches[:keep].numpy(),
        batch_loss=out(batch_loss),
        risk=out(risk),
        lr=lrs[:keep].numpy(),
        final=out(final, time_axis=False),
        final_risk=out(final_risk, time_axis=False),
        diverged_step=out(diverged_step, time_axis=False),
        param_names=model.param_names,
    )
