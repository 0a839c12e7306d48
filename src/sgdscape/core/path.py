"""The full-data risk and gradient at every recorded iterate, computed after a run.

The training loop does only what is sequential (the minibatch gradient and the update);
the empirical risk ``(T, K)`` and its gradient ``(T, K, p)`` at all ``T * K`` iterates are
one vectorised, chunked pass here instead of a full-data evaluation inside every step.
"""

from __future__ import annotations

import os

import torch

from sgdscape.core.kernels import closed_form_available, closed_form_gradient, fused_gradient
from sgdscape.core.losses import Loss
from sgdscape.core.models import Model

#: ``engine="auto"`` compiles the path's risk and gradient from this many evaluations: the
#: eager closed form runs at about 1e8/s here, a warm compiled kernel starts in a second
PATH_FUSE_MIN_EVALUATIONS = int(float(os.environ.get("SGDSCAPE_PATH_FUSE_MIN", "2e8")))

#: loss evaluations per chunk of :func:`path_quantities` (about 1 MiB per temporary: cache-sized)
PATH_CHUNK_EVALUATIONS = 2**18


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


def path_records(
    model: Model,
    loss: Loss,
    iterates: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    engine: str,
    risk: bool,
    full_gradient: bool,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The risk ``(T, K)`` and full gradient ``(T, K, p)`` at the iterates ``(T, p, K)``.

    Each is ``None`` when not asked for (neither is computed when neither is asked for).
    """
    if not (risk or full_gradient):
        return None, None
    n_steps, n_params, n_inits = iterates.shape
    path = iterates.transpose(1, 2).reshape(-1, n_params)
    full_risk, full_grad = path_quantities(
        model, loss, path, x, y, engine=engine, gradient=full_gradient
    )
    return (
        full_risk.reshape(n_steps, n_inits) if risk else None,
        None if full_grad is None else full_grad.reshape(n_steps, n_inits, n_params),
    )
