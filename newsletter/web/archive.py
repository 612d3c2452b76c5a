"""``newsletter archive``: a static web archive of every issue, an index page and an Atom feed.

Pages are the email's own HTML rendered for the web: no greeting, no unsubscribe link, no
member data at all. An issue with ``archive: false`` or ``draft: true`` is left out.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote
from xml.etree import ElementTree as ET

from ..common.config import Settings
from ..common.outdir import staged
from ..content import images
from ..content.issue import parse_all
from ..content.issuefiles import SkipHandler
from ..content.model import Issue
from ..content.organisation import load_organisation
from ..content.render import environment, render_issue, render_template

INDEX_TEMPLATE = "archive-index.html.j2"
ATOM = "http://www.w3.org/2005/Atom"


@dataclass
class ArchiveResult:
    out_dir: Path
    pages: list[Path]
    index: Path
    feed: Path
    # Pages of sent issues whose file is gone, carried over from the last build.
    kept: list[Path] = field(default_factory=list)


def build_archive(
    settings: Settings, out_dir: Path, on_skip: SkipHandler | None = None
) -> ArchiveResult:
    """Write ``out_dir/SLUG.html`` for each published issue, ``index.html`` and ``feed.xml``.

    Issue files that cannot be read are left out and reported through ``on_skip``."""
    org = load_organisation(settings.templates_dir)
    issues = parse_all(settings.issues_dir, on_skip)
    published = sorted(
        (i for i in issues if i.archived),
        key=lambda i: (i.date, i.slug),
        reverse=True,
    )
    pages = []
    # durable: pictures once published are never lost, not even to a power cut.
    with staged(out_dir, example="site/", durable=True) as folder:
        _keep_published_assets(out_dir, folder)
        kept = _keep_sent_pages(settings, out_dir, folder)
        for issue in issues:
            if not issue.archived:
                # No page, but a hosted email of it loads its pictures from assets/ all the
                # same; a picture that cannot be used is that issue's problem, not the site's.
                pictures = images.resolve(issue, org, settings.templates_dir)
                images.write_assets(folder, pictures.prepared)
        for issue in published:
            pictures = images.resolve(issue, org, settings.templates_dir)
            pictures.require()
            rendered = render_issue(
                issue, settings.templates_dir, org=org, archive=True, pictures=pictures
            )
            _, html, _ = rendered.sample()
            (folder / f"{issue.slug}.html").write_text(html, encoding="utf-8")
            pages.append(out_dir / f"{issue.slug}.html")
            # The pages show them from assets/; hosted emails load the very same files.
            images.write_assets(folder, pictures.prepared)
        env = environment(settings.templates_dir)
        index_html = render_template(env, INDEX_TEMPLATE, {"issues": published, "org": org})
        (folder / "index.html").write_text(index_html, encoding="utf-8")
        (folder / "feed.xml").write_bytes(atom_feed(published, org, settings.archive_url))
    return ArchiveResult(
        out_dir, pages, out_dir / "index.html", out_dir / "feed.xml", [out_dir / k for k in kept]
    )


def _keep_published_assets(old_site: Path, new_site: Path) -> None:
    """Carry every picture of the previous build over: emails already sent load them by
    name from NEWSLETTER_ARCHIVE_URL/assets/, and a sent email cannot be changed, so a
    picture once published stays published (even when the issue's picture changed since,
    or a newer Pillow encodes it to other bytes and so another name)."""
    old_assets = old_site / images.ASSETS
    if not old_assets.is_dir():
        return
    kept = [p for p in old_assets.iterdir() if images.ASSET_NAME.fullmatch(p.name)]
    if kept:
        (new_site / images.ASSETS).mkdir(exist_ok=True)
        for path in kept:
            shutil.copy2(path, new_site / images.ASSETS / path.name)


def _keep_sent_pages(settings: Settings, old_site: Path, new_site: Path) -> list[str]:
    """Carry over the page of an issue members were sent whose file is gone since (renamed
    or deleted): their emails' "View in your browser" link points at it. It stays off the
    index and the feed. An issue whose file is still there but now says ``archive: false``
    or ``draft: true`` was taken off on purpose, and is not kept."""
    from ..records.journal import JOURNAL_NAME, Journal

    journal_path = settings.state_dir / JOURNAL_NAME
    if not old_site.is_dir() or not journal_path.is_file():
        return []
    with Journal.open(journal_path) as journal:
        sent = [s.slug for s in journal.issues_summary() if s.counts.get("sent")]
    kept = []
    for slug in sent:
        page = old_site / f"{slug}.html"
        if page.is_file() and not (settings.issues_dir / f"{slug}.md").exists():
            shutil.copy2(page, new_site / page.name)
            kept.append(page.name)
    return kept


def _stamp(day: dt.date) -> str:
    return dt.datetime.combine(day, dt.time(9, 0), tzinfo=dt.UTC).isoformat()


def atom_feed(issues: list[Issue], org, base_url: str) -> bytes:
    """An Atom 1.0 feed; links are absolute when NEWSLETTER_ARCHIVE_URL is set."""
    base = base_url.rstrip("/") + "/" if base_url else ""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    sub(feed, "title", org.bulletin or org.name)
    sub(feed, "subtitle", f"The e-bulletin of {org.name}")
    sub(feed, "id", base or f"urn:newsletter:{org.domain}")
    sub(feed, "link", href=f"{base}feed.xml", rel="self")
    sub(feed, "link", href=f"{base}index.html", rel="alternate", type="text/html")
    updated = max((i.date for i in issues), default=dt.date(2000, 1, 1))
    sub(feed, "updated", _stamp(updated))
    author = sub(feed, "author")
    sub(author, "name", org.name)
    sub(author, "email", org.email)
    for issue in issues:
        entry = sub(feed, "entry")
        sub(entry, "title", issue.title)
        entry_id = (
            f"{base}{quote(issue.slug)}.html"
            if base
            else f"urn:newsletter:{org.domain}:{quote(issue.slug)}"
        )
        sub(entry, "id", entry_id)
        page = f"{base}{quote(issue.slug)}.html"
        sub(entry, "link", href=page, rel="alternate", type="text/html")
        sub(entry, "updated", _stamp(issue.date))
        sub(entry, "published", _stamp(issue.date))
        sub(entry, "summary", issue.preheader)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
