"""Fixtures shared by the browser tests."""

import pytest

from chromium import CHROMIUM, LAUNCH_ARGS


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for a test module (skipped without Playwright)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield launched
        launched.close()
