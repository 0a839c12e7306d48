"""SGD as a random process: ``K`` independent chains of the same optimizer, run as one batch.

One SGD path is one draw of a random process. :func:`chains` draws ``K`` of them from the
same init (or from an init distribution): every chain sees its own sequence of minibatches
and all ``K`` advance together as one ``(K, p)`` parameter tensor, so one step of the whole
ensemble costs a handful of vectorised operations.

The per-chain randomness rule (what makes a chain reproducible on its own)
---------------------------------------------------------------------------
Chain ``k`` (``0 <= k < K``) owns the CPU ``torch.Generator`` seeded with ``seed + k``
(:func:`sgdscape.core.problems.make_generator`) and draws from it exactly what
``train(model, data, init=..., seed=seed + k, sampling=..., batch_size=B)`` draws:

* ``init=None``: first the chain's init from the model's rule (``model.init(generator=g)``);
* ``"with-replacement"``: a stream of indices ``randint(n)``; step ``t`` uses the stream's
  entries ``t*B ... t*B + B - 1`` (``train`` draws the same stream epoch by epoch);
* ``"shuffle"``: one ``randperm(n)`` per epoch of ``ceil(n / B)`` steps; the epoch's last
  minibatch is short when ``B`` does not divide ``n``, as in ``train``.

So chain ``k`` of a batched run equals the ``train`` call with ``seed + k`` (tests hold it
to that, bit for bit for SGD). The indices are drawn per chain in blocks of steps (one
generator call per chain and block, stored in the narrowest integer type that holds
``n - 1``), so memory stays bounded: about 2.6 kB of generator state per chain while a
run needs more than one block, plus at most :data:`INDEX_BLOCK_BYTES` of indices;
``(K, steps, B)`` is never materialised for long runs.

Only the iterates at ``record_steps`` are kept, ``(S, K, p)`` float32, plus the final one.

Steps run eagerly with the closed-form gradients of :mod:`sgdscape.core.kernels` (autograd via
``torch.func`` for user models), on one CPU thread, and are then bit for bit those of
``train``. Large runs of plain SGD (``K * steps >= FUSE_MIN_INIT_STEPS``, as ``train``)
run as compiled blocks of steps (:func:`sgdscape.core.kernels.fused_sgd_steps`, each chain
with its own minibatches), equal within float rounding; ``engine="plain"`` turns that off.

This module holds the :class:`Chains` record and :func:`chains`; the inputs are checked in
:mod:`sgdscape.core.chain_inputs` and the chains stepped in :mod:`sgdscape.core.chain_engine`,
whose public names are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from sgdscape.core.chain_engine import (
    INDEX_BLOCK_BYTES,
    SHARD_CHAINS,
    ChainPlan,
    shard_ranges,
    step_shard,
    step_shards_on_ray,
)
from sgdscape.core.chain_inputs import (
    BACKENDS,
    CHAIN_SAMPLINGS,
    InitSampler,
    check_record_steps,
    default_record_steps,
    resolve_init,
)
from sgdscape.core.devices import resolve_device
from sgdscape.core.kernels import check_engine
from sgdscape.core.losses import Loss, get_loss
from sgdscape.core.models import Model, get_model
from sgdscape.core.optimizers import (
    OptimizerSpec,
    check_schedule,
    get_optimizer,
    learning_rates,
)
from sgdscape.core.problems import Dataset
from sgdscape.errors import SgdscapeError, check_choice, check_int, check_positive

__all__ = [
    "BACKENDS",
    "CHAIN_SAMPLINGS",
    "INDEX_BLOCK_BYTES",
    "SHARD_CHAINS",
    "Chains",
    "ChainsConfig",
    "InitSampler",
    "chains",
    "default_record_steps",
]


@dataclass(frozen=True)
class ChainsConfig:
    """Everything that defines a :func:`chains` run (the arrays follow from it and the data).

    ``lr`` is the base learning rate, ``schedule`` its schedule over ``steps`` steps;
    chain ``k`` uses seed ``seed + k``.
    """

    model: str
    n_chains: int
    lr: float
    batch_size: int
    sampling: str
    steps: int
    optimizer: str
    optimizer_options: Mapping[str, object] = field(default_factory=dict)
    schedule: str = "constant"
    schedule_options: Mapping[str, float] = field(default_factory=dict)
    loss: str = "mse"
    seed: int = 0
    init: str = "given"
    device: str = "cpu"
    backend: str = "local"
    engine: str = "auto"


@dataclass(frozen=True)
class Chains:
    """``K`` SGD chains recorded at chosen steps.

    The iterate at step ``t`` is the one *after* ``t`` updates (step 0 is the init, step
    ``steps`` the final iterate), as ``Trajectory.iterates[t]`` of :func:`sgdscape.train`.

    Attributes:
        record_steps: ``(S,)`` int64, increasing steps in ``[0, steps]``.
        iterates: ``(S, K, p)`` float32, the chains' parameters at each recorded step, in
            the model's parameter units (coordinates ``param_names``).
        final: ``(K, p)`` float32, the iterate after the last step.
        init: ``(K, p)`` float32, each chain's start.
        diverged: ``(K,)`` bool, whether the chain's final iterate is not finite (a
            diverged chain stays NaN or inf; its later records are not finite).
        lr: ``(steps,)`` float64, the learning rate of every step.
        param_names: names of the ``p`` parameters.
        config: the run's :class:`ChainsConfig`.
    """

    record_steps: np.ndarray
    iterates: np.ndarray
    final: np.ndarray
    init: np.ndarray
    diverged: np.ndarray
    lr: np.ndarray
    param_names: tuple[str, ...]
    config: ChainsConfig

    @property
    def n_chains(self) -> int:
        """Number of chains ``K``."""
        return int(self.final.shape[0])

    @property
    def chain_seeds(self) -> np.ndarray:
        """``(K,)`` the seed of each chain's generator: ``seed + k``."""
        return self.config.seed + np.arange(self.n_chains, dtype=np.int64)

    def at(self, step: int) -> np.ndarray:
        """The ``(K, p)`` iterates recorded at ``step`` (which must be recorded)."""
        hits = np.flatnonzero(self.record_steps == step)
        if hits.size == 0:
            raise SgdscapeError(
                f"step {step} was not recorded; recorded steps are {self.record_steps.tolist()}."
            )
        iterates: np.ndarray = self.iterates[int(hits[0])]
        return iterates


