"""The web app in a real Chromium (Playwright): `sgdscape serve` in a subprocess on 127.0.0.1.

Oracles are independent of the page: iterates come from ``sgdscape.run`` in this process,
clicked coordinates from the plot's own axis geometry. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from chromium import APP_IN_BROWSER, ARTIFACTS
from serving import serving
from sgdscape.views.style import PATH_COLOUR, TRUE_GRADIENT_COLOUR

ROOT = Path(__file__).resolve().parents[2]
GRID_CELL = 6.0 / 59  # the app's default 60x60 grid on [-3, 3]

pytestmark = APP_IN_BROWSER


@pytest.fixture(scope="module")
def server():
    """`sgdscape serve` on a free loopback port, for this module."""
    ARTIFACTS.mkdir(exist_ok=True)
    with serving([], ARTIFACTS / "serve.log", timeout=60) as url:
        yield url


class Page:
    """A page of the app with its console errors and helpers to read the Plotly figures."""

    def __init__(self, browser, url: str, width: int = 1280, height: int = 720):
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.updates = 0
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", self._count)
        self.page.goto(url)
        self.wait_loaded()

    def _count(self, request) -> None:
        if "_dash-update-component" in request.url:
            self.updates += 1

    def wait_loaded(self) -> None:
        self.page.wait_for_function(
            "() => ['batch', 'risk', 'loss', 'noise'].every(n => {"
            "  const gd = document.querySelector('#' + n + '-graph .js-plotly-plot');"
            "  const drag = document.querySelector('#' + n + '-graph .nsewdrag');"
            "  return gd && gd.data && gd.data.length > 0 && drag"
            "    && drag.getBoundingClientRect().height > 150; })",
            timeout=30_000,
        )

    def traces(self, graph: str) -> list[dict]:
        return self.page.evaluate(
            "g => document.querySelector('#' + g + '-graph .js-plotly-plot').data.map("
            "t => ({type: t.type, name: t.name, x: t.x, y: t.y, z: t.z}))",
            graph,
        )

    def layout(self, graph: str) -> dict:
        return self.page.evaluate(
            "g => { const l = document.querySelector('#' + g + '-graph .js-plotly-plot')._fullLayout;"
            " return {x: l.xaxis.title.text, y: l.yaxis.title.text,"
            " xr: l.xaxis.range, yr: l.yaxis.range, xo: l.xaxis._offset, xl: l.xaxis._length,"
            " yo: l.yaxis._offset, yl: l.yaxis._length}; }",
            graph,
        )

    def iterate(self) -> tuple[float, float]:
        marker = self.traces("batch")[1]
        return marker["x"][0], marker["y"][0]

    def step(self) -> int:
        text = self.page.inner_text("#step-label")
        return int(re.match(r"step (\d+)", text).group(1))

    def wait_step(self, k: int) -> None:
        self.page.wait_for_function(
            "k => document.querySelector('#step-label').innerText.startsWith('step ' + k + ' ')",
            arg=k,
        )

    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlparse(self.page.url).query)

    def set_number(self, control: str, value: str) -> None:
        box = self.page.locator(f"#ctl-{control}")
        box.fill(value)
        box.press("Enter")

    def path(self, trace: int = 1) -> np.ndarray:
        data = self.traces("risk")[trace]
        return np.c_[np.asarray(data["x"], float), np.asarray(data["y"], float)]

    def wait_path(self, expected: np.ndarray, trace: int = 1, timeout: float = 20.0) -> None:
        """Wait until the risk panel's trace ``trace`` shows ``expected`` (then assert it)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            shown = self.path(trace)
            if shown.shape == expected.shape and np.allclose(shown, expected, atol=1e-5):
                return
            self.page.wait_for_timeout(200)
        np.testing.assert_allclose(self.path(trace), expected, atol=1e-5)

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.evaluate("() => { document.activeElement.blur(); window.scrollTo(0, 0); }")
        self.page.wait_for_timeout(300)
        self.page.screenshot(path=str(ARTIFACTS / name))

    def close(self) -> None:
        self.context.close()


def oracle_path(**changes) -> np.ndarray:
    """Iterates from sgdscape.records.run itself (the app's default is the seed's run on a 60 grid)."""
    import sgdscape

    return sgdscape.run(sgdscape.RunConfig(grid=30, **changes)).path()


