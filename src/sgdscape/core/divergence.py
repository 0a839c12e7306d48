"""Where each run of a batch went to inf or NaN, and blanking what came after.

A trajectory *diverges* at the first step whose iterate, minibatch gradient or minibatch
loss is not finite. The records are time-major: iterates and gradients ``(T, p, K)``,
losses ``(T, K)`` for ``K`` runs of ``T`` steps.
"""

from __future__ import annotations

import math

import torch


def nonfinite_steps(
    iterates: torch.Tensor, grads: torch.Tensor, batch_loss: torch.Tensor
) -> torch.Tensor:
    """``(T, K)`` whether the iterate ``(T, p, K)``, minibatch gradient ``(T, p, K)`` or
    loss ``(T, K)`` of each step is inf or NaN."""
    # v * 0 is 0 for a finite v and NaN otherwise: one pass, no overflow in the sum
    return torch.isnan((iterates * 0).sum(1) + (grads * 0).sum(1) + batch_loss * 0)


def divergence_suspects(
    final: torch.Tensor, batch_loss: torch.Tensor, stays_nonfinite: bool
) -> torch.Tensor:
    """Indices ``(S,)`` of the runs that may have diverged; empty when none can have.

    Args:
        final: ``(K, p)`` iterate after the last step run.
        batch_loss: ``(t, K)`` minibatch losses of the steps run.
        stays_nonfinite: whether the optimizer keeps a non-finite iterate non-finite and
            turns a non-finite gradient into a non-finite next iterate (the registry's
            optimizers do; tests check each). Then a run whose final iterate and losses are
            finite never diverged; otherwise every run is a suspect.
    """
    n_inits = final.shape[0]
    if not stays_nonfinite:
        return torch.arange(n_inits, device=final.device)
    # a finite sum means finite terms; an overflow only costs that run a scan
    if bool(torch.isfinite(final).all()) and bool(torch.isfinite(batch_loss.sum())):
        return torch.zeros(0, dtype=torch.int64, device=final.device)  # the usual case
    suspects = ~torch.isfinite(final).all(-1) | ~torch.isfinite(batch_loss.sum(0))
    return suspects.nonzero().reshape(-1)


def first_divergence(
    iterates: torch.Tensor,
    grads: torch.Tensor,
    batch_loss: torch.Tensor,
    suspects: torch.Tensor,
    n_inits: int,
) -> tuple[torch.Tensor, int]:
    """The first non-finite step of every run, and how many steps to keep.

    Args:
        iterates, grads: ``(t, p, K)`` records of the ``t`` steps run.
        batch_loss: ``(t, K)``.
        suspects: ``(S,)`` runs to scan (see :func:`divergence_suspects`); the others
            never diverged.
        n_inits: ``K``.

    Returns:
        ``diverged_step (K,)`` int64, -1 for a run that stayed finite, and ``keep``: ``t``,
        or, when every run diverged, one past the last divergence (wherever the loop
        noticed it).
    """
    steps_run = batch_loss.shape[0]
    diverged_step = torch.full((n_inits,), -1, dtype=torch.int64, device=batch_loss.device)
    if suspects.numel() > 0:
        bad = nonfinite_steps(
            iterates[:, :, suspects], grads[:, :, suspects], batch_loss[:, suspects]
        )  # (t, S)
        first = bad.to(torch.uint8).argmax(dim=0)  # the first True along time
        diverged_step[suspects] = torch.where(bad.any(dim=0), first, -1)
    keep = int(diverged_step.max()) + 1 if bool((diverged_step >= 0).all()) else steps_run
    return diverged_step, keep


def blank_after_divergence(
    diverged_step: torch.Tensor,
    suspects: torch.Tensor,
    keep: int,
    per_param: tuple[torch.Tensor, ...],
    per_run: tuple[torch.Tensor | None, ...],
    time_major_params: tuple[torch.Tensor, ...],
) -> None:
    """Fill with NaN, in place, every record of a suspect run after its divergence.

    Args:
        diverged_step: ``(K,)`` from :func:`first_divergence`.
        suspects: ``(S,)`` the runs scanned.
        keep: steps kept.
        per_param: records ``(keep, K, p)`` (the full gradient).
        per_run: records ``(keep, K)`` (risk, minibatch loss); ``None`` entries are skipped.
        time_major_params: records ``(T, p, K)`` (iterates, minibatch gradients).
    """
    steps = torch.arange(keep, device=diverged_step.device)
    after = steps[:, None] > torch.where(
        diverged_step[suspects] >= 0, diverged_step[suspects], keep
    )  # (keep, S)
    for tensor in per_param:
        tensor[:, suspects] = tensor[:, suspects].masked_fill(after[..., None], math.nan)
    for maybe in per_run:
        if maybe is not None:
            maybe[:keep, suspects] = maybe[:keep, suspects].masked_fill(after, math.nan)
    for tensor in time_major_params:
        tensor[:keep, :, suspects] = tensor[:keep, :, suspects].masked_fill(
            after[:, None, :], math.nan
        )
