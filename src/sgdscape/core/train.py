"""Optimizer trajectories, one or many initialisations at once, everything recorded.

All ``K`` initialisations form one ``(K, p)`` parameter tensor and one ``torch.optim``
optimizer; the loss is summed over initialisations, so each row receives exactly its
own gradient and the ``K`` runs are independent (every optimizer here is elementwise).

:func:`train` is five steps, each in its own unit: check the inputs
(:mod:`sgdscape.core.train_inputs`), choose the engine (:func:`sgdscape.core.engines.fuses_steps`),
step the runs (:func:`sgdscape.core.engines.take_steps`), find where runs diverged
(:mod:`sgdscape.core.divergence`), and assemble the :class:`Trajectory` with the risk and
full gradient along the path (:mod:`sgdscape.core.path`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from sgdscape.core.devices import one_thread_when_small
from sgdscape.core.divergence import (
    blank_after_divergence,
    divergence_suspects,
    first_divergence,
    nonfinite_steps,
)
from sgdscape.core.engines import (
    DIVERGENCE_CHECK_STEPS,
    FUSE_MIN_INIT_STEPS,
    Minibatches,
    Records,
    Stepper,
    fused_optimizer,
    fuses_steps,
    take_steps,
)
from sgdscape.core.kernels import (
    SGD_BLOCK_STEPS,
    SINGLE_THREAD_BELOW,
    fused_sgd_steps,
)
from sgdscape.core.losses import Loss
from sgdscape.core.models import Model
from sgdscape.core.optimizers import (
    OPTIMIZERS,
    OptimizerSpec,
    SgdUpdate,
    learning_rates,
)
from sgdscape.core.path import (
    PATH_CHUNK_EVALUATIONS,
    PATH_FUSE_MIN_EVALUATIONS,
    path_quantities,
    path_records,
    risk_at,
    uses_moments,
)
from sgdscape.core.problems import Dataset
from sgdscape.core.row_steps import row_steps_available, take_row_steps
from sgdscape.core.train_inputs import (
    SAMPLINGS,
    TrainInputs,
    as_init,
    check_train_inputs,
    minibatch_schedule,
)
from sgdscape.errors import (
    SgdscapeError,
)

__all__ = [  # the names other modules and tests import from here
    "DIVERGENCE_CHECK_STEPS",
    "FUSE_MIN_INIT_STEPS",
    "PATH_CHUNK_EVALUATIONS",
    "PATH_FUSE_MIN_EVALUATIONS",
    "SAMPLINGS",
    "TrainInputs",
    "Trajectory",
    "as_init",
    "check_train_inputs",
    "fused_sgd_steps",
    "minibatch_schedule",
    "nonfinite_steps",
    "path_quantities",
    "train",
]


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
        kept: np.ndarray = row[row >= 0]
        return kept

    @property
    def noise(self) -> np.ndarray:
        """Gradient noise ``grads - full_grads``, ``(..., T, p)``."""
        if self.full_grads is None:
            raise SgdscapeError("the full gradient was not recorded (record_full_gradient=False).")
        noise: np.ndarray = self.grads - self.full_grads
        return noise

    @property
    def noise_norm(self) -> np.ndarray:
        """Euclidean norm of the gradient noise per step, ``(..., T)``."""
        if self.full_grads is None:
            raise SgdscapeError("the full gradient was not recorded (record_full_gradient=False).")
        with np.errstate(over="ignore", invalid="ignore"):
            noise = self.grads.astype(np.float64) - self.full_grads.astype(np.float64)
            norms: np.ndarray = np.linalg.norm(noise, axis=-1)
            return norms

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

    Examples:
        The seed's run: one init, one sample per step, 100 samples so 100 steps of 2
        parameters; step 0 records the init itself.

        >>> import sgdscape
        >>> data = sgdscape.ground_truth(100, seed=0)
        >>> run = sgdscape.train("relu-unit", data, init=(1.2, -2.3), lr=0.05)
        >>> run.iterates.shape, run.grads.shape, run.risk.shape
        ((100, 2), (100, 2), (100,))
        >>> run.iterates[0]
        array([ 1.2, -2.3], dtype=float32)
        >>> bool(run.final_risk < run.risk[0])
        True

        Many inits at once: a leading axis of ``K`` runs, trained independently.

        >>> many = sgdscape.train("relu-unit", data, init=[[1.2, -2.3], [0.5, 1.0]], epochs=2)
        >>> many.iterates.shape, many.final.shape, many.diverged.tolist()
        ((2, 200, 2), (2, 2), [False, False])
        >>> bool((many.iterates[0, :100] == run.iterates).all())
        True
    """
    given = check_train_inputs(
        model, data, init=init, lr=lr, optimizer=optimizer,
        optimizer_options=optimizer_options, loss=loss, batch_size=batch_size, epochs=epochs,
        shuffle=shuffle, sampling=sampling, schedule=schedule,
        schedule_options=schedule_options, seed=seed, device=device, engine=engine,
    )  # fmt: skip
    model, target = given.model, given.device
    w = given.start.reshape(-1, model.n_params).to(target).clone().requires_grad_(True)
    n_inits, n_steps = w.shape[0], given.batches.shape[0]
    sgd = SgdUpdate.matching(given.spec, given.options)
    # an inlined SGD needs no torch.optim object (building one imports torch._dynamo)
    optim = given.spec.build([w], given.lr, given.options) if sgd is None else None
    lrs = learning_rates(given.lr, given.schedule, n_steps, given.schedule_options)
    x = data.x.to(target).reshape(-1)
    y = data.y.to(target).reshape(-1)

    records = Records.empty(n_steps, model.n_params, n_inits, target)
    batches = Minibatches.gather(given.batches, x, y, lrs)
    fuse = fuses_steps(given.engine, given.closed_form, n_inits, n_steps)
    if fuse and optim is not None:
        optim = fused_optimizer(given.spec, w, given.lr, given.options) or optim
    stepper = Stepper(model, given.loss, w, optim, sgd, given.closed_form, fused=fuse)
    # a step's kernels and the records are small: one thread avoids OpenMP start-up and
    # stalls per call (measured 2x to 3x faster for 10,000 inits x 100 steps)
    work = n_inits * model.n_params * batch_size * SGD_BLOCK_STEPS
    threads = torch.get_num_threads()  # the native row kernel splits over them by itself
    with one_thread_when_small(work, target, SINGLE_THREAD_BELOW):
        if (
            sgd is not None
            and not fuse
            and given.closed_form
            and row_steps_available(model, given.loss, sgd, batch_size)
        ):  # the seed's setting: one sample per step, on rows, bit-equal to the per-step engine
            steps_run = take_row_steps(
                model, sgd, w, batches.x[:, 0].tolist(), batches.y[:, 0].tolist(), lrs,
                records.iterates, records.grads, records.batch_loss, DIVERGENCE_CHECK_STEPS,
                threads=threads,
            )  # fmt: skip
        else:
            steps_run = take_steps(
                stepper, batches, records, blocks=fuse, block_kernel=fused_sgd_steps
            )
        known = any(given.spec.cls is spec.cls for spec in OPTIMIZERS.values())
        suspects = divergence_suspects(w.detach(), records.batch_loss[:steps_run], known)
        diverged_step, keep = first_divergence(
            records.iterates[:steps_run],
            records.grads[:steps_run],
            records.batch_loss[:steps_run],
            suspects,
            n_inits,
        )
    return _assemble(
        given, records, w, x, y, diverged_step, suspects, keep, batch_size, lrs,
        record_risk=record_risk, record_full_gradient=record_full_gradient,
    )  # fmt: skip


