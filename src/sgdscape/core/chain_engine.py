"""The batched stepping engine of :func:`sgdscape.core.chains.chains`: ``K`` chains as one tensor.

A validated run is a :class:`ChainPlan`; :func:`step_shard` steps a contiguous range of its
chains as one ``(count, p)`` tensor, drawing each chain's minibatch indices from its own
generator in blocks of steps (:data:`INDEX_BLOCK_BYTES`), eagerly or as compiled blocks of
plain-SGD steps; :func:`step_shards_on_ray` runs the shards as Ray tasks. The per-chain randomness
rule is the one :mod:`sgdscape.core.chains` states.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sgdscape.core.devices import one_thread_when_small, resolve_device
from sgdscape.core.kernels import (
    SGD_BLOCK_STEPS,
    SINGLE_THREAD_BELOW,
    closed_form_available,
    closed_form_gradient,
    fused_sgd_steps,
)
from sgdscape.core.losses import Loss
from sgdscape.core.models import Model
from sgdscape.core.optimizers import OptimizerSpec, SgdUpdate
from sgdscape.core.train import FUSE_MIN_INIT_STEPS

#: bytes of minibatch indices drawn at once per shard (a block of steps for every chain)
INDEX_BLOCK_BYTES = 2**27

#: most chains one shard (one batched computation) holds; more are run shard after shard
SHARD_CHAINS = 2**17


def _index_dtype(n: int) -> torch.dtype:
    """The narrowest integer type that holds indices ``0 ... n - 1``."""
    if n <= 2**8:
        return torch.uint8
    if n <= 2**15:
        return torch.int16
    return torch.int32


@dataclass(frozen=True)
class ChainPlan:
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
    plan: ChainPlan,
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


def _gradient(plan: ChainPlan, w: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    """Each chain's minibatch gradient ``(K, p)`` for its own minibatch ``xb, yb: (K, b)``."""
    if closed_form_available(plan.model, plan.loss):
        with torch.no_grad():
            return closed_form_gradient(plan.model, plan.loss, w, xb, yb)[1]
    model, loss = plan.model, plan.loss

    def one(wk: torch.Tensor, xk: torch.Tensor, yk: torch.Tensor) -> torch.Tensor:
        return loss(model.function(wk, xk), yk).mean()

    with torch.enable_grad():
        grads: torch.Tensor = torch.func.vmap(torch.func.grad(one))(w.detach(), xb, yb)
        return grads


def step_shard(
    plan: ChainPlan,
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


def _fuses(plan: ChainPlan, n_chains: int, sgd: SgdUpdate | None) -> bool:
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
    plan: ChainPlan,
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
    plan: ChainPlan,
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


def shard_ranges(n_chains: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous ``(first, count)`` ranges covering ``0 ... n_chains - 1``."""
    edges = np.linspace(0, n_chains, shards + 1).round().astype(int)
    return [(int(a), int(b - a)) for a, b in itertools.pairwise(edges) if b > a]


def step_shards_on_ray(
    plan: ChainPlan, ranges: list[tuple[int, int]], init: np.ndarray | None, address: str | None
) -> list[dict[str, Any]]:
    """:func:`step_shard` of each ``(first, count)`` range as a Ray task (at ``address``, or
    a running or new local Ray); the shards' results in the order of ``ranges``."""
    from sgdscape.core.distributed import RayBackend

    ray = RayBackend(address)._init()  # joins a running Ray or starts a local one
    task = ray.remote(num_cpus=1)(step_shard)
    plan_ref = ray.put(plan)
    refs = [
        task.remote(plan_ref, first, count, None if init is None else init[first : first + count])
        for first, count in ranges
    ]
    return list(ray.get(refs))
