"""Parse one issue file into the content model: the composition of its parts.

An issue is ``issues/<slug>.md``: YAML front matter between ``---`` lines
(:mod:`.frontmatter`, dates in :mod:`.dates`), then a CommonMark body (:mod:`.body`).
Finding the files is :mod:`.issuefiles`. Every error names the file and line.
"""

from __future__ import annotations

from pathlib import Path

from ..common.errors import IssueError
from .body import parse_body
from .frontmatter import check_keys, issue_date, split_front_matter
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


def load_issue(slug_or_path: str, issues_dir: Path) -> Issue:
    """The issue a SLUG argument (or a path to a ``.md`` file) names."""
    return parse_issue(issue_path(slug_or_path, issues_dir))


def parse_issue(path: Path) -> Issue:
    """One issue file: front matter checked, body parsed; an :class:`IssueError` names the
    line of the first problem."""
    text = read_issue_text(path)
    meta, body, body_line = split_front_matter(text, path)
    check_keys(meta, text, path)
    sections, signoff = parse_body(body, path, body_line)
    return Issue(
        slug=path.stem,
        path=path,
        title=meta["title"].strip(),
        subject=meta["subject"].strip(),
        preheader=meta["preheader"].strip(),
        date=issue_date(meta, text, path),
        sections=sections,
        signoff=signoff,
        front_matter=meta,
        source=text,
        lang=(meta.get("lang") or "").strip(),
        greeting=meta.get("greeting", True),
        archive=meta.get("archive", True),
        draft=meta.get("draft", False),
    )
