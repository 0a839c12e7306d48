"""CUDA paths (fused and plain) against CPU results on fresh random inputs; skipped without CUDA."""

import numpy as np
import pytest
import torch

import sgdscape
from sgdscape.core import kernels
from sgdscape.core.losses import LOSSES
from sgdscape.core.models import MODELS

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _data(n, seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.empty(n, 1).uniform_(-1, 1, generator=generator)
    return sgdscape.Dataset(x, 2 * x + 0.1 * torch.randn(n, 1, generator=generator))


@pytest.mark.parametrize("engine", ["plain", "fused"])
@pytest.mark.parametrize("per_sample", [True, False])
def test_landscape_on_cuda_equals_cpu(engine, per_sample):
    data = _data(257, seed=11)
    grid = sgdscape.Grid((-3.0, 3.0, 61), (-2.0, 2.5, 47))
    cpu = sgdscape.landscape("relu-unit", data, grid, engine="plain", per_sample=per_sample)
    gpu = sgdscape.landscape(
        "relu-unit", data, grid, engine=engine, per_sample=per_sample, device="cuda"
    )
    np.testing.assert_allclose(gpu.risk, cpu.risk, rtol=1e-5, atol=1e-6)
    if per_sample:
        np.testing.assert_allclose(gpu.sample_loss, cpu.sample_loss, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_closed_form_gradient_on_cuda_equals_cpu_autograd(model_name):
    model, loss = MODELS[model_name], LOSSES["mse"]
    generator = torch.Generator().manual_seed(5)
    w = torch.empty(400, model.n_params).uniform_(-3, 3, generator=generator)
    x = torch.empty(33).uniform_(-1, 1, generator=generator)
    y = 2 * x
    leaf = w.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(loss(model(leaf, x), y).mean(-1).sum(), leaf)
    for gradient_of in (kernels.closed_form_gradient, kernels.fused_gradient):
        _, gradient = gradient_of(model, loss, w.cuda(), x.cuda(), y.cuda())
        np.testing.assert_allclose(gradient.cpu(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("engine", ["plain", "auto", "fused"])
@pytest.mark.parametrize(
    "optimizer, optimizer_options",
    [("sgd", {}), ("sgd", {"momentum": 0.9, "nesterov": True}), ("adam", {})],
)
def test_trajectories_on_cuda_equal_cpu(engine, optimizer, optimizer_options):
    # fused SGD runs as compiled blocks of steps, Adam as compiled gradients and torch's
    # fused optimizer kernel; the reference is the CPU autograd path
    data = _data(64, seed=3)
    inits = torch.empty(128, 2).uniform_(-3, 3, generator=torch.Generator().manual_seed(4))
    options = {"lr": 0.02, "batch_size": 8, "shuffle": True, "seed": 1, "epochs": 4}
    options |= {"optimizer": optimizer, "optimizer_options": optimizer_options}
    cpu = sgdscape.train("relu-unit", data, init=inits, engine="plain", **options)
    gpu = sgdscape.train("relu-unit", data, init=inits, engine=engine, device="cuda", **options)
    np.testing.assert_allclose(gpu.iterates, cpu.iterates, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gpu.risk, cpu.risk, rtol=1e-4, atol=1e-5)
