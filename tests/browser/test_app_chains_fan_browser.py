"""The web app's fan switch and chains view in a real Chromium (issue 18).

`sgdscape serve` runs in a subprocess; every number is read back from the page's Plotly
graph divs and checked against oracles computed here: per-sample gradients by torch
autograd on the run's data (the fan), ``sgdscape.chains`` with the same seed,
``np.histogram2d``, ``np.cov`` and the relu-unit's basins classified here (the chains view).
Screenshots of both views go to test-artifacts/.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import sgdscape
from chain_oracles import classify_relu_unit, relu_unit_steps
from chromium import APP_IN_BROWSER, ARTIFACTS
from serving import serving
from sgdscape.records.chain_presets import get_chain_preset
from sgdscape.records.run import make_data
from sgdscape.surfaces.app.state import parse_query
from sgdscape.views.chains_figure import EMPIRICAL_LABEL
from sgdscape.views.chains_plotly import DENSITY_NAME, ELLIPSE_POINTS
from sgdscape.views.fan import fan_scales
from sgdscape.views.step_source import from_run

pytestmark = [*APP_IN_BROWSER, pytest.mark.slow]

FAN_QUERY = "?fan=1&n=30&step=7"
FAN_STEP = 7


@pytest.fixture(scope="module")
def server():
    ARTIFACTS.mkdir(exist_ok=True)
    with serving([], ARTIFACTS / "serve-chains-fan.log", timeout=90) as url:
        yield url


def _page(browser, url: str, height: int = 1000):
    page = browser.new_page(viewport={"width": 1280, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    return page, errors


def _traces(page, graph: str) -> list[dict]:
    return page.evaluate(
        "g => document.querySelector('#' + g + '-graph .js-plotly-plot').data.map("
        "t => ({name: t.name, x: t.x, y: t.y, z: t.z}))",
        graph,
    )


def test_the_fan_is_every_samples_step_and_its_mean_the_full_gradient_step(server, browser):
    state, notices = parse_query(FAN_QUERY)
    assert notices == [] and state.fan
    result = sgdscape.run(state.to_config())
    page, errors = _page(browser, server + FAN_QUERY)
    page.wait_for_function(
        "() => { const gd = document.querySelector('#batch-graph .js-plotly-plot');"
        " return gd && gd.data && gd.data.length === 8 && gd.data[5].x.length === 30"
        " && document.querySelector('#step-label').innerText.startsWith('step 7 '); }",
        timeout=60_000,
    )
    traces = _traces(page, "batch")
    names = [t["name"] for t in traces]
    assert names[5].startswith("possible next iterates (one per sample) ×")
    assert names[6:] == ["their mean", "full-gradient step"]
    w = np.array([traces[1]["x"][0], traces[1]["y"][0]], dtype=np.float64)  # the iterate
    np.testing.assert_allclose(w, result.trajectory.iterates[FAN_STEP], atol=1e-5)
    x = result.data.x.double().numpy().reshape(-1)
    y = result.data.y.double().numpy().reshape(-1)
    steps = relu_unit_steps(w, x, y, state.lr)  # (n, 2): -lr * each sample's gradient
    drawn = np.column_stack([traces[5]["x"], traces[5]["y"]]).astype(np.float64) - w
    # un-magnify: the one factor that maps every sample's step onto its drawn point
    scale = float(np.sum(drawn * steps) / np.sum(steps * steps))
    assert scale > 1
    assert scale == pytest.approx(fan_scales(from_run(result))[FAN_STEP], rel=1e-4)
    assert names[5].endswith(f"× {scale:.3g}")
    np.testing.assert_allclose(drawn / scale, steps, atol=1e-5)  # the per-sample steps
    full_step = w + steps.mean(axis=0)  # w - lr grad R(w), R the mean of the samples' losses
    mean = np.array([traces[6]["x"][0], traces[6]["y"][0]], dtype=np.float64)
    np.testing.assert_allclose(w + (mean - w) / scale, full_step, atol=1e-5)
    end = np.array([traces[7]["x"][1], traces[7]["y"][1]], dtype=np.float64)
    np.testing.assert_allclose(w + (end - w) / scale, full_step, atol=1e-5)
    spokes = np.array(traces[4]["x"], dtype=object).reshape(-1, 3)
    assert len(spokes) == 30 and all(row[2] is None for row in spokes)
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "app_fan.png"))
    # stepping redraws the fan at the new iterate
    page.locator("#step-slider").click()
    page.keyboard.press("Home")
    page.wait_for_function(
        "() => document.querySelector('#step-label').innerText.startsWith('step 0 ')"
    )
    first = _traces(page, "batch")
    w0 = result.trajectory.iterates[0].astype(np.float64)
    drawn0 = np.column_stack([first[5]["x"], first[5]["y"]]).astype(np.float64) - w0
    scale0 = fan_scales(from_run(result))[0]
    np.testing.assert_allclose(drawn0 / scale0, relu_unit_steps(w0, x, y, state.lr), atol=1e-5)
    assert errors == []
    page.close()


def test_a_run_without_a_fan_says_why_on_the_page(server, browser):
    page, errors = _page(browser, server + "?fan=1&model=relu-unit-bias")
    page.wait_for_function(
        "() => (document.querySelector('#fan-note') || {innerText: ''}).innerText.length > 0",
        timeout=60_000,
    )
    note = page.inner_text("#fan-note")
    assert "2-parameter model only" in note and "relu-unit-bias has 3 parameters" in note
    assert "100 steps" in page.inner_text("#run-info")  # the run is drawn all the same
    assert errors == []
    page.close()


def _set(page, name: str, value: str) -> None:
    box = page.locator(f"#chains-{name}")
    box.fill(value)
    box.press("Enter")


def _wait_info(page, text: str) -> None:
    page.wait_for_function(
        "t => (document.querySelector('#chains-info') || {innerText: ''}).innerText.includes(t)"
        " && document.querySelector('#chains-graph .js-plotly-plot')",
        arg=text,
        timeout=120_000,
    )
    page.wait_for_timeout(300)


def _show_record(page, index: int) -> int:
    """Move the chains slider to record ``index``; return the step the label shows."""
    page.evaluate("i => window.dash_clientside.set_props('chains-slider', {value: i})", index)
    page.wait_for_function(
        "i => document.querySelector('#chains-step-label').innerText.includes('(' + (i + 1) + ' of')",
        arg=index,
    )
    return int(re.match(r"step (\d+)", page.inner_text("#chains-step-label")).group(1))


def _drawn(page) -> dict:
    return page.evaluate(
        """() => {
        const gd = document.querySelector('#chains-graph .js-plotly-plot');
        return {data: gd.data.map(t => ({name: t.name, x: t.x, y: t.y, z: t.z})),
                xr: gd.layout.xaxis.range, yr: gd.layout.yaxis.range,
                title: gd.layout.annotations[0].text};
    }"""
    )


def test_the_chains_view_draws_the_chains_density_ellipse_and_basins(server, browser):
    page, errors = _page(browser, server + "?view=chains", height=900)
    _wait_info(page, "20000 chains x 300 steps")  # the default: the noise-ball preset
    assert page.is_hidden("#step-view")
    _set(page, "n-chains", "3000")
    _set(page, "steps", "60")
    _set(page, "seed", "3")
    _wait_info(
        page,
        "3000 chains x 60 steps of sgd on linear-regression (lr 0.1, batch 1, with-replacement, seed 3)",
    )
    config = get_chain_preset("noise-ball-theory").setup.config.replace(seed=3)
    data = make_data(config)
    checked = 0
    for index in (1, 2, 4):
        step = _show_record(page, index)
        drawn = _drawn(page)
        assert drawn["title"] == f"step {step}"
        chains = sgdscape.chains(
            "linear-regression", data, init=(-2.0, 2.0), n_chains=3000, lr=0.1,
            steps=step, seed=3, record_steps=[0, step],
        )  # fmt: skip
        points = chains.at(step).astype(np.float64)
        heat = next(t for t in drawn["data"] if t["name"] == DENSITY_NAME)
        z = np.array([[np.nan if v is None else v for v in row] for row in heat["z"]])
        (x0, x1), (y0, y1) = drawn["xr"], drawn["yr"]
        bins = len(heat["x"])
        edges = (np.linspace(x0, x1, bins + 1), np.linspace(y0, y1, bins + 1))
        counts, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=edges)
        np.testing.assert_allclose(heat["x"], (edges[0][1:] + edges[0][:-1]) / 2, atol=2e-6)
        area = (x1 - x0) * (y1 - y0) / bins**2
        shown = np.where(np.isnan(z), 0.0, 10**z * len(points) * area)  # log10 chains per area
        np.testing.assert_allclose(shown, counts.T, rtol=1e-3, atol=1e-6)
        assert counts.sum() > 0.95 * len(points)  # the window holds the cloud
        ellipse = next(t for t in drawn["data"] if t["name"] == EMPIRICAL_LABEL)
        loop = np.column_stack([ellipse["x"], ellipse["y"]]).astype(np.float64)[:ELLIPSE_POINTS]
        centre = loop.mean(axis=0)
        covariance = (loop - centre).T @ (loop - centre) / ELLIPSE_POINTS / 2  # 2 sigma
        np.testing.assert_allclose(centre, points.mean(axis=0), atol=2e-6)
        np.testing.assert_allclose(covariance, np.cov(points.T), rtol=1e-4, atol=1e-9)
        checked += 1
    assert checked == 3
    page.screenshot(path=str(ARTIFACTS / "app_chains.png"))

    # a preset fills the controls; then the basins of the relu-unit's chains
    page.locator("#chains-preset").click()
    page.get_by_role("option", name="valley-hopping").click()
    _wait_info(page, "2000 chains x 2000 steps of sgd on relu-unit")
    assert page.input_value("#chains-lr") == "0.5"
    _set(page, "n-chains", "400")
    _set(page, "steps", "300")
    _wait_info(page, "400 chains x 300 steps of sgd on relu-unit")
    label = page.inner_text("#chains-step-label")  # a new run shows its last record
    assert re.match(r"step 300 \((\d+) of \1 recorded\)", label), label
    drawn = _drawn(page)
    config = get_chain_preset("valley-hopping").setup.config
    data = make_data(config)
    chains = sgdscape.chains(
        "relu-unit", data, init=(-1.4, -1.4), n_chains=400, lr=0.5, steps=300, seed=0,
        record_steps=[0, 300],
    )  # fmt: skip
    labels = classify_relu_unit(chains.final.astype(np.float64), data.x.double().numpy())
    lines = {t["name"]: t for t in drawn["data"]}
    names = ("w2>0 valley", "w2<0 valley", "dead plateau", "mixed signs")
    for code, name in enumerate(names):
        share = float(np.mean(labels == code))
        if name in lines:
            assert lines[name]["x"][-1] == 300
            assert lines[name]["y"][-1] == pytest.approx(share, abs=1e-6)
        else:
            assert share == 0
    assert 0 < np.mean(labels == 0) < 1  # some chains hopped to the mirror valley
    marker = lines["current step"]
    assert marker["x"] == [300, 300]
    page.screenshot(path=str(ARTIFACTS / "app_chains_basins.png"))

    # refused settings are said in the view, and the figure stays
    for name, value, message in [
        ("n-chains", "0", "number of chains must be between 1 and 20000"),
        ("n-chains", "1000000", "number of chains must be between 1 and 20000"),
        ("lr", "-0.5", "learning rate must be > 0"),
    ]:
        _set(page, name, value)
        page.wait_for_function(
            "m => document.querySelector('#chains-notice').innerText.includes(m)",
            arg=message,
            timeout=30_000,
        )
        assert "Traceback" not in page.inner_text("body")
        if value == "0":
            page.screenshot(path=str(ARTIFACTS / "app_chains_error.png"))
        _set(page, name, "400" if name == "n-chains" else "0.5")
        page.wait_for_function("() => document.querySelector('#chains-notice').innerText === ''")
    assert errors == []
    page.close()


def test_on_a_phone_the_chains_panels_are_stacked(server, browser):
    page = browser.new_page(viewport={"width": 390, "height": 1400})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "?view=chains")
    _wait_info(page, "chains x")
    page.wait_for_timeout(500)
    density, curves = page.evaluate(
        "() => { const l = document.querySelector('#chains-graph .js-plotly-plot')._fullLayout;"
        " return [l.yaxis.domain, l.yaxis2.domain]; }"
    )
    assert density[0] > curves[1]  # the density above the curves, not beside them
    graph = page.locator("#chains-graph").bounding_box()
    assert graph["width"] <= 390 and graph["height"] > 800
    page.screenshot(path=str(ARTIFACTS / "app_chains_phone.png"), full_page=True)
    assert errors == []
    page.close()
