"""The engines behind ``train``: the one-sample row engine, the moment form of the path,
SGD's option check without torch's optimizer, and what a first call imports."""

import subprocess
import sys

import numpy as np
import pytest
import torch

import sgdscape
from sgdscape import SgdscapeError
from sgdscape.core import path as path_module
from sgdscape.core import train as train_module
from sgdscape.core.losses import get_loss
from sgdscape.core.models import get_model
from sgdscape.core.optimizers import OPTIMIZERS, SgdUpdate

FIELDS = ("iterates", "grads", "batch_loss", "final", "diverged_step")


def bits(array):
    """The stored bits (signs of zero and NaN payloads included)."""
    array = np.ascontiguousarray(array)
    return array.view({4: np.int32, 8: np.int64}[array.dtype.itemsize])


@pytest.fixture
def inits():
    values = torch.empty(200, 2).uniform_(-3, 3, generator=torch.Generator().manual_seed(3))
    values[0, 1] = 0.0  # a dead unit from the start
    values[1, 0] = 0.0
    values[2] = torch.tensor([-0.0, -0.0])
    return values


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"optimizer_options": {"momentum": 0.9}},
        {"optimizer_options": {"momentum": 0.5, "nesterov": True, "weight_decay": 0.01}},
        {"lr": 40.0, "epochs": 2},  # most runs diverge
        {"lr": 1e4, "epochs": 3},  # every run diverges: the batch stops early
        {"schedule": "cosine", "epochs": 2, "sampling": "shuffle", "seed": 1},
    ],
)
def test_the_row_engine_records_the_per_step_engines_bits(monkeypatch, inits, options):
    data = sgdscape.ground_truth(70, seed=0)
    kwargs = {"lr": 0.05, "record_risk": False, "record_full_gradient": False, **options}
    used = []
    real = train_module.take_row_steps

    def spy(*args, **kw):
        used.append(1)
        return real(*args, **kw)

    monkeypatch.setattr(train_module, "take_row_steps", spy)
    rows = sgdscape.train("relu-unit", data, init=inits, **kwargs)
    assert used, "the row engine did not run"
    monkeypatch.setattr(train_module, "row_steps_available", lambda *args: False)
    per_step = sgdscape.train("relu-unit", data, init=inits, **kwargs)
    assert rows.n_steps == per_step.n_steps
    for field in FIELDS:
        assert np.array_equal(bits(getattr(rows, field)), bits(getattr(per_step, field))), field


def test_the_row_engine_serves_only_its_own_setting():
    from sgdscape.core.row_steps import row_steps_available

    relu, mse, sgd = get_model("relu-unit"), get_loss("mse"), SgdUpdate()
    assert row_steps_available(relu, mse, sgd, 1)
    assert not row_steps_available(relu, mse, sgd, 2)  # a sum over samples: another order
    assert not row_steps_available(relu, mse, None, 1)  # not plain SGD
    assert not row_steps_available(relu, get_loss("huber"), sgd, 1)
    assert not row_steps_available(get_model("tanh-unit"), mse, sgd, 1)


def float64_oracle(points, data):
    """Risk and autograd gradient at ``points: (N, 2)`` in float64, per sample."""
    w = torch.as_tensor(points, dtype=torch.float64).clone().requires_grad_(True)
    x, y = data.x.double().reshape(-1), data.y.double().reshape(-1)
    risk = ((w[:, :1] * torch.relu(w[:, 1:] * x) - y) ** 2).mean(-1)
    (grad,) = torch.autograd.grad(risk.sum(), w)
    return risk.detach().numpy(), grad.numpy()


def test_the_moment_path_is_correctly_rounded_and_beats_the_per_sample_mean():
    data = sgdscape.ground_truth(100, seed=0)
    inits = torch.empty(3000, 2).uniform_(-3, 3, generator=torch.Generator().manual_seed(1))
    traj = sgdscape.train("relu-unit", data, init=inits, lr=0.05, record_risk=False)
    iterates = torch.from_numpy(np.ascontiguousarray(traj.iterates.transpose(1, 2, 0)))
    model, loss = get_model("relu-unit"), get_loss("mse")
    risk, full = path_module.moment_path(
        model, loss, iterates, data.x.reshape(-1), data.y.reshape(-1)
    )
    points = traj.iterates.transpose(1, 0, 2).reshape(-1, 2)  # (T * K, 2), time-major
    want_risk, want_grad = float64_oracle(points, data)
    got_risk = risk.numpy().reshape(-1)
    got_grad = full.numpy().transpose(0, 2, 1).reshape(-1, 2)
    # float64 throughout, rounded once to float32: within one float32 ulp
    ulp = np.finfo(np.float32).eps
    assert np.all(np.abs(got_risk - want_risk) <= ulp * np.abs(want_risk))
    assert np.all(np.abs(got_grad - want_grad) <= ulp * np.abs(want_grad) + 1e-30)
    # the per-sample float32 mean, the reference below the threshold, is no closer
    sample_risk, sample_grad = path_module.path_quantities(
        model, loss, torch.from_numpy(points), data.x.reshape(-1), data.y.reshape(-1)
    )
    assert np.abs(got_risk - want_risk).max() <= np.abs(sample_risk.numpy() - want_risk).max()
    assert np.abs(got_grad - want_grad).max() <= np.abs(sample_grad.numpy() - want_grad).max()


