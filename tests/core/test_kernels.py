"""Fused and closed-form kernels against the plain torch path (autograd, broadcast)."""

import importlib
import itertools
import logging

import numpy as np
import pytest
import torch

import sgdscape
from sgdscape.core import kernels
from sgdscape.core.losses import LOSSES
from sgdscape.core.models import MODELS


def _targets(loss_name, x):
    return (x > 0).float() if loss_name == "logistic" else 2 * x + 0.1


@pytest.mark.parametrize(("model_name", "loss_name"), list(itertools.product(MODELS, LOSSES)))
def test_closed_form_gradient_equals_autograd(model_name, loss_name, generator):
    model, loss = MODELS[model_name], LOSSES[loss_name]
    for batch in (1, 7, 64):
        w = torch.empty(300, model.n_params).uniform_(-3, 3, generator=generator)
        x = torch.empty(batch).uniform_(-1, 1, generator=generator)
        y = _targets(loss_name, x)
        leaf = w.clone().requires_grad_(True)
        reference = loss(model(leaf, x), y).mean(dim=-1)
        (expected,) = torch.autograd.grad(reference.sum(), leaf)
        mean, gradient = kernels.closed_form_gradient(model, loss, w, x, y)
        torch.testing.assert_close(mean, reference.detach(), rtol=0, atol=0)
        torch.testing.assert_close(gradient, expected, rtol=1e-5, atol=1e-6)
        if model_name in {"relu-unit", "relu-unit-bias", "two-relu-units"} and loss_name in {
            "mse",
            "mae",
            "huber",
        }:  # written in autograd's operation order: identical bits
            assert torch.equal(gradient, expected)


