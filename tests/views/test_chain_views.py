"""Chains presets, valley hopping and the fan of next steps: each checked against an oracle
written here (a plain loop over chains, torch autograd on the data, values read back from
the drawn artists and Plotly traces)."""

import dataclasses
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch

import sgdscape
from sgdscape.errors import SgdscapeError
from sgdscape.records.chain_presets import (
    CHAIN_PRESETS,
    ChainsSetup,
    get_chain_preset,
    simulate_chains,
    theory_agreement,
)
from sgdscape.records.hopping import hop_scaling, hop_times, measure_hop_times
from sgdscape.views.fan import FULL_STEP_LABEL, MEAN_LABEL, draw_fan, fan_traces

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ presets


def test_unknown_preset_and_bad_setup_are_named():
    with pytest.raises(SgdscapeError, match="noise-ball-theory"):
        get_chain_preset("nope")
    with pytest.raises(SgdscapeError, match="record_steps"):
        ChainsSetup(steps=10, record_steps=(0, 11))
    with pytest.raises(SgdscapeError, match="n_chains"):
        ChainsSetup(n_chains=0)


def test_setup_replace_splits_chain_fields_from_run_fields():
    setup = get_chain_preset("valley-hopping").setup.replace(lr=0.3, n_chains=7, batch_size=2)
    assert (setup.n_chains, setup.config.lr, setup.config.batch_size) == (7, 0.3, 2)
    assert setup.config.init == (-1.4, -1.4)


def test_a_preset_run_equals_a_direct_chains_call():
    setup = get_chain_preset("noise-ball-theory").setup.replace(n_chains=40, grid=8)
    run = simulate_chains(setup)
    config = setup.config
    direct = sgdscape.chains(
        "linear-regression",
        sgdscape.make_problem(
            "linear", 100, seed=0, options=sgdscape.ProblemOptions(noise_std=0.5)
        ),
        init=(-2.0, 2.0),
        n_chains=40,
        lr=config.lr,
        steps=setup.steps,
        record_steps=list(setup.record_steps),
    )
    np.testing.assert_array_equal(run.chains.iterates, direct.iterates)
    assert run.landscape.risk.shape == (8, 8)


def test_progress_counts_every_chain_step():
    seen = []
    setup = ChainsSetup(n_chains=30, steps=12, record_steps=(0, 12))
    simulate_chains(
        setup, progress=lambda done, total: seen.append((done, total)), with_landscape=False
    )
    assert seen[-1] == (30 * 12, 30 * 12)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_noise_ball_preset_agrees_with_the_exact_theory():
    setup = get_chain_preset("noise-ball-theory").setup.replace(n_chains=4000, grid=8)
    run = simulate_chains(setup)
    agreement = theory_agreement(run)
    assert (agreement.covariance_z < 5).all() and (agreement.mean_z < 5).all()
    assert agreement.covariance_error.max() < 0.1
    assert agreement.stationary_error < 0.1
    # the test has power: chains run with lr 0.13 are rejected by the lr-0.1 theory
    faster = simulate_chains(setup.replace(lr=0.13), with_landscape=False)
    mislabelled = type(run)(run.setup, faster.chains, faster.data, None)
    wrong = theory_agreement(mislabelled)  # uses faster.chains.config.lr ...
    assert wrong.covariance_z.max() < 5  # ... which is its own, so it agrees
    swapped = dataclasses.replace(faster.chains, config=run.chains.config)
    rejected = theory_agreement(type(run)(run.setup, swapped, run.data, None))
    assert rejected.covariance_z.max() > 5


def test_the_gallery_has_every_chains_preset_with_its_figure_and_note():
    text = (ROOT / "docs" / "gallery.md").read_text()
    for name, preset in CHAIN_PRESETS.items():
        assert f"sgdscape chains --preset {name}\n" in text
        assert f"](images/gallery/{name}.png)" in text
        assert (ROOT / "docs" / "images" / "gallery" / f"{name}.png").is_file()
        assert preset.explanation in text
    assert "standard errors" in text.split("noise-ball-theory`")[1].split("## ")[0]


# ------------------------------------------------------------------ hopping


def plain_hops(labels, steps, valleys):
    """The first arrival in another valley and the exposure, chain by chain."""
    times, exposures = [], []
    for k in range(labels.shape[1]):
        start, time, exposure = labels[0, k], -1, steps[-1] - steps[0]
        for s in range(1, len(steps)):
            label = labels[s, k]
            if label in valleys and label != start:
                time = exposure = steps[s] - steps[0]
                time = steps[s]
                break
            if label == -1:
                exposure = steps[s - 1] - steps[0]
                break
        times.append(time)
        exposures.append(exposure)
    return np.array(times), np.array(exposures)


def test_hop_times_equal_a_plain_loop():
    rng = np.random.default_rng(0)
    labels = rng.choice([0, 1, 2, 3], size=(30, 200), p=[0.05, 0.85, 0.05, 0.05])
    labels[0] = rng.choice([0, 1], size=200)
    labels[rng.random((30, 200)) < 0.02] = -1
    for k in range(200):  # a diverged chain stays diverged
        bad = np.flatnonzero(labels[:, k] == -1)
        if bad.size:
            labels[bad[0] :, k] = -1
    labels[0][labels[0] == -1] = 1
    steps = np.arange(30) * 5
    found = hop_times(labels, steps, [0, 1])
    time, exposure = plain_hops(labels, steps, {0, 1})
    np.testing.assert_array_equal(found.time, time)
    np.testing.assert_array_equal(found.exposure, exposure)
    assert found.hops == (time >= 0).sum() > 0
    assert found.mean_time == pytest.approx(exposure.sum() / found.hops)


