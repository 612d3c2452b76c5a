"""The issue parser's parts each do their job alone: the body parser, the front matter's
key checks, the dates, the file reading. ``parse_issue`` is their composition."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from newsletter.common.errors import IssueError
from newsletter.content.body import parse_body
from newsletter.content.dates import read_date
from newsletter.content.frontmatter import check_keys, issue_date, split_front_matter
from newsletter.content.issue import parse_issue
from newsletter.content.issuefiles import newest_issue, read_issue_text
from newsletter.content.model import Paragraph

FRONT = "---\ntitle: T\nsubject: S\npreheader: P\ndate: {date}\n---\n"


def test_the_body_parser_numbers_lines_from_where_the_body_starts(tmp_path: Path) -> None:
    path = tmp_path / "x.md"
    sections, signoff = parse_body("# Section\n\nHello.\n", path, first_line=7)
    (block,) = sections[0].blocks
    assert isinstance(block, Paragraph) and block.line == 9
    assert signoff == []
    with pytest.raises(IssueError) as raised:
        parse_body("# Section\n\n::: nonsense\nx\n:::\n", path, first_line=7)
    assert raised.value.line == 9


def test_front_matter_keys_and_date_are_checked_apart_from_the_body(tmp_path: Path) -> None:
    path = tmp_path / "x.md"
    text = FRONT.format(date="1 December 2023").replace("title: T", "tittle: T")
    meta, body, first = split_front_matter(text, path)
    assert (body, first) == ("", 7)
    assert issue_date(meta, text, path) == dt.date(2023, 12, 1)
    with pytest.raises(IssueError, match="did you mean 'title'") as raised:
        check_keys(meta, text, path)
    assert raised.value.line == 2
    with pytest.raises(ValueError, match="2023-01-12 or 2023-12-01"):
        read_date("01/12/2023")


def test_files_are_read_found_and_parsed_by_the_composition(tmp_path: Path) -> None:
    (tmp_path / "old.md").write_text(FRONT.format(date="2023-11-02") + "Text.\n", "utf-8")
    (tmp_path / "new.md").write_text(FRONT.format(date="2023-12-01") + "Text.\n", "utf-8")
    (tmp_path / "wide.md").write_bytes("---\n".encode("utf-16"))
    skipped: list[IssueError] = []
    assert newest_issue(tmp_path, skipped.append) == tmp_path / "new.md"
    assert [error.path for error in skipped] == [tmp_path / "wide.md"]
    with pytest.raises(IssueError, match="UTF-16"):
        read_issue_text(tmp_path / "wide.md")
    issue = parse_issue(tmp_path / "new.md")
    assert (issue.slug, issue.date, issue.title) == ("new", dt.date(2023, 12, 1), "T")
