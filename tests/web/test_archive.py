"""The web archive: a page per issue without member data, an index, and a valid Atom feed."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import feedparser
import pytest
from support.browser import new_page
from support.helpers import (
    ARCHIVE_URL,
    READY_ENV,
    cli_env,
    html_and_text,
    one_line,
    run_cli,
    write_dated_issue,
    write_issue,
    write_three_members,
)

from newsletter.common.config import Settings
from newsletter.content.skeleton import create_issue
from newsletter.web.archive import build_archive

if TYPE_CHECKING:
    from playwright.sync_api import Browser

SLUG = "december-2023"


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
def test_archive_pages_fit_the_screen(browser: Browser, site: Path, width: int) -> None:
    with new_page(browser, width) as page:
        for name in ("index.html", "december-2023.html"):
            page.goto((site / name).as_uri())
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, (name, width, overflow)
            assert page.evaluate("document.documentElement.lang")


# ---- a year of issues: archive, feed, status --json ---------------------------------------

MONTHS = "january february march april may june july august september october november december"


def test_a_year_of_issues_every_page_and_report_tells_the_truth(
    project: Path, plain_smtp_server
) -> None:
    """Twelve issues: sent, test-sent, dry-run only, a draft, one 'archive: false', one
    future-dated, one titled with <&"; then list, status --json, archive and its feed."""
    import json
    from xml.etree import ElementTree as ET

    for path in (project / "issues").glob("*.md"):
        path.unlink()
    write_three_members(project)
    for number, month in enumerate(MONTHS.split(), start=1):
        extra = {"april": "archive: false\n", "november": "draft: true\n"}.get(month, "")
        write_dated_issue(project, month, f"2026-{number:02d}-10", extra)
    december = project / "issues" / "december.md"
    december.write_text(  # dated after every other, never sent: in the archive all the same
        december.read_text().replace("title: Cluster News december", 'title: R&D <Week> "Q4"'),
        encoding="utf-8",
    )
    env = cli_env(plain_smtp_server, NEWSLETTER_ARCHIVE_URL=ARCHIVE_URL)
    for month in ("january", "february", "march", "april"):
        assert run_cli(["send", month, "--yes"], env=env).returncode == 0
    assert run_cli(["send", "may", "--test"], env=env).returncode == 0
    assert run_cli(["send", "june", "--dry-run"], env=env).returncode == 0
    assert run_cli(["send", "july", "--yes", "--limit", "1"], env=env).returncode == 0
    assert plain_smtp_server.handler.count() == 4 * 3 + 1 + 1

    listed = run_cli(["list"], env=env).stdout.splitlines()[::2]
    assert [line.split()[1] for line in listed] == list(reversed(MONTHS.split()))
    states = {line.split()[1]: line.split(None, 2)[2] for line in listed}
    assert states["january"] == "sent 3 of 3" and states["april"] == "sent 3 of 3"
    assert states["may"] == "test-sent" and states["june"] == "never sent"
    assert states["july"] == "sent 1 of 3; 2 pending"
    assert states["november"] == "never sent (draft)"

    keys = None
    for month in ("january", "may", "june", "july"):
        report = json.loads(run_cli(["status", month, "--json"], env=env).stdout)
        keys = keys or set(report)
        assert set(report) == keys  # the same keys whatever happened
        assert set(report["feedback"]) == {"hard", "soft", "complaint", "unsubscribe"}
        assert report["members"] == 3
    assert report["pending"] == 2 and report["counts"]["sent"] == 1

    assert run_cli(["archive", "--out", "site"], env=env).returncode == 0
    site = project / "site"
    published = [m for m in MONTHS.split() if m not in ("april", "november")]
    assert sorted(p.stem for p in site.glob("*.html")) == sorted([*published, "index"])
    index = (site / "index.html").read_text(encoding="utf-8")
    assert (
        index.index('"december.html"')
        < index.index('"october.html"')
        < index.index('"january.html"')
    )
    assert "R&amp;D &lt;Week&gt; &#34;Q4&#34;" in index or 'R&amp;D &lt;Week&gt; "Q4"' in index
    atom = "{http://www.w3.org/2005/Atom}"
    feed = ET.parse(site / "feed.xml").getroot()
    entries = feed.findall(f"{atom}entry")
    assert [e.findtext(f"{atom}title") for e in entries][0] == 'R&D <Week> "Q4"'
    ids = [e.findtext(f"{atom}id") for e in entries]
    assert len(set(ids)) == len(ids) == len(published)
    for entry in entries:
        link = entry.find(f"{atom}link").get("href")
        assert link.startswith("https://wmhtc.co.uk/news/")
        assert (site / link.rsplit("/", 1)[1]).is_file()
        assert entry.findtext(f"{atom}updated") == entry.findtext(f"{atom}published")
        dt.datetime.fromisoformat(entry.findtext(f"{atom}updated"))
    assert feed.findtext(f"{atom}updated") == entries[0].findtext(f"{atom}updated")