def test_page_loads_with_both_landscapes(server, browser):
    page = Page(browser, server)
    batch, risk = page.traces("batch"), page.traces("risk")
    assert batch[0]["type"] == "contour" and risk[0]["type"] == "contour"
    assert np.asarray(risk[0]["z"]).shape == (60, 60)
    assert np.asarray(batch[0]["z"]).shape == (60, 60)
    for graph in ("batch", "risk"):
        assert (page.layout(graph)["x"], page.layout(graph)["y"]) == ("w1", "w2")
    assert page.page.locator("#risk-graph .colorbar").count() == 1
    assert page.page.locator("#batch-graph .colorbar").count() == 1
    assert page.layout("loss")["x"] == "step"
    assert "100 steps" in page.page.inner_text("#run-info")
    page.shot("app_1280x720.png")
    assert page.errors == []
    page.close()

    phone = Page(browser, server, width=390, height=844)
    width = phone.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    phone.page.locator("#risk-graph").scroll_into_view_if_needed()
    phone.page.screenshot(path=str(ARTIFACTS / "app_phone_390.png"), full_page=True)
    assert phone.errors == []
    phone.close()


def test_slider_moves_iterate_marker_without_server_round_trip(server, browser):
    path = oracle_path()
    page = Page(browser, server)
    np.testing.assert_allclose(page.iterate(), path[0], atol=1e-5)
    before = page.updates
    page.page.locator("header").click()  # focus the page, not an input
    for _ in range(3):
        page.page.keyboard.press("ArrowRight")
    page.wait_step(3)
    np.testing.assert_allclose(page.iterate(), path[3], atol=1e-5)
    page.page.keyboard.press("Shift+ArrowRight")
    page.wait_step(13)
    np.testing.assert_allclose(page.iterate(), path[13], atol=1e-5)
    # drag the slider's handle to about 60% of the track
    track = page.page.locator("#step-slider").bounding_box()
    page.page.mouse.click(track["x"] + 0.6 * track["width"], track["y"] + track["height"] / 2)
    page.page.wait_for_function(
        "() => !document.querySelector('#step-label').innerText.startsWith('step 13 ')"
    )
    k = page.step()
    assert 40 <= k <= 80
    np.testing.assert_allclose(page.iterate(), path[k], atol=1e-5)
    risk = page.traces("risk")
    np.testing.assert_allclose(np.c_[risk[2]["x"], risk[2]["y"]], path[: k + 1], atol=1e-5)
    page.page.click("#play")
    page.page.wait_for_function(
        "k => parseInt(document.querySelector('#step-label').innerText.slice(5)) >= k + 3", arg=k
    )
    page.page.click("#play")  # pause
    assert page.page.inner_text("#play").endswith("play")
    k = page.step()
    np.testing.assert_allclose(page.iterate(), path[k], atol=1e-5)
    assert page.updates == before, "scrubbing and playing must not call the server"
    assert page.query().get("step") == [str(k)]
    page.shot("app_slider.png")
    assert page.errors == []
    page.close()


def test_click_on_risk_landscape_starts_a_trajectory_there(server, browser):
    page = Page(browser, server)
    page.page.wait_for_timeout(500)  # let the responsive graph settle its size
    geometry = page.layout("risk")
    area = page.page.locator("#risk-graph .nsewdrag").bounding_box()  # the plot area
    fx, fy = 0.3, 0.25  # a point in the plot area, as fractions of its width and height
    px, py = area["x"] + fx * area["width"], area["y"] + fy * area["height"]
    clicked = (
        geometry["xr"][0] + fx * (geometry["xr"][1] - geometry["xr"][0]),
        geometry["yr"][1] - fy * (geometry["yr"][1] - geometry["yr"][0]),
    )
    page.page.mouse.move(px, py)  # Plotly reports a click at the point it hovers
    page.page.wait_for_timeout(300)
    page.page.mouse.click(px, py)
    page.page.wait_for_function("() => window.location.search.includes('init=')", timeout=20_000)
    page.page.wait_for_function(
        "() => { const d = document.querySelector('#risk-graph .js-plotly-plot').data;"
        " return Math.abs(d[1].x[0] - 1.2) > 1e-6; }"
    )
    first = page.traces("risk")[1]
    start = (first["x"][0], first["y"][0])
    assert abs(start[0] - clicked[0]) <= GRID_CELL and abs(start[1] - clicked[1]) <= GRID_CELL
    init = tuple(float(v) for v in page.query()["init"][0].split(","))
    np.testing.assert_allclose(np.c_[first["x"], first["y"]], oracle_path(init=init), atol=1e-5)
    page.shot("app_click.png")
    assert page.errors == []
    page.close()


