"""Issue 17, items 2 and 5: a misspelt front-matter key, optional ones too, is an error (a
misspelt `draft` let a draft through, a misspelt `archive: false` published the issue),
and read for `check` the front matter's problems are all collected, with the issue still
built from what the chair meant."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.common.errors import IssueError
from newsletter.content.frontmatter import KeyProblem, near_miss
from newsletter.content.issue import parse_issue

FRONT = "---\ntitle: January\nsubject: Cluster News – January\npreheader: What is inside.\n"


def write(tmp_path: Path, front: str, body: str = "## News\n\nText.\n") -> Path:
    path = tmp_path / "january-2027.md"
    path.write_text(front + "---\n" + body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("Draft", "draft"),
        ("darft", "draft"),
        ("drafts", "draft"),
        ("DRAFT", "draft"),
        ("archve", "archive"),
        ("Archive", "archive"),
        ("greting", "greeting"),
        ("language", "lang"),
        ("pre-header", "preheader"),
        ("Subject", "subject"),
    ],
)
def test_a_near_miss_of_any_known_key_is_an_error(tmp_path: Path, written: str, meant: str) -> None:
    front = FRONT + "date: 2027-01-14\n"
    if meant in ("preheader", "subject"):  # the required key is written only misspelt
        front = front.replace(f"{meant}:", f"{written}:")
    else:
        front += f"{written}: true\n" if meant != "lang" else f"{written}: en-GB\n"
    path = write(tmp_path, front)
    with pytest.raises(IssueError) as caught:
        parse_issue(path)
    assert caught.value.message == f"unknown key {written!r}: did you mean {meant!r}?"
    line = next(
        n for n, x in enumerate(path.read_text("utf-8").splitlines(), 1) if x.startswith(written)
    )
    assert caught.value.line == line


def test_the_error_says_what_the_misspelt_key_does_as_written(tmp_path: Path) -> None:
    path = write(tmp_path, FRONT + "date: 2027-01-14\ndarft: true\n")
    with pytest.raises(IssueError) as caught:
        parse_issue(path)
    assert caught.value.hint == (
        "rename it to 'draft:' (ignored, it would not hold the issue back as a draft)"
    )


def test_keys_unlike_any_and_other_keys_beside_theirs_are_not_near_misses() -> None:
    assert near_miss("author") is None
    assert near_miss("category") is None
    # "subtitle" is close to "title", but with a title set it is a key of its own.
    assert near_miss("subtitle", {"title": "T", "subtitle": "S"}) is None
    assert near_miss("subtitle", {"subtitle": "S"}) == "title"
    assert near_miss("draft") is None


def test_an_unknown_key_unlike_any_is_still_only_ignored(tmp_path: Path) -> None:
    issue = parse_issue(write(tmp_path, FRONT + "date: 2027-01-14\nauthor: David\n"))
    assert issue.front_matter["author"] == "David"


def test_read_for_check_every_problem_is_collected_and_the_meaning_kept(
    tmp_path: Path,
) -> None:
    # A misspelt required key, a misspelt draft flag, an empty preheader and a date that
    # is no date: a send stops at the first; `check` needs all four, and the rest.
    front = (
        "---\ntitle: January\nsubjet: Cluster News – January\npreheader: ''\n"
        "date: 2027-13-45\nDraft: true\n"
    )
    path = write(tmp_path, front, "## News\n\n![A photo](missing.jpg)\n")
    with pytest.raises(IssueError):
        parse_issue(path)
    problems: list[KeyProblem] = []
    issue = parse_issue(path, problems)
    assert [(p.line, p.message) for p in problems] == [
        (3, "unknown key 'subjet': did you mean 'subject'?"),
        (4, "'preheader' is empty"),
        (6, "unknown key 'Draft': did you mean 'draft'?"),
        (5, "date '2027-13-45' is not a date"),
    ]
    assert issue.subject == "Cluster News – January"  # the misspelt key's value
    assert issue.draft is True  # `Draft: true` meant a draft: check must say so
    assert issue.date.year == 2027 and issue.date.month == 1  # the slug's month stands in
    assert issue.articles[0].title == "News"  # the body is read, to be checked too


def test_read_for_check_broken_yaml_is_one_problem_and_the_body_is_still_read(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "---\ntitle: 'January\nsubject: S\n", "## News\n\nText.\n")
    problems: list[KeyProblem] = []
    issue = parse_issue(path, problems)
    assert len(problems) == 1 and problems[0].message.startswith("front matter:")
    assert issue.title == "january-2027" and issue.articles[0].title == "News"
