"""The seed notebook's own ``make_grids`` and ``train``, the baselines of the benchmarks.

Copied from the seed, changed only as far as a modern torch requires (see
:mod:`sgdscape.surfaces.bench`); one ``nn.Module`` per grid point, as in the notebook.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from torch.nn import Parameter
from torch.nn.functional import mse_loss, relu
from torch.optim import SGD


class SimpleMLP(nn.Module):
    """The seed's model, ``w1 * relu(w2 * x)``, one object per parameter value."""

    def __init__(self, w=None):
        super().__init__()
        self.w1 = Parameter(torch.FloatTensor((1,)))
        self.w2 = Parameter(torch.FloatTensor((1,)))
        if w is None:
            self.reset_parameters()
        else:
            self.set_parameters(w)

    def reset_parameters(self):
        self.w1.data.uniform_(-0.1, 0.1)
        self.w2.data.uniform_(-0.1, 0.1)

    def set_parameters(self, w):
        self.w1.data[0] = w[0]
        self.w2.data[0] = w[1]

    def forward(self, x):
        return self.w1 * relu(self.w2 * x)


def seed_make_grids(x, y, grid_size=100):
    """The seed's ``make_grids``: a Python loop over grid points, one model each."""
    n_samples = len(x)
    assert len(x) == len(y)

    x_max, y_max, x_min, y_min = 3, 3, -3, -3
    w1 = np.linspace(x_min, x_max, grid_size, dtype=np.float32)
    w2 = np.linspace(y_min, y_max, grid_size, dtype=np.float32)
    W1, W2 = np.meshgrid(w1, w2)
    W = np.concatenate((W1[:, :, None], W2[:, :, None]), axis=2)
    W = torch.from_numpy(W)

    grids = torch.FloatTensor(n_samples, grid_size, grid_size)

    with torch.no_grad():  # was Variable(x, volatile=True)
        for i in range(grid_size):
            for j in range(grid_size):
                model = SimpleMLP(W[i, j])
                pred = model(x)
                loss = mse_loss(pred, y, reduction="none").data
                grids[:, i, j] = loss[:, 0]  # (n, 1) no longer broadcasts into (n,)
    return W1, W2, grids


def seed_train(x, y, init, lr=0.1):
    """The seed's ``train``: one trajectory, one sample per step, ``torch.optim.SGD``."""
    model = SimpleMLP(init)
    optimizer = SGD(model.parameters(), lr=lr)
    iterate_rec = []
    grad_rec = []
    for this_x, this_y in zip(x, y, strict=True):
        this_x = this_x[None, :]
        this_y = this_y[None, :]
        optimizer.zero_grad()
        pred = model(this_x)
        loss = mse_loss(pred, this_y)
        loss.backward()
        iterate_rec.append([model.w1.data[0].item(), model.w2.data[0].item()])
        grad_rec.append([model.w1.grad.data[0].item(), model.w2.grad.data[0].item()])
        optimizer.step()
    return np.array(iterate_rec), np.array(grad_rec)