def chains(
    model: str | Model,
    data: Dataset,
    *,
    init: object = None,
    n_chains: int,
    lr: float,
    batch_size: int = 1,
    sampling: str = "with-replacement",
    steps: int,
    optimizer: str | type[torch.optim.Optimizer] | OptimizerSpec = "sgd",
    optimizer_options: Mapping[str, object] | None = None,
    schedule: str | None = None,
    schedule_options: Mapping[str, float] | None = None,
    loss: str | Loss = "mse",
    seed: int = 0,
    record_steps: Sequence[int] | np.ndarray | None = None,
    device: str | torch.device = "cpu",
    backend: str = "local",
    shards: int | None = None,
    ray_address: str | None = None,
    engine: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> Chains:
    """Run ``n_chains`` independent copies of the same stochastic optimizer as one batch.

    Chain ``k`` uses the generator seeded with ``seed + k`` and equals
    ``train(model, data, init=init_k, seed=seed + k, sampling=sampling,
    batch_size=batch_size, ...)`` over its first ``steps`` steps (module docstring).

    Args:
        model: registry name or :class:`Model`.
        data: the ``n`` samples.
        init: ``(p,)`` one start for every chain; ``(K, p)`` one per chain; a callable
            ``sampler(K, generator) -> (K, p)`` called once with ``make_generator(seed)``;
            or ``None``: each chain draws its own from the model's rule with its generator.
        n_chains: ``K >= 1``.
        lr: base learning rate (> 0); ``schedule`` (a name of
            :data:`sgdscape.core.optimizers.SCHEDULES`, default constant) scales it over ``steps``.
        batch_size: ``B``, samples per minibatch, ``1 ... n``.
        sampling: ``"with-replacement"`` (B iid uniform indices per step) or ``"shuffle"``
            (a fresh permutation per epoch of ``ceil(n / B)`` steps).
        steps: number of optimizer steps (>= 0).
        optimizer: any registered optimizer, by name.
        optimizer_options: that optimizer's hyperparameters (``None``: its defaults).
        loss: elementwise loss (the minibatch loss is its mean over the minibatch).
        seed: chain ``k`` uses ``seed + k``.
        record_steps: steps ``t`` in ``[0, steps]`` whose iterates are kept (default
            :func:`default_record_steps`); memory ``S * K * p * 4`` bytes.
        device: where the chains step (indices are drawn on the CPU).
        backend: ``"local"`` or ``"ray"`` (shards as Ray tasks; equal to local).
        shards: number of shards (Ray default: the cluster's CPUs; local default: as few
            as hold :data:`SHARD_CHAINS` chains each). The result does not depend on it.
        ray_address: a Ray cluster address (default: a running or new local Ray).
        engine: ``"plain"`` eager steps (bit for bit equal to ``train``); ``"auto"``
            compiles blocks of plain-SGD steps when ``K * steps`` is large (equal within
            float rounding); ``"fused"`` always compiles where it can.
        progress: called as ``progress(chain_steps_done, chain_steps_total)`` (``K * steps``
            in all) after each block of steps of each shard (local backend only).

    Returns:
        A :class:`Chains` with ``iterates (S, K, p)``, ``final (K, p)`` and ``diverged (K,)``.

    Examples:
        >>> import sgdscape
        >>> data = sgdscape.make_problem("linear", 20, seed=0)
        >>> run = sgdscape.chains("linear-regression", data, init=(0.0, 0.0), n_chains=500,
        ...                       lr=0.1, steps=50, record_steps=[0, 10, 50])
        >>> run.iterates.shape  # (recorded steps, chains, parameters)
        (3, 500, 2)
        >>> bool((run.at(0) == 0).all()), bool(run.at(50).std(axis=0).min() > 0)
        (True, True)
    """
    model = get_model(model)
    loss_fn = get_loss(loss)
    spec = get_optimizer(optimizer)
    lr = check_positive("learning rate", lr)
    n_chains = check_int("n_chains", n_chains, low=1)
    steps = check_int("steps", steps, low=0)
    n = len(data)
    batch_size = check_int("batch size", batch_size, low=1)
    if batch_size > n:
        raise SgdscapeError(
            f"batch size {batch_size} is larger than the data ({n} samples); use at most {n}."
        )
    check_choice("sampling", sampling, CHAIN_SAMPLINGS)
    check_choice("backend", backend, BACKENDS)
    engine = check_engine(engine)
    seed = check_int("seed", seed, low=0)
    options = dict(optimizer_options or {})
    probe = torch.zeros(1, model.n_params, requires_grad=True)
    spec.build([probe], lr, options)  # validates the options once, before any work
    schedule_name = "constant" if schedule is None else schedule
    _, schedule_opts = check_schedule(schedule_name, schedule_options)
    record = check_record_steps(record_steps, steps)
    start = resolve_init(init, model, n_chains, seed)
    device_name = str(resolve_device(device))
    plan = ChainPlan(
        model=model,
        loss=loss_fn,
        spec=spec,
        options=options,
        x=data.x.detach().cpu().reshape(-1).float(),
        y=data.y.detach().cpu().reshape(-1).float(),
        lrs=learning_rates(lr, schedule_name, steps, schedule_opts),
        batch_size=batch_size,
        sampling=sampling,
        steps=steps,
        seed=seed,
        record_steps=record,
        device=device_name,
        engine=engine,
    )
    if shards is None:
        shards = math.ceil(n_chains / SHARD_CHAINS)
        if backend == "ray":
            from sgdscape.core.distributed import RayBackend

            ray = RayBackend(ray_address)._init()
            shards = max(shards, int(ray.cluster_resources().get("CPU", 1)))
    shards = check_int("shards", shards, low=1)
    ranges = shard_ranges(n_chains, min(shards, n_chains))
    if backend == "ray":
        parts = step_shards_on_ray(plan, ranges, start, ray_address)
    else:
        total = n_chains * steps

        def report(first: int, count: int) -> Callable[[int], None] | None:
            if progress is None:
                return None
            return lambda done: progress(first * steps + count * done, total)

        parts = [
            step_shard(
                plan,
                first,
                count,
                None if start is None else start[first : first + count],
                report(first, count),
            )
            for first, count in ranges
        ]
    iterates = (
        parts[0]["iterates"]
        if len(parts) == 1
        else np.concatenate([part["iterates"] for part in parts], axis=1)
    )
    final = np.concatenate([part["final"] for part in parts])
    config = ChainsConfig(
        model=model.name,
        n_chains=n_chains,
        lr=lr,
        batch_size=batch_size,
        sampling=sampling,
        steps=steps,
        optimizer=spec.name,
        optimizer_options=options,
        schedule=schedule_name,
        schedule_options=schedule_opts,
        loss=loss_fn.name,
        seed=seed,
        init="model" if init is None else ("sampler" if callable(init) else "given"),
        device=device_name,
        backend=backend,
        engine=engine,
    )
    return Chains(
        record_steps=record,
        iterates=iterates,
        final=final,
        init=np.concatenate([part["init"] for part in parts]),
        diverged=~np.isfinite(final).all(axis=-1),
        lr=np.asarray(plan.lrs, dtype=np.float64),
        param_names=model.param_names,
        config=config,
    )
