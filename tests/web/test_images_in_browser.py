"""Local pictures in real headless Chromium: the live preview (which also reloads when a
picture changes), the web archive page and the hosted email each show every picture
(naturalWidth > 0) and none overflows a 320 px phone screen."""

from __future__ import annotations

import queue
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.browser import new_page
from support.helpers import web_server
from support.images_data import detailed_photo, phone_photo, transparent_logo

from newsletter.common.config import Settings
from newsletter.sending import campaign as campaign_mod
from newsletter.web.archive import build_archive
from newsletter.web.server import serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Frame, Page

pytestmark = pytest.mark.browser

FRONT = "---\ntitle: Pictures\nsubject: Pictures from the social\npreheader: A month in pictures from our members, with the December social.\ndate: 2030-02-01\n---\n"
SLUG = "pictures"
TIMEOUT = 10.0


@pytest.fixture
def pictured_settings(project: Path, settings: Settings) -> Settings:
    folder = project / "issues" / "images"
    folder.mkdir()
    phone_photo(folder / "social.jpg")
    transparent_logo(folder / "logo.png")
    (project / "issues" / f"{SLUG}.md").write_text(
        FRONT + "## The social\n\nWe met.\n\n![Members at our December social](images/social.jpg)"
        "\n\n![The cluster's logo](images/logo.png)\n",
        encoding="utf-8",
    )
    return replace(settings, unsubscribe_url="https://example.org/u?e={email}", secret="k")


SHOWN = """() => Array.from(document.images).map(i => [i.currentSrc, i.complete, i.naturalWidth])"""


def assert_pictures_shown(target: Page | Frame, count: int) -> None:
    target.wait_for_function(
        "n => document.images.length >= n && Array.from(document.images)"
        ".every(i => i.complete && i.naturalWidth > 0)",
        arg=count,
        timeout=TIMEOUT * 1000,
    )
    shown = target.evaluate(SHOWN)
    assert len(shown) >= count and all(width > 0 for _, _, width in shown), shown


def assert_fits(page: Page) -> None:
    scroll_width, inner_width = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width, f"overflows: {scroll_width} > {inner_width}"
    widest = page.evaluate(
        "Math.max(...Array.from(document.images).map(i => i.getBoundingClientRect().right))"
    )
    assert widest <= inner_width


@contextmanager
def preview_running(settings: Settings) -> Iterator[str]:
    ready: queue.Queue[str] = queue.Queue()
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            serve(
                settings, SLUG, open_browser=False, echo=lambda _: None, ready=ready.put, stop=stop
            )
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)
            ready.put("")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        url = ready.get(timeout=TIMEOUT * 3)
        assert url and not errors, errors
        yield url
    finally:
        stop.set()
        thread.join(TIMEOUT)


def fetch(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        return response.status, response.headers["Content-Type"], response.read()


def test_preview_shows_pictures_and_reloads_when_one_changes(
    browser: Browser, pictured_settings: Settings
) -> None:
    with preview_running(pictured_settings) as url:
        with new_page(browser, 1200) as page:
            page.goto(url)
            for frame in page.frames[1:]:  # the desktop and mobile frames
                assert_pictures_shown(frame, 2)
        with new_page(browser, 320) as page:
            page.goto(url + "email.html")
            assert_pictures_shown(page, 2)
            assert_fits(page)
        version = fetch(url + "version")[2]
        html = fetch(url + "email.html")[2].decode()
        old = html.split('src="assets/', 1)[1].split('"', 1)[0]
        status, kind, _ = fetch(url + "assets/" + old)
        assert status == 200 and kind in ("image/jpeg", "image/png")
        # Replace the photo: the next poll re-renders, under a new name. The server looks
        # at the files on every request (no timer), and the new photo's size differs, so
        # the very next /version already differs: nothing to wait for.
        photo = pictured_settings.issues_dir / "images" / "social.jpg"
        old_size = photo.stat().st_size
        detailed_photo(photo, 900, 600)
        assert photo.stat().st_size != old_size
        assert fetch(url + "version")[2] != version, "the preview did not notice the new picture"
        fresh = fetch(url + "email.html")[2].decode()
        assert old not in fresh and 'height="363"' in fresh  # 900 × 600 at the column's 544 px


def test_archive_page_shows_pictures_at_320px(
    browser: Browser, pictured_settings: Settings, tmp_path: Path
) -> None:
    webroot = tmp_path / "web"
    with web_server(webroot) as base:
        build_archive(replace(pictured_settings, archive_url=base), webroot / "news")
        with new_page(browser, 320) as page:
            page.goto(base + f"{SLUG}.html")
            assert_pictures_shown(page, 2)
            assert_fits(page)


def test_hosted_email_shows_pictures_at_320px(
    browser: Browser, pictured_settings: Settings, tmp_path: Path
) -> None:
    webroot = tmp_path / "web"
    with web_server(webroot) as base:
        hosted = replace(pictured_settings, archive_url=base)
        build_archive(hosted, webroot / "news")
        camp = campaign_mod.prepare(hosted, SLUG)
        assert camp.offline_images() == []
        _, html, _ = camp.rendered.sample()
        assert html.count(f'src="{base}assets/') == 2
        for width in (320, 800):
            with new_page(browser, width) as page:
                page.set_content(html, wait_until="load")
                assert_pictures_shown(page, 2)
                assert_fits(page)
