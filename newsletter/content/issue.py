"""Parse one issue file into the content model: the composition of its parts.

An issue is ``issues/<slug>.md``: YAML front matter between ``---`` lines
(:mod:`.frontmatter`, dates in :mod:`.dates`), then a CommonMark body (:mod:`.body`).
Finding the files is :mod:`.issuefiles`. Every error names the file and line.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ..common.errors import IssueError
from .body import parse_body
from .frontmatter import (
    KeyProblem,
    check_keys,
    issue_date,
    read_leniently,
    split_front_matter,
    usable_front_matter,
)
from .issuefiles import SkipHandler, issue_path, list_issue_files, read_issue_text
from .model import Issue


def parse_all(issues_dir: Path, on_skip: SkipHandler | None = None) -> list[Issue]:
    """Every issue that parses; the others are reported through ``on_skip`` (or raised)."""
    issues = []
    for path in list_issue_files(issues_dir):
        try:
            issues.append(parse_issue(path))
        except IssueError as error:
            if on_skip is None:
                raise
            on_skip(error)
    return issues


def load_issue(
    slug_or_path: str, issues_dir: Path, problems: list[KeyProblem] | None = None
) -> Issue:
    """The issue a SLUG argument (or a path to a ``.md`` file) names (``problems``: as
    :func:`parse_issue`)."""
    return parse_issue(issue_path(slug_or_path, issues_dir), problems)


def parse_issue(path: Path, problems: list[KeyProblem] | None = None) -> Issue:
    """One issue file: front matter checked, body parsed; an :class:`IssueError` names the
    line of the first problem.

    With a ``problems`` list, front-matter problems are appended to it instead (all of
    them), and the issue is built from what the chair evidently meant, with stand-ins for
    what is missing (:func:`usable_front_matter`): for `check`, which reports them with
    everything else. A problem in the body is raised all the same."""
    text = read_issue_text(path)
    if problems is None:
        meta, body, body_line = split_front_matter(text, path)
        check_keys(meta, text, path)
        written = meta
    else:
        written, body, body_line, found = read_leniently(text, path)
        problems.extend(found)
        meta = usable_front_matter(written, found, path.stem)
    sections, signoff = parse_body(body, path, body_line)
    date = issue_date(meta, text, path) if problems is None else _date(meta, text, path, problems)
    return Issue(
        slug=path.stem,
        path=path,
        title=meta["title"].strip(),
        subject=meta["subject"].strip(),
        preheader=meta["preheader"].strip(),
        date=date,
        sections=sections,
        signoff=signoff,
        front_matter=written,
        source=text,
        lang=(meta.get("lang") or "").strip(),
        greeting=meta.get("greeting", True),
        archive=meta.get("archive", True),
        draft=meta.get("draft", False),
    )


def _date(meta: dict[str, object], text: str, path: Path, problems: list[KeyProblem]) -> dt.date:
    """The issue's date, or a stand-in when it is missing (said already) or unreadable
    (said here): the slug's month if it names one, else the first of this month."""
    from .skeleton import slug_month

    if "date" in meta:
        try:
            return issue_date(meta, text, path)
        except IssueError as error:
            problems.append(KeyProblem(error.message, error.line or 1, error.hint or "", "date"))
    month = slug_month(path.stem)
    if month:
        return dt.date(month[0], month[1], 1)
    return dt.date.today().replace(day=1)
