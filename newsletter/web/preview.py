"""Render an issue for looking at: to files (``render``, ``preview --out``) or in the browser.

``preview`` shows the issue personalised as the first member of the list (or ``--as
ADDRESS``), as a test send does; ``render``, and ``preview`` without a member list, show
what a member with no known name would get. The unsubscribe link is made out for the
chair's test address (NEWSLETTER_TEST_TO), as a test copy's is. The live
server (:mod:`newsletter.web.server`) builds on this module, never the other way round.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..common.config import Settings
from ..common.errors import RecipientsError, UsageError
from ..common.files import atomic_write
from ..content import images
from ..content.issue import parse_issue
from ..content.issuefiles import SkipHandler, issue_path, newest_issue
from ..content.linktags import link_tagger, view_online_url
from ..content.organisation import load_organisation
from ..content.render import RenderedIssue, render_issue

Fields = dict[str, str]


def preview_member(settings: Settings, as_address: str | None = None) -> Fields | None:
    """The fields of the member the preview is personalised as: ``as_address``, else the
    first member of the list; None (the anonymous sample) when there is no list."""
    from ..members.recipients import iter_recipients, unwrap_address
    from ..sending.message import MessageBuilder

    path = settings.recipients
    if not path.is_file():
        if as_address is None:
            return None
        raise RecipientsError("file not found", path=path, hint="--as needs the members' list")
    # Pasted as a mail program copies it ("Jane Doe <jane@x.org>"), as --to is.
    wanted = unwrap_address(as_address).casefold() if as_address else None
    link = preview_unsubscribe(settings)
    try:
        for recipient in iter_recipients(path):
            if wanted is None or recipient.email.casefold() == wanted:
                return MessageBuilder.fields(recipient, link)
    except RecipientsError:
        if as_address is not None:
            raise
        return None  # a broken list is `check`'s business; the preview still shows the issue
    if as_address is not None:
        raise RecipientsError(
            f"{as_address} is not a member in the list",
            path=path,
            hint="--as takes an address from the recipients CSV",
        )
    return None


def preview_unsubscribe(settings: Settings) -> str:
    """The footer's unsubscribe link in a preview: one as real as a member's (``#unsubscribe``
    read as a broken link), but made out for the chair's test address, as a test copy's
    is, so that trying it in the preview never takes a member off the list.
    ``#unsubscribe`` when no unsubscribe link is configured."""
    from ..sending.message import Sender

    sender = Sender(
        name="",
        address="",
        unsubscribe_url=settings.unsubscribe_url,
        unsubscribe_mailto=settings.unsubscribe_mailto,
        secret=settings.secret,
    )
    tester = settings.test_to.replace(";", ",").split(",")[0].strip() or PREVIEW_ADDRESS
    return sender.unsubscribe_target(tester)[0] or "#unsubscribe"


# Whose unsubscribe link a preview shows without NEWSLETTER_TEST_TO: nobody's.
PREVIEW_ADDRESS = "preview@example.org"


def personalised(
    rendered: RenderedIssue, member: Fields | None, unsubscribe: str = "#unsubscribe"
) -> tuple[str, str, str]:
    """(subject, html, text) as ``member`` gets them, or the anonymous sample (with the
    ``unsubscribe`` link, :func:`preview_unsubscribe`)."""
    if member is None:
        return rendered.personalise({"unsubscribe_url": unsubscribe})
    return rendered.personalise(member)


def find(settings: Settings, slug: str | None, on_skip: SkipHandler | None = None) -> Path:
    """The issue file for ``slug``; without one, the newest issue by front-matter date."""
    if slug is None:
        return newest_issue(settings.issues_dir, on_skip)
    return issue_path(slug, settings.issues_dir)


def render_path(settings: Settings, path: Path, *, strict: bool = True) -> RenderedIssue:
    """The issue as a browser shows it: local pictures from ``assets/`` beside the HTML
    (written there by ``render``/``preview --out``; served by the preview server). A picture
    that cannot be used is an error unless ``strict`` is False (``rendered.pictures``)."""
    issue = parse_issue(path)
    org = load_organisation(settings.templates_dir)
    pictures = images.resolve(issue, org, settings.templates_dir)
    if strict:
        pictures.require()
    return render_issue(
        issue,
        settings.templates_dir,
        has_unsubscribe=bool(settings.unsubscribe_url or settings.unsubscribe_mailto),
        view_online_url=view_online_url(settings, issue.slug),
        link_tagger=link_tagger(settings, issue.slug),
        org=org,
        pictures=pictures,
    )


def write_email_html(
    settings: Settings,
    slug: str | None,
    out: Path,
    on_skip: SkipHandler | None = None,
    as_address: str | None = None,
) -> tuple[Path, int]:
    """``preview --out FILE``: the final email HTML, as a member would get it."""
    check_html_out(out)
    rendered = render_path(settings, find(settings, slug, on_skip))
    member = preview_member(settings, as_address)
    _, html, _ = personalised(rendered, member, preview_unsubscribe(settings))
    _write(out, html)
    _write_assets(out.parent, rendered)
    return out, len(html.encode("utf-8"))


def render_files(settings: Settings, slug: str, out_dir: Path) -> tuple[Path, Path, int]:
    """``render --out DIR``: SLUG.html and SLUG.txt."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(
            f"--out {out_dir} is a file, and --out is a folder",
            hint="render writes SLUG.html and SLUG.txt into it, e.g. --out build/",
        )
    rendered = render_path(settings, find(settings, slug))
    _, html, text = rendered.sample()
    html_path = out_dir / f"{rendered.issue.slug}.html"
    text_path = out_dir / f"{rendered.issue.slug}.txt"
    _write(html_path, html)
    _write(text_path, text)
    _write_assets(out_dir, rendered)
    return html_path, text_path, len(html.encode("utf-8"))


HTML_SUFFIXES = (".html", ".htm")


def check_html_out(out: Path) -> None:
    """``preview --out`` writes one HTML file: refuse a folder, or a name that is not an
    HTML file's (``--out issues/december-2026.md`` would replace the issue itself)."""
    if not str(out) or str(out) == "." or out.is_dir():
        raise UsageError(
            f"--out {str(out)!r} is a folder, and --out is the HTML file to write",
            hint="e.g. --out preview.html",
        )
    if out.suffix.lower() not in HTML_SUFFIXES:
        what = f"refusing to replace {out}" if out.exists() else f"refusing to write {out}"
        raise UsageError(
            f"{what}: --out is the email HTML file, a name ending in .html or .htm",
            hint="e.g. --out preview.html",
        )


def _write_assets(folder: Path, rendered: RenderedIssue) -> None:
    """The prepared pictures the HTML shows, in ``folder/assets/``."""
    if rendered.pictures is not None and rendered.pictures.prepared:
        folder.mkdir(parents=True, exist_ok=True)
        images.write_assets(folder, rendered.pictures.prepared)


def _write(path: Path, text: str) -> None:
    # Whole or not at all: a page the preview server reloads, or a killed run, never shows
    # half a file.
    # Line ends as text mode writes them (CRLF on Windows), as before.
    atomic_write(path, text.replace("\n", os.linesep).encode("utf-8"))
