"""How the browser tests launch Debian's Chromium (``playwright install`` cannot download one)."""

import importlib.util
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs {CHROMIUM}")
#: the marks of a test of ``sgdscape serve``'s page in Chromium
APP_IN_BROWSER = [
    pytest.mark.browser,
    needs_chromium,
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None or importlib.util.find_spec("dash") is None,
        reason="needs playwright and dash",
    ),
]


def open_offline_page(
    browser,
    path: Path,
    ready: str,
    viewport: tuple[int, int] = (1300, 820),
    ignore: tuple[str, ...] = (),
):
    """A tab on the local page ``path`` once the JavaScript ``ready`` is true.

    Everything but ``file://`` is blocked. Returns ``(tab, errors, blocked, requested)``:
    page errors and console errors or warnings (except those containing an ``ignore``
    text), the blocked URLs, and every URL the page asked for.
    """
    width, height = viewport
    context = browser.new_context(viewport={"width": width, "height": height})
    blocked: list[str] = []
    requested: list[str] = []

    def route(route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", route)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    tab.on(
        "console",
        lambda message: (
            errors.append(f"console {message.type}: {message.text}")
            if message.type in ("error", "warning")
            and not any(text in message.text for text in ignore)
            else None
        ),
    )
    tab.on("request", lambda request: requested.append(request.url))
    tab.goto(path.as_uri())
    tab.wait_for_function(ready, timeout=30_000)
    return tab, errors, blocked, requested


#: true once the step player (views/assets/player.js) has drawn its first step
PLAYER_READY = "document.getElementById('sgdscape-plot').dataset.step === '0'"


def open_player(browser, path: Path, viewport: tuple[int, int] = (1300, 820)):
    """:func:`open_offline_page` on an exported step player, once it shows step 0."""
    return open_offline_page(browser, path, PLAYER_READY, viewport=viewport)


def shown_step(tab, step: int, timeout: float = 10_000) -> None:
    """Wait until the step player shows ``step``."""
    tab.wait_for_function(
        f"document.getElementById('sgdscape-plot').dataset.step === '{step}'", timeout=timeout
    )


def show_step(tab, step: int) -> None:
    """Move the step player's slider to ``step`` (as a user's drag does) and wait for it."""
    tab.evaluate(
        f"""() => {{ const s = document.getElementById('sgdscape-step');
        s.value = '{step}'; s.dispatchEvent(new Event('input')); }}"""
    )
    shown_step(tab, step)