def _assemble(
    given: TrainInputs,
    records: Records,
    w: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    diverged_step: torch.Tensor,
    suspects: torch.Tensor,
    keep: int,
    batch_size: int,
    lrs: list[float],
    *,
    record_risk: bool,
    record_full_gradient: bool,
) -> Trajectory:
    """The :class:`Trajectory` of the first ``keep`` steps: the path's risk and full
    gradient added, NaN after each run's divergence, records as ``(K, T, ...)`` arrays.

    Args:
        given: the checked inputs.
        records: the steps' records; ``w``: ``(K, p)`` the iterate after the last step.
        x, y: ``(n,)`` the data, on the device.
        diverged_step, suspects, keep: from :mod:`sgdscape.core.divergence`.
        batch_size: samples per step; ``lrs`` the learning rate of each step.
    """
    model, loss_fn, batches = given.model, given.loss, given.batches
    n, n_inits = x.shape[0], w.shape[0]
    iterates, grads, batch_loss = records.iterates, records.grads, records.batch_loss
    with torch.no_grad():
        risk, full_grads = path_records(
            model, loss_fn, iterates[:keep], x, y,
            engine=given.engine, risk=record_risk, full_gradient=record_full_gradient,
        )  # fmt: skip
        if batch_size == n:  # a minibatch that is the data in order: its gradient is exact
            in_order = (batches[:keep, :n] == torch.arange(n)).all(dim=1).to(x.device)
            if risk is not None:
                risk[in_order] = batch_loss[:keep][in_order]
            if full_grads is not None:
                full_grads[in_order] = grads[:keep][in_order].transpose(1, 2)
        final = w.detach().clone()
        moments = uses_moments(model, loss_fn, given.engine, float(keep) * n_inits * n)
        final_risk = risk_at(model, loss_fn, final, x, y, moments) if record_risk else None
        if suspects.numel() > 0:  # NaN after each run's divergence, in the suspects only
            blank_after_divergence(
                diverged_step, suspects, keep,
                per_param=() if full_grads is None else (full_grads,),
                per_run=(risk, batch_loss),
                time_major_params=(iterates, grads),
            )  # fmt: skip
            dead = diverged_step >= 0
            final[dead] = math.nan
            if final_risk is not None:
                final_risk[dead] = math.nan

    single = given.start.ndim == 1

    def out(tensor: torch.Tensor, time_axis: bool = True) -> np.ndarray:
        if tensor is iterates or tensor is grads:  # (T, p, K) -> (K, T, p)
            kept = tensor[:keep].permute(2, 0, 1)
        else:  # (T, K, ...) -> (K, T, ...)
            kept = tensor[:keep].transpose(0, 1) if time_axis else tensor
        array: np.ndarray = kept.detach().cpu().numpy()
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
