"""Headless Debian Chromium for browser tests, driven by Playwright (never `playwright install`).

Use ``chromium()`` as a context manager (the browser is always closed, even when a test
fails); a test module wraps it in a module-scoped fixture (launching costs ~1 s), and
``new_page(browser, width)`` for a page at a given viewport width. Tests that use it are
marked ``@pytest.mark.browser``; without /usr/bin/chromium they are skipped with the
reason, except under CI (``CI`` set), where a missing browser is a failure: there the
suite must really run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = Path(os.environ.get("NEWSLETTER_TEST_CHROMIUM", "/usr/bin/chromium"))
# As root Chromium needs --no-sandbox; the rest stop it from reaching the network on its own
# (component updates, sync, first-run tasks), which would hang or slow a test offline.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LAUNCH_TIMEOUT_MS = 30_000
ACTION_TIMEOUT_MS = 10_000  # any single wait in a test; the default (30 s) hides hangs


def _require_chromium() -> None:
    missing = None
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} not found (apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright Python package is not installed (pip install -e .[test])"
    if missing is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"browser tests must run in CI: {missing}", pytrace=False)
    pytest.skip(f"browser test skipped: {missing}")


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium; closed on exit whatever happened inside."""
    _require_chromium()
    from playwright.sync_api import expect, sync_playwright

    # expect() has its own 5 s default, separate from the context's: align it for slow CI.
    expect.set_options(timeout=ACTION_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            timeout=LAUNCH_TIMEOUT_MS,
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def new_page(browser: Browser, width: int, height: int = 800) -> Iterator[Page]:
    """A page in a fresh context at ``width`` CSS px (Playwright's viewport, not
    --window-size: headless Chromium has a 500 px minimum window)."""
    context: BrowserContext = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()
