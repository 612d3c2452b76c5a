"""``newsletter new``: start the next issue from the documented skeleton; and the skeleton's
own text, so that ``check`` can find what nobody has rewritten yet."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from .errors import IssueError, TemplateError
from .model import Issue
from .organisation import Organisation, load_organisation

SKELETON = "new-issue.md.j2"
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")
MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_MONTH_YEAR = re.compile(r"(?:^|-)([a-z]+)-(\d{4})(?:-|$)|(?:^|-)(\d{4})-(\d{1,2})(?:-|$)")
# Device names Windows refuses as a file name, whatever the extension ("con.md" too).
_WINDOWS_RESERVED = frozenset({"con", "prn", "aux", "nul"}) | {
    f"{port}{i}" for port in ("com", "lpt") for i in range(1, 10)
}


def default_title(bulletin: str, date: dt.date) -> str:
    return f"{bulletin} – {date.strftime('%B %Y')}"


def slug_month(slug: str) -> tuple[int, int] | None:
    """(year, month) named by a slug such as ``january-2024`` or ``2024-01``; else None."""
    for match in _MONTH_YEAR.finditer(slug):
        if match.group(1) in MONTHS:
            return int(match.group(2)), MONTHS[match.group(1)]
        if match.group(3) and 1 <= int(match.group(4)) <= 12:
            return int(match.group(3)), int(match.group(4))
    return None


def issue_date(slug: str, today: dt.date) -> dt.date:
    """The issue's date: today if the slug names this month (or none), else the 1st of the
    month the slug names."""
    named = slug_month(slug)
    if named is None or named == (today.year, today.month):
        return today
    return dt.date(named[0], named[1], 1)


def render_skeleton(
    templates_dir: Path, org: Organisation, *, slug: str, date: dt.date, title: str
) -> str:
    import jinja2

    try:
        source = (templates_dir / SKELETON).read_text(encoding="utf-8")
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        # A JSON string is a valid YAML double-quoted scalar; keep "–" readable.
        env.filters["yaml"] = lambda value: json.dumps(value, ensure_ascii=False)
        return env.from_string(source).render(
            slug=slug, date=date, title=title, org=org, sections=org.sections
        )
    except FileNotFoundError:
        raise TemplateError("issue skeleton not found", path=templates_dir / SKELETON) from None
    except jinja2.TemplateError as exc:
        raise TemplateError(f"issue skeleton: {exc}", path=templates_dir / SKELETON) from None


def create_issue(
    issues_dir: Path,
    templates_dir: Path,
    slug: str,
    *,
    date: dt.date | None = None,
    today: dt.date | None = None,
    title: str | None = None,
) -> Path:
    """Write ``issues/SLUG.md`` from the skeleton; never overwrites an existing issue.

    Without ``date``, a slug naming a month ("january-2024") dates the issue in that month.
    """
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
    org = load_organisation(templates_dir)
    date = date or issue_date(slug, today or dt.date.today())
    body = render_skeleton(
        templates_dir,
        org,
        slug=slug,
        date=date,
        title=title or default_title(org.bulletin or org.name, date),
    )
    issues_dir.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8") as handle:  # "x": never overwrite, even in a race
        handle.write(body)
    return path


def skeleton_text(
    templates_dir: Path, issue: Issue, org: Organisation
) -> tuple[str, set[str]] | None:
    """(the skeleton's preheader, its placeholder body lines) as ``new`` would have written
    them for this issue; None without a skeleton. Section headings (from
    ``organisation.toml``), block fences and comments are not placeholders."""
    from .issue import blank_comments, split_front_matter

    if not (templates_dir / SKELETON).is_file():
        return None
    try:
        text = render_skeleton(
            templates_dir, org, slug=issue.slug, date=issue.date, title=issue.title
        )
        meta, body, _ = split_front_matter(text, templates_dir / SKELETON)
    except (TemplateError, IssueError):
        return None
    lines = {
        line.strip()
        for line in blank_comments(body).splitlines()
        if line.strip() and not line.startswith(("# ", ":::"))
    }
    return str(meta.get("preheader", "")).strip(), lines
