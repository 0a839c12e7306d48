"""Checking :func:`~sgdscape.core.train.train`'s inputs: names, init, minibatch schedule.

Everything here is pure: it raises :class:`~sgdscape.errors.SgdscapeError` naming the
first bad value and what is allowed, or returns the resolved inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from sgdscape.core.devices import resolve_device
from sgdscape.core.kernels import check_engine, closed_form_available
from sgdscape.core.losses import Loss, get_loss
from sgdscape.core.models import Model, get_model
from sgdscape.core.optimizers import OptimizerSpec, get_optimizer
from sgdscape.core.problems import Dataset, make_generator
from sgdscape.errors import (
    FLOAT32_MAX,
    SgdscapeError,
    check_choice,
    check_int,
    check_positive,
    shown,
)

SAMPLINGS = {
    "in-order": "samples in their stored order, every epoch (the seed)",
    "shuffle": "a fresh random permutation every epoch",
    "with-replacement": "each minibatch drawn uniformly with replacement",
}


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
        values = np.asarray(init.detach().cpu() if isinstance(init, torch.Tensor) else init)
    except (TypeError, ValueError):  # ragged nesting
        values = np.asarray(None)
    if values.dtype.kind not in "iuf":  # strings, bools, objects: not numbers
        raise SgdscapeError(f"init must be numbers, got {shown(init)}.")
    values = values.astype(np.float64)
    if not np.isfinite(values).all() or np.abs(values).max(initial=0.0) > FLOAT32_MAX:
        raise SgdscapeError(
            f"init must be finite numbers (no NaN or infinity) within float32's range "
            f"(±{FLOAT32_MAX:.4g}), "
            f"got {shown(init)}."
        )
    tensor = torch.from_numpy(values.astype(np.float32))
    if tensor.ndim not in (1, 2) or tensor.shape[-1] != model.n_params or tensor.numel() == 0:
        raise SgdscapeError(
            f"init must have shape ({model.n_params},) or (K, {model.n_params}) for model "
            f"{model.name!r} ({', '.join(model.param_names)}), got {tuple(tensor.shape)}; "
            f"its default init is {','.join(f'{v:g}' for v in model.default_init)}."
        )
    return tensor


@dataclass(frozen=True)
class TrainInputs:
    """:func:`train`'s arguments, checked and resolved.

    Attributes:
        model, loss, spec: what is trained, and by which optimizer.
        options: the optimizer's checked hyperparameters (numbers as floats).
        lr: base learning rate; ``schedule`` and ``schedule_options`` its schedule
            (checked by :func:`~sgdscape.core.optimizers.learning_rates`).
        engine: ``auto``, ``fused`` or ``plain``; ``closed_form`` whether closed-form
            gradients apply (a built-in model and loss and not ``plain``).
        device: where to compute.
        start: ``(p,)`` or ``(K, p)`` float32 init(s) on the CPU.
        batches: ``(T, B)`` int64 sample indices of every step, padded with -1.
    """

    model: Model
    loss: Loss
    spec: OptimizerSpec
    options: dict[str, object]
    lr: float
    schedule: str
    schedule_options: Mapping[str, float] | None
    engine: str
    closed_form: bool
    device: torch.device
    start: torch.Tensor
    batches: torch.Tensor


def check_train_inputs(
    model: str | Model,
    data: Dataset,
    *,
    init: object,
    lr: float,
    optimizer: str | type[torch.optim.Optimizer] | OptimizerSpec,
    optimizer_options: Mapping[str, object] | None,
    loss: str | Loss,
    batch_size: int,
    epochs: int,
    shuffle: bool,
    sampling: str | None,
    schedule: str,
    schedule_options: Mapping[str, float] | None,
    seed: int | None,
    device: str | torch.device,
    engine: str,
) -> TrainInputs:
    """Check :func:`train`'s arguments (see there) and resolve names, init and minibatches.

    Raises :class:`SgdscapeError` naming the first bad value and what is allowed.
    """
    resolved_model = get_model(model)
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
    closed_form = engine != "plain" and closed_form_available(resolved_model, loss_fn)
    target = resolve_device(device)
    generator = make_generator(seed)
    start = (
        resolved_model.init(generator=generator) if init is None else as_init(init, resolved_model)
    )
    batches = minibatch_schedule(n, batch_size, epochs, sampling, generator)
    options = spec.check(lr, optimizer_options or {})  # numbers as floats; torch's rules
    return TrainInputs(
        model=resolved_model,
        loss=loss_fn,
        spec=spec,
        options=options,
        lr=lr,
        schedule=schedule,
        schedule_options=schedule_options,
        engine=engine,
        closed_form=closed_form,
        device=target,
        start=start,
        batches=batches,
    )
