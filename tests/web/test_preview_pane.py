"""Issue 17, item 8: the preview's plain-text pane shows the text as a mail client does, 78
columns and no wrapping of its own; its footer shows a real-looking unsubscribe link, not
`#unsubscribe` (made out for the chair's test address, as a test copy's: trying it in the
preview must never take a member off the list)."""

from __future__ import annotations

import queue
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from playwright.sync_api import Browser
from support.browser import new_page

from newsletter.common.config import Settings
from newsletter.members.unsubscribe import verify
from newsletter.web.preview import personalised, preview_member, render_path
from newsletter.web.server import serve

SLUG = "december-2023"


@pytest.fixture
def preview_settings(ready: Settings) -> Settings:
    return replace(ready, test_to="chair@wmhtc.co.uk")


@contextmanager
def served(settings: Settings) -> Iterator[str]:
    """serve() in a thread until the block ends; yields the page's URL."""
    url: queue.Queue[str] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(
        target=serve,
        args=(settings, SLUG),
        kwargs={"open_browser": False, "echo": lambda _: None, "ready": url.put, "stop": stop},
        daemon=True,
    )
    thread.start()
    try:
        yield url.get(timeout=30)
    finally:
        stop.set()
        thread.join(10)


def test_the_footer_link_is_real_looking_and_made_out_for_the_tester(
    preview_settings: Settings,
) -> None:
    rendered = render_path(preview_settings, preview_settings.issues_dir / f"{SLUG}.md")
    member = preview_member(preview_settings)
    assert member is not None and member["email"] == "priya.shah@nghealth.uk"
    for who in (member, None):  # personalised as the first member, or anonymous
        _, html, text = personalised(rendered, who, member["unsubscribe_url"])
        assert "#unsubscribe" not in html + text
        assert "https://wmhtc.co.uk/u?t=" in html
    link = member["unsubscribe_url"]
    token = link.split("?t=", 1)[1]
    # The tester's address, never the member's: clicking it unsubscribes nobody on the list.
    assert verify(token, preview_settings.secret) == "chair@wmhtc.co.uk"


def test_without_an_unsubscribe_setting_the_link_stays_a_placeholder(settings: Settings) -> None:
    member = preview_member(settings)
    assert member is not None and member["unsubscribe_url"] == "#unsubscribe"


def test_the_page_shows_the_text_unwrapped_in_78_columns(preview_settings: Settings) -> None:
    with served(preview_settings) as url:
        with urllib.request.urlopen(url, timeout=10) as response:
            page = response.read().decode("utf-8")
    assert "pre {" in page and "white-space: pre;" in page and "78ch" in page
    assert "pre-wrap; overflow-wrap: anywhere; background" not in page


@pytest.mark.browser
def test_in_chromium_no_text_line_is_wrapped_again(
    preview_settings: Settings, browser: Browser
) -> None:
    with served(preview_settings) as url:
        with new_page(browser, 1280, 900) as page:
            page.goto(url)
            pane = page.locator("pre.text")
            pane.wait_for()
            lines = pane.inner_text().split("\n")
            assert max(len(line) for line in lines) <= 78  # the part is wrapped at 78
            box = pane.evaluate(
                "p => ({client: p.clientWidth, scroll: p.scrollWidth,"
                " height: p.getBoundingClientRect().height,"
                " line: parseFloat(getComputedStyle(p).lineHeight)"
                " || parseFloat(getComputedStyle(p).fontSize) * 1.2})"
            )
            assert box["scroll"] <= box["client"]  # 78 columns fit: no sideways scroll
            rows = box["height"] / box["line"]
            assert rows < len(lines) + 3  # one row per line (+ padding): none wrapped
        with new_page(browser, 400, 800) as narrow:
            narrow.goto(url)
            narrow.locator("pre.text").wait_for()
            # On a narrow window the pane keeps its lines and scrolls inside its own box.
            inside = narrow.locator("pre.text").evaluate(
                "p => p.getBoundingClientRect().right <= window.innerWidth"
                " && p.scrollWidth > p.clientWidth"
            )
            assert inside
