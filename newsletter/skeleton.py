"""``newsletter new``: start the next issue from the documented skeleton."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from .errors import IssueError, TemplateError

SKELETON = "new-issue.md.j2"
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")
# Device names Windows refuses as a file name, whatever the extension ("con.md" too).
_WINDOWS_RESERVED = frozenset({"con", "prn", "aux", "nul"}) | {
    f"{port}{i}" for port in ("com", "lpt") for i in range(1, 10)
}


def default_title(bulletin: str, date: dt.date) -> str:
    return f"{bulletin} – {date.strftime('%B %Y')}"


def create_issue(
    issues_dir: Path, templates_dir: Path, slug: str, *, date: dt.date, title: str | None = None
) -> Path:
    """Write ``issues/SLUG.md`` from the skeleton; never overwrites an existing issue."""
    if not _SLUG.fullmatch(slug):
        raise IssueError(
            f"{slug!r} is not a usable slug",
            hint="use lower-case letters, digits and hyphens, e.g. january-2024",
        )
    if slug in _WINDOWS_RESERVED:
        raise IssueError(
            f"{slug!r} cannot be a file name on Windows",
            hint="choose another slug, e.g. january-2024",
        )
    path = issues_dir / f"{slug}.md"
    if path.exists():
        raise IssueError(
            "an issue with this slug already exists",
            path=path,
            hint="choose another slug, or edit the existing file",
        )
    import jinja2

    from .organisation import load_organisation

    org = load_organisation(templates_dir)
    try:
        source = (templates_dir / SKELETON).read_text(encoding="utf-8")
        text = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        # A JSON string is a valid YAML double-quoted scalar; keep "–" readable.
        text.filters["yaml"] = lambda value: json.dumps(value, ensure_ascii=False)
        body = text.from_string(source).render(
            slug=slug, date=date, title=title or default_title(org.bulletin or org.name, date)
        )
    except FileNotFoundError:
        raise TemplateError("issue skeleton not found", path=templates_dir / SKELETON) from None
    except jinja2.TemplateError as exc:
        raise TemplateError(f"issue skeleton: {exc}", path=templates_dir / SKELETON) from None
    issues_dir.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8") as handle:  # "x": never overwrite, even in a race
        handle.write(body)
    return path
