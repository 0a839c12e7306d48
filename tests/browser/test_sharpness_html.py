"""The exported page of a run with curvature in headless Chromium: moving the slider moves
the sharpness marker to the λmax of the risk at that step (``sgdscape.curvature`` computed
independently as the oracle), read from the drawn SVG point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sgdscape
from chromium import ARTIFACTS, CHROMIUM, LAUNCH_ARGS, needs_chromium, open_player, show_step
from sgdscape import RunConfig
from sgdscape.records.run import with_curvature

pytestmark = [pytest.mark.browser, needs_chromium]

MARKER = """() => {
    const gd = document.getElementById('sgdscape-plot');
    const layout = gd._fullLayout;
    const index = window.sgdscape.frames.sharpness.trace;
    const traces = gd.querySelectorAll('.subplot.x3y3 .scatterlayer .trace');
    const point = traces[traces.length - 1].querySelector('.point');
    const m = /translate\\(([-0-9.e]+),\\s*([-0-9.e]+)\\)/.exec(point.getAttribute('transform'));
    return {x: gd.data[index].x[0], y: gd.data[index].y[0],
            drawn: [layout.xaxis3.p2d(Number(m[1])), layout.yaxis3.p2d(Number(m[2]))],
            log: layout.yaxis3.type === 'log'};
}"""


def test_the_slider_moves_the_sharpness_marker(tmp_path: Path) -> None:
    from sgdscape.surfaces.export import export_html

    plain = sgdscape.run(RunConfig(grid=24, samples=40, batch_size=2, epochs=1))
    oracle = sgdscape.curvature(plain).lambda_max
    page_file = export_html(with_curvature(plain), tmp_path / "run.html")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        tab, errors, blocked, _ = open_player(browser, page_file, viewport=(1300, 1000))
        for step in (0, 7, 15):
            show_step(tab, step)
            marker = tab.evaluate(MARKER)
            assert marker["x"] == step
            assert marker["y"] == pytest.approx(oracle[step], rel=1e-6)
            assert marker["drawn"][0] == pytest.approx(step, abs=0.05)
            assert marker["drawn"][1] == pytest.approx(oracle[step], rel=0.03)
            if step == 7:
                ARTIFACTS.mkdir(exist_ok=True)
                tab.screenshot(path=str(ARTIFACTS / "player-sharpness.png"), full_page=True)
        assert errors == [] and blocked == []
        browser.close()
    assert np.ptp(oracle[[0, 7, 15]]) > 0  # the three steps differ, so the marker moved