def test_hop_times_of_bad_labels_are_named():
    with pytest.raises(SgdscapeError, match="shape"):
        hop_times(np.zeros((3, 4)), np.arange(2), [0, 1])


def test_mean_hop_time_falls_with_lr_and_rises_with_batch_size():
    setup = get_chain_preset("valley-hopping").setup
    scaling = hop_scaling(setup, {1: (0.5, 0.6), 2: (0.6,)}, n_chains=300, steps=800, every=5)
    (slow, fast), (batch2,) = scaling.runs[1], scaling.runs[2]
    assert fast.mean_time < 0.6 * slow.mean_time  # faster hops at larger lr
    assert batch2.mean_time > 2 * fast.mean_time  # at the same lr, batch 2 hops rarely
    assert fast.hops > 200


def test_run_hop_times_needs_a_model_with_valleys():
    setup = get_chain_preset("noise-ball-theory").setup.replace(n_chains=5, steps=4)
    with pytest.raises(SgdscapeError, match="valleys"):
        measure_hop_times(simulate_chains(setup, with_landscape=False))


# ------------------------------------------------------------------ fan of next steps


def full_step(model, data, w, lr):
    """``w - lr * grad R(w)`` with torch autograd on the whole data (independent of the fan)."""
    x, y = data.x.double().reshape(-1), data.y.double().reshape(-1)
    point = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    if model == "relu-unit":
        prediction = point[0] * torch.relu(point[1] * x)
    else:
        prediction = point[0] * x + point[1]
    risk = ((prediction - y) ** 2).mean()
    (gradient,) = torch.autograd.grad(risk, point)
    return (point - lr * gradient).detach().numpy()


@pytest.mark.parametrize("model", ["relu-unit", "linear-regression"])
def test_the_drawn_fans_mean_is_the_full_gradient_step(model):
    data = sgdscape.make_problem("linear", 40, seed=2)
    w, lr = (-0.8, -1.1), 0.2
    fan = sgdscape.fan_of_steps(model, data, w, lr)
    fig, ax = plt.subplots()
    artists = draw_fan(ax, fan)
    points = np.asarray(artists["points"].get_offsets())
    assert points.shape == (40, 2)
    expected = full_step(model, data, w, lr)
    np.testing.assert_allclose(points.mean(axis=0), expected, atol=1e-9)
    np.testing.assert_allclose(np.ravel(artists["mean"].get_data()), expected, atol=1e-9)
    np.testing.assert_allclose(np.ravel(artists["full_step"].get_data()), expected, atol=1e-9)
    spokes = artists["spokes"].get_segments()
    assert len(spokes) == 40 and np.allclose([s[0] for s in spokes], w)
    labels = ax.get_legend_handles_labels()[1]
    assert MEAN_LABEL in labels and FULL_STEP_LABEL in labels
    plt.close(fig)


def test_the_plotly_fan_traces_carry_the_same_points():
    data = sgdscape.make_problem("linear", 25, seed=4)
    w, lr = (0.3, 0.9), 0.1
    fan = sgdscape.fan_of_steps("linear-regression", data, w, lr)
    traces = {trace.name: trace for trace in fan_traces(fan)}
    points_trace = next(t for name, t in traces.items() if name.startswith("possible next"))
    points = np.column_stack([points_trace.x, points_trace.y])
    expected = full_step("linear-regression", data, w, lr)
    np.testing.assert_allclose(points.mean(axis=0), expected, atol=1e-9)
    np.testing.assert_allclose([traces[MEAN_LABEL].x[0], traces[MEAN_LABEL].y[0]], expected)
    step = traces[FULL_STEP_LABEL]
    np.testing.assert_allclose([step.x[1], step.y[1]], expected, atol=1e-9)
    np.testing.assert_allclose([step.x[0], step.y[0]], w)


def test_a_minibatch_fan_is_centred_on_the_full_step_within_its_error():
    data = sgdscape.make_problem("linear", 40, seed=2)
    fan = sgdscape.fan_of_steps("linear-regression", data, (0.0, 1.0), 0.1, batch_size=8,
                                n_batches=3000, seed=5)  # fmt: skip
    fig, ax = plt.subplots()
    points = np.asarray(draw_fan(ax, fan, spokes=False)["points"].get_offsets())
    expected = full_step("linear-regression", data, (0.0, 1.0), 0.1)
    se = points.std(axis=0, ddof=1) / np.sqrt(len(points))
    assert (np.abs(points.mean(axis=0) - expected) < 5 * se).all()
    plt.close(fig)


def test_a_magnified_fan_on_the_step_figures_left_panel():
    from sgdscape.views.step_figure import plot_step

    result = sgdscape.run(sgdscape.RunConfig(grid=20, sampling="shuffle"))
    fig = plot_step(result, 30)
    w = result.trajectory.iterates[30].astype(np.float64)
    fan = sgdscape.fan_of_steps("relu-unit", result.data, w, result.config.lr)
    artists = draw_fan(fig.axes[0], fan, scale=10.0)
    points = np.asarray(artists["points"].get_offsets())
    expected = w + 10.0 * (full_step("relu-unit", result.data, w, result.config.lr) - w)
    np.testing.assert_allclose(points.mean(axis=0), expected, atol=1e-6)
    assert artists["points"].get_label().endswith("× 10")
    plt.close(fig)
