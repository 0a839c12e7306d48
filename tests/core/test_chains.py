"""Many SGD chains against independent oracles: single ``train`` runs, the exact moment
recursion of linear regression, autograd full-gradient steps and plain-loop classifiers."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

import sgdscape
from sgdscape.core import chain_engine, kernels
from sgdscape.core.chain_stats import (
    basin_fractions,
    chain_moments,
    classify,
    fan_of_steps,
    first_passage,
)
from sgdscape.core.chain_theory import (
    linear_regression_moments,
    stable_lr_bound,
    stationary_covariance,
)
from sgdscape.core.chains import chains
from sgdscape.core.models import Model
from sgdscape.core.train import train
from sgdscape.errors import SgdscapeError

# the package exports the function ``chains``, which shadows the module's attribute
chains_module = importlib.import_module("sgdscape.core.chains")

#: Monte Carlo tolerance: 5 standard errors (15 to 20 comparisons per test: a false alarm
#: has probability about 1e-5)
N_SE = 5


@pytest.fixture(scope="module")
def small_data():
    return sgdscape.ground_truth(n_samples=10, seed=0)


def _train_path(model, data, k_seed, steps, **kwargs):
    """The ``train`` oracle: iterates after 0 ... steps updates, ``(steps + 1, p)``."""
    per_epoch = -(-len(data) // kwargs.get("batch_size", 1))
    run = train(
        model,
        data,
        seed=k_seed,
        epochs=-(-steps // per_epoch) + 1,
        record_full_gradient=False,
        record_risk=False,
        **kwargs,
    )
    return np.concatenate([run.iterates, run.final[None]])[: steps + 1]


@pytest.mark.parametrize(
    ("optimizer", "options"),
    [("sgd", {}), ("sgd", {"momentum": 0.9, "nesterov": True}), ("adam", {}), ("rmsprop", {})],
)
@pytest.mark.parametrize(
    ("batch_size", "sampling"),
    [(1, "with-replacement"), (4, "with-replacement"), (1, "shuffle"), (3, "shuffle")],
)
def test_batched_chains_equal_separate_train_runs(
    small_data, optimizer, options, batch_size, sampling
):
    steps, k, seed = 23, 4, 11
    for init in [(1.2, -2.3), None]:
        result = chains(
            "relu-unit",
            small_data,
            init=init,
            n_chains=k,
            lr=0.05,
            batch_size=batch_size,
            sampling=sampling,
            steps=steps,
            optimizer=optimizer,
            optimizer_options=options,
            seed=seed,
            record_steps=range(steps + 1),
        )
        for chain in range(k):
            expected = _train_path(
                "relu-unit",
                small_data,
                seed + chain,
                steps,
                init=init,
                lr=0.05,
                batch_size=batch_size,
                sampling=sampling,
                optimizer=optimizer,
                optimizer_options=options,
            )
            np.testing.assert_array_equal(result.iterates[:, chain], expected)
            np.testing.assert_array_equal(result.final[chain], expected[-1])
    assert not result.diverged.any()
    np.testing.assert_array_equal(result.chain_seeds, seed + np.arange(k))


@pytest.mark.parametrize("sampling", ["with-replacement", "shuffle"])
def test_runs_longer_than_one_index_block_still_equal_train(small_data, monkeypatch, sampling):
    # a few steps per block: the generators carry each chain's stream across blocks
    monkeypatch.setattr(chain_engine, "INDEX_BLOCK_BYTES", 3 * 3 * 2)
    steps = 31
    result = chains(
        "relu-unit", small_data, init=(0.5, 0.7), n_chains=3, lr=0.05, batch_size=2,
        sampling=sampling, steps=steps, seed=5, record_steps=[0, 7, 30, 31],
    )  # fmt: skip
    for chain in range(3):
        expected = _train_path(
            "relu-unit", small_data, 5 + chain, steps, init=(0.5, 0.7), lr=0.05,
            batch_size=2, sampling=sampling,
        )  # fmt: skip
        np.testing.assert_array_equal(result.iterates[:, chain], expected[[0, 7, 30, 31]])


def test_a_user_model_runs_through_autograd_and_equals_train(small_data):
    model = Model.from_function(
        lambda w, x: w[..., 0, None] * torch.tanh(w[..., 1, None] * x), ("a", "b")
    )
    result = chains(
        model, small_data, init=(0.3, 0.8), n_chains=3, lr=0.1, batch_size=2, steps=12,
        seed=2, record_steps=range(13),
    )  # fmt: skip
    for chain in range(3):
        expected = _train_path(
            model, small_data, 2 + chain, 12, init=(0.3, 0.8), lr=0.1, batch_size=2,
            sampling="with-replacement",
        )  # fmt: skip
        np.testing.assert_allclose(result.iterates[:, chain], expected, rtol=1e-6, atol=1e-7)


def test_shards_do_not_change_the_result(small_data):
    kwargs = dict(init=(1.0, 1.0), n_chains=7, lr=0.05, batch_size=2, steps=15, seed=3)
    one = chains("relu-unit", small_data, shards=1, **kwargs)
    three = chains("relu-unit", small_data, shards=3, **kwargs)
    np.testing.assert_array_equal(one.iterates, three.iterates)
    np.testing.assert_array_equal(one.final, three.final)


def test_init_distribution_from_a_sampler_and_from_rows(small_data):
    def sampler(k, generator):
        return torch.randn(k, 2, generator=generator)

    drawn = chains("relu-unit", small_data, init=sampler, n_chains=6, lr=0.05, steps=3, seed=4)
    expected = torch.randn(6, 2, generator=torch.Generator().manual_seed(4)).numpy()
    np.testing.assert_array_equal(drawn.init, expected)
    np.testing.assert_array_equal(drawn.at(0), expected)
    rows = chains("relu-unit", small_data, init=expected, n_chains=6, lr=0.05, steps=3, seed=4)
    np.testing.assert_array_equal(rows.final, drawn.final)


def test_divergence_is_data(small_data):
    result = chains(
        "linear-regression", small_data, init=(1.0, 1.0), n_chains=4, lr=50.0, steps=200
    )
    assert result.diverged.all()
    assert not np.isfinite(result.final).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_chains": 0}, "n_chains must be >= 1, got 0"),
        ({"sampling": "in-order"}, "unknown sampling 'in-order'"),
        ({"batch_size": 11}, "batch size 11 is larger than the data (10 samples)"),
        ({"record_steps": [0, 6]}, "record_steps must lie between 0 and steps=5"),
        ({"init": np.zeros((3, 2))}, "init has 3 rows but n_chains is 2"),
        ({"init": (1.0, 2.0, 3.0)}, "init must have shape (2,) or (K, 2)"),
        ({"lr": -1.0}, "learning rate must be a finite number > 0"),
        ({"backend": "dask"}, "unknown backend 'dask'"),
        ({"optimizer_options": {"beta": 1}}, "optimizer 'sgd' has no option 'beta'"),
    ],
)
def test_bad_inputs_are_named(small_data, kwargs, message):
    arguments = dict(init=(1.0, 1.0), n_chains=2, lr=0.1, steps=5)
    with pytest.raises(SgdscapeError) as error:
        chains("relu-unit", small_data, **{**arguments, **kwargs})
    assert message in str(error.value)


# ------------------------------------------------------------------ exact theory


def _assert_moments_within_se(result, theory):
    """Empirical mean and covariance of the chains against the exact ones, within
    ``N_SE`` standard errors (the covariance entries' SE from the sample fourth moments)."""
    for j in range(len(theory.steps)):
        w = result.at(int(theory.steps[j])).astype(np.float64)
        k = w.shape[0]
        mean = w.mean(axis=0)
        se_mean = w.std(axis=0, ddof=1) / np.sqrt(k)
        assert np.all(np.abs(mean - theory.mean[j]) <= N_SE * se_mean + 1e-6), (j, mean)
        centred = w - theory.mean[j]  # about the exact mean: products are unbiased for Cov
        for a in range(2):
            for b in range(2):
                products = centred[:, a] * centred[:, b]
                se = products.std(ddof=1) / np.sqrt(k)
                gap = abs(products.mean() - theory.covariance[j, a, b])
                assert gap <= N_SE * se + 1e-7, (j, a, b, products.mean(), theory.covariance[j])


def _linear_case(n_chains, steps):
    data = sgdscape.ground_truth(n_samples=20, seed=1)
    kwargs = dict(lr=0.2, batch_size=2)
    result = chains(
        "linear-regression", data, init=(0.5, 1.0), n_chains=n_chains, steps=max(steps),
        record_steps=steps, seed=9, **kwargs,
    )  # fmt: skip
    theory = linear_regression_moments(data, (0.5, 1.0), steps=steps, **kwargs)
    return result, theory


def test_chain_moments_follow_the_exact_recursion_fast():
    result, theory = _linear_case(10_000, [1, 10, 100])
    _assert_moments_within_se(result, theory)
    moments = chain_moments(result)
    np.testing.assert_allclose(moments.mean, result.iterates.mean(axis=1), rtol=1e-5)


@pytest.mark.slow
def test_chain_moments_of_100k_chains_follow_the_exact_recursion():
    result, theory = _linear_case(100_000, [1, 10, 1000])
    _assert_moments_within_se(result, theory)


def test_a_wrong_recursion_would_be_caught():
    # the moment test has power: the batch-size-1 theory is rejected for B = 2 chains
    result, theory = _linear_case(10_000, [10])
    data = sgdscape.ground_truth(n_samples=20, seed=1)
    wrong = linear_regression_moments(data, (0.5, 1.0), lr=0.2, batch_size=1, steps=[10])
    with pytest.raises(AssertionError):
        _assert_moments_within_se(result, wrong)
    _assert_moments_within_se(result, theory)


def test_stationary_covariance_is_the_limit_of_the_recursion():
    data = sgdscape.ground_truth(n_samples=20, seed=1)
    stationary = stationary_covariance(data, lr=0.2, batch_size=2)
    late = linear_regression_moments(data, (0.5, 1.0), lr=0.2, batch_size=2, steps=[20_000])
    np.testing.assert_allclose(late.covariance[0], stationary.covariance, rtol=1e-8)
    np.testing.assert_allclose(late.mean[0], stationary.mean, rtol=1e-8)
    # its mean is least squares, an independent oracle
    x = data.x.double().numpy().reshape(-1)
    design = np.stack([x, np.ones_like(x)], axis=1)
    solution = np.linalg.lstsq(design, data.y.double().numpy().reshape(-1), rcond=None)[0]
    np.testing.assert_allclose(stationary.mean, solution, rtol=1e-8)
    # the noise ball grows about like lr / B
    smaller = stationary_covariance(data, lr=0.1, batch_size=2)
    ratio = np.trace(stationary.covariance) / np.trace(smaller.covariance)
    assert 1.8 < ratio < 2.6


def test_unstable_lr_is_refused_with_its_bound():
    data = sgdscape.ground_truth(n_samples=20, seed=1)
    bound = stable_lr_bound(data, batch_size=1)
    stationary_covariance(data, lr=0.99 * bound, batch_size=1)
    with pytest.raises(SgdscapeError, match=f"use lr < {bound:.6g}"):
        stationary_covariance(data, lr=1.01 * bound, batch_size=1)
    # and the recursion itself blows up just above the bound
    above = linear_regression_moments(data, (0.5, 1.0), 1.05 * bound, 1, steps=[5000])
    assert np.trace(above.covariance[0]) > 1e3


# ------------------------------------------------------------------ fan, basins, passages


def _autograd_step(data, w, lr, index):
    wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    x, y = data.x.double().reshape(-1)[index], data.y.double().reshape(-1)[index]
    prediction = wt[0] * torch.relu(wt[1] * x)
    ((prediction - y) ** 2).mean().backward()
    return (wt - lr * wt.grad).detach().numpy()


def test_fan_mean_is_the_full_gradient_step(small_data):
    w, lr = (1.2, -2.3), 0.05
    fan = fan_of_steps("relu-unit", small_data, w, lr)
    assert fan.next.shape == (10, 2)
    for i in range(10):
        np.testing.assert_allclose(fan.next[i], _autograd_step(small_data, w, lr, [i]), rtol=1e-12)
    full = _autograd_step(small_data, w, lr, list(range(10)))
    np.testing.assert_allclose(fan.full_step, full, rtol=1e-12)
    np.testing.assert_allclose(fan.mean, full, rtol=1e-12)


def test_fan_of_bigger_batches_is_centred_on_the_full_step(small_data):
    fan = fan_of_steps("relu-unit", small_data, (1.2, -2.3), 0.05, batch_size=3, n_batches=4000)
    assert fan.next.shape == (4000, 2) and fan.batches.shape == (4000, 3)
    se = fan.next.std(axis=0, ddof=1) / np.sqrt(4000)
    assert np.all(np.abs(fan.mean - fan.full_step) <= N_SE * se)
    row = fan.batches[17].tolist()
    np.testing.assert_allclose(
        fan.next[17], _autograd_step(small_data, (1.2, -2.3), 0.05, row), rtol=1e-12
    )


def _obvious_basin(w1, w2, x):
    """The relu-unit basins written out per point, as a reader would."""
    if not (np.isfinite(w1) and np.isfinite(w2)):
        return -1
    if w1 == 0 or all(w2 * xi <= 0 for xi in x):
        return 2  # dead plateau
    if w1 > 0 and w2 > 0:
        return 0
    if w1 < 0 and w2 < 0:
        return 1
    return 3


def test_basin_fractions_equal_a_direct_classification():
    data = sgdscape.make_problem("positive-x", 30, seed=2)  # x >= 0: w2 < 0 is dead
    result = chains(
        "relu-unit",
        data,
        init=lambda k, g: 2 * torch.rand(k, 2, generator=g) - 1,
        n_chains=400,
        lr=0.3,
        batch_size=1,
        steps=60,
        seed=1,
        record_steps=[0, 5, 60],
    )
    fractions = basin_fractions(result, data)
    x = data.x.numpy().reshape(-1)
    for s in range(3):
        labels = [_obvious_basin(w1, w2, x) for w1, w2 in result.iterates[s].astype(float)]
        expected = [labels.count(c) / 400 for c in [0, 1, 2, 3, -1]]
        np.testing.assert_allclose(fractions.fractions[s], expected)
    np.testing.assert_allclose(fractions.fractions.sum(axis=1), 1.0)
    assert fractions.fractions[-1, 2] > 0.3  # many inits start (and stay) dead
    np.testing.assert_array_equal(classify(result.final, data), fractions.labels[-1])


def test_first_passage_equals_a_plain_loop():
    rng = np.random.default_rng(0)
    steps = np.array([0, 3, 10, 30, 100])
    labels = rng.integers(0, 3, size=(5, 200))
    labels[:, :20] = labels[0, :20]  # some never move
    passage = first_passage(labels, steps)
    for k in range(200):
        moves = [s for s in range(5) if labels[s, k] != labels[0, k]]
        assert passage.time[k] == (steps[moves[0]] if moves else -1)
        assert passage.target[k] == (labels[moves[0], k] if moves else -1)
    for s in range(5):
        stayed = [all(labels[: s + 1, k] == labels[0, k]) for k in range(200)]
        assert passage.survival[s] == pytest.approx(np.mean(stayed))
    counts, _ = passage.histogram(bins=[0, 5, 20, 200])
    assert counts.sum() == (passage.time >= 0).sum()


# ------------------------------------------------------------------ Ray


@pytest.mark.slow
# Ray's own process handles (raylet, GCS) may be collected while still running
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_ray_backend_equals_local(local_ray, small_data):
    kwargs = dict(init=None, n_chains=9, lr=0.05, batch_size=2, steps=40, seed=6)
    local = chains("relu-unit", small_data, **kwargs)
    remote = chains("relu-unit", small_data, backend="ray", shards=3, **kwargs)
    np.testing.assert_array_equal(remote.iterates, local.iterates)
    np.testing.assert_array_equal(remote.final, local.final)
    np.testing.assert_array_equal(remote.init, local.init)
    assert remote.config.backend == "ray"


@pytest.mark.slow
def test_compiled_blocks_equal_the_eager_steps_within_rounding(small_data):
    kwargs = dict(init=None, n_chains=50, lr=0.05, batch_size=2, steps=47, seed=8)
    record = [0, 5, 20, 33, 40, 47]
    before = kernels.used["sgd-steps"]
    eager = chains("relu-unit", small_data, engine="plain", record_steps=record, **kwargs)
    fused = chains("relu-unit", small_data, engine="fused", record_steps=record, **kwargs)
    np.testing.assert_allclose(fused.iterates, eager.iterates, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused.final, eager.final, rtol=1e-5, atol=1e-6)
    assert kernels.used["sgd-steps"] >= before + 2  # the compiled blocks really ran
