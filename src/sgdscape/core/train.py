"""Optimizer trajectories, one or many initialisations at once, everything recorded.

All ``K`` initialisations form one ``(K, p)`` parameter tensor and one ``torch.optim``
optimizer; the loss is summed over initialisations, so each row receives exactly its
own gradient and the ``K`` runs are independent (every optimizer here is elementwise).
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from sgdscape.core.devices import one_thread_when_small, resolve_device
from sgdscape.core.kernels import (
    SGD_BLOCK_STEPS,
    SINGLE_THREAD_BELOW,
    check_engine,
    closed_form_available,
    closed_form_gradient,
    fused_gradient,
    fused_sgd_steps,
)
from sgdscape.core.losses import Loss, get_loss
from sgdscape.core.models import Model, get_model
from sgdscape.core.optimizers import (
    OPTIMIZERS,
    OptimizerSpec,
    SgdUpdate,
    get_optimizer,
    learning_rates,
)
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
        risk: ``(..., T)`` empirical risk at the iterate (``None`` if not recorded).
        lr: ``(T,)`` learning rate used by step t.
        final: ``(..., p)`` iterate after the last step.
        final_risk: ``(...)`` empirical risk at ``final`` (``None`` if the risk is not recorded).
        diverged_step: ``(...)`` first step whose iterate, loss or gradient is not finite
            (-1 if none). Later steps of that run hold NaN.
        param_names: names of the ``p`` parameters.
    """

    iterates: np.ndarray
    grads: np.ndarray
    full_grads: np.ndarray | None
    batch_indices: np.ndarray
    batch_loss: np.ndarray
    risk: np.ndarray | None
    lr: np.ndarray
    final: np.ndarray
    final_risk: np.ndarray | None
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


#: steps between divergence checks (a run whose every init diverged stops at the next one)
DIVERGENCE_CHECK_STEPS = 64

#: ``engine="auto"`` compiles blocks of SGD steps from this many init-steps (``K * T``):
#: below it the compiler's start-up costs more than it saves.
FUSE_MIN_INIT_STEPS = int(float(os.environ.get("SGDSCAPE_FUSE_MIN_INIT_STEPS", "2e7")))

#: ``engine="auto"`` compiles the path's risk and gradient from this many evaluations: the
#: eager closed form runs at about 1e8/s here, a warm compiled kernel starts in a second
PATH_FUSE_MIN_EVALUATIONS = int(float(os.environ.get("SGDSCAPE_PATH_FUSE_MIN", "2e8")))

#: loss evaluations per chunk of :func:`path_quantities` (about 1 MiB per temporary: cache-sized)
PATH_CHUNK_EVALUATIONS = 2**18


def _fuses_steps(engine: str, closed_form: bool, n_inits: int, n_steps: int) -> bool:
    """Whether the training loop uses compiled kernels: blocks of SGD steps
    (:func:`fused_sgd_steps`) or the compiled minibatch gradient and torch's fused
    optimizer kernels for the other optimizers."""
    if not closed_form:
        return False
    return engine == "fused" or float(n_inits) * n_steps >= FUSE_MIN_INIT_STEPS


def _fused_optimizer(
    spec: OptimizerSpec, w: torch.Tensor, lr: float, options: dict[str, object]
) -> torch.optim.Optimizer | None:
    """``spec`` built with ``fused=True`` (one kernel per step) where torch has that for
    the device; ``None`` otherwise. Equal to the default build within float rounding."""
    if "fused" not in inspect.signature(spec.cls.__init__).parameters:
        return None
    build: Callable[..., torch.optim.Optimizer] = spec.cls  # each class its own options
    try:
        optimizer = build([w], lr=lr, fused=True, **options)
        with torch.no_grad():  # a zero step with lr 0 checks the device is supported
            probe = torch.zeros_like(w).requires_grad_(True)
            trial = build([probe], lr=0.0, fused=True, **options)
            probe.grad = torch.zeros_like(probe)
            trial.step()
    except (RuntimeError, TypeError, ValueError):
        return None
    return optimizer


