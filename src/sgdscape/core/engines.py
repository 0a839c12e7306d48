"""The engines that step a batch of ``K`` trajectories through ``T`` minibatches.

Two engines share one loop and one set of records:

- **per step** (every optimizer): one minibatch gradient per step, closed form for the
  built-in models and losses (:mod:`sgdscape.core.kernels`), autograd otherwise, then the
  update: inlined for plain SGD (:class:`~sgdscape.core.optimizers.SgdUpdate`, equal to
  ``torch.optim.SGD`` bit for bit), ``torch.optim`` otherwise;
- **compiled blocks** (plain SGD, built-in model and loss, large work or
  ``engine="fused"``): :data:`~sgdscape.core.kernels.SGD_BLOCK_STEPS` steps per compiled
  call (:func:`~sgdscape.core.kernels.fused_sgd_steps`), equal to the per-step engine
  within float rounding. If a block kernel is unavailable the run goes on per step from
  where it was.

Records are time-major, parameters before inits: iterates and gradients ``(T, p, K)``,
losses ``(T, K)``. Each step writes one block; every step up to the last one run is
written, so no fill is needed.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

from sgdscape.core.devices import new_record
from sgdscape.core.kernels import SGD_BLOCK_STEPS, closed_form_gradient, fused_gradient
from sgdscape.core.losses import Loss
from sgdscape.core.models import Model
from sgdscape.core.optimizers import OptimizerSpec, SgdUpdate

#: steps between divergence checks (a run whose every init diverged stops at the next one)
DIVERGENCE_CHECK_STEPS = 64

#: ``engine="auto"`` compiles blocks of SGD steps from this many init-steps (``K * T``):
#: below it the compiler's start-up costs more than it saves.
FUSE_MIN_INIT_STEPS = int(float(os.environ.get("SGDSCAPE_FUSE_MIN_INIT_STEPS", "2e7")))

#: the block kernel's signature: :func:`sgdscape.core.kernels.fused_sgd_steps`
BlockKernel = Callable[..., "tuple[torch.Tensor, ...] | None"]


def fuses_steps(engine: str, closed_form: bool, n_inits: int, n_steps: int) -> bool:
    """Whether the training loop uses compiled kernels: blocks of SGD steps
    (:func:`~sgdscape.core.kernels.fused_sgd_steps`) or the compiled minibatch gradient and
    torch's fused optimizer kernels for the other optimizers."""
    if not closed_form:
        return False
    return engine == "fused" or float(n_inits) * n_steps >= FUSE_MIN_INIT_STEPS


