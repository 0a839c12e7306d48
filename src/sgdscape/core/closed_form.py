"""Closed-form gradients of the built-in models and losses, autograd's twin on the CPU.

Each vector-Jacobian product below is written in the same operation order as torch's
autograd formulas (derivatives.yaml), so that on the CPU the gradients equal autograd's
bit for bit. :func:`closed_form_gradient` is the mean loss and its gradient for many
parameter rows at once; :func:`masked_gradient` the same over a padded minibatch. The
compiled kernels of :mod:`sgdscape.core.kernels` fuse these expressions, and every name
here is importable from there as before.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from sgdscape.core.losses import LOSSES, Loss
from sgdscape.core.models import MODELS, Model

__all__ = [
    "LOSS_GRADS",
    "MODEL_VJPS",
    "LossGrad",
    "ModelVjp",
    "closed_form_available",
    "closed_form_gradient",
    "is_builtin",
    "masked_gradient",
]


def is_builtin(model: Model, loss: Loss) -> bool:
    """Whether ``model`` and ``loss`` are the registry's own (their functions are known)."""
    return (
        MODELS.get(model.name) is not None
        and MODELS[model.name].function is model.function
        and LOSSES.get(loss.name) is not None
        and LOSSES[loss.name].function is loss.function
    )


# ------------------------------------------------------------ closed-form gradients
#
# Each function below is the vector-Jacobian product of a built-in model or loss, written in
# the same operation order as torch's autograd formulas (derivatives.yaml), so that on the
# CPU the gradients equal autograd's bit for bit. The autograd path in ``train`` stays the
# reference; tests compare the two on fresh random inputs.

ModelVjp = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], list[torch.Tensor]]
LossGrad = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _col(w: torch.Tensor, i: int) -> torch.Tensor:
    return w[..., i, None]