def test_closed_form_gradient_matches_the_analytic_derivative(generator):
    # d/dw of mean((w1 relu(w2 x) - y)^2), written out by hand in float64
    w = torch.empty(50, 2).uniform_(-3, 3, generator=generator)
    x = torch.empty(20).uniform_(-1, 1, generator=generator)
    y = 2 * x
    _, gradient = kernels.closed_form_gradient(MODELS["relu-unit"], LOSSES["mse"], w, x, y)
    w1, w2 = w[:, :1].double(), w[:, 1:].double()
    xd, yd = x.double(), y.double()
    residual = w1 * torch.relu(w2 * xd) - yd
    d_w1 = (2 * residual * torch.relu(w2 * xd)).mean(-1)
    d_w2 = (2 * residual * w1 * xd * (w2 * xd > 0)).mean(-1)
    np.testing.assert_allclose(gradient[:, 0], d_w1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gradient[:, 1], d_w2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_closed_form_engine_reproduces_the_autograd_engine(optimizer, generator):
    data = sgdscape.ground_truth(30, seed=3)
    inits = torch.empty(20, 2).uniform_(-3, 3, generator=generator)
    options = {"momentum": 0.9} if optimizer == "sgd" else {}
    runs = {
        engine: sgdscape.train(
            "relu-unit",
            data,
            init=inits,
            lr=0.02,
            optimizer=optimizer,
            optimizer_options=options,
            batch_size=4,
            shuffle=True,
            seed=2,
            engine=engine,
        )
        for engine in ("plain", "auto")
    }
    for field in ("iterates", "grads", "full_grads", "batch_loss", "risk", "final"):
        np.testing.assert_array_equal(getattr(runs["auto"], field), getattr(runs["plain"], field))


def test_full_batch_reuses_the_minibatch_gradient(seed_data):
    trajectory = sgdscape.train("tanh-unit", seed_data, init=(0.5, 0.5), batch_size=100, epochs=3)
    np.testing.assert_array_equal(trajectory.grads, trajectory.full_grads)
    np.testing.assert_array_equal(trajectory.batch_loss, trajectory.risk)
    plain = sgdscape.train(
        "tanh-unit", seed_data, init=(0.5, 0.5), batch_size=100, epochs=3, engine="plain"
    )
    np.testing.assert_allclose(trajectory.iterates, plain.iterates, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "options, batch_size, schedule",
    [
        ({}, 1, "constant"),
        ({"momentum": 0.9}, 7, "cosine"),  # 40 = 5 x 7 + 5: short last batches run eagerly
        ({"momentum": 0.5, "nesterov": True, "weight_decay": 0.01}, 3, "step"),
        ({"momentum": 0.8, "dampening": 0.3}, 1, "inverse-time"),
    ],
)
def test_fused_sgd_blocks_are_close_to_autograd_and_torch_optim(
    options, batch_size, schedule, generator
):
    data = sgdscape.ground_truth(40, seed=1)
    inits = torch.empty(16, 2).uniform_(-2, 2, generator=generator)
    kwargs = dict(
        init=inits,
        lr=0.02,
        optimizer_options=options,
        batch_size=batch_size,
        epochs=3,
        schedule=schedule,
        sampling="shuffle",
        seed=4,
    )
    before = kernels.used["sgd-steps"]
    fused = sgdscape.train("relu-unit", data, engine="fused", **kwargs)
    assert kernels.used["sgd-steps"] > before  # blocks of steps ran compiled
    # the oracle: autograd gradients and torch.optim.SGD's own step and scheduler
    plain = sgdscape.train("relu-unit", data, engine="plain", optimizer=torch.optim.SGD, **kwargs)
    for field in ("iterates", "grads", "batch_loss", "full_grads", "risk", "final"):
        np.testing.assert_allclose(
            getattr(fused, field), getattr(plain, field), rtol=2e-5, atol=2e-6, err_msg=field
        )


def test_fused_full_batch_uses_the_fused_full_gradient(generator):
    data = sgdscape.ground_truth(40, seed=1)
    inits = torch.empty(16, 2).uniform_(-3, 3, generator=generator)
    full_batch = sgdscape.train("relu-unit", data, init=inits, batch_size=40, engine="fused")
    assert kernels.used["gradient"] > 0  # the path's risk and gradient, compiled
    reference = sgdscape.train("relu-unit", data, init=inits, batch_size=40, engine="plain")
    np.testing.assert_allclose(full_batch.iterates, reference.iterates, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(full_batch.grads, full_batch.full_grads)


def test_fused_landscape_equals_the_plain_path(generator):
    x = torch.empty(150, 1).uniform_(-1, 1, generator=generator)
    data = sgdscape.Dataset(x, 2 * x + 0.1 * torch.randn(150, 1, generator=generator))
    grid = sgdscape.Grid((-3.0, 2.0, 23), (-2.5, 3.0, 17))
    before = dict(kernels.used)
    fused = sgdscape.landscape("relu-unit", data, grid, engine="fused")
    assert kernels.used["risk"] > before.get("risk", 0)
    assert kernels.used["fill"] > before.get("fill", 0)
    plain = sgdscape.landscape("relu-unit", data, grid, engine="plain")
    np.testing.assert_allclose(fused.sample_loss, plain.sample_loss, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fused.risk, plain.risk, rtol=1e-5, atol=1e-6)
    risk_only = sgdscape.landscape("relu-unit", data, grid, per_sample=False, engine="fused")
    np.testing.assert_allclose(risk_only.risk, plain.risk, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "model, progress_calls",
    [("relu-unit", 4), ("linear-regression", 16 * 4)],  # scaled path: one per sample block
)
def test_fused_risk_sums_blocks_of_samples(model, progress_calls, monkeypatch, generator):
    monkeypatch.setattr(importlib.import_module("sgdscape.core.landscape"), "RISK_SAMPLE_BLOCK", 64)
    x = torch.empty(200, 1).uniform_(-1, 1, generator=generator)
    data = sgdscape.Dataset(x, 2 * x)
    grid = sgdscape.Grid.square(12)
    seen = []
    fused = sgdscape.landscape(
        model,
        data,
        grid,
        per_sample=False,
        engine="fused",
        progress=lambda done, total: seen.append((done, total)),
    )
    plain = sgdscape.landscape(model, data, grid, per_sample=False, engine="plain")
    np.testing.assert_allclose(fused.risk, plain.risk, rtol=1e-5, atol=1e-6)
    assert seen[-1] == (progress_calls, progress_calls)


@pytest.mark.parametrize("name", sorted(kernels.SCALE_PARAMETER))
def test_scale_parameter_factorises_each_model(name, generator):
    # the property the scaled kernels rely on: f(w) = w_s * f(w with w_s = 1)
    model, s = MODELS[name], kernels.SCALE_PARAMETER[name]
    w = torch.empty(64, model.n_params).uniform_(-3, 3, generator=generator)
    x = torch.empty(50).uniform_(-1, 1, generator=generator)
    unit = w.clone()
    unit[:, s] = 1.0
    np.testing.assert_allclose(model(w, x), w[:, s, None] * model(unit, x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "name, slice_options",
    [
        ("relu-unit", {}),
        ("tanh-unit", {}),
        ("relu-unit-bias", {"fixed": {"b": 0.3}}),
        ("relu-unit-bias", {"axes": ("w2", "w1")}),  # first axis is not the scale: generic
    ],
)
@pytest.mark.parametrize("loss", ["mse", "huber"])
def test_scaled_fused_landscape_equals_the_plain_path(name, slice_options, loss, generator):
    x = torch.empty(90, 1).uniform_(-1, 1, generator=generator)
    data = sgdscape.Dataset(x, 2 * x + 0.1 * torch.randn(90, 1, generator=generator))
    grid = sgdscape.Grid((-3.0, 3.0, 23), (-2.0, 2.5, 17))
    plane = sgdscape.Plane.through(MODELS[name].param_names, **slice_options)
    split = importlib.import_module("sgdscape.core.landscape").scale_split(
        MODELS[name], plane.points(*(torch.from_numpy(a) for a in grid.axes()))
    )
    assert (split is None) == ("axes" in slice_options)
    args = dict(grid=grid, plane=plane, loss=loss)
    fused = sgdscape.landscape(name, data, engine="fused", **args)
    plain = sgdscape.landscape(name, data, engine="plain", **args)
    np.testing.assert_allclose(fused.risk, plain.risk, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused.sample_loss, plain.sample_loss, rtol=1e-5, atol=1e-6)


def test_failed_compilation_falls_back_with_one_line(monkeypatch, caplog, seed_data):
    kernels.reset()

    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    grid = sgdscape.Grid.square(10)
    with caplog.at_level(logging.WARNING, logger="sgdscape"):
        fused = sgdscape.landscape("relu-unit", seed_data, grid, engine="fused")
    plain = sgdscape.landscape("relu-unit", seed_data, grid, engine="plain")
    np.testing.assert_array_equal(fused.risk, plain.risk)
    notices = [r.getMessage() for r in caplog.records if "plain torch path" in r.getMessage()]
    assert len(notices) == 1 and "\n" not in notices[0]
    kernels.reset()


def test_auto_never_compiles_the_seeds_small_run(monkeypatch, seed_data):
    def forbidden(*args, **kwargs):
        raise AssertionError("compiled a small run")

    monkeypatch.setattr(torch, "compile", forbidden)
    sgdscape.landscape("relu-unit", seed_data)  # 100 samples x 100x100
    sgdscape.train("relu-unit", seed_data, init=torch.zeros(50, 2) + 0.5)


def test_custom_models_take_the_plain_path_in_auto(seed_data):
    model = sgdscape.Model.from_function(lambda w, x: w[..., :1] * x + w[..., 1:], ("a", "b"))
    assert not kernels.closed_form_available(model, LOSSES["mse"])
    assert not kernels.wants_fused("auto", model, LOSSES["mse"], 1e12)


def test_unknown_engine_is_a_clear_error(seed_data):
    with pytest.raises(sgdscape.SgdscapeError, match="engine"):
        sgdscape.landscape("relu-unit", seed_data, engine="turbo")
    with pytest.raises(sgdscape.SgdscapeError, match="engine"):
        sgdscape.train("relu-unit", seed_data, engine="turbo")


class TorchSGD(torch.optim.SGD):
    """torch.optim.SGD itself, run through optimizer.step() (a subclass is not inlined)."""


@pytest.mark.parametrize("optimizer", [*sorted(sgdscape.OPTIMIZERS), TorchSGD])
def test_divergence_is_found_by_every_engine(optimizer, seed_data):
    # a learning rate large enough to overflow float32 for some inits; the reference is a
    # plain per-step scan of the recorded values
    inits = [[1.2, -2.3], [40.0, 40.0], [10.0, 10.0], [-3.0, 0.5]]
    lr = 0.5 if optimizer in ("sgd", TorchSGD) else 1e18
    runs = {
        engine: sgdscape.train(
            "relu-unit", seed_data, init=inits, lr=lr, optimizer=optimizer, engine=engine
        )
        for engine in ("plain", "auto", "fused")
    }
    for engine, run in runs.items():
        for k in range(len(inits)):
            finite = [
                np.isfinite(run.iterates[k, t]).all()
                and np.isfinite(run.grads[k, t]).all()
                and np.isfinite(run.batch_loss[k, t])
                for t in range(run.n_steps)
            ]
            expected = finite.index(False) if not all(finite) else -1
            assert int(run.diverged_step[k]) == expected, (engine, k)
            if expected >= 0:
                assert np.isnan(run.iterates[k, expected + 1 :]).all()
        assert run.diverged.any(), engine
        np.testing.assert_array_equal(run.diverged_step, runs["plain"].diverged_step)


@pytest.mark.parametrize("optimizer", ["adam", "adagrad", "rmsprop"])
def test_fused_engine_with_other_optimizers_is_close_to_autograd(optimizer, generator):
    # compiled minibatch gradients, and torch's fused optimizer kernel where it has one
    data = sgdscape.ground_truth(40, seed=1)
    inits = torch.empty(16, 2).uniform_(-2, 2, generator=generator)
    kwargs = dict(init=inits, lr=0.01, optimizer=optimizer, batch_size=3, epochs=2, seed=4)
    before = kernels.used["gradient"]
    fused = sgdscape.train("relu-unit", data, engine="fused", shuffle=True, **kwargs)
    assert kernels.used["gradient"] > before + fused.n_steps - 1
    plain = sgdscape.train("relu-unit", data, engine="plain", shuffle=True, **kwargs)
    for field in ("iterates", "grads", "batch_loss", "final"):
        np.testing.assert_allclose(
            getattr(fused, field), getattr(plain, field), rtol=2e-5, atol=2e-6, err_msg=field
        )


def test_a_block_kernel_failing_mid_run_continues_eagerly_from_where_it_was(monkeypatch, generator):
    # the first block runs compiled, then the kernel "fails": the rest of the run must go
    # on from the iterate the block left, and match the autograd run
    module = importlib.import_module("sgdscape.core.train")
    real = module.fused_sgd_steps
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs) if len(calls) == 1 else None

    monkeypatch.setattr(module, "fused_sgd_steps", flaky)
    data = sgdscape.ground_truth(60, seed=2)
    inits = torch.empty(8, 2).uniform_(-2, 2, generator=generator)
    kwargs = dict(init=inits, lr=0.02, optimizer_options={"momentum": 0.9}, batch_size=2)
    fused = sgdscape.train("relu-unit", data, engine="fused", **kwargs)
    assert len(calls) == 2  # one block ran compiled, the second attempt fell back
    plain = sgdscape.train("relu-unit", data, engine="plain", **kwargs)
    for field in ("iterates", "grads", "batch_loss", "final"):
        np.testing.assert_allclose(
            getattr(fused, field), getattr(plain, field), rtol=2e-5, atol=2e-6, err_msg=field
        )
