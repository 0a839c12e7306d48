"""Independent oracles for the chains and the fan of next steps: the relu-unit's per-sample
SGD steps by torch autograd (its formula written out here) and its basins classified here."""

from __future__ import annotations

import numpy as np
import torch


def relu_unit_steps(w: np.ndarray, x: np.ndarray, y: np.ndarray, lr: float) -> np.ndarray:
    """``(n, 2)`` the per-sample SGD steps ``-lr * grad (w1 relu(w2 x_i) - y_i)^2`` (autograd)."""
    weights = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    xs, ys = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    steps = []
    for xi, yi in zip(xs, ys, strict=True):
        (grad,) = torch.autograd.grad((weights[0] * torch.relu(weights[1] * xi) - yi) ** 2, weights)
        steps.append(-lr * grad.numpy())
    return np.array(steps)


def classify_relu_unit(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The relu-unit's basins written out: 0 w2>0 valley, 1 w2<0 valley, 2 dead, 3 mixed."""
    labels = []
    for w1, w2 in w:
        if not (np.isfinite(w1) and np.isfinite(w2)):
            labels.append(-1)
        elif w1 == 0 or not np.any(w2 * x > 0):
            labels.append(2)
        elif w1 > 0 and w2 > 0:
            labels.append(0)
        elif w1 < 0 and w2 < 0:
            labels.append(1)
        else:
            labels.append(3)
    return np.array(labels)
