"""Each preset's quantitative signature, on fresh data seeds (not the preset's own seed)."""

import numpy as np
import pytest

import sgdscape
from sgdscape.records.basins import basins
from sgdscape.records.presets import PRESETS

pytestmark = pytest.mark.slow

FRESH_SEEDS = [1, 2, 3]


def run(name, seed, **changes):
    return sgdscape.run(PRESETS[name].config.replace(seed=seed, grid=10, **changes))


def least_squares(result):
    """The minimum of the linear regression's risk, by numpy (independent of sgdscape)."""
    x = result.data.x.numpy().ravel().astype(np.float64)
    y = result.data.y.numpy().ravel().astype(np.float64)
    return np.linalg.lstsq(np.stack([x, np.ones_like(x)], 1), y, rcond=None)[0]


@pytest.mark.parametrize("seed", FRESH_SEEDS)
def test_seed_run_settles_on_the_negative_branch_fitting_half_the_data(seed):
    t = run("seed", seed).trajectory
    w1, w2 = t.final
    assert w1 < 0 and w2 < 0
    assert w1 * w2 == pytest.approx(2.0, abs=0.3)
    assert t.final_risk > 0.3  # the x > 0 half is not fitted: far above the noise level 0.01


@pytest.mark.parametrize("seed", FRESH_SEEDS)
def test_mirror_inits_end_in_mirror_valleys(seed):
    result = run("mirror-valleys", seed)
    (a1, a2), (b1, b2) = result.trajectory.final, result.others[0].final
    assert a1 > 0 and a2 > 0 and b1 < 0 and b2 < 0
    assert a1 * a2 == pytest.approx(2.0, abs=0.3) and b1 * b2 == pytest.approx(2.0, abs=0.3)


@pytest.mark.parametrize("seed", FRESH_SEEDS)
def test_dead_relu_never_moves(seed):
    t = run("dead-relu", seed).trajectory
    assert (t.grads == 0).all()
    assert (t.iterates == t.iterates[0]).all()
    np.testing.assert_array_equal(t.final, t.iterates[0])


@pytest.mark.parametrize("seed", FRESH_SEEDS)
def test_single_sample_gradients_often_point_away_from_the_true_one(seed):
    t = run("disagreeing-samples", seed).trajectory
    cosine = t.cosine[np.isfinite(t.cosine)]
    assert (cosine < 0).mean() > 0.1
    assert cosine.min() < -0.5


@pytest.mark.parametrize("seed", FRESH_SEEDS)
def test_a_decaying_schedule_ends_closer_to_the_minimum_than_a_constant_step(seed):
    result = run("noise-ball", seed)
    minimum = least_squares(result)
    constant, decaying = result.trajectory, result.others[0]
    assert np.linalg.norm(decaying.final - minimum) < np.linalg.norm(constant.final - minimum)
    # the constant step keeps wandering: over its last epoch it stays away from the minimum
    wander = np.linalg.norm(constant.iterates[-100:] - minimum, axis=1).mean()
    settle = np.linalg.norm(decaying.iterates[-100:] - minimum, axis=1).mean()
    assert wander > 5 * settle


@pytest.mark.parametrize("seed", FRESH_SEEDS)
def test_too_large_a_learning_rate_oscillates_then_diverges(seed):
    result = run("too-large-lr", seed)
    t = result.trajectory
    assert t.diverged and 0 < t.diverged_step < 200
    offset = t.iterates[: int(t.diverged_step), 0] - least_squares(result)[0]
    flips = np.mean(np.sign(offset[1:]) != np.sign(offset[:-1]))
    assert flips > 0.5
    assert np.abs(offset[-5:]).min() > 100 * np.abs(offset[:5]).max()


