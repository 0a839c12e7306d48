"""The exported page with the fan of next steps, in headless Chromium with the network
blocked: after moving the slider (and after playing), the fan read back from the graph
div's data, its magnification undone, is every sample's SGD step ``w - lr grad loss_i(w)``
and its mean the full-gradient step ``w - lr grad R(w)``; both oracles are torch autograd on
the run's data, written out here (the seed's relu unit ``w1 relu(w2 x)``, squared error)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import sgdscape
from chromium import ARTIFACTS, CHROMIUM, LAUNCH_ARGS, needs_chromium, open_player, show_step
from sgdscape import RunConfig

pytestmark = [pytest.mark.browser, needs_chromium]

#: the fan's traces (found by their ``meta``), the iterate, the shown step and its scale
READ_FAN = """() => {
    const gd = document.getElementById('sgdscape-plot');
    const find = (meta) => gd.data.find((t) => t.meta === meta);
    const i = window.sgdscape.frames.steps.indexOf(Number(gd.dataset.step));
    const points = find('fan_points'), spokes = find('fan_spokes');
    const group = [...gd.querySelectorAll('.subplot.xy .scatterlayer .trace')].find(
        (g) => g.__data__ && g.__data__[0].trace.meta === 'fan_points');  // d3's datum
    return {
        step: Number(gd.dataset.step),
        iterate: [gd.data[3].x[0], gd.data[3].y[0]],
        x: points.x, y: points.y, name: points.name,
        mean: [find('fan_mean').x[0], find('fan_mean').y[0]],
        full: [find('fan_full_step').x, find('fan_full_step').y],
        spokes: spokes.x.length,
        scale: window.sgdscape.frames.fan.scale[i],
        drawn: group ? group.querySelectorAll('.point').length : -1,
        legend: [...gd.querySelectorAll('.legendtext')].map((t) => t.textContent),
    };
}"""


def sample_steps(result: sgdscape.RunResult, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 2)`` every sample's step ``w - lr grad loss_i(w)`` and ``(2,)`` the
    full-gradient step ``w - lr grad R(w)``, by torch autograd in float64."""
    x = result.data.x.double().reshape(-1)
    y = result.data.y.double().reshape(-1)
    point = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    losses = (point[0] * torch.relu(point[1] * x) - y) ** 2
    per_sample = torch.stack(
        [torch.autograd.grad(loss, point, retain_graph=True)[0] for loss in losses]
    )
    (full,) = torch.autograd.grad(losses.mean(), point)
    lr = result.config.lr
    return w - lr * per_sample.numpy(), w - lr * full.numpy()


@pytest.fixture(scope="module")
def result() -> sgdscape.RunResult:
    """40 steps of single-sample SGD on 40 samples, a 40x40 grid."""
    return sgdscape.run(RunConfig(grid=40, samples=40, lr=0.05))


show = show_step


def check_fan(drawn: dict, result: sgdscape.RunResult) -> None:
    """The fan read from the page against the autograd oracles, the magnification undone."""
    step = drawn["step"]
    assert result.config.model == "relu-unit" and result.config.loss_name == "mse"
    w = np.asarray(result.trajectory.iterates[step], dtype=np.float64)
    np.testing.assert_allclose(drawn["iterate"], w, rtol=1e-6)
    each, full = sample_steps(result, w)
    scale = drawn["scale"]
    assert scale > 1  # magnified, as the panel's arrows are
    # the legend's label gives the magnification (3 significant digits)
    match = re.search(r"× ([0-9.e+]+)$", drawn["name"])
    assert match and drawn["name"].startswith("possible next iterates (one per sample)")
    assert float(match.group(1)) == pytest.approx(scale, rel=5e-3)
    assert drawn["name"] in drawn["legend"]

    def unmagnified(points: np.ndarray) -> np.ndarray:
        return w + (points - w) / scale

    points = np.column_stack([drawn["x"], drawn["y"]]).astype(np.float64)
    assert points.shape == (len(result.data), 2)  # batch 1: one point per sample
    assert drawn["drawn"] == len(result.data)  # and each is an SVG point on the panel
    assert drawn["spokes"] == 3 * len(result.data)  # a segment (and a gap) per point
    # 16-bit packing: at most 1/131068 of the step's coordinate span, before un-magnifying
    span = np.ptp(np.concatenate([points.ravel(), w]))
    tolerance = span / 131068 / scale + 1e-9
    np.testing.assert_allclose(unmagnified(points), each, atol=tolerance)
    np.testing.assert_allclose(unmagnified(points).mean(axis=0), full, atol=tolerance)
    np.testing.assert_allclose(unmagnified(np.asarray(drawn["mean"])), full, atol=1e-5)
    full_x, full_y = drawn["full"]
    np.testing.assert_allclose([full_x[0], full_y[0]], w, rtol=1e-6)  # from the iterate
    np.testing.assert_allclose(unmagnified(np.array([full_x[1], full_y[1]])), full, atol=1e-5)
    assert np.ptp(each, axis=0).max() > 1e-3  # the samples' steps differ: a real fan


def test_the_fan_follows_the_slider_and_play(result, tmp_path: Path) -> None:
    from sgdscape.surfaces.export import export_html

    page_file = export_html(result, tmp_path / "fan.html", fps=4, fan=True)
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        tab, errors, blocked, _ = open_player(browser, page_file)
        seen = []
        for step in (6, 31):
            show(tab, step)
            drawn = tab.evaluate(READ_FAN)
            assert drawn["step"] == step
            check_fan(drawn, result)
            seen.append(np.column_stack([drawn["x"], drawn["y"]]))
            tab.screenshot(path=str(ARTIFACTS / f"player-fan-step{step}.png"), full_page=True)
        play = tab.locator("#sgdscape-play")
        play.click()  # from step 31, at 4 steps per second
        tab.wait_for_function("Number(document.getElementById('sgdscape-plot').dataset.step) >= 32")
        play.click()  # pause, then read whichever step is shown
        tab.wait_for_timeout(300)
        drawn = tab.evaluate(READ_FAN)
        assert drawn["step"] >= 32
        check_fan(drawn, result)
        assert errors == [] and blocked == []
        browser.close()
    assert not np.allclose(seen[0], seen[1])  # the fan moved with the step