def test_compare_mode_overlays_runs_with_a_legend(server, browser):
    page = Page(browser, server)
    page.page.click("#pin")
    page.page.wait_for_function("() => window.location.search.includes('pin=')")
    page.set_number("lr", "0.1")
    page.page.wait_for_function("() => window.location.search.includes('lr=0.1')")
    page.page.wait_for_function(
        "() => document.querySelector('#risk-graph .js-plotly-plot').data"
        ".some(t => (t.name || '').startsWith('run 2'))"
    )
    names = [t["name"] for t in page.traces("risk")]
    runs = [n for n in names if n and n.startswith("run ")]
    assert len(runs) >= 3  # run 1 path, run 2 path, run 2 marker
    assert page.page.locator("#risk-graph .legend .traces").count() >= 2
    page.wait_path(oracle_path(lr=0.1))
    page.wait_path(oracle_path(), trace=4)
    page.shot("app_compare.png")
    assert page.errors == []
    page.close()


def test_url_round_trip_restores_the_view(server, browser):
    page = Page(browser, server + "?opt=adam&lr=0.02&batch=5&sampling=shuffle&step=7")
    page.wait_step(7)
    assert page.page.input_value("#ctl-lr") == "0.02"
    assert page.page.input_value("#ctl-batch") == "5"
    page.set_number("seed", "3")
    page.page.wait_for_function("() => window.location.search.includes('seed=3')")
    expected = oracle_path(optimizer="adam", lr=0.02, batch_size=5, sampling="shuffle", seed=3)
    page.wait_path(expected)
    link = page.page.url
    other = Page(browser, link)
    other.wait_step(7)
    other.wait_path(expected)
    assert other.page.input_value("#ctl-seed") == "3"
    assert "adam" in other.page.inner_text("#field-optimizer")
    assert page.errors == [] and other.errors == []
    page.close()
    other.close()


def test_bad_link_and_bad_input_show_a_notice(server, browser):
    page = Page(browser, server + "?lr=abc&foo=1&batch=500")
    notice = page.page.inner_text("#notice")
    assert "lr" in notice and "foo" in notice and "defaults" in notice
    assert "100 steps" in page.page.inner_text("#run-info")
    page.page.wait_for_function("() => window.location.search === ''")  # the link is cleaned
    page.set_number("batch", "1000")
    page.page.wait_for_selector(".notice.error")
    assert "batch" in page.page.inner_text("#notice")
    page.shot("app_error.png")
    page.close()


def test_tabs_do_not_see_each_others_runs(server, browser):
    first, second = Page(browser, server), Page(browser, server)
    second.set_number("lr", "0.2")
    second.page.wait_for_function("() => window.location.search.includes('lr=0.2')")
    first.set_number("seed", "5")
    first.page.wait_for_function("() => window.location.search.includes('seed=5')")
    assert "lr" not in first.query()
    assert first.page.input_value("#ctl-lr") == "0.05"
    first.wait_path(oracle_path(seed=5))
    second.wait_path(oracle_path(lr=0.2))
    first.close()
    second.close()


@pytest.mark.slow
def test_load_eight_contexts(server):
    """benchmarks/load_app.py, shortened: 8 contexts change controls for 15 s, no errors."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "load_app.py"),
            "--url",
            server,
            "--contexts",
            "8",
            "--duration",
            "15",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    changes = int(re.search(r"(\d+) control changes, 0 errors", done.stdout).group(1))
    assert changes >= 8


# --------------------------------------------------------------------------- pictures (#13)


def _seed_samples() -> tuple[np.ndarray, np.ndarray]:
    import sgdscape

    data = sgdscape.ground_truth(seed=0)
    return data.x.reshape(-1).double().numpy(), data.y.reshape(-1).double().numpy()


def _go_to_step(page: Page, k: int) -> None:
    page.page.evaluate("k => window.dash_clientside.set_props('step-slider', {value: k})", k)
    page.wait_step(k)


def _left_panel(page: Page) -> dict:
    """What the browser drew on the minibatch panel: the contour's grid and colour range,
    the arrow annotations and the arrows' legend names."""
    return page.page.evaluate(
        "() => { const gd = document.querySelector('#batch-graph .js-plotly-plot');"
        " const t = gd._fullData[0];"
        " return {x: t.x, y: t.y, zmin: t.zmin, zmax: t.zmax, start: t.contours.start,"
        "  end: t.contours.end, names: [gd._fullData[2].name, gd._fullData[3].name],"
        "  notes: (gd.layout.annotations || []).map(a => ({colour: a.arrowcolor,"
        "   tail: [a.ax, a.ay], tip: [a.x, a.y]})),"
        "  xr: gd._fullLayout.xaxis.range, yr: gd._fullLayout.yaxis.range}; }"
    )