def test_the_spread_across_sampling_seeds_shrinks_as_batch_size_grows():
    finals = {1: [], 10: [], 100: []}
    for sampling_seed in range(5):
        result = run("batch-size-noise", 1, sampling_seed=sampling_seed)
        for batch, (_, t) in zip(finals, result.trajectories, strict=True):
            finals[batch].append(t.final)
    spread = {b: np.linalg.norm(np.std(np.array(v), axis=0)) for b, v in finals.items()}
    assert spread[1] > spread[10] > spread[100]
    assert spread[100] < 1e-6  # full batch: no sampling noise at all


@pytest.mark.parametrize("seed", FRESH_SEEDS)
def test_momentum_overshoots_where_gradient_descent_does_not(seed):
    result = run("momentum-overshoot", seed)
    optimum = least_squares(result)[0]
    plain, heavy = result.trajectory.iterates[:, 0], result.others[0].iterates[:, 0]
    assert plain.max() <= optimum + 1e-3 and (np.diff(plain) >= -1e-6).all()
    assert heavy.max() > optimum + 0.5


@pytest.mark.parametrize("seed", FRESH_SEEDS)
def test_adam_takes_steps_of_size_lr_where_sgd_crawls(seed):
    result = run("adam-sign-steps", seed)
    sgd, adam = result.trajectory, result.others[0]
    lr = result.config.lr
    first_adam = np.abs(adam.iterates[1] - adam.iterates[0])
    np.testing.assert_allclose(first_adam, lr, rtol=1e-3)
    first_sgd = np.abs(sgd.iterates[1] - sgd.iterates[0])
    assert (first_sgd < 0.2 * lr).all()
    assert adam.final_risk < sgd.final_risk


@pytest.mark.parametrize("seed", FRESH_SEEDS)
def test_linear_product_reaches_different_points_of_one_valley(seed):
    result = run("valley-of-minima", seed)
    ends = np.array([t.final for _, t in result.trajectories])
    np.testing.assert_allclose(ends[:, 0] * ends[:, 1], least_squares(result)[0], atol=0.1)
    distances = np.linalg.norm(ends[:, None] - ends[None], axis=-1)
    assert distances[np.triu_indices(3, 1)].min() > 0.5


def test_huber_resists_outliers_that_pull_mse():
    errors = {"mse": [], "huber": []}
    for seed in [1, 2, 3, 4, 5]:
        result = run("outliers-huber", seed)
        for loss, (_, t) in zip(errors, result.trajectories, strict=True):
            errors[loss].append(abs(t.final[0] - 2.0) + abs(t.final[1]))  # truth: slope 2, no bias
    assert np.mean(errors["huber"]) < 0.6 * np.mean(errors["mse"])


def test_basins_split_by_the_sign_of_w2_into_mirror_valleys():
    found = basins(PRESETS["basins"].config.replace(seed=2, grid=10), points=9)
    signs = {tuple(np.sign(c).astype(int)) for c in found.centres if np.abs(c).min() > 0.3}
    assert signs == {(1, 1), (-1, -1)}
    big = [k for k in range(found.n_basins) if (found.label == k).mean() > 0.2]
    assert len(big) == 2


def _linear_lambda_max(result):
    """lambda_max of mean (w x + b - y)^2: twice the top eigenvalue of E[(x, 1)(x, 1)^T]."""
    x = result.data.x.numpy().ravel().astype(np.float64)
    moment = np.array([[np.mean(x * x), np.mean(x)], [np.mean(x), 1.0]])
    return 2 * np.linalg.eigvalsh(moment)[-1]


def test_the_stability_threshold_preset_straddles_two_over_lambda_max():
    from sgdscape.records.run import with_curvature

    preset = PRESETS["stability-threshold"]
    result = with_curvature(sgdscape.run(preset.config.replace(grid=10)))
    edge = 2 / _linear_lambda_max(result)
    below, above = (float(t.lr[0]) for _, t in result.trajectories)
    assert below < edge < above and above / below < 1.05  # just below and just above
    for record in result.curvatures:
        np.testing.assert_allclose(record.stability_threshold, edge, rtol=1e-9)
    minimum = least_squares(result)
    start = np.linalg.norm(result.trajectory.iterates[0] - minimum)
    stable, unstable = result.trajectory, result.others[0]
    assert np.linalg.norm(stable.final - minimum) < 1e-3 * start
    assert np.linalg.norm(unstable.final - minimum) > 1e3 * start