def _record(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """An uninitialised float32 record. On the CPU it is numpy's memory, which numpy
    backs with transparent huge pages where Linux allows (far fewer page faults while the
    records of a large batched run are first written) and which the caller gets back as
    arrays without a copy."""
    if device.type == "cpu":
        return torch.from_numpy(np.empty(shape, dtype=np.float32))
    return torch.empty(shape, device=device)


def _padded_block(
    xb_all: torch.Tensor,
    yb_all: torch.Tensor,
    mask: torch.Tensor,
    lrs: torch.Tensor,
    start: int,
    steps: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Minibatches ``(steps, B)``, mask and learning rates ``(steps,)`` of steps
    ``start:start + steps``; past the run's end, copies of its last step with lr 0 (so
    one compiled block size serves every run length)."""
    stop = start + steps
    if stop <= xb_all.shape[0]:
        return xb_all[start:stop], yb_all[start:stop], mask[start:stop], lrs[start:stop]
    pad = stop - xb_all.shape[0]

    def padded(values: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
        return torch.cat([values[start:], fill.expand(pad, *values.shape[1:])])

    return (
        padded(xb_all, xb_all[-1:]),
        padded(yb_all, yb_all[-1:]),
        padded(mask, mask[-1:]),
        padded(lrs, torch.zeros_like(lrs[-1:])),
    )


def nonfinite_steps(
    iterates: torch.Tensor, grads: torch.Tensor, batch_loss: torch.Tensor
) -> torch.Tensor:
    """``(T, K)`` whether the iterate ``(T, p, K)``, minibatch gradient ``(T, p, K)`` or
    loss ``(T, K)`` of each step is inf or NaN."""
    # v * 0 is 0 for a finite v and NaN otherwise: one pass, no overflow in the sum
    return torch.isnan((iterates * 0).sum(1) + (grads * 0).sum(1) + batch_loss * 0)


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
    record_risk: bool = True,
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
        record_risk: also record the empirical risk at every iterate. Both are computed
            after the run, for all iterates at once; without them a run records what
            the seed records (iterates, minibatch gradients and losses).
        engine: ``"auto"`` or ``"fused"`` use closed-form gradients for the built-in models
            and losses (:mod:`sgdscape.core.kernels`); ``"plain"`` always uses autograd (the
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
    options = spec.check(lr, optimizer_options or {})  # numbers as floats
    sgd = SgdUpdate.matching(spec, options)
    # an inlined SGD needs no torch.optim object (building one imports torch._dynamo)
    optim = spec.build([w], lr, options) if sgd is None else None
    lrs = learning_rates(lr, schedule, n_steps, schedule_options)
    x = data.x.to(target).reshape(-1)
    y = data.y.to(target).reshape(-1)

    # time-major records, parameters before inits: iterates and gradients (T, p, K), losses
    # (T, K). Each step writes one block; every step up to the last one run is written,
    # so no fill is needed; the arrays handed out are strided views, not copies.
    iterates = _record((n_steps, model.n_params, n_inits), target)
    grads = _record((n_steps, model.n_params, n_inits), target)
    batch_loss = _record((n_steps, n_inits), target)
    # every minibatch gathered once, (T, B); step t uses the first lengths[t] columns
    lengths = (batches >= 0).sum(dim=1).tolist()
    gathered = batches.clamp(min=0).to(target)
    xb_all, yb_all = x[gathered], y[gathered]
    fuse = _fuses_steps(engine, closed_form, n_inits, n_steps)
    block = fuse and sgd is not None
    if fuse and sgd is None:
        optim = _fused_optimizer(spec, w, lr, options) or optim
    minibatch_gradient = fused_gradient if fuse else closed_form_gradient
    lr_tensor = torch.tensor(lrs, dtype=w.dtype, device=target) if block else None
    mask = (batches >= 0).to(device=target, dtype=w.dtype) if block else None

    checked, t = 0, 0
    # between compiled blocks the iterate (and momentum buffer) live as (p, K) tensors
    soa: tuple[torch.Tensor, torch.Tensor | None] | None = None
    # a step's kernels and the records are small: one thread avoids OpenMP start-up and
    # stalls per call (measured 2x to 3x faster for 10,000 inits x 100 steps)
    work = n_inits * model.n_params * batch_size * SGD_BLOCK_STEPS
    with one_thread_when_small(work, target, SINGLE_THREAD_BELOW):
        while t < n_steps:
            end = t + SGD_BLOCK_STEPS
            # step 0 of SGD with momentum runs eagerly: it initialises the momentum buffer
            if block and sgd is not None and (t > 0 or sgd.momentum == 0):
                assert lr_tensor is not None and mask is not None
                real = min(end, n_steps) - t  # a last block is padded with steps of lr 0
                if soa is None:  # (p, K): one row per parameter, kept so between blocks
                    soa = (w.detach().T.contiguous(), None)
                    if sgd.buffer is not None:
                        soa = (soa[0], sgd.buffer.T.contiguous())
                wt, buffer = soa
                fused = fused_sgd_steps(
                    model, loss_fn, sgd, wt, wt if buffer is None else buffer,
                    *_padded_block(xb_all, yb_all, mask, lr_tensor, t, SGD_BLOCK_STEPS),
                )  # fmt: skip
                if fused is None:  # no kernel: go on eagerly from the (p, K) state
                    block = False
                    continue
                with torch.no_grad():
                    iterates[t : t + real] = fused[0][:real]
                    grads[t : t + real] = fused[1][:real]
                    batch_loss[t : t + real] = fused[2][:real]
                if real < SGD_BLOCK_STEPS:  # the run ends inside this block
                    soa = (fused[0][real], None)
                else:
                    soa = (fused[3], None if buffer is None else fused[4])
                t += real
            else:
                if soa is not None:  # back from blocks: the iterate as (K, p) again
                    with torch.no_grad():
                        w.copy_(soa[0].T)
                        if soa[1] is not None and sgd is not None and sgd.buffer is not None:
                            sgd.buffer.copy_(soa[1].T)
                    soa = None
                length = lengths[t]
                xb, yb = xb_all[t, :length], yb_all[t, :length]
                if closed_form:
                    with torch.no_grad():
                        minibatch_loss, gradient = minibatch_gradient(model, loss_fn, w, xb, yb)
                else:
                    minibatch_loss = loss_fn(model(w, xb), yb).mean(dim=-1)  # (K,)
                    (gradient,) = torch.autograd.grad(minibatch_loss.sum(), w)
                with torch.no_grad():
                    iterates[t] = w.T
                    grads[t] = gradient.T
                    batch_loss[t] = minibatch_loss
                    if sgd is not None:
                        sgd.step(w, gradient, lrs[t])
                    else:
                        w.grad = gradient
                        assert optim is not None
                        optim.param_groups[0]["lr"] = lrs[t]
                        optim.step()
                t += 1
            if t - checked >= DIVERGENCE_CHECK_STEPS:
                checked = t
                current = w if soa is None else soa[0]
                if not bool(torch.isfinite(current).any()):  # every run has diverged: stop early
                    break

        if soa is not None:
            with torch.no_grad():
                w.copy_(soa[0].T)

        # the first non-finite step of every run, from the records; a run whose every init
        # diverged ends at its last divergence, wherever the loop noticed it
        diverged_step = torch.full((n_inits,), -1, dtype=torch.int64, device=target)
        current = w.detach()
        # with the registry's optimizers a non-finite iterate stays non-finite and a non-finite
        # gradient makes the next iterate so (tests check each): a run whose final iterate and
        # losses are finite never diverged, and only the others need a step-by-step scan
        if any(spec.cls is known.cls for known in OPTIMIZERS.values()):
            # a finite sum means finite terms; an overflow only costs that run a scan
            if bool(torch.isfinite(current).all()) and bool(torch.isfinite(batch_loss[:t].sum())):
                suspects = torch.zeros(0, dtype=torch.int64, device=target)  # the usual case
            else:
                suspects = ~torch.isfinite(current).all(-1) | ~torch.isfinite(batch_loss[:t].sum(0))
                suspects = suspects.nonzero().reshape(-1)
        else:
            suspects = torch.arange(n_inits, device=target)
        surely_finite = suspects.numel() == 0
        if not surely_finite:
            bad = nonfinite_steps(
                iterates[:t, :, suspects], grads[:t, :, suspects], batch_loss[:t, suspects]
            )  # (t, S)
            first = bad.to(torch.uint8).argmax(dim=0)  # the first True along time
            diverged_step[suspects] = torch.where(bad.any(dim=0), first, -1)
        keep = int(diverged_step.max()) + 1 if bool((diverged_step >= 0).all()) else t

    with torch.no_grad():
        risk, full_grads = None, None
        if record_risk or record_full_gradient:
            path = iterates[:keep].transpose(1, 2).reshape(-1, model.n_params)
            full_risk, full_gradient = path_quantities(
                model, loss_fn, path, x, y, engine=engine, gradient=record_full_gradient
            )
            risk = full_risk.reshape(keep, n_inits) if record_risk else None
            if full_gradient is not None:
                full_grads = full_gradient.reshape(keep, n_inits, model.n_params)
        if batch_size == n:  # a minibatch that is the data in order: its gradient is exact
            in_order = (batches[:keep, :n] == torch.arange(n)).all(dim=1).to(target)
            if risk is not None:
                risk[in_order] = batch_loss[:keep][in_order]
            if full_grads is not None:
                full_grads[in_order] = grads[:keep][in_order].transpose(1, 2)
        final = w.detach().clone()
        final_risk = loss_fn(model(final, x), y).mean(dim=-1) if record_risk else None
        if not surely_finite:  # NaN after each run's divergence, in the suspects only
            steps = torch.arange(keep, device=target)
            after = steps[:, None] > torch.where(
                diverged_step[suspects] >= 0, diverged_step[suspects], keep
            )  # (keep, S)
            for tensor in (full_grads, risk):
                if tensor is not None:
                    tensor[:, suspects] = tensor[:, suspects].masked_fill(
                        after if tensor.ndim == 2 else after[..., None], math.nan
                    )
            batch_loss[:keep, suspects] = batch_loss[:keep, suspects].masked_fill(after, math.nan)
            for tensor in (iterates, grads):
                tensor[:keep, :, suspects] = tensor[:keep, :, suspects].masked_fill(
                    after[:, None, :], math.nan
                )
            dead = diverged_step >= 0
            final[dead] = math.nan
            if final_risk is not None:
                final_risk[dead] = math.nan

    def out(tensor: torch.Tensor, time_axis: bool = True) -> np.ndarray:
        if tensor is iterates or tensor is grads:  # (T, p, K) -> (K, T, p)
            kept = tensor[:keep].permute(2, 0, 1)
        else:  # (T, K, ...) -> (K, T, ...)
            kept = tensor[:keep].transpose(0, 1) if time_axis else tensor
        array = kept.detach().cpu().numpy()
        return array[0] if single else array

    return Trajectory(
        iterates=out(iterates),
        grads=out(grads),
        full_grads=None if full_grads is None else out(full_grads),
        batch_indices=batches[:keep].numpy(),
        batch_loss=out(batch_loss),
        risk=None if risk is None else out(risk),
        lr=np.asarray(lrs[:keep], dtype=np.float64),
        final=out(final, time_axis=False),
        final_risk=None if final_risk is None else out(final_risk, time_axis=False),
        diverged_step=out(diverged_step, time_axis=False),
        param_names=model.param_names,
    )
