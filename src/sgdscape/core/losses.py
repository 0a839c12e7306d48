"""Per-sample losses ``loss(prediction, target) -> (...)``, elementwise and unreduced."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional

from sgdscape.errors import SgdscapeError, check_choice

LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Loss:
    """A named elementwise loss: ``function(prediction, target)`` broadcasts and does not reduce."""

    name: str
    function: LossFunction
    description: str

    def __call__(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.function(prediction, target)


def _mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (prediction - target) ** 2


def _mae(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (prediction - target).abs()


def _huber(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    residual = (prediction - target).abs()
    return torch.where(residual < 1.0, 0.5 * residual**2, residual - 0.5)


def _logistic(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    # binary cross-entropy with logits, written to broadcast: softplus(z) - y*z
    return functional.softplus(prediction) - target * prediction


LOSSES: dict[str, Loss] = {
    item.name: item
    for item in [
        Loss("mse", _mse, "squared error (f(x) - y)^2, the seed's loss"),
        Loss("mae", _mae, "absolute error |f(x) - y|: robust, constant-size gradients"),
        Loss("huber", _huber, "Huber with delta 1: squared near 0, absolute beyond, robust"),
        Loss("logistic", _logistic, "binary cross-entropy with logits, for 0/1 labels"),
    ]
}


def get_loss(loss: str | Loss | LossFunction) -> Loss:
    """A :class:`Loss` from a registry name, a Loss, or an elementwise callable."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str):
        return LOSSES[check_choice("loss", loss, LOSSES)]
    if callable(loss):
        return Loss(getattr(loss, "__name__", "custom"), loss, "a user loss")
    raise SgdscapeError(f"loss must be a name ({', '.join(sorted(LOSSES))}) or a callable.")
