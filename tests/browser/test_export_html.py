"""The exported HTML page in a real headless Chromium, with every network request blocked.

Checks that the page renders from ``file://`` without touching the network or raising a
JavaScript error, that the slider and the play button change the shown step, and that
what is drawn is the recorded run (``result.path()`` and the minibatch losses as oracles).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sgdscape
from chromium import (
    ARTIFACTS,
    CHROMIUM,
    LAUNCH_ARGS,
    needs_chromium,
    open_offline_page,
    open_player,
    shown_step,
)
from sgdscape import RunConfig

pytestmark = [
    pytest.mark.browser,
    needs_chromium,
]


@pytest.fixture(scope="module")
def result() -> sgdscape.RunResult:
    """30 steps of batch 2 on a 40x40 grid, so a minibatch landscape mixes two samples."""
    return sgdscape.run(RunConfig(grid=40, samples=60, batch_size=2))


@pytest.fixture(scope="module")
def page_file(result: sgdscape.RunResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sgdscape.surfaces.export import export_html

    return export_html(result, tmp_path_factory.mktemp("html") / "run.html", fps=20)


@pytest.fixture(scope="module")
def page(page_file: Path):
    """One Chromium tab on the page for the module; at the end, no error and no network."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        tab, errors, blocked, requested = open_player(browser, page_file, viewport=(1400, 820))
        yield tab
        assert errors == []
        assert blocked == []  # nothing even tried to leave the machine
        assert all(url.startswith("file://") for url in requested), requested
        browser.close()


shown = shown_step


def drawn_iterate(page) -> dict:
    """The left panel's iterate: its data and where its SVG marker sits, in data units."""
    return page.evaluate(
        """() => {
        const gd = document.getElementById('sgdscape-plot');
        const layout = gd._fullLayout;
        const traces = gd.querySelectorAll('.subplot.xy .scatterlayer .trace');
        const point = traces[traces.length - 1].querySelector('.point');
        const m = /translate\\(([-0-9.e]+),\\s*([-0-9.e]+)\\)/.exec(point.getAttribute('transform'));
        return {
            x: gd.data[3].x[0], y: gd.data[3].y[0],
            marker: [layout.xaxis.p2d(Number(m[1])), layout.yaxis.p2d(Number(m[2]))],
            pixel: layout.xaxis._length / (layout.xaxis.range[1] - layout.xaxis.range[0]),
            title: document.querySelector('.gtitle').textContent,
            label: document.getElementById('sgdscape-step-label').textContent,
            z: gd.data[0].z,
        };
    }"""
    )


def test_page_renders_and_the_slider_moves_the_iterate(page, result) -> None:
    plot = page.locator("#sgdscape-plot")
    assert plot.locator("svg.main-svg").count() >= 1
    assert plot.locator(".contourlayer path").count() > 10  # filled contours were drawn
    assert plot.locator(".colorbar").count() == 2
    assert page.locator(".xtitle").first.text_content() == result.landscape.labels[0]
    path = result.path()
    for step in (0, 17, 29):
        page.locator("#sgdscape-step").fill(str(step))
        shown(page, step)
        drawn = drawn_iterate(page)
        np.testing.assert_allclose([drawn["x"], drawn["y"]], path[step], rtol=1e-6)
        # The SVG marker sits on the recorded iterate (to within a pixel).
        np.testing.assert_allclose(drawn["marker"], path[step], atol=1.5 / drawn["pixel"])
        assert f"step {step}/{result.n_steps - 1}" in drawn["title"]
        assert drawn["label"] == f"step {step}"
        # The left landscape is the loss of this step's minibatch (log, within 16-bit rounding).
        expected = np.log(result.batch_landscape(step).astype(np.float64))
        z = np.array(drawn["z"], dtype=np.float64)
        keep = expected > np.log(1e-6)  # away from the clip at exact zeros
        np.testing.assert_allclose(z[keep], expected[keep], atol=np.ptp(z) / 60000 + 1e-5)
    page.screenshot(path=str(_artifact("export_html_step29.png")))


def test_play_advances_and_pause_stops(page, result) -> None:
    play = page.locator("#sgdscape-play")
    play.click()
    page.wait_for_function(  # playing at 20 steps per second
        "Number(document.getElementById('sgdscape-plot').dataset.step) >= 5", timeout=10_000
    )
    play.click()  # pause
    stopped = int(page.locator("#sgdscape-plot").get_attribute("data-step"))
    page.wait_for_timeout(400)
    assert int(page.locator("#sgdscape-plot").get_attribute("data-step")) == stopped
    assert "play" in play.text_content()
    play.click()
    shown(page, result.n_steps - 1)  # plays to the end and stops there
    page.wait_for_timeout(200)
    assert "play" in play.text_content()


def test_hover_shows_values(page) -> None:
    box = page.locator('rect.nsewdrag[data-subplot="xy"]').bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    label = page.locator(".hoverlayer .hovertext")
    label.first.wait_for(timeout=5_000)
    text = label.first.text_content()
    assert "w1 =" in text and "log minibatch loss =" in text and "loss =" in text
    page.screenshot(path=str(_artifact("export_html_hover.png")))


def _artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


