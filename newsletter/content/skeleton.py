"""``newsletter new``: start the next issue from the documented skeleton; and the skeleton's
own text, so that ``check`` can find what nobody has rewritten yet."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..common.errors import IssueError, TemplateError
from .dates import MONTHS
from .model import Issue
from .organisation import Organisation, load_organisation

SKELETON = "new-issue.md.j2"
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")
_MONTH_YEAR = re.compile(
    r"(?:^|-)([a-z]+)-(\d{4})(?:-|$)|(?:^|-)(\d{4})-(\d{1,2})(?:-|$)"
    r"|(?:^|-)(\d{4})-([a-z]+)(?:-|$)"
)
_FULL_MONTHS = [name for name in MONTHS if len(name) > 4 or name in ("may", "june", "july")]
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
        if match.group(6) in MONTHS:  # 2027-feb
            return int(match.group(5)), MONTHS[match.group(6)]
    return None


def unplaced_month(slug: str, today: dt.date) -> str | None:
    """A slug ``slug_month`` cannot place although it seems to name a month (``janaury-2027``,
    ``february-27``): the slug it probably meant; None when it names no month at all.

    Without this, such a slug silently got the current month's title and date."""
    import difflib

    if slug_month(slug) is not None:
        return None
    parts = slug.split("-")
    month = None
    for at, part in enumerate(parts):
        if part in MONTHS:
            month = at, part
        elif len(part) >= 4 and part.isalpha():
            close = difflib.get_close_matches(part, _FULL_MONTHS, n=1, cutoff=0.75)
            if close:
                month = at, close[0]
        if month:
            break
    if month is None:
        return None
    at, word = month
    years = [p for p in parts if p.isdigit() and len(p) in (2, 4)]
    if _upcoming_month(slug, today) is not None:
        return None  # "december", "dec-special": the next December, as the chair means
    # A month word among other words and no number ("what-may-come") names no issue month;
    # first, or with a year, it does ("february-special", "feb-27").
    if not years and not (at == 0 and len(word) >= 4):
        return None
    number = MONTHS[word]
    chosen = max(years, key=len) if years else None  # 2027 rather than an issue number
    if chosen:
        year = int(chosen) + (2000 if len(chosen) == 2 else 0)
    else:  # the next such month from today
        year = today.year + (number < today.month)
    meant = [p for p in parts if p != chosen]
    meant[meant.index(parts[at])] = f"{word}-{year}"
    return "-".join(meant)


def _upcoming_month(slug: str, today: dt.date) -> tuple[int, int] | None:
    """(year, month) for a slug that starts with a month's name and holds no year
    (``december``, ``dec-special``): that month now or next (in November, ``january`` is
    the coming January)."""
    parts = slug.split("-")
    if parts[0] not in MONTHS or any(p.isdigit() for p in parts):
        return None
    number = MONTHS[parts[0]]
    return today.year + (number < today.month), number


def issue_date(slug: str, today: dt.date) -> dt.date:
    """The issue's date: today if the slug names this month (or none), else the 1st of the
    month the slug names."""
    named = slug_month(slug) or _upcoming_month(slug, today)
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


@dataclass(frozen=True)
class NewIssue:
    path: Path
    title: str
    date: dt.date


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
    return start_issue(issues_dir, templates_dir, slug, date=date, today=today, title=title).path


def _slug_from_file_name(value: str, issues_dir: Path) -> str:
    """``january-2027.md`` and ``issues/january-2027.md`` (as tab completion writes them,
    as every other command reads them) are the slug ``january-2027``; a path into another
    folder is left as it is, for the slug check to refuse."""
    candidate = Path(value)
    if candidate.suffix.lower() != ".md":
        return value
    parent = candidate.parent
    if parent == Path(".") or parent.resolve() == issues_dir.resolve():
        return candidate.stem
    return value


def start_issue(
    issues_dir: Path,
    templates_dir: Path,
    slug: str,
    *,
    date: dt.date | None = None,
    today: dt.date | None = None,
    title: str | None = None,
) -> NewIssue:
    """:func:`create_issue`, saying which title and date the issue got. A slug that seems to
    name a month it cannot place (``janaury-2027``) is refused unless ``date`` is given."""
    today = today or dt.date.today()
    slug = _slug_from_file_name(slug, issues_dir)
    meant = unplaced_month(slug, today) if date is None else None
    if meant is not None:
        raise IssueError(
            f"cannot tell which month {slug!r} is for: did you mean {meant}?",
            hint="write the month's name and the year, or give --date YYYY-MM-DD",
        )
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
    date = date or issue_date(slug, today)
    title = title or default_title(org.bulletin or org.name, date)
    body = render_skeleton(templates_dir, org, slug=slug, date=date, title=title)
    issues_dir.mkdir(parents=True, exist_ok=True)
    with path.open("x", encoding="utf-8") as handle:  # "x": never overwrite, even in a race
        handle.write(body)
    return NewIssue(path, title, date)


def skeleton_text(
    templates_dir: Path, issue: Issue, org: Organisation
) -> tuple[str, set[str]] | None:
    """(the skeleton's preheader, its placeholder body lines) as ``new`` would have written
    them for this issue; None without a skeleton. Section headings (from
    ``organisation.toml``), block fences and comments are not placeholders."""
    from .body import blank_comments
    from .frontmatter import split_front_matter

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