def test_minibatch_colour_range_follows_the_slider(server, browser):
    """At several slider positions the left panel's colour range and contour levels span
    that step's log minibatch loss, computed here by hand from the seed's data."""
    xs, ys = _seed_samples()
    page = Page(browser, server)
    for k in (0, 25, 60, 99, 10):
        _go_to_step(page, k)
        drawn = _left_panel(page)
        w1, w2 = np.meshgrid(np.asarray(drawn["x"], float), np.asarray(drawn["y"], float))
        loss = (w1 * np.maximum(w2 * xs[k], 0.0) - ys[k]) ** 2  # batch 1, in order
        logs = np.log(np.maximum(loss, loss[loss > 0].min()))
        tolerance = 1e-3 * np.ptp(logs)
        for key, expected in (("zmin", logs.min()), ("start", logs.min())):
            assert drawn[key] == pytest.approx(expected, abs=tolerance), (k, key)
        for key, expected in (("zmax", logs.max()), ("end", logs.max())):
            assert drawn[key] == pytest.approx(expected, abs=tolerance), (k, key)
        if k == 99:
            page.shot("app_step99_scrubbed.png")
    assert page.errors == []
    page.close()


def test_app_arrows_point_along_minus_the_gradient_and_stay_in_the_panel(server, browser):
    import sgdscape
    from arrow_oracle import check_arrow

    for query, lr in (("", 0.05), ("?lr=0.2", 0.2)):
        trajectory = sgdscape.run(sgdscape.RunConfig(grid=30, lr=lr)).trajectory
        page = Page(browser, server + query)
        for k in (0, 1, 25, 50, 74, 99):
            _go_to_step(page, k)
            drawn = _left_panel(page)
            window = (*drawn["xr"], *drawn["yr"])
            by_colour = {
                n["colour"]: (np.array(n["tail"]), np.array(n["tip"])) for n in drawn["notes"]
            }
            check_arrow(by_colour.get(PATH_COLOUR), trajectory.grads[k], window, drawn["names"][0])
            check_arrow(
                by_colour.get(TRUE_GRADIENT_COLOUR),
                trajectory.full_grads[k],
                window,
                drawn["names"][1],
            )
        if lr == 0.2:
            page.shot("app_lr02_arrows.png")
        assert page.errors == []
        page.close()


def test_standalone_html_download_is_a_self_contained_page(server, browser, tmp_path):
    page = Page(browser, server)
    with page.page.expect_download(timeout=60_000) as download:
        page.page.click("#dl-html")
    saved = tmp_path / "run.html"
    download.value.save_as(saved)
    text = saved.read_text(encoding="utf-8")
    assert text.lstrip().lower().startswith("<!doctype html>") and text.rstrip().endswith("</html>")
    assert not re.search(r"""<(script|link)[^>]+(src|href)=["']?(https?:)?//""", text)
    assert page.page.locator("#notice .error").count() == 0
    page.close()

    from chromium import open_offline_page

    tab, errors, blocked, _ = open_offline_page(
        browser, saved, "document.getElementById('sgdscape-plot').dataset.step === '0'"
    )
    assert tab.evaluate("document.querySelector('#sgdscape-plot').data.length") == 7
    assert errors == [] and blocked == []
    tab.context.close()


def test_a_failed_download_says_so_on_the_page(browser, monkeypatch):
    """A download that fails on the server shows a notice on the page instead of a silent
    HTTP 500. Bad values no longer fail (they fall back), so the failure is injected: the app
    runs in this process, on a thread, with its file builder replaced by one that raises."""
    import threading

    from werkzeug.serving import make_server

    from sgdscape.surfaces.app import server as app_server

    def failing(*_args, **_kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(app_server, "download_file", failing)
    http = make_server("127.0.0.1", 0, app_server.create_app().server, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        page = Page(browser, f"http://127.0.0.1:{http.server_port}/")
        page.page.click("#dl-npz")
        page.page.wait_for_selector("#notice .error", timeout=30_000)
        assert "download failed" in page.page.inner_text("#notice")
        page.close()
    finally:
        http.shutdown()
        thread.join(timeout=10)


def test_pause_label_renders_and_the_mode_bar_leaves_the_titles_free(server, browser):
    page = Page(browser, server)
    page.page.click("#play")
    label = page.page.inner_text("#play")
    page.page.click("#play")
    assert label.endswith("pause") and "\u23f8" not in label  # no glyph Debian's fonts lack
    for graph in ("batch", "risk", "loss", "noise"):
        page.page.hover(f"#{graph}-graph .nsewdrag")
        page.page.wait_for_selector(f"#{graph}-graph .modebar", state="visible")
        bar = page.page.locator(f"#{graph}-graph .modebar").bounding_box()
        title = page.page.locator(f"#{graph}-graph .gtitle").bounding_box()
        apart = (
            bar["y"] >= title["y"] + title["height"]
            or title["y"] >= bar["y"] + bar["height"]
            or bar["x"] >= title["x"] + title["width"]
            or title["x"] >= bar["x"] + bar["width"]
        )
        assert apart, f"the mode bar covers the {graph} panel's title"
    page.shot("app_hover_modebar.png")
    page.close()
