"""Slice chunks on a Ray cluster: the network side of :class:`sgdscape.core.distributed.RayBackend`.

Every actor rebuilds the slice's :class:`~sgdscape.networks.evaluation.Evaluator` from a factory
(a CPU copy of the model and the data, the same batch size, budget and options), picks its own
device and answers chunks; Ray itself is imported lazily by :mod:`sgdscape.core.distributed`.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from sgdscape.errors import SgdscapeError
from sgdscape.networks.chunks import BACKENDS, ChunkPlan, ChunkResults, Progress
from sgdscape.networks.directions import Directions
from sgdscape.networks.evaluation import Evaluator


def evaluate_chunks_on_ray(
    backend: Any,
    evaluator: Evaluator,
    directions: Directions,
    plan: ChunkPlan,
    done: ChunkResults,
    progress: Progress | None,
) -> ChunkResults:
    """Compute the missing chunks of ``plan`` on ``backend`` (``"ray"`` or a ``RayBackend``).

    Returns ``done`` completed with every chunk's ``(risk (c,), samples (n, c) | None)``.
    """
    from sgdscape.core.distributed import RayBackend

    if isinstance(backend, str):
        if backend != "ray":
            raise SgdscapeError(
                f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}."
            )
        backend = RayBackend()
    if not isinstance(backend, RayBackend):
        raise SgdscapeError(f"backend must be 'local', 'ray' or a RayBackend, got {backend!r}.")
    factory = functools.partial(
        Evaluator,
        copy.deepcopy(evaluator.model).cpu(),  # actors pick their own device
        evaluator.loss_fn,
        (evaluator.x.cpu(), evaluator.y.cpu()),
        batch_size=evaluator.batch_size,
        memory_budget=evaluator.budget,
        use_algebra=evaluator.use_algebra,
        precision=evaluator.precision,
    )
    result: ChunkResults = backend.run(factory, directions, plan, done, progress)
    return result
