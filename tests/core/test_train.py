import math

import numpy as np
import pytest
import torch
from torch.nn.functional import mse_loss

import sgdscape
from seed_reference import SimpleMLP
from seed_reference import train as seed_train
from sgdscape import SgdscapeError

OPTIONS = {
    "sgd": {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
    "adam": {"betas": (0.8, 0.99)},
    "adamw": {"weight_decay": 0.1},
    "adamax": {},
    "nadam": {},
    "radam": {},
    "rmsprop": {"alpha": 0.9},
    "adagrad": {},
    "adadelta": {},
}
LEARNING_RATES = {"adadelta": 1.0, "sgd": 0.01}  # momentum 0.9 at 0.05 diverges


def replay_with_torch_optim(data, init, optimizer_cls, options, lr, batch_indices):
    """The obvious loop: an nn.Module, torch.optim, and the recorded minibatches replayed."""
    module = SimpleMLP(torch.tensor(init))
    optimizer = optimizer_cls(module.parameters(), lr=lr, **options)
    iterates, grads, losses = [], [], []
    for row in batch_indices:
        index = torch.as_tensor(row[row >= 0])
        optimizer.zero_grad()
        loss = mse_loss(module(data.x[index]), data.y[index])
        loss.backward()
        iterates.append([module.w1.item(), module.w2.item()])
        grads.append([module.w1.grad.item(), module.w2.grad.item()])
        losses.append(loss.item())
        optimizer.step()
    final = [module.w1.item(), module.w2.item()]
    return np.array(iterates), np.array(grads), np.array(losses), np.array(final)


def test_defaults_reproduce_the_seeds_train_exactly(seed_data):
    iterate_rec, grad_rec = seed_train(
        seed_data.x, seed_data.y, lr=0.05, init=torch.FloatTensor([1.2, -2.3])
    )
    trajectory = sgdscape.train("relu-unit", seed_data, init=(1.2, -2.3), lr=0.05)
    assert trajectory.iterates.shape == (100, 2)
    np.testing.assert_array_equal(trajectory.iterates, iterate_rec.astype(np.float32))
    np.testing.assert_array_equal(trajectory.grads, grad_rec.astype(np.float32))
    np.testing.assert_array_equal(trajectory.batch_indices[:, 0], np.arange(100))
    assert not trajectory.diverged


def test_records_risk_and_batch_loss_at_each_iterate(seed_data):
    trajectory = sgdscape.train("relu-unit", seed_data, init=(1.2, -2.3), lr=0.05, batch_size=4)
    x, y = seed_data.x[:, 0].double().numpy(), seed_data.y[:, 0].double().numpy()
    for t in (0, 10, 24):
        w1, w2 = trajectory.iterates[t].astype(np.float64)
        per_sample = (w1 * np.maximum(w2 * x, 0) - y) ** 2
        assert trajectory.risk[t] == pytest.approx(per_sample.mean(), rel=1e-5)
        assert trajectory.batch_loss[t] == pytest.approx(
            per_sample[trajectory.batch(t)].mean(), rel=1e-5
        )
        full = np.array(
            [
                np.mean(2 * (w1 * np.maximum(w2 * x, 0) - y) * np.maximum(w2 * x, 0)),
                np.mean(2 * (w1 * np.maximum(w2 * x, 0) - y) * w1 * x * (w2 * x > 0)),
            ]
        )
        np.testing.assert_allclose(trajectory.full_grads[t], full, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        trajectory.noise_norm, np.linalg.norm(trajectory.grads - trajectory.full_grads, axis=-1)
    )


@pytest.mark.parametrize("name", sorted(OPTIONS))
@pytest.mark.parametrize("batch_size", [1, 7, 50])
@pytest.mark.parametrize("shuffle", [False, True])
def test_every_optimizer_against_a_plain_torch_optim_loop(name, batch_size, shuffle):
    data = sgdscape.ground_truth(50, seed=3)
    lr = LEARNING_RATES.get(name, 0.05)
    trajectory = sgdscape.train(
        "relu-unit",
        data,
        init=(1.2, -2.3),
        lr=lr,
        optimizer=name,
        optimizer_options=OPTIONS[name],
        batch_size=batch_size,
        epochs=2,
        shuffle=shuffle,
        seed=9,
    )
    steps = 2 * math.ceil(50 / batch_size)
    assert trajectory.n_steps == steps and trajectory.batch_indices.shape == (steps, batch_size)
    used = trajectory.batch_indices[trajectory.batch_indices >= 0]
    np.testing.assert_array_equal(np.bincount(used, minlength=50), np.full(50, 2))
    if not shuffle:
        np.testing.assert_array_equal(trajectory.batch(0), np.arange(min(batch_size, 50)))
    iterates, grads, losses, final = replay_with_torch_optim(
        data,
        [1.2, -2.3],
        sgdscape.OPTIMIZERS[name].cls,
        OPTIONS[name],
        lr,
        trajectory.batch_indices,
    )
    np.testing.assert_allclose(trajectory.iterates, iterates, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(trajectory.grads, grads, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(trajectory.batch_loss, losses, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(trajectory.final, final, rtol=1e-4, atol=1e-5)


def test_shuffled_epochs_differ_and_depend_on_the_seed():
    data = sgdscape.ground_truth(30, seed=0)
    a = sgdscape.train("relu-unit", data, init=(1.0, 1.0), shuffle=True, epochs=2, seed=1)
    b = sgdscape.train("relu-unit", data, init=(1.0, 1.0), shuffle=True, epochs=2, seed=1)
    c = sgdscape.train("relu-unit", data, init=(1.0, 1.0), shuffle=True, epochs=2, seed=2)
    np.testing.assert_array_equal(a.batch_indices, b.batch_indices)
    assert not np.array_equal(a.batch_indices[:30], a.batch_indices[30:])
    assert not np.array_equal(a.batch_indices, c.batch_indices)


def test_with_replacement_draws_indices_in_range():
    data = sgdscape.ground_truth(20, seed=0)
    t = sgdscape.train(
        "relu-unit", data, init=(1.0, 1.0), batch_size=5, sampling="with-replacement", seed=4
    )
    assert t.batch_indices.shape == (4, 5)
    assert t.batch_indices.min() >= 0 and t.batch_indices.max() < 20


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_batched_inits_equal_separate_runs(optimizer, generator):
    data = sgdscape.ground_truth(40, seed=2)
    inits = torch.empty(6, 2).uniform_(-3, 3, generator=generator)
    batched = sgdscape.train(
        "relu-unit",
        data,
        init=inits,
        lr=0.05,
        optimizer=optimizer,
        batch_size=3,
        shuffle=True,
        seed=5,
    )
    assert batched.iterates.shape == (6, 14, 2)
    for k in range(6):
        alone = sgdscape.train(
            "relu-unit",
            data,
            init=inits[k],
            lr=0.05,
            optimizer=optimizer,
            batch_size=3,
            shuffle=True,
            seed=5,
        )
        np.testing.assert_allclose(batched.iterates[k], alone.iterates, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(batched.final[k], alone.final, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("engine", ["plain", "auto", "fused"])
def test_divergence_is_recorded_not_raised(engine, seed_data):
    trajectory = sgdscape.train("relu-unit", seed_data, init=(1.2, -2.3), lr=50.0, engine=engine)
    assert trajectory.diverged
    step = int(trajectory.diverged_step)
    assert 0 < step < 100 and trajectory.n_steps == step + 1
    assert np.isfinite(trajectory.iterates[:step]).all()
    bad = trajectory.iterates[step], trajectory.grads[step], trajectory.batch_loss[step]
    assert not all(np.isfinite(v).all() for v in bad)


def test_batched_divergence_only_stops_the_diverging_row(seed_data):
    trajectory = sgdscape.train("relu-unit", seed_data, init=[[1.2, -2.3], [40.0, 40.0]], lr=0.5)
    assert trajectory.diverged.tolist() == [False, True]
    assert trajectory.n_steps == 100
    assert np.isfinite(trajectory.iterates[0]).all()
    assert np.isnan(trajectory.iterates[1, int(trajectory.diverged_step[1]) + 1 :]).all()


def test_schedules_set_the_learning_rate_of_each_step(seed_data):
    t = sgdscape.train(
        "relu-unit",
        seed_data,
        init=(1.2, -2.3),
        lr=0.1,
        schedule="inverse-time",
        schedule_options={"decay": 0.5},
    )
    np.testing.assert_allclose(t.lr, 0.1 / (1 + 0.5 * np.arange(100)))
    t = sgdscape.train(
        "relu-unit",
        seed_data,
        init=(1.2, -2.3),
        lr=0.1,
        schedule="step",
        schedule_options={"step_size": 10, "gamma": 0.1},
    )
    np.testing.assert_allclose(t.lr, 0.1 * 0.1 ** (np.arange(100) // 10))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": 0.0}, "learning rate"),
        ({"lr": -0.1}, "learning rate"),
        ({"lr": float("nan")}, "learning rate"),
        ({"batch_size": 101}, "larger than the data"),
        ({"batch_size": 0}, "batch size"),
        ({"epochs": 0}, "epochs"),
        ({"optimizer": "sgdd"}, "unknown optimizer 'sgdd'.*adam"),
        ({"optimizer_options": {"momentun": 0.9}}, "no option 'momentun'"),
        ({"init": (1.0, 2.0, 3.0)}, "init must have shape"),
        ({"init": (1.0, float("nan"))}, "NaN"),
        ({"sampling": "random"}, "unknown sampling"),
        ({"schedule": "cosine", "schedule_options": {"gamma": 0.5}}, "no option 'gamma'"),
    ],
)
def test_bad_arguments_are_clear_errors(seed_data, kwargs, message):
    arguments = {"init": (1.2, -2.3), "lr": 0.05, **kwargs}
    with pytest.raises(SgdscapeError, match=message):
        sgdscape.train("relu-unit", seed_data, **arguments)


def test_optimizer_given_as_a_class(seed_data):
    by_class = sgdscape.train("relu-unit", seed_data, init=(1.2, -2.3), optimizer=torch.optim.SGD)
    by_name = sgdscape.train("relu-unit", seed_data, init=(1.2, -2.3), optimizer="sgd")
    np.testing.assert_array_equal(by_class.iterates, by_name.iterates)


def test_cuda_device_without_cuda_is_a_clear_error(seed_data):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(SgdscapeError, match="CUDA is not available"):
        sgdscape.train("relu-unit", seed_data, init=(1.2, -2.3), device="cuda")


def test_noise_statistics_of_a_diverged_run_are_quiet(seed_data):
    t = sgdscape.train("relu-unit", seed_data, init=(1.2, -2.3), lr=50.0)
    assert t.noise_norm.shape == (t.n_steps,) and t.cosine.shape == (t.n_steps,)
    assert np.isfinite(t.noise_norm[: int(t.diverged_step)]).all()


class TorchSGD(torch.optim.SGD):
    """torch.optim.SGD itself, run through optimizer.step() (a subclass is not inlined)."""


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"momentum": 0.9},
        {"momentum": 0.9, "nesterov": True},
        {"momentum": 0.5, "dampening": 0.2, "weight_decay": 0.05},
    ],
)
@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_inlined_sgd_equals_torch_optim_sgd_bit_for_bit(options, schedule, generator):
    data = sgdscape.ground_truth(30, seed=2)
    inits = torch.empty(5, 2).uniform_(-2, 2, generator=generator)
    kwargs = dict(init=inits, lr=0.03, optimizer_options=options, schedule=schedule)
    kwargs |= dict(batch_size=4, epochs=2, sampling="shuffle", seed=1)
    inlined = sgdscape.train("relu-unit", data, optimizer="sgd", **kwargs)
    reference = sgdscape.train("relu-unit", data, optimizer=TorchSGD, **kwargs)
    for field in ("iterates", "grads", "batch_loss", "risk", "full_grads", "final", "lr"):
        np.testing.assert_array_equal(getattr(inlined, field), getattr(reference, field), field)
