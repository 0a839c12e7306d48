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
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sgdscape.core.devices import one_thread_when_small, resolve_device
from sgdscape.core.kernels import (
    SGD_BLOCK_STEPS,
    SINGLE_THREAD_BELOW,
    check_engine,
    closed_form_available,
    closed_form_gradient,
    fused_sgd_steps,
)
from sgdscape.core.losses import Loss, get_loss
from sgdscape.core.models import Model, get_model
from sgdscape.core.optimizers import (
    OptimizerSpec,
    SgdUpdate,
    check_schedule,
    get_optimizer,
    learning_rates,
)
from sgdscape.core.problems import Dataset, make_generator
from sgdscape.core.train import FUSE_MIN_INIT_STEPS, as_init
from sgdscape.errors import SgdscapeError, check_choice, check_int, check_positive

#: samplings a chain can use (``"in-order"`` would make every chain the same path)
CHAIN_SAMPLINGS = {
    "with-replacement": "each minibatch of B indices drawn uniformly with replacement",
    "shuffle": "a fresh random permutation every epoch of ceil(n / B) steps",
}

BACKENDS = {
    "local": "all chains in this process, in shards of at most SHARD_CHAINS chains",
    "ray": "the chains split into shards run as Ray tasks, then concatenated",
}

#: bytes of minibatch indices drawn at once per shard (a block of steps for every chain)
INDEX_BLOCK_BYTES = 2**27

#: most chains one shard (one batched computation) holds; more are run shard after shard
SHARD_CHAINS = 2**17

#: a callable init distribution: ``sampler(n_chains, generator) -> (n_chains, p)``
InitSampler = Callable[[int, torch.Generator], Any]


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
        return self.iterates[int(hits[0])]


def default_record_steps(steps: int, count: int = 50) -> np.ndarray:
    """Steps 0 and ``steps`` and about ``count`` geometrically spaced ones between, ``(S,)``."""
    inner = np.geomspace(1, max(steps, 1), count).round().astype(np.int64)
    return np.unique(np.concatenate([[0], inner, [steps]]).clip(0, steps))


