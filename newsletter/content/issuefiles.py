"""Issue files: where they are, which one a SLUG argument means, the newest, and reading
one as text (with what to do when it is not UTF-8).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..common.errors import IssueError
from .frontmatter import issue_date, split_front_matter

SkipHandler = Callable[[IssueError], None]


def issue_slug(value: str, issues_dir: Path) -> str:
    """The slug a SLUG argument means: ``december-2026.md`` and ``issues/december-2026.md``
    (as tab completion writes them) are ``december-2026``. A path to a ``.md`` file outside
    the issues folder is kept as it is (:func:`issue_path` reads it)."""
    candidate = Path(value)
    if candidate.suffix.lower() != ".md":
        return value
    if candidate.is_file() and candidate.resolve().parent != issues_dir.resolve():
        return value
    return candidate.stem


def issue_path(slug: str, issues_dir: Path) -> Path:
    """The file for ``slug`` (a slug, with or without ``.md``, or a path to a ``.md`` file)."""
    candidate = Path(slug)
    if candidate.suffix == ".md" and candidate.is_file():
        return candidate
    slug = issue_slug(slug, issues_dir)
    path = issues_dir / f"{slug}.md"
    if not path.is_file():
        import difflib

        names = sorted(p.stem for p in issues_dir.glob("*.md"))
        close = difflib.get_close_matches(slug, names, n=1, cutoff=0.6)
        meant = f": did you mean {close[0]}?" if close else ""
        available = ", ".join(names) or "none"
        raise IssueError(
            f"no issue called {slug!r}{meant}",
            path=path,
            hint=f"issues in {issues_dir}/: {available}; start one with 'newsletter new SLUG'",
        )
    return path


def list_issue_files(issues_dir: Path) -> list[Path]:
    if not issues_dir.is_dir():
        raise IssueError(
            "issues folder not found",
            path=issues_dir,
            hint="run from the folder that holds issues/, or set NEWSLETTER_ISSUES_DIR",
        )
    return sorted(issues_dir.glob("*.md"))


def newest_issue(issues_dir: Path, on_skip: SkipHandler | None = None) -> Path:
    """The issue with the latest front-matter date (ties: the later file name).

    A file whose front matter cannot be read is skipped (reported through ``on_skip``), so
    one broken draft does not hide every other issue; if none can be read, the first
    error is raised.
    """
    files = list_issue_files(issues_dir)
    if not files:
        raise IssueError(
            "no issues yet", path=issues_dir, hint="start one with 'newsletter new SLUG'"
        )
    dated = []
    errors: list[IssueError] = []
    for path in files:
        try:
            text = read_issue_text(path)
            meta, _, _ = split_front_matter(text, path)
            dated.append((issue_date(meta, text, path), path.name, path))
        except IssueError as error:
            errors.append(error)
            if on_skip is not None:
                on_skip(error)
    if not dated:
        raise errors[0]
    return max(dated)[2]


def read_issue_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise IssueError("file not found", path=path) from None
    except UnicodeDecodeError as exc:
        data = path.read_bytes()
        resave = "in Notepad: File > Save as, Encoding: UTF-8; in other editors, save as UTF-8"
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise IssueError(
                "is UTF-16 text ('Unicode'), not UTF-8", path=path, line=1, hint=resave
            ) from None
        line = data[: exc.start].count(b"\n") + 1
        byte = data[exc.start : exc.start + 1]
        ansi = byte.decode("cp1252", errors="replace")
        seen = f" ({ansi!r} in Windows-1252)" if ansi != "\ufffd" else ""
        raise IssueError(
            f"not UTF-8 text: byte 0x{byte.hex()}{seen} cannot be read",
            path=path,
            line=line,
            hint=resave,
        ) from None