def _vjp_relu_unit(w: torch.Tensor, x: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
    w1, w2 = _col(w, 0), _col(w, 1)
    r = torch.relu(w2 * x)
    g_w1 = (g * r).sum(-1)
    g_z = torch.where(r <= 0, 0.0, g * w1)
    return [g_w1, (g_z * x).sum(-1)]


def _vjp_linear_product(w: torch.Tensor, x: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
    w1, w2 = _col(w, 0), _col(w, 1)
    u = w2 * x
    return [(g * u).sum(-1), ((g * w1) * x).sum(-1)]


def _vjp_tanh_unit(w: torch.Tensor, x: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
    w1, w2 = _col(w, 0), _col(w, 1)
    t = torch.tanh(w2 * x)
    g_z = (g * w1) * (1 - t * t)
    return [(g * t).sum(-1), (g_z * x).sum(-1)]


def _vjp_sigmoid_unit(w: torch.Tensor, x: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
    w1, w2 = _col(w, 0), _col(w, 1)
    s = torch.sigmoid(w2 * x)
    g_z = (g * w1) * (1 - s) * s
    return [(g * s).sum(-1), (g_z * x).sum(-1)]


def _vjp_leaky_relu_unit(w: torch.Tensor, x: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
    w1, w2 = _col(w, 0), _col(w, 1)
    z = w2 * x
    a = torch.nn.functional.leaky_relu(z, 0.1)
    g_a = g * w1
    g_z = torch.where(z > 0, g_a, g_a * 0.1)
    return [(g * a).sum(-1), (g_z * x).sum(-1)]


def _vjp_relu_unit_bias(w: torch.Tensor, x: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
    w1, w2, b = _col(w, 0), _col(w, 1), _col(w, 2)
    r = torch.relu(w2 * x + b)
    g_z = torch.where(r <= 0, 0.0, g * w1)
    return [(g * r).sum(-1), (g_z * x).sum(-1), g_z.sum(-1)]


def _vjp_two_relu_units(w: torch.Tensor, x: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
    a1, w1, a2, w2 = _col(w, 0), _col(w, 1), _col(w, 2), _col(w, 3)
    r1, r2 = torch.relu(w1 * x), torch.relu(w2 * x)
    g_z1 = torch.where(r1 <= 0, 0.0, g * a1)
    g_z2 = torch.where(r2 <= 0, 0.0, g * a2)
    return [(g * r1).sum(-1), (g_z1 * x).sum(-1), (g * r2).sum(-1), (g_z2 * x).sum(-1)]


def _vjp_linear_regression(w: torch.Tensor, x: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
    return [(g * x).sum(-1), g.sum(-1)]


MODEL_VJPS: dict[str, ModelVjp] = {
    "relu-unit": _vjp_relu_unit,
    "linear-product": _vjp_linear_product,
    "tanh-unit": _vjp_tanh_unit,
    "sigmoid-unit": _vjp_sigmoid_unit,
    "leaky-relu-unit": _vjp_leaky_relu_unit,
    "relu-unit-bias": _vjp_relu_unit_bias,
    "two-relu-units": _vjp_two_relu_units,
    "linear-regression": _vjp_linear_regression,
}


# d(mean loss)/d(prediction): ``g0`` is the mean's gradient 1/b (a 0-d tensor)


def _grad_mse(
    prediction: torch.Tensor, target: torch.Tensor, g0: torch.Tensor | float
) -> torch.Tensor:
    return g0 * (2 * (prediction - target))


def _grad_mae(
    prediction: torch.Tensor, target: torch.Tensor, g0: torch.Tensor | float
) -> torch.Tensor:
    return g0 * (prediction - target).sgn()


def _grad_huber(
    prediction: torch.Tensor, target: torch.Tensor, g0: torch.Tensor | float
) -> torch.Tensor:
    d = prediction - target
    residual = d.abs()
    near = residual < 1.0
    g_near = torch.where(near, g0, 0.0)
    g_far = torch.where(near, 0.0, g0)
    return ((g_near * 0.5) * (2 * residual) + g_far) * d.sgn()


def _grad_logistic(
    prediction: torch.Tensor, target: torch.Tensor, g0: torch.Tensor | float
) -> torch.Tensor:
    z = torch.exp(prediction)
    g_soft = torch.where(prediction > 20, g0, g0 * z / (z + 1))
    return g_soft + (-g0) * target


LOSS_GRADS: dict[str, LossGrad] = {
    "mse": _grad_mse,
    "mae": _grad_mae,
    "huber": _grad_huber,
    "logistic": _grad_logistic,
}


def closed_form_available(model: Model, loss: Loss) -> bool:
    """Whether :func:`closed_form_gradient` knows ``model`` and ``loss``."""
    return is_builtin(model, loss) and model.name in MODEL_VJPS and loss.name in LOSS_GRADS


def closed_form_gradient(
    model: Model, loss: Loss, w: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss ``(K,)`` over the samples and its gradient ``(K, p)`` for ``w: (K, p)``.

    Equals ``loss(model(w, x), y).mean(-1)`` and ``autograd.grad(that.sum(), w)`` for the
    built-in models and losses (bit for bit on the CPU where autograd's order is mirrored).
    """
    prediction = model.function(w, x)
    mean = loss.function(prediction, y).mean(dim=-1)
    g0 = torch.ones((), dtype=w.dtype, device=w.device) / x.shape[-1]
    g = LOSS_GRADS[loss.name](prediction, y, g0)
    return mean, torch.stack(MODEL_VJPS[model.name](w, x, g), dim=-1)


def masked_gradient(
    model: Model,
    loss: Loss,
    w: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """:func:`closed_form_gradient` over the samples where ``mask: (B,)`` is 1.0.

    Padded minibatches of a fixed width ``B`` (the short last batch of an epoch) share one
    shape, so a compiled kernel serves them all; equal to :func:`closed_form_gradient` on
    the kept samples within float rounding.

    Returns the mean loss ``(K,)`` and the gradient as ``p`` columns ``(K,)`` each.
    """
    prediction = model.function(w, x)
    count = mask.sum()
    mean = (loss.function(prediction, y) * mask).sum(dim=-1) / count
    g = LOSS_GRADS[loss.name](prediction, y, 1.0 / count) * mask
    return mean, MODEL_VJPS[model.name](w, x, g)
