"""The one-sample SGD engine: the seed's setting, on parameter rows, with no allocation.

With one sample per step (``batch_size=1``, the seed's) a batched step of ``K`` runs is
a dozen elementwise operations on ``(K,)`` vectors; at 10,000 runs each takes a few
microseconds, so the per-step engine's time goes to dispatch, temporaries and the
transposed copies between its ``(K, p)`` iterate and the time-major ``(T, p, K)`` records.
Here the iterate lives as ``(p, K)`` rows, every operation writes into a preallocated
buffer or straight into the records (``out=``), and the minibatch's ``x`` and ``y`` are
Python numbers.

Each step performs the same IEEE float operations as the closed-form gradient
(:func:`sgdscape.core.kernels.closed_form_gradient`) and :class:`SgdUpdate`, on the same
operands, so the records equal the per-step engine's bit for bit (tests compare the bits,
signs of zero included): a one-sample mean or sum is ``0 + v`` there, so it is ``0 + v``
here (``addcmul`` / ``add`` onto a zero vector).

Only models listed in :data:`ROW_STEPS` with the ``mse`` loss take this engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from sgdscape.core.losses import LOSSES, Loss
from sgdscape.core.models import MODELS, Model
from sgdscape.core.optimizers import SgdUpdate


@dataclass(frozen=True)
class Scratch:
    """Preallocated ``(K,)`` work vectors of one run of the engine."""

    a: torch.Tensor
    b: torch.Tensor
    c: torch.Tensor
    zeros: torch.Tensor
    flags: torch.Tensor

    @classmethod
    def like(cls, row: torch.Tensor) -> Scratch:
        """Buffers shaped and placed like ``row: (K,)``."""
        return cls(
            torch.empty_like(row),
            torch.empty_like(row),
            torch.empty_like(row),
            torch.zeros_like(row),
            torch.empty_like(row, dtype=torch.bool),
        )


#: ``(w (p, K), x, y, grads out (p, K), loss out (K,), scratch) -> None``: one step's
#: minibatch loss and gradient at ``w`` for the sample ``(x, y)``, written into the outs
RowStep = Callable[[torch.Tensor, float, float, torch.Tensor, torch.Tensor, Scratch], None]


def _relu_unit_mse(
    w: torch.Tensor, x: float, y: float, grads: torch.Tensor, loss: torch.Tensor, s: Scratch
) -> None:
    """``w1 * relu(w2 * x)`` and squared error, in the closed form's operation order."""
    w1, w2 = w[0], w[1]
    r, g, g_z = s.a, s.b, s.c
    torch.mul(w2, x, out=r).relu_()  # r = relu(w2 * x)
    torch.mul(w1, r, out=g).sub_(y)  # g = prediction - y
    torch.mul(g, g, out=loss)  # (prediction - y) ** 2, mean of one
    g.mul_(2.0)  # d loss / d prediction (the mean's factor is 1)
    torch.addcmul(s.zeros, g, r, out=grads[0])  # sum of one: 0 + g * r
    torch.mul(g, w1, out=g_z).masked_fill_(torch.le(r, 0.0, out=s.flags), 0.0)
    torch.add(s.zeros, g_z, alpha=x, out=grads[1])  # 0 + g_z * x


#: the models this engine knows, by registry name (with the ``mse`` loss)
ROW_STEPS: dict[str, RowStep] = {"relu-unit": _relu_unit_mse}


def row_steps_available(model: Model, loss: Loss, sgd: SgdUpdate | None, batch_size: int) -> bool:
    """Whether :func:`take_row_steps` can run this: plain SGD, one sample per step, and a
    built-in model of :data:`ROW_STEPS` with the built-in ``mse`` loss."""
    builtin = MODELS.get(model.name)
    return (
        sgd is not None
        and batch_size == 1
        and model.name in ROW_STEPS
        and builtin is not None
        and builtin.function is model.function
        and loss.name == "mse"
        and LOSSES["mse"].function is loss.function
    )


def take_row_steps(
    model: Model,
    sgd: SgdUpdate,
    w: torch.Tensor,
    x: list[float],
    y: list[float],
    lrs: list[float],
    iterates: torch.Tensor,
    grads: torch.Tensor,
    batch_loss: torch.Tensor,
    check_every: int,
) -> int:
    """Run SGD from ``w: (K, p)`` over the samples ``x[t], y[t]``; return the steps run.

    Records step ``t`` into ``iterates[t]``, ``grads[t]`` (``(p, K)`` each) and
    ``batch_loss[t]`` (``(K,)``), and leaves the iterate after the last step in ``w``.
    Every ``check_every`` steps, a batch whose every run has diverged stops.
    """
    step = ROW_STEPS[model.name]
    with torch.no_grad():
        rows = w.detach().T.contiguous()  # (p, K)
        scratch = Scratch.like(rows[0])
        t = 0
        for t in range(len(lrs)):
            if t and t % check_every == 0 and not bool(torch.isfinite(rows).any()):
                break
            iterates[t].copy_(rows)
            step(rows, x[t], y[t], grads[t], batch_loss[t], scratch)
            sgd.step(rows, grads[t], lrs[t])
        else:
            t = len(lrs)
        w.copy_(rows.T)
    return t
