"""The web app's fan switch and chains view, without a browser (issue 18).

Oracles: the fan's points and mean against per-sample gradients of the run's own data by
torch autograd (written out here, not the package's closed forms); the chains view's
density, ellipse and basin fractions against ``sgdscape.chains`` run here with the same
seed, ``np.histogram2d``, ``np.cov`` and the relu-unit's basins classified here.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

import sgdscape
from chain_oracles import classify_relu_unit, relu_unit_steps
from sgdscape.errors import SgdscapeError
from sgdscape.records.chain_presets import CHAIN_PRESETS
from sgdscape.records.run import make_data
from sgdscape.surfaces.app.compute import chains_payload, compute_result, fan_payload, page_payload
from sgdscape.surfaces.app.state import (
    MAX_CHAIN_RECORDS,
    MAX_CHAINS,
    AppState,
    ChainsAppState,
    chains_state_from_controls,
    parse_query,
    to_query,
)
from sgdscape.views.chains_plotly import DENSITY_NAME, ELLIPSE_POINTS, MEAN_NAME, chains_player

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("plotly") is None, reason="needs the app extra"
)


# ------------------------------------------------------------------ the fan switch


def test_the_fan_switch_round_trips_in_the_link_and_a_bad_value_is_ignored() -> None:
    state = AppState(fan=True, view="chains")
    assert to_query(state) == "?fan=1&view=chains"
    assert parse_query("?fan=1&view=chains")[0] == state
    parsed, notices = parse_query("?fan=maybe&view=nowhere")
    assert parsed == AppState() and len(notices) == 2


@pytest.mark.parametrize("step", [0, 7, 29])
def test_each_steps_fan_is_every_samples_step_and_its_mean_the_full_gradient_step(step) -> None:
    state = AppState(fan=True, samples=30)
    result = compute_result(state)
    fan = fan_payload(result)
    w = np.asarray(result.trajectory.iterates[step], dtype=np.float64)
    x = result.data.x.double().numpy().reshape(-1)
    y = result.data.y.double().numpy().reshape(-1)
    steps = relu_unit_steps(w, x, y, state.lr)
    scale = fan["scale"][step]
    points = np.array(fan["points"][step]).T
    np.testing.assert_allclose((points - w) / scale, steps, atol=2e-6)
    full_step = w + steps.mean(axis=0)  # w - lr grad R(w): R is the mean of the samples' losses
    np.testing.assert_allclose(w + (np.array(fan["mean"][step]) - w) / scale, full_step, atol=2e-6)
    np.testing.assert_allclose(w + (np.array(fan["full"][step]) - w) / scale, full_step, atol=2e-6)
    assert fan["label"][step] == f"possible next iterates (one per sample) × {scale:.3g}"


def test_the_fans_full_step_lands_on_the_full_gradient_arrows_tip() -> None:
    payload = page_payload(AppState(fan=True, samples=30))
    plain = [k for k, label in enumerate(payload["full_arrow_label"]) if "minimum" not in label]
    assert len(plain) > 10  # (an arrow drawn at the minimum length is longer than the step)
    for k in plain:
        np.testing.assert_allclose(payload["fan"]["full"][k], payload["full_arrow"][k], atol=1e-5)


def test_a_bigger_batch_samples_minibatches_whose_mean_is_near_the_full_step() -> None:
    result = compute_result(AppState(fan=True, batch=4))
    fan = fan_payload(result)
    points = np.array(fan["points"][3]).T
    assert points.shape == (1024, 2)
    assert fan["label"][3].startswith("possible next iterates (1024 minibatches of 4)")
    # with replacement, the mean of 1024 minibatch steps is the full step within a few SEs
    w = np.asarray(result.trajectory.iterates[3], dtype=np.float64)
    spread = points.std(axis=0) / np.sqrt(len(points))
    assert (np.abs(points.mean(axis=0) - np.array(fan["full"][3])) <= 5 * spread + 1e-9).all()
    assert not np.allclose(points, w)


def test_a_run_without_a_fan_says_why_and_still_draws() -> None:
    payload = page_payload(AppState(fan=True, model="relu-unit-bias"))
    assert "fan" not in payload and "2-parameter model only" in payload["fan_error"]
    assert len(payload["figures"]["batch"]["data"]) == 4
    too_many = page_payload(AppState(fan=True, samples=1000, grid=30))
    assert "above the app's cap" in too_many["fan_error"]


def test_the_fan_traces_are_on_the_left_panel_and_strict_json() -> None:
    payload = page_payload(AppState(fan=True))
    traces = payload["figures"]["batch"]["data"][payload["fan_first"] :]
    assert [t["name"] for t in traces][1:] == [
        payload["fan"]["label"][0],
        "their mean",
        "full-gradient step",
    ]
    assert all(t["xaxis"] == "x" and t["yaxis"] == "y" for t in traces)
    json.dumps(payload, allow_nan=False)


# ------------------------------------------------------------------ the chains view


def test_the_default_chains_are_the_noise_ball_preset_and_presets_fill_the_controls() -> None:
    assert ChainsAppState() == ChainsAppState.from_preset("noise-ball-theory")
    for name, preset in CHAIN_PRESETS.items():
        state = ChainsAppState.from_preset(name)
        setup = state.to_setup()
        assert setup.config.noise_std == preset.setup.config.noise_std
        assert setup.n_chains == min(preset.setup.n_chains, MAX_CHAINS)
        assert len(setup.recorded) <= MAX_CHAIN_RECORDS
        assert setup.recorded[0] == 0 and setup.recorded[-1] == state.steps


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_chains": 0}, "number of chains must be between 1 and 20000"),
        ({"n_chains": 10**6}, "number of chains must be between 1 and 20000"),
        ({"lr": -0.1}, "learning rate must be > 0"),
        ({"steps": 5000}, "steps must be between 0 and 2000"),
        ({"n_chains": 20000, "steps": 2000}, "chain-steps"),
        ({"model": "nope"}, "unknown model 'nope'"),
        ({"batch": 0}, "batch size must be >= 1"),
    ],
)
def test_refused_chains_settings_name_the_value(changes, message) -> None:
    values = {"n_chains": 100, "steps": 10, **changes}
    with pytest.raises(SgdscapeError, match=message):
        chains_state_from_controls(values)


def test_an_empty_control_is_named() -> None:
    with pytest.raises(SgdscapeError, match="number of chains is empty"):
        chains_state_from_controls({"n_chains": None})
    with pytest.raises(SgdscapeError, match="learning rate must be a number, got 'abc'"):
        chains_state_from_controls({"lr": "abc"})


def _independent_chains(state: ChainsAppState):
    setup = state.to_setup()
    data = make_data(setup.config)
    chains = sgdscape.chains(
        state.model,
        data,
        init=state.init,
        n_chains=state.n_chains,
        lr=state.lr,
        batch_size=state.batch,
        sampling=state.sampling,
        steps=state.steps,
        seed=state.seed,
        record_steps=setup.recorded,
    )
    return chains, data


def test_the_views_density_and_ellipse_are_the_chains_own() -> None:
    state = ChainsAppState(n_chains=3000, steps=60, seed=3)
    payload = chains_payload(state)
    chains, _ = _independent_chains(state)
    figure = payload["figure"]
    names = [t["name"] for t in figure["data"]]
    heat, ellipse = names.index(DENSITY_NAME), names.index("empirical mean, 2σ")
    for index, step in enumerate(payload["steps"]):
        if step == 0:
            continue
        changes, layout, traces = payload["updates"][index]
        (x0, x1), (y0, y1) = layout["xaxis.range"], layout["yaxis.range"]
        z = np.array(changes["z"][traces.index(heat)], dtype=float)  # (rows = y, cols = x)
        bins = z.shape[1]
        edges = (np.linspace(x0, x1, bins + 1), np.linspace(y0, y1, bins + 1))
        points = chains.at(step).astype(np.float64)
        counts, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=edges)
        area = (x1 - x0) / bins * (y1 - y0) / z.shape[0]
        drawn = np.where(np.isnan(z), 0.0, 10**z * len(points) * area)
        np.testing.assert_allclose(drawn, counts.T, rtol=1e-3, atol=1e-6)
        loop = np.column_stack(
            [changes["x"][traces.index(ellipse)], changes["y"][traces.index(ellipse)]]
        )[:ELLIPSE_POINTS]
        centre = loop.mean(axis=0)
        covariance = (loop - centre).T @ (loop - centre) / ELLIPSE_POINTS / 2
        np.testing.assert_allclose(centre, points.mean(axis=0), atol=2e-6)
        np.testing.assert_allclose(covariance, np.cov(points.T), rtol=1e-4, atol=1e-9)


def test_the_views_updates_are_the_offline_pages_slider() -> None:
    state = ChainsAppState(n_chains=500, steps=30)
    payload = chains_payload(state)
    from sgdscape.records.chain_presets import simulate_chains

    run = simulate_chains(state.to_setup())
    offline = chains_player(run.chains, run.landscape, run.data)
    steps = offline.layout.sliders[0].steps
    assert payload["steps"] == [int(s.label) for s in steps]
    assert [t["name"] for t in payload["figure"]["data"]] == [t.name for t in offline.data]
    mean = [t["name"] for t in payload["figure"]["data"]].index(MEAN_NAME)
    for update, step in zip(payload["updates"], steps, strict=True):
        assert update[2] == list(step.args[2])
        assert update[0]["x"][update[2].index(mean)] == step.args[0]["x"][1]
    assert (
        "sliders" not in payload["figure"]["layout"] or not payload["figure"]["layout"]["sliders"]
    )
    json.dumps(payload, allow_nan=False)


def test_the_basin_fractions_are_a_direct_classification_of_the_end_points() -> None:
    state = ChainsAppState.from_preset("valley-hopping").replace(n_chains=400, steps=300)
    payload = chains_payload(state)
    chains, data = _independent_chains(state)
    labels = classify_relu_unit(chains.final.astype(np.float64), data.x.double().numpy())
    names = ("w2>0 valley", "w2<0 valley", "dead plateau", "mixed signs")
    drawn = {t["name"]: t for t in payload["figure"]["data"]}
    assert payload["steps"][-1] == 300
    for code, name in enumerate(names):
        share = float(np.mean(labels == code))
        if name in drawn:
            assert drawn[name]["x"][-1] == 300
            assert drawn[name]["y"][-1] == pytest.approx(share, abs=1e-6)
        else:  # the page leaves out a basin no chain ever visits
            assert share == 0
    assert 0 < np.mean(labels == 0) < 1  # some chains hopped, some did not


def test_the_chains_callback_says_what_it_refuses_and_computes_only_when_shown() -> None:
    pytest.importorskip("dash")
    import dash

    from sgdscape.surfaces.app.chains_view import CHAIN_FIELDS, compute_chains, control_values

    values = control_values(ChainsAppState(n_chains=200, steps=10))
    assert compute_chains("step", values) == (dash.no_update,) * 3
    payload, notice, info = compute_chains("chains", values)
    assert notice is None and info.startswith("200 chains x 10 steps")
    assert payload["steps"][-1] == 10
    bad = dict(zip(CHAIN_FIELDS, values, strict=True)) | {"n_chains": 0}
    payload, notice, info = compute_chains("chains", list(bad.values()))
    assert payload is dash.no_update and info is dash.no_update
    assert "number of chains must be between 1 and 20000" in notice.children
    bad = dict(zip(CHAIN_FIELDS, values, strict=True)) | {"lr": [1, 2]}
    assert (
        "learning rate must be a number" in compute_chains("chains", list(bad.values()))[1].children
    )