def test_the_archive_keeps_the_page_of_a_sent_issue_whose_file_was_renamed(
    project: Path, plain_smtp_server
) -> None:
    """Emails already sent link to ARCHIVE_URL/SLUG.html: renaming the issue file (or
    deleting it) and rebuilding the archive took that page away, and the link 404ed."""
    write_three_members(project)
    write_dated_issue(project, "jan", "2026-01-10")
    write_dated_issue(project, "feb", "2026-02-10")
    env = cli_env(plain_smtp_server, NEWSLETTER_ARCHIVE_URL=ARCHIVE_URL)
    assert run_cli(["send", "jan", "--yes"], env=env).returncode == 0
    assert run_cli(["archive", "--out", "site"], env=env).returncode == 0
    issues = project / "issues"
    (issues / "jan.md").rename(issues / "january-2026.md")
    (issues / "feb.md").unlink()  # never sent: its page goes
    built = run_cli(["archive", "--out", "site"], env=env)
    assert built.returncode == 0
    assert "kept site/jan.html" in built.stdout
    site = project / "site"
    assert (site / "jan.html").is_file() and (site / "january-2026.html").is_file()
    assert not (site / "feb.html").exists()
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "january-2026.html" in index and '"jan.html"' not in index
    # Taken off on purpose (the file is there, saying archive: false): not kept.
    (issues / "january-2026.md").rename(issues / "jan.md")
    text = (issues / "jan.md").read_text(encoding="utf-8")
    (issues / "jan.md").write_text(text.replace("---\n\n", "archive: false\n---\n\n", 1))
    assert run_cli(["archive", "--out", "site"], env=env).returncode == 0
    assert not (site / "jan.html").exists()


def test_an_issue_file_named_with_spaces_links_to_its_web_page(project: Path) -> None:
    """'issues/Jan News 2024.md': the text part's 'View in your browser' link read
    'https://…/Jan News 2024.html' (a link that stops at 'Jan'), and the archive's feed
    and index held the same unencoded address."""
    write_issue(project, "## Hello\n\nThe new year.\n")
    (project / "issues" / "probe.md").rename(project / "issues" / "Jan News 2024.md")
    env = {**READY_ENV, "NEWSLETTER_ARCHIVE_URL": "https://news.wmhtc.co.uk"}
    done = run_cli(["send", "Jan News 2024", "--dry-run"], env=env)
    assert done.returncode == 0, done.stderr
    message = next((project / "outbox" / "Jan News 2024").glob("*.eml"))
    html, text = html_and_text(
        email.message_from_bytes(message.read_bytes(), policy=email.policy.default)
    )
    page = "https://news.wmhtc.co.uk/Jan%20News%202024.html"
    assert f"View in your browser: {page}\n" in text
    assert f'href="{page}"' in html
    done = run_cli(["archive", "--out", "site"], env=env)
    assert done.returncode == 0, done.stderr
    assert (project / "site" / "Jan News 2024.html").is_file()
    assert 'href="Jan%20News%202024.html"' in (project / "site" / "index.html").read_text()
    feed = (project / "site" / "feed.xml").read_text()
    assert f"<id>{page}</id>" in feed and "Jan News 2024.html" not in feed


# ---- archive --out . -------------------------------------------------------------------------


def test_archive_into_the_project_folder_suggests_site(project: Path) -> None:
    result = run_cli(["archive", "--out", "."])
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "site/" in line and "outbox" not in line
    # The dry run's refusal still suggests its own folder.
    result = run_cli(["send", SLUG, "--dry-run", "--out", "."])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: refusing to replace .:")
    assert "outbox/SLUG" in result.stderr and "site/" not in result.stderr
