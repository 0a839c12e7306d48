"""Flat parameter vectors of a PyTorch model, their layout, and the ``(x, y)`` data tensors.

Every slice, recording and Hessian works on the parameters flattened into one vector ``(p,)`` in
``named_parameters`` order; these helpers go between that vector and the model's own tensors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from sgdscape.errors import SgdscapeError


def parameter_layout(model: nn.Module) -> tuple[tuple[str, ...], tuple[tuple[int, ...], ...]]:
    """Names and shapes of the model's parameters, in ``named_parameters`` order."""
    named = list(model.named_parameters())
    if not named:
        raise SgdscapeError(f"model {type(model).__name__} has no parameters to slice.")
    return tuple(n for n, _ in named), tuple(tuple(p.shape) for _, p in named)


def flat_parameters(model: nn.Module) -> torch.Tensor:
    """A float32 CPU copy of the model's parameters as one vector ``(p,)``."""
    return torch.cat([p.detach().reshape(-1).float().cpu() for p in model.parameters()])


def as_flat(value: Any, model: nn.Module, what: str) -> torch.Tensor:
    """``value`` (a module, a state/parameter dict or a flat vector) as a flat ``(p,)`` vector."""
    names, shapes = parameter_layout(model)
    size = sum(int(np.prod(s)) for s in shapes)
    if isinstance(value, nn.Module):
        value = dict(value.named_parameters())
    if isinstance(value, Mapping):
        missing = [n for n in names if n not in value]
        if missing:
            raise SgdscapeError(f"{what} lacks parameter(s) {', '.join(missing[:5])} of the model.")
        parts = []
        for name, shape in zip(names, shapes, strict=True):
            tensor = torch.as_tensor(value[name]).detach()
            if tuple(tensor.shape) != shape:
                raise SgdscapeError(
                    f"{what}[{name!r}] has shape {tuple(tensor.shape)}, the model has {shape}."
                )
            parts.append(tensor.reshape(-1).float().cpu())
        return torch.cat(parts)
    flat = torch.as_tensor(np.asarray(value) if not torch.is_tensor(value) else value)
    flat = flat.detach().reshape(-1).float().cpu()
    if flat.numel() != size:
        raise SgdscapeError(f"{what} has {flat.numel()} values, the model has {size} parameters.")
    return flat.clone()


def unflatten(
    flat: torch.Tensor, names: Sequence[str], shapes: Sequence[tuple[int, ...]]
) -> dict[str, torch.Tensor]:
    """Split ``flat (..., p)`` into ``{name: (..., *shape)}`` views."""
    lead = flat.shape[:-1]
    out, start = {}, 0
    for name, shape in zip(names, shapes, strict=True):
        size = int(np.prod(shape))
        out[name] = flat[..., start : start + size].reshape(*lead, *shape)
        start += size
    return out


def as_tensors(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` from a pair of tensors/arrays or a DataLoader (concatenated once)."""
    if isinstance(data, torch.utils.data.DataLoader):
        xs, ys = [], []
        for batch in data:
            x, y = batch[0], batch[1]
            xs.append(torch.as_tensor(x))
            ys.append(torch.as_tensor(y))
        if not xs:
            raise SgdscapeError("the DataLoader yielded no batches.")
        return torch.cat(xs), torch.cat(ys)
    try:
        x, y = data
    except (TypeError, ValueError):
        raise SgdscapeError(
            f"data must be (x, y) tensors or a DataLoader, got {type(data).__name__}."
        ) from None
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise SgdscapeError(
            f"data x and y must hold the same positive number of samples, got "
            f"{x.shape[0]} and {y.shape[0]}."
        )
    return x, y
