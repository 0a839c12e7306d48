"""The chains' slider page in a real headless Chromium, every network request blocked:
clicking the slider redraws that step's ellipse and density (the chains' own moments,
computed here with numpy, as the oracle)."""

from __future__ import annotations

import numpy as np
import pytest

from chromium import ARTIFACTS, needs_chromium, open_offline_page
from sgdscape.records.chain_presets import get_chain_preset, simulate_chains
from sgdscape.views.chains_figure import EMPIRICAL_LABEL, THEORY_LABEL
from sgdscape.views.chains_plotly import ELLIPSE_POINTS

pytestmark = [pytest.mark.browser, needs_chromium]

READY = "document.getElementById('sgdscape-plot').dataset.ready === '1'"


def test_clicking_the_slider_draws_that_steps_chains(browser, tmp_path) -> None:
    from sgdscape.surfaces.chains_export import export_chains_html

    setup = get_chain_preset("noise-ball-theory").setup.replace(
        n_chains=2000, steps=100, record_steps=(0, 2, 5, 10, 20, 50, 100), grid=25
    )
    run = simulate_chains(setup)
    page = export_chains_html(run.chains, run.landscape, run.data, tmp_path / "chains.html")
    tab, errors, blocked, _ = open_offline_page(browser, page, READY)
    rail = tab.locator("rect.slider-rail-touch-rect").bounding_box()
    seen = set()
    for fraction in (0.35, 0.7, 0.98):
        tab.mouse.click(rail["x"] + rail["width"] * fraction, rail["y"] + rail["height"] / 2)
        tab.wait_for_timeout(300)
        drawn = tab.evaluate(
            f"""() => {{
            const gd = document.getElementById('sgdscape-plot');
            const byName = name => gd.data.find(t => t.name === name);
            return {{
                active: gd._fullLayout.sliders[0].active,
                ellipse: [byName({EMPIRICAL_LABEL!r}).x, byName({EMPIRICAL_LABEL!r}).y],
                theory: [byName({THEORY_LABEL!r}).x, byName({THEORY_LABEL!r}).y],
                title: gd._fullLayout.annotations[0].text,
            }};
        }}"""
        )
        step = int(run.chains.record_steps[drawn["active"]])
        seen.add(step)
        assert drawn["title"] == f"step {step}"
        points = run.chains.at(step).astype(np.float64)
        ellipse = np.column_stack(drawn["ellipse"]).astype(np.float64)[:ELLIPSE_POINTS]
        centre = ellipse.mean(axis=0)
        covariance = (ellipse - centre).T @ (ellipse - centre) / ELLIPSE_POINTS / 2
        np.testing.assert_allclose(centre, points.mean(axis=0), atol=1e-5)
        np.testing.assert_allclose(covariance, np.cov(points.T), rtol=1e-3, atol=1e-6)
    assert len(seen) == 3 and max(seen) == 100
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "chains_html_last_step.png"))
    assert errors == [] and blocked == []