def _check_record_steps(record_steps: object, steps: int) -> np.ndarray:
    if record_steps is None:
        return default_record_steps(steps)
    try:
        values = np.asarray(record_steps, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise SgdscapeError(f"record_steps must be integers, got {record_steps!r}.") from None
    if values.size == 0 or not np.all(values == np.round(values)):
        raise SgdscapeError(f"record_steps must be a non-empty list of integers, got {values}.")
    if values.min() < 0 or values.max() > steps:
        raise SgdscapeError(
            f"record_steps must lie between 0 and steps={steps}, got {values.min():g} to "
            f"{values.max():g}."
        )
    return np.unique(values.astype(np.int64))


def _index_dtype(n: int) -> torch.dtype:
    """The narrowest integer type that holds indices ``0 ... n - 1``."""
    if n <= 2**8:
        return torch.uint8
    if n <= 2**15:
        return torch.int16
    return torch.int32


@dataclass(frozen=True)
class _Plan:
    """A validated run: what every shard needs (picklable, for Ray)."""

    model: Model
    loss: Loss
    spec: OptimizerSpec
    options: dict[str, object]
    x: torch.Tensor
    y: torch.Tensor
    lrs: list[float]
    batch_size: int
    sampling: str
    steps: int
    seed: int
    record_steps: np.ndarray
    device: str
    engine: str = "auto"


def _draw_indices(
    generators: list[torch.Generator],
    plan: _Plan,
    start: int,
    stop: int,
    out: torch.Tensor,
) -> None:
    """Fill ``out: (K, (stop - start) * B)`` with each chain's minibatch indices of steps
    ``start ... stop - 1``. For ``"shuffle"``, ``start`` and ``stop`` are epoch boundaries
    (or ``stop == steps``) and each epoch's ``ceil(n / B) * B`` slots hold one permutation
    followed by unused padding."""
    n, batch = plan.x.shape[0], plan.batch_size
    if plan.sampling == "with-replacement":
        for k, generator in enumerate(generators):
            out[k].random_(0, n, generator=generator)
        return
    per_epoch = math.ceil(n / batch)
    epochs = math.ceil((stop - start) / per_epoch)
    for k, generator in enumerate(generators):
        for e in range(epochs):
            offset = e * per_epoch * batch
            permutation = torch.randperm(n, generator=generator)
            room = min(n, out.shape[1] - offset)
            out[k, offset : offset + room] = permutation[:room].to(out.dtype)


def _gradient(plan: _Plan, w: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    """Each chain's minibatch gradient ``(K, p)`` for its own minibatch ``xb, yb: (K, b)``."""
    if closed_form_available(plan.model, plan.loss):
        with torch.no_grad():
            return closed_form_gradient(plan.model, plan.loss, w, xb, yb)[1]
    model, loss = plan.model, plan.loss

    def one(wk: torch.Tensor, xk: torch.Tensor, yk: torch.Tensor) -> torch.Tensor:
        return loss(model.function(wk, xk), yk).mean()

    with torch.enable_grad():
        return torch.func.vmap(torch.func.grad(one))(w.detach(), xb, yb)


def _run_shard(
    plan: _Plan,
    first: int,
    count: int,
    init: np.ndarray | None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run chains ``first ... first + count - 1`` of ``plan`` as one batch.

    ``progress(steps_done)`` is called as the shard's steps finish (not with Ray).

    ``init``: ``(count, p)`` float32, or ``None`` to draw each chain's init from the model's
    rule with its own generator (as ``train(init=None, seed=seed + k)``).

    Returns numpy arrays: ``iterates (S, count, p)``, ``final (count, p)``, ``init (count, p)``.
    """
    device = resolve_device(plan.device)
    # the same generators as make_generator(seed + k), without its per-call validation
    generators = [torch.Generator().manual_seed(plan.seed + first + k) for k in range(count)]
    if init is None:
        start = torch.stack([plan.model.init(generator=g) for g in generators])
    else:
        start = torch.as_tensor(init, dtype=torch.float32).reshape(count, plan.model.n_params)
    n, batch, steps = plan.x.shape[0], plan.batch_size, plan.steps
    w = start.to(device).clone()
    optimizer, sgd = None, SgdUpdate.matching(plan.spec, plan.options)
    if sgd is None:
        w.requires_grad_(True)
        optimizer = plan.spec.build([w], plan.lrs[0] if plan.lrs else 1.0, plan.options)

    # a block of steps: every chain's indices for it at once (whole epochs when shuffling)
    dtype = _index_dtype(n)
    itemsize = torch.empty((), dtype=dtype).element_size()
    block = max(1, INDEX_BLOCK_BYTES // max(1, count * batch * itemsize))
    per_epoch = math.ceil(n / batch)
    lengths = [batch] * (per_epoch - 1) + [n - (per_epoch - 1) * batch]
    if plan.sampling == "shuffle":
        block = max(1, block // per_epoch) * per_epoch
    block = min(block, steps) if steps > 0 else 1
    buffer = torch.empty((count, block * batch), dtype=dtype)

    records = np.empty((len(plan.record_steps), count, plan.model.n_params), dtype=np.float32)
    wanted = {int(s): j for j, s in enumerate(plan.record_steps)}
    if 0 in wanted:
        records[wanted[0]] = w.detach().cpu().numpy()
    # one thread: a step is a few small vectorised operations, and an OpenMP region over
    # them stalls on a busy machine (measured 15x slower with 2 threads at load 10)
    work = count * batch * plan.model.n_params
    with one_thread_when_small(work, device, SINGLE_THREAD_BELOW):
        for lo in range(0, steps, block):
            hi = min(steps, lo + block)
            _draw_indices(generators, plan, lo, hi, buffer[:, : (hi - lo) * batch])
            if hi - lo == steps:
                generators = []  # one block holds the whole run: no generator state to keep
            # step-major (block, B, K): each step's indices are one contiguous slab
            slabs = buffer[:, : (hi - lo) * batch].T.reshape(hi - lo, batch, count)
            slabs = slabs.contiguous().to(device)
            _steps(
                plan, w, slabs, lo, hi, lengths, per_epoch, sgd, optimizer, records, wanted,
                progress,
            )  # fmt: skip
    return {
        "iterates": records,
        "final": w.detach().cpu().numpy().astype(np.float32),
        "init": start.cpu().numpy().astype(np.float32),
    }


def _fuses(plan: _Plan, n_chains: int, sgd: SgdUpdate | None) -> bool:
    """Whether blocks of steps run as compiled kernels (:func:`fused_sgd_steps`): plain SGD
    without momentum on a built-in model, full minibatches, and enough work to pay for
    compiling (as ``train``'s ``engine="auto"``) or ``engine="fused"``. Equal to the
    eager steps within float rounding, not bit for bit."""
    if plan.engine == "plain" or sgd is None or sgd.momentum != 0:
        return False
    if not closed_form_available(plan.model, plan.loss):
        return False
    if plan.sampling == "shuffle" and plan.x.shape[0] % plan.batch_size != 0:
        return False
    return plan.engine == "fused" or float(n_chains) * plan.steps >= FUSE_MIN_INIT_STEPS


def _fused_steps(
    plan: _Plan,
    w: torch.Tensor,
    slabs: torch.Tensor,
    lo: int,
    hi: int,
    sgd: SgdUpdate,
    records: np.ndarray,
    wanted: dict[int, int],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Whole compiled blocks of :data:`SGD_BLOCK_STEPS` steps from ``lo``; returns the
    first step left to the eager loop (``hi`` unless a kernel is missing or the range
    ends inside a block)."""
    x, y = plan.x.to(w.device), plan.y.to(w.device)
    mask = torch.ones((SGD_BLOCK_STEPS, plan.batch_size), dtype=w.dtype, device=w.device)
    wt = w.detach().T.contiguous()
    t = lo
    while t + SGD_BLOCK_STEPS <= hi:
        index = slabs[t - lo : t - lo + SGD_BLOCK_STEPS].transpose(1, 2).long()  # (S, K, B)
        lrs = torch.tensor(plan.lrs[t : t + SGD_BLOCK_STEPS], dtype=w.dtype, device=w.device)
        xb, yb = x[index], y[index]
        if wt.shape[1] > 1:  # the chains' axis is dynamic, as fused_sgd_steps marks wt's
            torch._dynamo.mark_dynamic(xb, 1)
            torch._dynamo.mark_dynamic(yb, 1)
        out = fused_sgd_steps(plan.model, plan.loss, sgd, wt, wt, xb, yb, mask, lrs)
        if out is None:
            break
        for step in range(t + 1, t + SGD_BLOCK_STEPS):  # iterates after step - t updates
            if step in wanted:
                records[wanted[step]] = out[0][step - t].T.cpu().numpy()
        wt = out[3]
        t += SGD_BLOCK_STEPS
        if t in wanted:
            records[wanted[t]] = wt.T.cpu().numpy()
        if progress is not None:
            progress(t)
    with torch.no_grad():
        w.copy_(wt.T)
    return t


def _steps(
    plan: _Plan,
    w: torch.Tensor,
    slabs: torch.Tensor,
    lo: int,
    hi: int,
    lengths: list[int],
    per_epoch: int,
    sgd: SgdUpdate | None,
    optimizer: torch.optim.Optimizer | None,
    records: np.ndarray,
    wanted: dict[int, int],
    progress: Callable[[int], None] | None = None,
) -> None:
    """Steps ``lo ... hi - 1`` of every chain in place on ``w: (K, p)``; ``slabs:
    (hi - lo, B, K)`` the chains' minibatch indices of those steps; ``progress(t)`` after
    step ``t`` (every compiled block, every eager step)."""
    x, y = plan.x.to(w.device), plan.y.to(w.device)
    first = lo
    if _fuses(plan, w.shape[0], sgd):
        assert sgd is not None
        first = _fused_steps(plan, w, slabs, lo, hi, sgd, records, wanted, progress)
    for t in range(first, hi):
        size = plan.batch_size if plan.sampling == "with-replacement" else lengths[t % per_epoch]
        index = slabs[t - lo, :size].T.long()
        gradient = _gradient(plan, w, x[index], y[index])
        with torch.no_grad():
            if sgd is not None:
                sgd.step(w, gradient, plan.lrs[t])
            else:
                assert optimizer is not None
                w.grad = gradient
                optimizer.param_groups[0]["lr"] = plan.lrs[t]
                optimizer.step()
        if t + 1 in wanted:
            records[wanted[t + 1]] = w.detach().cpu().numpy()
        if progress is not None:
            progress(t + 1)


def _resolve_init(init: object, model: Model, n_chains: int, seed: int) -> np.ndarray | None:
    """``(K, p)`` float32 inits, or ``None`` for per-chain draws from the model's rule."""
    if init is None:
        return None
    if callable(init):
        drawn = init(n_chains, make_generator(seed))
        tensor = as_init(drawn.detach().cpu() if isinstance(drawn, torch.Tensor) else drawn, model)
        if tensor.ndim != 2 or tensor.shape[0] != n_chains:
            raise SgdscapeError(
                f"an init sampler must return shape ({n_chains}, {model.n_params}), "
                f"got {tuple(tensor.shape)}."
            )
    else:
        tensor = as_init(init.detach().cpu() if isinstance(init, torch.Tensor) else init, model)
    if tensor.ndim == 1:
        tensor = tensor.expand(n_chains, -1)
    if tensor.shape[0] != n_chains:
        raise SgdscapeError(
            f"init has {tensor.shape[0]} rows but n_chains is {n_chains}; give ({model.n_params},) "
            f"or ({n_chains}, {model.n_params})."
        )
    return tensor.numpy().astype(np.float32, copy=True)


def _shard_ranges(n_chains: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous ``(first, count)`` ranges covering ``0 ... n_chains - 1``."""
    edges = np.linspace(0, n_chains, shards + 1).round().astype(int)
    return [(int(a), int(b - a)) for a, b in itertools.pairwise(edges) if b > a]


def _run_ray(
    plan: _Plan, ranges: list[tuple[int, int]], init: np.ndarray | None, address: str | None
) -> list[dict[str, Any]]:
    from sgdscape.core.distributed import RayBackend

    ray = RayBackend(address)._init()  # joins a running Ray or starts a local one
    task = ray.remote(num_cpus=1)(_run_shard)
    plan_ref = ray.put(plan)
    refs = [
        task.remote(plan_ref, first, count, None if init is None else init[first : first + count])
        for first, count in ranges
    ]
    return list(ray.get(refs))


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
    record = _check_record_steps(record_steps, steps)
    start = _resolve_init(init, model, n_chains, seed)
    device_name = str(resolve_device(device))
    plan = _Plan(
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
    ranges = _shard_ranges(n_chains, min(shards, n_chains))
    if backend == "ray":
        parts = _run_ray(plan, ranges, start, ray_address)
    else:
        total = n_chains * steps

        def report(first: int, count: int) -> Callable[[int], None] | None:
            if progress is None:
                return None
            return lambda done: progress(first * steps + count * done, total)

        parts = [
            _run_shard(
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
