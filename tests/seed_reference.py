"""The seed notebook's own code, changed only as far as modern torch requires.

Independent oracle for the tests: one nn.Module per grid point, a Python loop, and
``torch.optim.SGD`` on the module's parameters, exactly as the notebook does it.
Changes: ``Variable``/``volatile`` removed (``torch.no_grad`` instead), ``reduce=False``
spelled ``reduction="none"``, and ``torch.FloatTensor((1,))`` written as a 1-element tensor.
"""

import numpy as np
import torch
import torch.nn as nn
from torch.nn import Parameter
from torch.nn.functional import mse_loss, relu
from torch.optim import SGD


def sample_from_ground_truth(n_samples=100):
    x = torch.FloatTensor(n_samples, 1).uniform_(-1, 1)
    epsilon = torch.FloatTensor(n_samples, 1).normal_(0, 0.1)
    y = 2 * x + epsilon
    return x, y


class SimpleMLP(nn.Module):
    def __init__(self, w=None):
        super().__init__()
        self.w1 = Parameter(torch.zeros(1))
        self.w2 = Parameter(torch.zeros(1))
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


def make_grids(x, y, grid_size=100):
    n_samples = len(x)
    assert len(x) == len(y)
    x_max, y_max, x_min, y_min = 3, 3, -3, -3
    w1 = np.linspace(x_min, x_max, grid_size, dtype=np.float32)
    w2 = np.linspace(y_min, y_max, grid_size, dtype=np.float32)
    W1, W2 = np.meshgrid(w1, w2)
    W = np.concatenate((W1[:, :, None], W2[:, :, None]), axis=2)
    W = torch.from_numpy(W)
    grids = torch.zeros(n_samples, grid_size, grid_size)
    with torch.no_grad():
        for i in range(grid_size):
            for j in range(grid_size):
                model = SimpleMLP(W[i, j])
                pred = model(x)
                loss = mse_loss(pred, y, reduction="none")
                grids[:, i, j] = loss[:, 0]
    return W1, W2, grids


def train(x, y, init, lr=0.1):
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
        # torch 0.3's ``data[0]`` returned a Python float; today it is a view that the
        # optimizer's in-place step would overwrite, so read the value with ``.item()``.
        iterate_rec.append([model.w1.data[0].item(), model.w2.data[0].item()])
        grad_rec.append([model.w1.grad.data[0].item(), model.w2.grad.data[0].item()])
        optimizer.step()
    return np.array(iterate_rec), np.array(grad_rec)