def fused_optimizer(
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


@dataclass(frozen=True)
class Records:
    """What every step records, time-major: ``(T, p, K)``, ``(T, p, K)``, ``(T, K)``."""

    iterates: torch.Tensor
    grads: torch.Tensor
    batch_loss: torch.Tensor

    @classmethod
    def empty(cls, n_steps: int, n_params: int, n_inits: int, device: torch.device) -> Records:
        """Uninitialised records for ``n_steps`` steps of ``n_inits`` runs."""
        return cls(
            new_record((n_steps, n_params, n_inits), device),
            new_record((n_steps, n_params, n_inits), device),
            new_record((n_steps, n_inits), device),
        )


@dataclass(frozen=True)
class Minibatches:
    """Every step's minibatch, gathered once.

    Attributes:
        x, y: ``(T, B)`` samples; step ``t`` uses the first ``lengths[t]`` columns.
        lengths: samples in each step's minibatch.
        lrs: learning rate of each step.
        valid: ``(T, B)`` bool, whether each column is a sample (not padding).
    """

    x: torch.Tensor
    y: torch.Tensor
    lengths: list[int]
    lrs: list[float]
    valid: torch.Tensor

    @classmethod
    def gather(
        cls, batches: torch.Tensor, x: torch.Tensor, y: torch.Tensor, lrs: list[float]
    ) -> Minibatches:
        """From the schedule ``batches: (T, B)`` (padded with -1) and the data ``(n,)``."""
        valid = batches >= 0
        gathered = batches.clamp(min=0).to(x.device)
        return cls(x[gathered], y[gathered], valid.sum(dim=1).tolist(), lrs, valid)

    @property
    def n_steps(self) -> int:
        """``T``."""
        return len(self.lengths)

    def mask(self, dtype: torch.dtype) -> torch.Tensor:
        """``(T, B)`` 1.0 for a sample of the minibatch, 0.0 for padding."""
        return self.valid.to(device=self.x.device, dtype=dtype)


def padded_block(
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


@dataclass
class Stepper:
    """One batch of runs being stepped: the iterate, its update, and how gradients are made.

    Attributes:
        model, loss: what is trained.
        w: ``(K, p)`` the iterate, a leaf tensor that requires grad.
        optimizer: the ``torch.optim`` optimizer of ``w`` when ``sgd`` is ``None``.
        sgd: the inlined SGD update, or ``None`` for any other optimizer.
        closed_form: closed-form minibatch gradients (else autograd).
        fused: the closed-form gradient is the compiled one.
    """

    model: Model
    loss: Loss
    w: torch.Tensor
    optimizer: torch.optim.Optimizer | None
    sgd: SgdUpdate | None
    closed_form: bool
    fused: bool

    def step(self, batches: Minibatches, records: Records, t: int) -> None:
        """Step ``t``: record the iterate, its minibatch gradient and loss, then update."""
        w, length = self.w, batches.lengths[t]
        xb, yb = batches.x[t, :length], batches.y[t, :length]
        if self.closed_form:
            gradient_of = fused_gradient if self.fused else closed_form_gradient
            with torch.no_grad():
                minibatch_loss, gradient = gradient_of(self.model, self.loss, w, xb, yb)
        else:
            minibatch_loss = self.loss(self.model(w, xb), yb).mean(dim=-1)  # (K,)
            (gradient,) = torch.autograd.grad(minibatch_loss.sum(), w)
        with torch.no_grad():
            records.iterates[t] = w.T
            records.grads[t] = gradient.T
            records.batch_loss[t] = minibatch_loss
            if self.sgd is not None:
                self.sgd.step(w, gradient, batches.lrs[t])
            else:
                assert self.optimizer is not None  # built whenever SGD is not inlined
                w.grad = gradient
                self.optimizer.param_groups[0]["lr"] = batches.lrs[t]
                self.optimizer.step()


#: between compiled blocks the iterate and the momentum buffer live as ``(p, K)`` rows
Columns = tuple[torch.Tensor, "torch.Tensor | None"]


def to_columns(w: torch.Tensor, sgd: SgdUpdate) -> Columns:
    """The iterate ``(K, p)`` and momentum buffer as contiguous ``(p, K)`` rows."""
    buffer = None if sgd.buffer is None else sgd.buffer.T.contiguous()
    return w.detach().T.contiguous(), buffer


def from_columns(columns: Columns, w: torch.Tensor, sgd: SgdUpdate | None) -> None:
    """Copy ``(p, K)`` rows back into the iterate ``(K, p)`` (and the momentum buffer)."""
    with torch.no_grad():
        w.copy_(columns[0].T)
        if columns[1] is not None and sgd is not None and sgd.buffer is not None:
            sgd.buffer.copy_(columns[1].T)


def block_of_steps(
    stepper: Stepper,
    sgd: SgdUpdate,
    columns: Columns,
    batches: Minibatches,
    mask: torch.Tensor,
    lrs: torch.Tensor,
    records: Records,
    t: int,
    block_kernel: BlockKernel,
) -> tuple[int, Columns] | None:
    """One compiled block from step ``t``: the steps it ran and the ``(p, K)`` state after,
    or ``None`` when no kernel is available."""
    wt, buffer = columns
    fused = block_kernel(
        stepper.model, stepper.loss, sgd, wt, wt if buffer is None else buffer,
        *padded_block(batches.x, batches.y, mask, lrs, t, SGD_BLOCK_STEPS),
    )  # fmt: skip
    if fused is None:
        return None
    real = min(t + SGD_BLOCK_STEPS, batches.n_steps) - t  # a last block is padded with lr 0
    with torch.no_grad():
        records.iterates[t : t + real] = fused[0][:real]
        records.grads[t : t + real] = fused[1][:real]
        records.batch_loss[t : t + real] = fused[2][:real]
    if real < SGD_BLOCK_STEPS:  # the run ends inside this block
        return real, (fused[0][real], None)
    return real, (fused[3], None if buffer is None else fused[4])


def take_steps(
    stepper: Stepper,
    batches: Minibatches,
    records: Records,
    *,
    blocks: bool,
    block_kernel: BlockKernel,
) -> int:
    """Step every run through the minibatches, recording each step; return the steps run.

    A batch whose every run has diverged stops at the next of the checks every
    :data:`DIVERGENCE_CHECK_STEPS` steps. ``blocks`` asks for compiled blocks of SGD
    steps (plain SGD only); step 0 of SGD with momentum always runs per step, since it
    initialises the momentum buffer.
    """
    sgd, w, n_steps = stepper.sgd, stepper.w, batches.n_steps
    blocks = blocks and sgd is not None
    mask = batches.mask(w.dtype) if blocks else None
    lrs = torch.tensor(batches.lrs, dtype=w.dtype, device=w.device) if blocks else None
    checked, t = 0, 0
    columns: Columns | None = None
    while t < n_steps:
        if blocks and sgd is not None and (t > 0 or sgd.momentum == 0):
            assert mask is not None and lrs is not None
            if columns is None:
                columns = to_columns(w, sgd)
            done = block_of_steps(
                stepper, sgd, columns, batches, mask, lrs, records, t, block_kernel
            )
            if done is None:  # no kernel: go on per step from the (p, K) state
                blocks = False
                continue
            real, columns = done
            t += real
        else:
            if columns is not None:  # back from blocks: the iterate as (K, p) again
                from_columns(columns, w, sgd)
                columns = None
            stepper.step(batches, records, t)
            t += 1
        if t - checked >= DIVERGENCE_CHECK_STEPS:
            checked = t
            current = w if columns is None else columns[0]
            if not bool(torch.isfinite(current).any()):  # every run has diverged: stop early
                break
    if columns is not None:
        with torch.no_grad():
            w.copy_(columns[0].T)
    return t