def test_colour_range_and_arrows_follow_the_step(page, result) -> None:
    """At several steps the left panel's colour range spans that step's log minibatch loss
    (from the saved landscapes), and each arrow read from the figure points along the
    recorded -gradient (or is absent, with a legend that says so, when it is zero)."""
    from arrow_oracle import check_arrow

    window = (-3.0, 3.0, -3.0, 3.0)
    for step in (0, 11, 29, 3):
        page.locator("#sgdscape-step").fill(str(step))
        shown(page, step)
        drawn = page.evaluate(
            """() => { const gd = document.getElementById('sgdscape-plot');
            const t = gd._fullData[0], a = gd._fullData[1], f = gd._fullData[2];
            return {zmin: t.zmin, zmax: t.zmax, start: t.contours.start, end: t.contours.end,
              arrows: [[a.x, a.y, a.name], [f.x, f.y, f.name]]}; }"""
        )
        logs = np.log(np.maximum(result.batch_landscape(step).astype(np.float64), 1e-30))
        finite = logs[np.isfinite(logs)]
        tolerance = 1e-3 * np.ptp(finite)
        assert drawn["zmin"] == pytest.approx(finite.min(), abs=tolerance)
        assert drawn["start"] == pytest.approx(finite.min(), abs=tolerance)
        assert drawn["zmax"] == pytest.approx(finite.max(), abs=tolerance)
        assert drawn["end"] == pytest.approx(finite.max(), abs=tolerance)
        for (xs, ys, name), gradient in zip(
            drawn["arrows"],
            (result.trajectory.grads[step], result.trajectory.full_grads[step]),
            strict=True,
        ):
            segment = None if not xs else (np.array([xs[0], ys[0]]), np.array([xs[1], ys[1]]))
            check_arrow(segment, gradient, window, name)
    page.screenshot(path=str(_artifact("export_html_step3.png")))


def test_the_title_of_a_compared_slice_fits_the_page(page, tmp_path: Path) -> None:
    """A 4-parameter model compared over lr: the title's second line names the held
    parameters and the run shown, and every line stays inside the figure."""
    from sgdscape.surfaces.export import export_html

    result = sgdscape.run(RunConfig(model="two-relu-units", grid=20, compare=({"lr": 0.1},)))
    page_file = export_html(result, tmp_path / "two.html", steps=range(40, 45))
    tab, errors, _, _ = open_offline_page(
        page.context.browser,  # the module's browser, in a tab of its own
        page_file,
        "document.getElementById('sgdscape-plot').dataset.step === '40'",
        viewport=(1300, 820),
    )
    drawn = tab.evaluate(
        """() => {
            const figure = document.querySelector('#sgdscape-plot .main-svg')
                .getBoundingClientRect();
            const lines = [...document.querySelectorAll('.gtitle tspan.line')].map(line => {
                const box = line.getBoundingClientRect();
                return {text: line.textContent, left: box.left, right: box.right,
                        bottom: box.bottom};
            });
            const panels = [...document.querySelectorAll('.annotation-text')].map(
                text => text.getBoundingClientRect().top);
            return {left: figure.left, right: figure.right, lines, panels};
        }"""
    )
    tab.screenshot(path=str(_artifact("export_html_slice_title.png")))
    tab.context.close()
    assert errors == []
    iterate = result.trajectory.iterates[40]
    assert [line["text"] for line in drawn["lines"]] == [
        "two-relu-units · sgd lr=0.05 · batch 1 · step 40/99",
        f"slice at a2 = 0.5, w2 = 0.5 (iterate: a2 = {iterate[2]:.3g}, w2 = {iterate[3]:.3g})"
        " · minibatch and arrows of run 1 of 2 (lr=0.05)",
    ]
    for line in drawn["lines"]:
        assert drawn["left"] <= line["left"] and line["right"] <= drawn["right"], line
        assert line["bottom"] <= min(drawn["panels"]), (line, drawn["panels"])  # above both


def _title_boxes(tab) -> dict:
    """The figure's box, every line of its title and the tops of the panel titles, in CSS px."""
    return tab.evaluate(
        """() => {
            const figure = document.querySelector('#sgdscape-plot .main-svg')
                .getBoundingClientRect();
            const lines = [...document.querySelectorAll('.gtitle tspan.line, .gtitle')]
                .filter(node => node.tagName === 'tspan' || !node.querySelector('tspan'))
                .map(node => {
                    const box = node.getBoundingClientRect();
                    return {text: node.textContent, left: box.left, right: box.right,
                            bottom: box.bottom};
                });
            const panels = [...document.querySelectorAll('.annotation-text')].map(
                text => text.getBoundingClientRect().top);
            return {left: figure.left, right: figure.right, lines, panels};
        }"""
    )


def test_a_long_title_wraps_inside_a_narrow_player(page, tmp_path: Path) -> None:
    """The gallery embeds players 760 px wide: a compare preset's long title wraps onto
    lines that all stay inside the figure and above both panel titles, at every step shown."""
    from sgdscape.records.presets import get_preset
    from sgdscape.surfaces.export import export_html

    config = get_preset("noise-ball").config
    result = sgdscape.run(config.replace(grid=20, epochs=1))
    page_file = export_html(result, tmp_path / "narrow.html", steps=range(0, 30, 10), width=760)
    tab, errors, _, _ = open_player(page.context.browser, page_file, viewport=(800, 600))
    drawn = _title_boxes(tab)
    tab.screenshot(path=str(_artifact("export_html_narrow_title.png")))
    tab.context.close()
    assert errors == []
    text = " ".join(line["text"] for line in drawn["lines"])
    assert "schedule_options" in text  # the part that ran off the page before
    assert len(drawn["lines"]) >= 3
    for line in drawn["lines"]:
        assert drawn["left"] <= line["left"] and line["right"] <= drawn["right"], line
        assert line["bottom"] <= min(drawn["panels"]), (line, drawn["panels"])
