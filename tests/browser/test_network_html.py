"""A real network's exported pages in a real headless Chromium, every network request blocked.

The two-panel page of a :class:`~sgdscape.networks.recording.StochasticView`: moving the slider
draws that step's projected iterate and minibatch landscape (the view's own arrays as
oracles). The 3-D surface page: plotly draws a WebGL surface whose z is the landscape.
``sgdscape serve --view``: the same page served by the Dash app.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import sgdscape
from chromium import ARTIFACTS, needs_chromium, open_offline_page
from serving import serving
from sgdscape.networks.examples import two_moons
from sgdscape.networks.recording import StochasticView, record_training, save_view

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.browser, needs_chromium]

# Chromium's software WebGL reports driver performance notes as console warnings.
BENIGN = ("GPU stall due to ReadPixels", "willReadFrequently")


@pytest.fixture(scope="module")
def view() -> StochasticView:
    """16 steps of an MLP on two moons, on a 21x21 PCA plane."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
    recording = record_training(
        model, nn.CrossEntropyLoss(), two_moons(n=160, seed=3), lr=0.5, batch_size=20, epochs=2
    )
    return sgdscape.stochastic_view(recording, grid=21)


def open_page(browser, path: Path, ready: str):
    """A tab on ``path`` that records errors and blocks everything but ``file://``."""
    tab, errors, blocked, _ = open_offline_page(browser, path, ready, ignore=BENIGN)
    return tab, errors, blocked


def _artifact(name: str) -> str:
    ARTIFACTS.mkdir(exist_ok=True)
    return str(ARTIFACTS / name)


def test_network_page_slider_moves_the_projected_iterate(browser, view, tmp_path) -> None:
    from sgdscape.surfaces.export import export_html

    page_file = export_html(view, tmp_path / "network.html")
    tab, errors, blocked = open_page(
        browser, page_file, "document.getElementById('sgdscape-plot').dataset.step === '0'"
    )
    path = view.path()
    assert tab.locator(".xtitle").first.text_content() == view.landscape.labels[0]
    for step in (0, 9, view.n_steps - 1):
        tab.locator("#sgdscape-step").fill(str(step))
        tab.wait_for_function(
            f"document.getElementById('sgdscape-plot').dataset.step === '{step}'",
            timeout=10_000,
        )
        drawn = tab.evaluate(
            """() => {
            const gd = document.getElementById('sgdscape-plot');
            return {x: gd.data[3].x[0], y: gd.data[3].y[0], z: gd.data[0].z,
                    pathLength: gd.data[5].x.length,
                    title: document.querySelector('.gtitle').textContent};
        }"""
        )
        np.testing.assert_allclose([drawn["x"], drawn["y"]], path[step], rtol=1e-6)
        assert drawn["pathLength"] == step + 1
        assert f"step {step}/{view.n_steps - 1}" in drawn["title"]
        expected = np.log(view.batch_landscape(step).astype(np.float64))
        z = np.array(drawn["z"], dtype=np.float64)
        np.testing.assert_allclose(z, expected, atol=np.ptp(expected) / 60000 + 1e-5)
    tab.screenshot(path=_artifact("network_html_last_step.png"))
    assert errors == [] and blocked == []


def test_surface_page_draws_the_landscape_in_webgl(browser, view, tmp_path) -> None:
    from sgdscape.surfaces.export import export_figure_html
    from sgdscape.views.network_figure import network_surface

    page_file = export_figure_html(network_surface(view), tmp_path / "surface.html")
    tab, errors, blocked = open_page(
        browser, page_file, "document.getElementById('sgdscape-plot').dataset.ready === '1'"
    )
    drawn = tab.evaluate(
        """() => {
        const gd = document.getElementById('sgdscape-plot');
        const z = gd._fullData[0].z;
        return {type: gd._fullData[0].type, rows: z.length, cols: z[0].length,
                corner: z[0][0], canvases: gd.querySelectorAll('canvas').length,
                line: [gd._fullData[1].x[3], gd._fullData[1].y[3]]};
    }"""
    )
    assert drawn["type"] == "surface" and drawn["canvases"] >= 1
    assert (drawn["rows"], drawn["cols"]) == view.landscape.risk.shape
    assert drawn["corner"] == pytest.approx(np.log(float(view.landscape.risk[0, 0])), rel=1e-6)
    np.testing.assert_allclose(drawn["line"], view.path()[3], rtol=1e-6)
    tab.wait_for_timeout(500)
    tab.screenshot(path=_artifact("network_surface.png"))
    assert errors == [] and blocked == []


@pytest.mark.skipif(importlib.util.find_spec("dash") is None, reason="needs dash")
def test_serve_view_shows_the_panels_with_the_slider(browser, view, tmp_path) -> None:
    saved = save_view(view, tmp_path / "network.npz")
    with serving(["--view", str(saved)], tmp_path / "serve.log", timeout=60) as url:
        tab = browser.new_page(viewport={"width": 1300, "height": 820})
        errors: list[str] = []
        tab.on("pageerror", lambda error: errors.append(str(error)))
        tab.goto(url)
        tab.wait_for_selector("#view-frame", timeout=30_000)
        frame = tab.frame_locator("#view-frame")
        frame.locator("#sgdscape-plot[data-step='0']").wait_for(timeout=30_000)
        step = 11
        frame.locator("#sgdscape-step").fill(str(step))
        frame.locator(f"#sgdscape-plot[data-step='{step}']").wait_for(timeout=10_000)
        inner = next(f for f in tab.frames if f.url.endswith("/view.html"))
        drawn = inner.evaluate(
            "() => { const gd = document.getElementById('sgdscape-plot');"
            " return [gd.data[3].x[0], gd.data[3].y[0]]; }"
        )
        np.testing.assert_allclose(drawn, view.path()[step], rtol=1e-6)
        tab.screenshot(path=_artifact("network_serve_view.png"))
        assert errors == []
