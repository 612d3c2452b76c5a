"""The web archive: a page per issue without member data, an index, and a valid Atom feed."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from pathlib import Path

import feedparser
import pytest
from browser import chromium, new_page

from newsletter.common.config import Settings
from newsletter.content.skeleton import create_issue
from newsletter.web.archive import build_archive


@pytest.fixture
def site(project: Path, settings: Settings) -> Path:
    january = create_issue(
        settings.issues_dir, settings.templates_dir, "january-2024", date=dt.date(2024, 1, 18)
    )
    january.write_text(january.read_text("utf-8").replace("draft: true\n", ""), "utf-8")
    # `newsletter new` marks an issue as a draft: it stays out of the archive.
    create_issue(settings.issues_dir, settings.templates_dir, "february-2024")
    hidden = settings.issues_dir / "draft.md"
    hidden.write_text(
        "---\ntitle: Draft\nsubject: D\npreheader: P\ndate: 2024-05-01\narchive: false\n---\nx\n",
        encoding="utf-8",
    )
    settings = replace(settings, archive_url="https://news.wmhtc.example.org/archive/")
    build_archive(settings, project / "site")
    return project / "site"


def test_pages_index_and_feed(site: Path) -> None:
    assert sorted(p.name for p in site.iterdir() if not p.name.startswith(".")) == [
        "december-2023.html", "feed.xml", "index.html", "january-2024.html",
    ]  # fmt: skip
    page = (site / "december-2023.html").read_text(encoding="utf-8")
    assert "Ahmar, our lead on Events and Projects" in page
    assert (
        "Dear " not in page
        and "Unsubscribe" not in page
        and not re.search(r"zz[0-9a-f]{12}s\d+zz", page)
    )
    assert "This is the web edition" in page
    index = (site / "index.html").read_text(encoding="utf-8")
    assert index.index("january-2024.html") < index.index("december-2023.html")
    assert "Draft" not in index
    feed = feedparser.parse(str(site / "feed.xml"))
    assert not feed.bozo, feed.bozo_exception
    assert feed.feed.title == "Cluster News"
    assert [e.link for e in feed.entries] == [
        "https://news.wmhtc.example.org/archive/january-2024.html",
        "https://news.wmhtc.example.org/archive/december-2023.html",
    ]
    assert feed.entries[1].title == "Cluster News – December 2023"
    assert feed.entries[1].summary.startswith("Skills in the West Midlands")


def test_email_links_to_its_archive_page(project: Path, settings: Settings) -> None:
    from newsletter.web.preview import render_path

    rendered = render_path(
        replace(settings, archive_url="https://news.example.net/a"),
        settings.issues_dir / "december-2023.md",
    )
    _, html, text = rendered.sample()
    assert 'href="https://news.example.net/a/december-2023.html"' in html
    assert "https://news.example.net/a/december-2023.html" in text


@pytest.mark.browser
@pytest.mark.parametrize("width", [320, 375, 800])
def test_archive_pages_fit_the_screen(site: Path, width: int) -> None:
    with chromium() as browser, new_page(browser, width) as page:
        for name in ("index.html", "december-2023.html"):
            page.goto((site / name).as_uri())
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, (name, width, overflow)
            assert page.evaluate("document.documentElement.lang")
