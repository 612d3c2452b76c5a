"""Parsing issue files: the December structure, and one clear error per kind of bad file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from newsletter.common.errors import IssueError
from newsletter.content.issue import parse_issue
from newsletter.content.issuefiles import newest_issue
from newsletter.content.model import BulletList, Button, Facts, Image, Link, Paragraph, Quote, plain

GOOD_FRONT = "---\ntitle: T\nsubject: S\npreheader: P\ndate: 2024-01-05\n---\n"


def write(tmp_path: Path, text: str, name: str = "x.md") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_december_structure(project: Path) -> None:
    issue = parse_issue(project / "issues" / "december-2023.md")
    assert issue.slug == "december-2023"
    assert issue.date == dt.date(2023, 12, 14)
    titles = [s.title for s in issue.sections]
    assert titles == [
        "",
        "Cluster’s events",
        "Health technologies sector news",
        "West Midlands region news",
        "National & international news",
        "Spotlight on…",
    ]
    articles = {a.title: a for a in issue.articles}
    assert "Regulation of AI" in articles
    assert any(isinstance(b, Quote) for b in articles["Regulation of AI"].blocks)
    benefits = next(
        b for b in articles["Global Growth Programme"].blocks if isinstance(b, BulletList)
    )
    assert [plain(i) for i in benefits.items][0] == "Partnership opportunities"
    assert len(benefits.items) == 5
    facts = next(
        b
        for b in articles["Global Incubator Programme – Healthtech"].blocks
        if isinstance(b, Facts)
    )
    assert [(f.label, plain(f.value)) for f in facts.facts][:2] == [
        ("Date", "June 2024"),
        ("Location", "Houston, Texas"),
    ]
    assert any(isinstance(b, Button) for b in articles["Global Growth Programme"].blocks)
    signoff_text = " ".join(plain(b.content) for b in issue.signoff if isinstance(b, Paragraph))
    assert "Executive Chair" in signoff_text
    links = [
        n
        for b in issue.signoff
        if isinstance(b, Paragraph)
        for n in b.content
        if isinstance(n, Link)
    ]
    assert links and links[0].href == "mailto:david@wmhtc.co.uk"


def test_body_syntax(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        GOOD_FRONT
        + "Intro *para*.\n\n# Sec\n\n## Art\n\n![A chart of growth](https://example.org/c.png)\n\n"
        "::: facts\nDate: 1 May\nWhere: [Online](https://example.org/z)\n:::\n\n"
        "[Book now](https://example.org/b){.button}\n\n1. one\n2. two\n",
    )
    issue = parse_issue(path)
    assert issue.sections[0].title == "" and isinstance(issue.sections[0].blocks[0], Paragraph)
    blocks = issue.sections[1].articles[0].blocks
    assert isinstance(blocks[0], Image) and blocks[0].alt == "A chart of growth"
    assert isinstance(blocks[1], Facts)
    assert isinstance(blocks[1].facts[1].value[0], Link)
    assert blocks[2] == Button(text="Book now", href="https://example.org/b", line=blocks[2].line)
    assert isinstance(blocks[3], BulletList) and blocks[3].ordered


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("# No front matter\n", 1, "no front matter"),
        ("---\ntitle: T\n", 1, "not closed"),
        ("---\ntitle: T\npreheader: P\ndate: 2024-01-01\n---\nhi\n", 1, "no 'subject'"),
        ("---\ntitle: T\nsubject: S\npreheader: P\ndate: 14/12/2023\n---\nhi\n", 5, "not a date"),
        ("---\ntitle: T\nsubject: a: b: [\npreheader: P\n---\n", 3, "front matter"),
        (GOOD_FRONT + "\n::: facts\nJust words\n:::\n", 9, "Label: value"),
        (GOOD_FRONT + "\nText ![x](https://e.org/i.png) inline\n", 8, "own"),
        (GOOD_FRONT, 7, "no content"),
    ],
)
def test_bad_issue_files(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(IssueError) as caught:
        parse_issue(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert words in message
    assert "\n" not in message


def test_newest_issue_by_front_matter_date(tmp_path: Path) -> None:
    write(tmp_path, GOOD_FRONT.replace("2024-01-05", "2024-03-01") + "a\n", "zz-old.md")
    write(tmp_path, GOOD_FRONT.replace("2024-01-05", "2024-04-01") + "a\n", "aa-new.md")
    assert newest_issue(tmp_path).name == "aa-new.md"


def test_non_utf8_issue(tmp_path: Path) -> None:
    path = tmp_path / "x.md"
    path.write_bytes(GOOD_FRONT.encode() + "caf\xe9\n".encode("latin-1"))
    with pytest.raises(IssueError, match="not UTF-8"):
        parse_issue(path)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (
            "---\ntitle: T\nsubject: S\npreheader: P\ndate: 2024-13-45\n---\nx\n",
            5,
            "month must be in 1..12",
        ),
        (
            "---\ntitle: T\nsubject: S\npreheader: ''\ndate: 2024-01-01\n---\nx\n",
            4,
            "'preheader' is empty",
        ),
        (GOOD_FRONT + "\n::: agenda\nx\n:::\n", 8, "unknown block '::: agenda'"),
    ],
)
def test_more_bad_issue_files(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(IssueError) as caught:
        parse_issue(path)
    assert str(caught.value).startswith(f"{path}:{line}: ") and words in str(caught.value)


def test_code_blocks_keep_their_lines(tmp_path: Path) -> None:
    issue = parse_issue(write(tmp_path, GOOD_FRONT + "\n```\nline one\nline two\n```\n"))
    content = issue.sections[0].blocks[0].content
    assert [type(n).__name__ for n in content] == ["Code", "LineBreak", "Code"]