def test_a_large_default_run_takes_the_moments_and_matches_the_reference(monkeypatch, inits):
    data = sgdscape.ground_truth(50, seed=2)
    monkeypatch.setattr(path_module, "PATH_MOMENTS_MIN_EVALUATIONS", 1)
    used = []
    real = path_module.moment_path
    monkeypatch.setattr(path_module, "moment_path", lambda *args: used.append(1) or real(*args))
    fast = sgdscape.train("relu-unit", data, init=inits, lr=0.05, epochs=2)
    assert len(used) == 2  # the path and the final risk
    reference = sgdscape.train("relu-unit", data, init=inits, lr=0.05, epochs=2, engine="plain")
    for field in ("risk", "full_grads", "final_risk"):
        np.testing.assert_allclose(
            getattr(fast, field), getattr(reference, field), rtol=1e-5, atol=1e-6, err_msg=field
        )


def test_non_finite_iterates_get_the_per_sample_values_from_the_moment_path():
    data = sgdscape.ground_truth(30, seed=0)
    x, y = data.x.reshape(-1), data.y.reshape(-1)
    points = torch.tensor(
        [[1.0, 2.0], [np.inf, 1.0], [np.nan, 0.5], [1e30, 1e30], [-2.0, -np.inf], [0.5, -1.0]]
    )
    model, loss = get_model("relu-unit"), get_loss("mse")
    risk, full = path_module.moment_path(model, loss, points.T[None].contiguous(), x, y)
    want_risk, want_grad = path_module.path_quantities(model, loss, points, x, y, engine="plain")
    bad = ~torch.isfinite(want_risk)
    assert bad.sum() >= 3
    assert torch.equal(torch.isnan(risk[0]), torch.isnan(want_risk))
    assert torch.equal(
        risk[0][bad & ~torch.isnan(want_risk)], want_risk[bad & ~torch.isnan(want_risk)]
    )
    np.testing.assert_allclose(risk[0][~bad], want_risk[~bad], rtol=1e-6)
    np.testing.assert_allclose(full[0].T[~bad], want_grad[~bad], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "options",
    [
        {"momentum": -0.5},
        {"weight_decay": -1.0},
        {"nesterov": True},
        {"nesterov": True, "momentum": 0.9, "dampening": 0.1},
    ],
)
def test_sgd_options_are_refused_in_torchs_words_without_building_it(options):
    spec = OPTIMIZERS["sgd"]
    checked = spec.check_options(options)
    with pytest.raises(SgdscapeError) as built:  # the oracle: torch's own optimizer
        spec.build([torch.zeros(2, requires_grad=True)], 0.1, checked)
    assert SgdUpdate.matching(spec, checked) is not None  # plain SGD: inlined, never built
    with pytest.raises(SgdscapeError) as inlined:
        spec.check(0.1, options)
    assert str(inlined.value) == str(built.value)
    with pytest.raises(SgdscapeError, match="bad options for optimizer 'sgd'"):
        sgdscape.train(
            "relu-unit", sgdscape.ground_truth(5), init=(1.0, 1.0), optimizer_options=options
        )


def test_a_default_train_call_does_not_import_the_compiler():
    # building any torch.optim optimizer imports torch._dynamo (about a second, and more on a
    # busy machine): a first default call must not pay it
    code = (
        "import sys, torch, sgdscape\n"
        "inits = torch.empty(50, 2).uniform_(-3, 3)\n"
        "sgdscape.train('relu-unit', sgdscape.ground_truth(40), init=inits, lr=0.05)\n"
        "sgdscape.train('relu-unit', sgdscape.ground_truth(40), optimizer_options={'momentum': 0.5})\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert done.stdout.strip() == "False"
