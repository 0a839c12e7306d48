"""The documentation site, built from nothing and browsed in Chromium with the network blocked.

The site is built once for the module by ``scripts/build_docs.py`` (strict MkDocs) into a
temporary folder and opened from ``file://``, where everything but ``file://`` is aborted.
Checks that the search finds pages, that the API page shows ``landscape``'s signature
(``inspect.signature`` is the oracle) and that a gallery page's embedded player moves when
its slider is dragged with the mouse, to the iterate the preset's run recorded.
"""

from __future__ import annotations

import html
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import sgdscape
from chromium import ARTIFACTS, needs_chromium, open_offline_page
from repo_scripts import load_script

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    build_docs = load_script("scripts/build_docs.py")
    folder = tmp_path_factory.mktemp("docs")
    build_docs.build(folder / "site", stage=folder / "src")
    return folder / "site"


def open_page(browser, path: Path, ready: str = "document.readyState === 'complete'"):
    tab, errors, blocked, requested = open_offline_page(browser, path, ready, viewport=(1300, 900))
    return tab, errors, blocked, requested


def offline_and_clean(errors: list[str], blocked: list[str], requested: list[str]) -> None:
    assert errors == []
    assert blocked == []  # nothing even tried to leave the machine (fonts, CDNs, shims)
    assert all(url.startswith("file://") for url in requested), requested


def test_every_preset_has_a_gallery_page_with_its_figure_command_and_player(site: Path) -> None:
    from sgdscape.records.presets import PRESETS

    index = (site / "gallery.html").read_text()
    for name in PRESETS:
        page = (site / "gallery" / f"{name}.html").read_text()
        assert f'href="gallery/{name}.html"' in index
        assert f"sgdscape run --preset {name}" in html.unescape(re.sub(r"<[^>]+>", "", page))
        assert f'src="../images/gallery/{name}.png"' in page
        assert (site / "images" / "gallery" / f"{name}.png").stat().st_size > 10_000
        assert f'<iframe class="sgdscape-player" src="players/{name}.html"' in page
        player = (site / "gallery" / "players" / f"{name}.html").read_text()
        assert 'id="sgdscape-step"' in player
        assert len(player) < 4_000_000  # plotly.js inlined plus a few hundred KB of frames


def found(tab, page: Path) -> None:
    """Wait until a search result links to ``page``."""
    tab.wait_for_function(
        "uri => [...document.querySelectorAll('.md-search-result__item a')]"
        ".some(a => a.href.startsWith(uri + '?') || a.href.startsWith(uri + '#'))",
        arg=page.as_uri(),
        timeout=20_000,
    )


def test_search_finds_pages_offline(site: Path, browser) -> None:
    tab, errors, blocked, requested = open_page(browser, site / "index.html")
    tab.locator("input.md-search__input").click()
    tab.keyboard.type("landscape", delay=30)
    found(tab, site / "concepts.html")
    assert tab.locator(".md-search-result__item").count() > 3
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "docs-search.png"))

    tab.locator("input.md-search__input").fill("")
    tab.keyboard.type("slice_landscape", delay=30)
    found(tab, site / "api" / "index.html")
    offline_and_clean(errors, blocked, requested)


def test_the_api_page_shows_landscapes_signature(site: Path, browser) -> None:
    tab, errors, blocked, requested = open_page(browser, site / "api" / "index.html")
    heading = tab.locator('[id="sgdscape.core.landscape.landscape"]')
    assert heading.inner_text().strip().startswith("sgdscape.landscape")
    signature = tab.locator(
        '[id="sgdscape.core.landscape.landscape"] + div.doc-signature'
    ).inner_text()
    assert signature.lstrip().startswith("landscape(")
    names = list(inspect.signature(sgdscape.landscape).parameters)
    positions = [signature.index(f"{name}:") for name in names]
    assert positions == sorted(positions), signature  # every parameter, in order
    assert "grid: Grid | None = None" in signature
    assert tab.locator('[id="sgdscape.slice_landscape"]').count() == 1
    offline_and_clean(errors, blocked, requested)


def drawn(frame) -> dict:
    """The step shown by a player and its left panel's iterate: data and SVG marker position."""
    return frame.evaluate(
        """() => {
        const gd = document.getElementById('sgdscape-plot');
        const traces = gd.querySelectorAll('.subplot.xy .scatterlayer .trace');
        const point = traces[traces.length - 1].querySelector('.point');
        return {
            step: Number(gd.dataset.step),
            label: document.getElementById('sgdscape-step-label').textContent,
            x: gd.data[3].x[0], y: gd.data[3].y[0],
            transform: point.getAttribute('transform'),
        };
    }"""
    )


def test_a_gallery_players_slider_moves_the_iterate_when_dragged(site: Path, browser) -> None:
    from sgdscape.records.presets import PRESETS

    tab, errors, blocked, requested = open_page(browser, site / "gallery" / "seed.html")
    iframe = tab.locator("iframe.sgdscape-player")
    iframe.scroll_into_view_if_needed()
    frame = tab.frame_locator("iframe.sgdscape-player")
    content = iframe.element_handle().content_frame()
    content.wait_for_function(
        "document.getElementById('sgdscape-plot')?.dataset.step === '0'", timeout=30_000
    )
    before = drawn(content)
    assert before["label"] == "step 0"

    slider = frame.locator("#sgdscape-step").bounding_box()  # in the tab's coordinates
    y = slider["y"] + slider["height"] / 2
    tab.mouse.move(slider["x"] + 4, y)
    tab.mouse.down()
    tab.mouse.move(slider["x"] + slider["width"] * 0.7, y, steps=8)
    tab.mouse.up()
    content.wait_for_function(
        "Number(document.getElementById('sgdscape-plot').dataset.step) > 20", timeout=15_000
    )
    tab.wait_for_timeout(300)  # let a coalesced redraw finish
    after = drawn(content)
    assert after["label"] == f"step {after['step']}"
    assert after["transform"] != before["transform"]  # the marker moved on screen

    run = sgdscape.run(PRESETS["seed"].config)  # the recorded run is the oracle
    iterates = run.trajectory.iterates
    np.testing.assert_allclose([before["x"], before["y"]], iterates[0], atol=1e-4)
    np.testing.assert_allclose([after["x"], after["y"]], iterates[after["step"]], atol=1e-4)
    assert np.linalg.norm(iterates[after["step"]] - iterates[0]) > 0.1
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "docs-gallery-seed.png"), full_page=True)
    offline_and_clean(errors, blocked, requested)
