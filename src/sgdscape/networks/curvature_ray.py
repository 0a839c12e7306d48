"""Curvature along a training run on a Ray cluster: one Ray task per selected step.

:func:`sgdscape.networks.curvature.training_curvature` with ``backend="ray"`` (or a
:class:`~sgdscape.core.distributed.RayBackend`) hands :func:`map_steps` its per-step function,
the inputs every step shares (a CPU copy of the model, the loss, the data and the options: put
in Ray's object store once) and one item per step (its flat parameters and minibatch indices).
Each task computes its step with the same seeds as the local loop, so the result equals the
local one; the results come back in step order. Ray is imported lazily by
:mod:`sgdscape.core.distributed`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sgdscape.core.distributed import RayBackend
from sgdscape.errors import SgdscapeError

#: what ``training_curvature(backend=...)`` accepts besides a ``RayBackend``
CURVATURE_BACKENDS = ("local", "ray")

Shared = TypeVar("Shared")
Item = TypeVar("Item")
Result = TypeVar("Result")


def ray_backend(backend: object) -> RayBackend | None:
    """``None`` for ``"local"``, a :class:`RayBackend` for ``"ray"`` or a given one.

    Raises:
        SgdscapeError: any other value, naming the allowed ones.
    """
    if isinstance(backend, RayBackend):
        return backend
    if isinstance(backend, str) and backend in CURVATURE_BACKENDS:
        return None if backend == "local" else RayBackend()
    raise SgdscapeError(
        f"backend must be one of {', '.join(CURVATURE_BACKENDS)} or a RayBackend, got {backend!r}."
    )


def _task(function: Callable[[Any, Any, str], Any], shared: Any, item: Any, use_gpu: bool) -> Any:
    """One step on a Ray worker, on its GPU when the task was given one."""
    import torch

    device = "cuda" if use_gpu and torch.cuda.is_available() else "cpu"
    return function(shared, item, device)


def map_steps(
    backend: RayBackend,
    function: Callable[[Shared, Item, str], Result],
    shared: Shared,
    items: Sequence[Item],
) -> list[Result]:
    """``[function(shared, item, device) for item in items]``, each call a Ray task.

    ``shared`` travels to the object store once; ``device`` is ``"cuda"`` when the cluster has
    GPUs (one per task) and ``"cpu"`` otherwise. A task whose worker dies is retried by Ray.
    """
    ray = backend._init()
    use_gpu = int(ray.cluster_resources().get("GPU", 0)) > 0
    options: dict[str, Any] = {"num_gpus": 1, "num_cpus": 0} if use_gpu else {"num_cpus": 1}
    remote = ray.remote(_task).options(max_retries=3, **options)
    shared_ref = ray.put(shared)
    refs = [remote.remote(function, shared_ref, item, use_gpu) for item in items]
    return list(ray.get(refs))
