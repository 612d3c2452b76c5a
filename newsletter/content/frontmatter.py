"""An issue's front matter: the YAML between the ``---`` lines, read as the chair meant it.

Splits it from the body, checks the keys (required, optional, misspelt), keeps a `` #`` in
text values, and names the line of every problem; :func:`key_line` finds a key's line for
the checks that report on it.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from ..common.errors import IssueError
from .dates import read_date

REQUIRED_KEYS = ("title", "subject", "preheader", "date")
# Optional front-matter keys (documented in the README).
OPTIONAL_KEYS = ("lang", "greeting", "archive", "draft")
_FENCE = "---"


def split_front_matter(text: str, path: Path) -> tuple[dict[str, Any], str, int]:
    """Return (front matter, body, 1-based line where the body starts)."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != _FENCE:
        raise IssueError(
            "no front matter",
            path=path,
            line=1,
            hint="start the file with a '---' line, then title/subject/preheader/date, then '---'",
        )
    end = next((n for n, line in enumerate(lines[1:], start=1) if line.strip() == _FENCE), 0)
    if not end:
        raise IssueError(
            "front matter is not closed", path=path, line=1, hint="add a '---' line after it"
        )
    import yaml  # here, not at import time: keeps `newsletter --help` fast

    try:
        meta = yaml.safe_load("".join(lines[1:end])) or {}
    except ValueError as exc:
        # PyYAML builds dates itself: "date: 2024-13-45" fails inside it as a ValueError.
        raise IssueError(
            f"front matter: {exc}",
            path=path,
            line=key_line(text, "date"),
            hint="write dates as YYYY-MM-DD, e.g. 2023-12-14",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        context = getattr(exc, "context_mark", None)
        if "end of stream" in problem and context is not None:
            mark = context  # an unclosed quote: where it opened, not the closing '---'
        line = (mark.line + 2) if mark else 1
        if 2 < line <= end and lines[line - 1][:1].isspace() and " #" in lines[line - 2]:
            # An indented line after a ' #': YAML took the rest of the value for a comment
            # and then found this line orphaned. The ' #' is the thing to fix.
            raise IssueError(
                "front matter: everything after ' #' was read as a comment",
                path=path,
                line=line - 1,
                hint="put the whole value in double quotes, on one line",
            ) from None
        raise IssueError(
            f"front matter: {problem}",
            path=path,
            line=line,
            hint=_quoting_hint(lines[line - 1] if 1 < line <= end else ""),
        ) from None
    if not isinstance(meta, dict):
        raise IssueError("front matter must be 'key: value' lines", path=path, line=2)
    _keep_hashes(meta, lines[1:end])
    return {str(k): v for k, v in meta.items()}, "".join(lines[end + 1 :]), end + 2


def check_keys(meta: dict[str, Any], text: str, path: Path) -> None:
    """Raise :class:`IssueError` (naming the line) for a missing, misspelt, empty or
    mistyped key; ``text`` is the whole file, for the line numbers."""
    for key in REQUIRED_KEYS:
        if key not in meta:
            typo = _misspelt(key, meta)
            if typo:
                raise IssueError(
                    f"unknown key {typo!r}: did you mean {key!r}?",
                    path=path,
                    line=key_line(text, typo),
                    hint=f"rename it to '{key}:'",
                )
            raise IssueError(
                f"front matter has no {key!r}",
                path=path,
                line=1,
                hint=f"add a line '{key}: …' between the --- lines",
            )
        if meta[key] is None or (isinstance(meta[key], str) and not meta[key].strip()):
            raise IssueError(
                f"{key!r} is empty", path=path, line=key_line(text, key), hint="write it"
            )
    for key in ("title", "subject", "preheader"):
        if not isinstance(meta[key], str):
            raise IssueError(
                f"{key!r} must be text", path=path, line=key_line(text, key), hint="quote it"
            )
        if "\n" in meta[key].strip():
            raise IssueError(f"{key!r} must be one line", path=path, line=key_line(text, key))
    for key in ("greeting", "archive", "draft"):
        if key in meta and not isinstance(meta[key], bool):
            raise IssueError(f"{key!r} must be true or false", path=path, line=key_line(text, key))
    lang = meta.get("lang") or ""
    if not isinstance(lang, str) or "\n" in lang.strip():
        raise IssueError(
            f"'lang' must be a language tag, not {lang!r}",
            path=path,
            line=key_line(text, "lang"),
            hint="write e.g. 'lang: en-GB', or leave it out for the organisation's language",
        )


def _misspelt(key: str, meta: dict[str, Any]) -> str | None:
    """The front-matter key that is most likely a typo of the missing ``key``."""
    import difflib

    unknown = [k for k in meta if k not in REQUIRED_KEYS and k not in OPTIONAL_KEYS]
    close = difflib.get_close_matches(key, unknown, n=1, cutoff=0.75)
    return close[0] if close else None


def key_line(text: str, key: str) -> int:
    """The 1-based line where front-matter ``key`` is set (1 if it is not)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"{re.escape(key)}\s*:", line):
            return number
    return 1


def issue_date(meta: dict[str, Any], text: str, path: Path) -> dt.date:
    value = meta.get("date")
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return read_date(str(value))
    except ValueError as exc:
        raise IssueError(
            f"date {value!r} is not a date",
            path=path,
            line=key_line(text, "date"),
            hint=str(exc),
        ) from None


_KEY_VALUE = re.compile(r"(?P<key>[A-Za-z_][\w-]*)\s*:\s+(?P<value>.*?)\s*\Z")


def _quoting_hint(line: str) -> str:
    """What to do about a front-matter line YAML could not read: almost always quoting."""
    if line[:1] in (" ", "\t") and line.strip():
        return "start each 'key: value' line at the left edge, without spaces or tabs"
    match = _KEY_VALUE.match(line.rstrip("\r\n"))
    if not match:
        return "write each line as 'key: value'; values containing ': ' need quotes"
    key, value = match.group("key"), match.group("value")
    inner = value.strip("'\"").replace('"', '\\"')
    quoted = f'{key}: "{inner}"'
    if value.startswith("'"):
        return f"an apostrophe ends a value in '…': use double quotes instead — {quoted}"
    if value.startswith('"'):
        return f'close the quote, and write a " inside the value as \\" — {quoted}'
    return f"put the value in double quotes — {quoted}"


def _keep_hashes(meta: dict[Any, Any], lines: list[str]) -> None:
    """YAML reads `` #`` in an unquoted value as the start of a comment: ``subject: Issue #12
    news`` became the subject "Issue", silently. For the text keys that is never meant (a
    chair writes no YAML comments): the value is taken whole, as written. A value continued
    on indented lines is read the same way."""
    for number, line in enumerate(lines, start=2):
        match = _KEY_VALUE.match(line.rstrip("\r\n")) or re.match(
            r"(?P<key>[A-Za-z_][\w-]*)\s*:(?P<value>)\s*\Z", line.rstrip("\r\n")
        )
        if not match or match.group("key") not in ("title", "subject", "preheader"):
            continue
        value = match.group("value")
        if value[:1] in ("'", '"', "|", ">"):
            continue
        # The value's lines: this one and the indented ones that continue it.
        block = [(number, value)]
        for offset, more in enumerate(lines[number - 1 :], start=number + 1):
            if not more[:1].isspace() or not more.strip():
                break
            block.append((offset, more.strip()))
        cut = next((n for n, part in block if " #" in f" {part}"), None)
        kept = meta.get(match.group("key"))
        written = " ".join(" ".join(part for _, part in block if part).split())
        if cut is None or not isinstance(kept, str) or " ".join(kept.split()) == written:
            continue
        meta[match.group("key")] = written
