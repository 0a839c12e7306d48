"""Inputs of :func:`sgdscape.core.chains.chains`: samplings, backends, recorded steps, inits.

Each check turns a user value into the array the batched engine
(:mod:`sgdscape.core.chain_engine`) needs, or raises :class:`SgdscapeError` naming the value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from sgdscape.core.models import Model
from sgdscape.core.problems import make_generator
from sgdscape.core.train import as_init
from sgdscape.errors import SgdscapeError

#: samplings a chain can use (``"in-order"`` would make every chain the same path)
CHAIN_SAMPLINGS = {
    "with-replacement": "each minibatch of B indices drawn uniformly with replacement",
    "shuffle": "a fresh random permutation every epoch of ceil(n / B) steps",
}

BACKENDS = {
    "local": "all chains in this process, in shards of at most SHARD_CHAINS chains",
    "ray": "the chains split into shards run as Ray tasks, then concatenated",
}

#: a callable init distribution: ``sampler(n_chains, generator) -> (n_chains, p)``
InitSampler = Callable[[int, torch.Generator], Any]


def default_record_steps(steps: int, count: int = 50) -> np.ndarray:
    """Steps 0 and ``steps`` and about ``count`` geometrically spaced ones between, ``(S,)``."""
    inner = np.geomspace(1, max(steps, 1), count).round().astype(np.int64)
    return np.unique(np.concatenate([[0], inner, [steps]]).clip(0, steps))


def check_record_steps(record_steps: object, steps: int) -> np.ndarray:
    """``(S,)`` int64 increasing steps in ``[0, steps]``: ``record_steps`` checked, or
    :func:`default_record_steps` for ``None``."""
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


def resolve_init(init: object, model: Model, n_chains: int, seed: int) -> np.ndarray | None:
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
