"""The web app's sharpness panel in Chromium: ``?sharpness=1`` shows it below the four
panels, and stepping moves its marker to the risk's λmax at that step
(``sgdscape.curvature`` of the same run, computed here, is the oracle)."""

from __future__ import annotations

import pytest

import sgdscape
from chromium import APP_IN_BROWSER, ARTIFACTS, CHROMIUM, LAUNCH_ARGS
from serving import serving
from sgdscape.surfaces.app.state import parse_query

pytestmark = APP_IN_BROWSER

QUERY = "?n=40&batch=2&sharpness=1&step=5"


def test_the_panel_shows_and_its_marker_follows_the_step() -> None:
    from playwright.sync_api import sync_playwright

    state, notices = parse_query(QUERY)
    assert notices == []
    oracle = sgdscape.curvature(sgdscape.run(state.to_config())).lambda_max
    ARTIFACTS.mkdir(exist_ok=True)
    with (
        serving([], ARTIFACTS / "serve-sharpness.log", timeout=60) as url,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1300})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + QUERY)
        marker = (
            "() => { const gd = document.querySelector('#sharpness-graph .js-plotly-plot');"
            " return gd && gd.data && gd.data.length === 4 ? [gd.data[3].x[0], gd.data[3].y[0]]"
            " : null; }"
        )
        page.wait_for_function(f"({marker})() !== null && ({marker})()[0] === 5", timeout=60_000)
        assert page.is_visible("#sharpness-panel")
        _, y = page.evaluate(marker)
        assert y == pytest.approx(oracle[5], rel=1e-5)
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / "app-sharpness.png"), full_page=True)
        page.locator("#step-slider").click()  # focus the slider, then step with the keys
        page.keyboard.press("Home")
        page.wait_for_function(f"({marker})()[0] === 0")
        page.keyboard.press("ArrowRight")
        page.wait_for_function(f"({marker})()[0] === 1")
        assert page.evaluate(marker)[1] == pytest.approx(oracle[1], rel=1e-5)
        assert errors == []
        browser.close()
