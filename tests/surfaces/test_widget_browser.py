"""The explorer in a real JupyterLab (headless Chromium): it renders, the slider and play move it."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest

pytest.importorskip("playwright")
pytest.importorskip("jupyterlab")
pytest.importorskip("anywidget")

import sgdscape
from repo_scripts import ROOT, load_script
from sgdscape.views.step_figure import safe_log

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason=f"no Chromium at {CHROMIUM}"),
]

DRAWN = """() => {
  const gd = document.querySelector('.jp-OutputArea-output .js-plotly-plot');
  const heatmap = gd.data[0];
  const circle = gd.layout.shapes[1];
  return {
    marker: [(circle.x0 + circle.x1) / 2, (circle.y0 + circle.y1) / 2],
    z: Array.from(heatmap.z, (row) => Array.from(row)),
    x: Array.from(heatmap.x),
    path: gd.layout.shapes[0].path.split('L').length,
  };
}"""


def _lab_module():
    return load_script("docs/make_explorer_png.py")


def _step_readout(page) -> int:
    return int(
        page.locator(".jp-OutputArea-output .widget-slider .widget-readout").first.inner_text()
    )


def test_explorer_renders_and_scrubs_in_jupyterlab() -> None:
    config = sgdscape.RunConfig(grid=40)
    oracle = sgdscape.run(config)
    source = "import sgdscape\nexplorer = sgdscape.explore(grid=40)\nexplorer.step = 12\nexplorer"
    with _lab_module().lab_notebook(source) as page:
        page.locator(".jp-OutputArea-output").first.screenshot(
            path=str(ROOT / "test-artifacts" / "explorer_lab.png")
        )
        assert page.locator(".jp-OutputArea-output .js-plotly-plot .hm").count() == 2
        assert page.locator(".jp-OutputArea-output .widget-play").count() == 1
        drawn = page.evaluate(DRAWN)
        np.testing.assert_allclose(drawn["marker"], oracle.path()[12], rtol=1e-5)
        np.testing.assert_allclose(
            np.array(drawn["z"]), safe_log(oracle.batch_landscape(12)), atol=1e-4
        )
        assert drawn["path"] == 13
        np.testing.assert_allclose(drawn["x"], oracle.landscape.w1, rtol=1e-6)

        # Keyboard on the slider: three steps to the right.
        page.locator(".jp-OutputArea-output .widget-slider .noUi-handle").first.click()
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            drawn = page.evaluate(DRAWN)
            if drawn["path"] == 16:
                break
            time.sleep(0.2)
        assert _step_readout(page) == 15
        np.testing.assert_allclose(drawn["marker"], oracle.path()[15], rtol=1e-5)
        np.testing.assert_allclose(
            np.array(drawn["z"]), safe_log(oracle.batch_landscape(15)), atol=1e-4
        )
        np.testing.assert_allclose(drawn["x"], oracle.landscape.w1, rtol=1e-6)

        # Play runs the steps on its own.
        page.locator(".jp-OutputArea-output .widget-play button").first.click()
        time.sleep(2.0)
        assert _step_readout(page) > 20
        page.screenshot(path=str(ROOT / "test-artifacts" / "explorer_lab_playing.png"))

        # Pause, then type a learning rate into the lr control: the run is recomputed.
        page.locator(".jp-OutputArea-output .widget-play button").first.click()
        time.sleep(0.5)
        step = _step_readout(page)
        readout = page.locator(".jp-OutputArea-output .widget-hslider .widget-readout").nth(1)
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type("0.2")
        page.keyboard.press("Enter")
        status = page.locator(".jp-OutputArea-output .widget-html-content").last
        deadline = time.monotonic() + 30
        while "recomputed" not in status.inner_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "recomputed" in status.inner_text()
        expected = sgdscape.train("relu-unit", oracle.data, init=(1.2, -2.3), lr=0.2).iterates
        time.sleep(1.0)
        drawn = page.evaluate(DRAWN)
        assert _step_readout(page) == step
        np.testing.assert_allclose(drawn["marker"], expected[step], rtol=1e-5)
        page.locator(".jp-OutputArea-output").first.screenshot(
            path=str(ROOT / "test-artifacts" / "explorer_lab_lr.png")
        )
