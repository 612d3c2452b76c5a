"""The optional front-matter keys are typed Issue fields, and templates obey them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from newsletter.common.config import Settings
from newsletter.common.errors import IssueError
from newsletter.content.issue import parse_issue
from newsletter.web.archive import build_archive
from newsletter.web.preview import render_path

FRONT = "---\ntitle: T\nsubject: S\npreheader: P\ndate: 2024-01-05\n{extra}---\n\n## A\n\nBody.\n"


def write(folder: Path, extra: str, name: str = "x.md") -> Path:
    path = folder / name
    path.write_text(FRONT.format(extra=extra), encoding="utf-8")
    return path


def test_defaults(tmp_path: Path) -> None:
    issue = parse_issue(write(tmp_path, ""))
    assert (issue.lang, issue.greeting, issue.archive, issue.draft) == ("", True, True, False)
    assert issue.archived


def test_typed_values(tmp_path: Path) -> None:
    extra = "lang: ' cy '\ngreeting: false\narchive: false\ndraft: true\n"
    issue = parse_issue(write(tmp_path, extra))
    assert (issue.lang, issue.greeting, issue.archive, issue.draft) == ("cy", False, False, True)
    assert not issue.archived


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("draft: maybe\n", r"x\.md:6: 'draft' must be true or false"),
        ("greeting: 'no'\n", r"x\.md:6: 'greeting' must be true or false"),
        ("lang: 5\n", r"x\.md:6: 'lang' must be a language tag, not 5"),
    ],
)
def test_wrong_types_name_the_line(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(IssueError, match=message):
        parse_issue(write(tmp_path, extra))


def test_templates_use_lang_and_greeting(settings: Settings) -> None:
    plain = render_path(settings, write(settings.issues_dir, "", "plain.md"))
    _, html, text = plain.sample()
    fallback = plain.org.greeting_fallback
    assert fallback in html and fallback in text
    assert f'<html lang="{plain.org.lang}"' in html

    path = write(settings.issues_dir, "lang: cy\ngreeting: false\n", "welsh.md")
    _, html, text = render_path(settings, path).sample()
    assert fallback not in html and fallback not in text
    assert '<html lang="cy"' in html


def test_archive_leaves_out_drafts_and_archive_false(settings: Settings, project: Path) -> None:
    write(settings.issues_dir, "draft: true\n", "unfinished.md")
    write(settings.issues_dir, "archive: false\n", "private.md")
    write(settings.issues_dir, "draft: false\n", "finished.md")
    settings = dataclasses.replace(settings, archive_url="https://example.org/archive/")
    build_archive(settings, project / "site")
    pages = {p.name for p in (project / "site").glob("*.html")}
    assert "finished.html" in pages and "december-2023.html" in pages
    assert "unfinished.html" not in pages and "private.html" not in pages