@pytest.mark.parametrize("seed", FRESH_SEEDS)
def test_one_percent_either_side_of_two_over_lambda_decides_stability(seed):
    """On fresh data the threshold moves; 2/lambda computed here by numpy still decides."""
    probe = run("stability-threshold", seed, epochs=1)
    edge = 2 / _linear_lambda_max(probe)
    result = run("stability-threshold", seed, lr=0.99 * edge, compare=({"lr": 1.01 * edge},))
    minimum = least_squares(result)
    start = np.linalg.norm(result.trajectory.iterates[0] - minimum)
    assert np.linalg.norm(result.trajectory.final - minimum) < 1e-2 * start
    assert np.linalg.norm(result.others[0].final - minimum) > 1e2 * start


def _power_sharpness(recording, step, iterations=60):
    """lambda_max of the full-data loss by power iteration on double-backward Hessian-vector
    products (torch.autograd, not the torch.func Lanczos under test)."""
    import torch

    from sgdscape.networks.slicing import parameter_layout, unflatten

    names, shapes = parameter_layout(recording.model)
    theta = torch.tensor(recording.iterates[step], dtype=torch.float64, requires_grad=True)
    model = recording.model.double()
    params = unflatten(theta, names, shapes)
    output = torch.func.functional_call(model, params, (recording.x.double(),))
    loss = recording.loss_fn(output, recording.y)
    (grad,) = torch.autograd.grad(loss, theta, create_graph=True)
    v = torch.ones_like(theta) / theta.numel() ** 0.5
    value = 0.0
    for _ in range(iterations):
        (hv,) = torch.autograd.grad(grad, theta, v, retain_graph=True)
        value = float(v @ hv)
        v = hv / hv.norm()
    recording.model.float()
    return value


def test_edge_of_stability_sharpness_rises_to_two_over_lr_and_stays_there():
    from sgdscape.records.presets import train_network_preset

    result = train_network_preset("edge-of-stability")
    assert len(result.recordings) == 2
    for recording, record in zip(result.recordings, result.curvatures, strict=True):
        edge = 2 / recording.lr
        ratio = record.sharpness / edge
        assert ratio[0] < 0.9  # it starts stable ...
        assert ratio.max() > 0.97  # ... sharpens until it reaches 2/lr ...
        reached = int(np.argmax(ratio >= 0.9))
        assert ((ratio[reached:] > 0.85) & (ratio[reached:] < 1.2)).all()  # ... and stays near
        assert (np.abs(ratio[len(ratio) // 2 :] - 1) < 0.05).all()  # second half: within 5 %
        loss = recording.batch_loss  # full batch: the training loss at every step
        assert loss[-1] < 0.2 * loss[0]  # it keeps falling ...
        assert (np.diff(loss) > 0).sum() >= 3  # ... but not monotonically
        assert record.sharpness[-1] == pytest.approx(
            _power_sharpness(recording, int(record.steps[-1])), rel=0.01
        )


@pytest.mark.parametrize("seed", [0, 1])
def test_flat_minima_smaller_batches_and_larger_steps_end_flatter(seed):
    from sgdscape.records.presets import train_network_preset

    result = train_network_preset("flat-minima", seed=seed)
    small_lr, large_lr, small_batch = result.final_sharpness()
    runs = result.preset.runs
    assert runs[0].lr < runs[1].lr == runs[2].lr and runs[2].batch_size < 1797
    assert large_lr < 0.85 * small_lr  # the larger learning rate ends flatter
    assert small_batch < 0.85 * large_lr  # at that lr, the smaller batch ends flatter still
