"""Render an issue for looking at: to files (``render``, ``preview --out``) or in the browser.

What is shown is what a member with no known name would get; the unsubscribe link points
nowhere. The live server (:mod:`newsletter.preview_server`) builds on this module, never
the other way round.
"""

from __future__ import annotations

from pathlib import Path

from .config import Settings
from .issue import SkipHandler, issue_path, newest_issue, parse_issue
from .linktags import link_tagger, view_online_url
from .render import RenderedIssue, render_issue


def find(settings: Settings, slug: str | None, on_skip: SkipHandler | None = None) -> Path:
    """The issue file for ``slug``; without one, the newest issue by front-matter date."""
    if slug is None:
        return newest_issue(settings.issues_dir, on_skip)
    return issue_path(slug, settings.issues_dir)


def render_path(settings: Settings, path: Path) -> RenderedIssue:
    issue = parse_issue(path)
    return render_issue(
        issue,
        settings.templates_dir,
        has_unsubscribe=bool(settings.unsubscribe_url or settings.unsubscribe_mailto),
        view_online_url=view_online_url(settings, issue.slug),
        link_tagger=link_tagger(settings, issue.slug),
    )


def write_email_html(
    settings: Settings, slug: str | None, out: Path, on_skip: SkipHandler | None = None
) -> tuple[Path, int]:
    """``preview --out FILE``: the final email HTML, as a member would get it."""
    rendered = render_path(settings, find(settings, slug, on_skip))
    _, html, _ = rendered.sample()
    _write(out, html)
    return out, len(html.encode("utf-8"))


def render_files(settings: Settings, slug: str, out_dir: Path) -> tuple[Path, Path, int]:
    """``render --out DIR``: SLUG.html and SLUG.txt."""
    rendered = render_path(settings, find(settings, slug))
    _, html, text = rendered.sample()
    html_path = out_dir / f"{rendered.issue.slug}.html"
    text_path = out_dir / f"{rendered.issue.slug}.txt"
    _write(html_path, html)
    _write(text_path, text)
    return html_path, text_path, len(html.encode("utf-8"))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
