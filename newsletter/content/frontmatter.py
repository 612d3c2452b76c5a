"""An issue's front matter: the YAML between the ``---`` lines, read as the chair meant it.

Splits it from the body, checks the keys (required, optional, misspelt), keeps a `` #`` in
text values, and names the line of every problem; :func:`key_line` finds a key's line for
the checks that report on it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..common.errors import IssueError
from .dates import read_date


@dataclass(frozen=True)
class Key:
    """A front-matter key: its kind of value and what it means (Markdown, for the front-matter
    reference page, docs/reference/front-matter.md, which is generated from :data:`KEYS`)."""

    name: str
    required: bool
    kind: str
    meaning: str
    default: str = ""


# Every front-matter key: the required ones first.
KEYS = (
    Key("title", True, "text, one line",
        "The issue's title, shown in the header, the web archive and its feed. No member "
        "fields here: `{{ … }}` in it is a `check` error."),
    Key("subject", True, "text, one line",
        "The email's subject line; may use member fields, e.g. "
        '`"{{ recipient.first_name }}, your December news"`.'),
    Key("preheader", True, "text, one line",
        "The preview text inboxes show after the subject (hidden in the body); member "
        'fields are filled in as in the subject (`{{ recipient.first_name or "Dear member" '
        "}}, …`; the web archive shows the fallback)."),
    Key("date", True, "date",
        "`YYYY-MM-DD` (also `2023-12-1`, `2023/12/01`), or written out with the month's name "
        "in English (`1 December 2023`, `December 1, 2023`, `Friday 1st Dec 2023`); numbers "
        "only in another order (`01/12/2023`) are refused, naming both readings. The newest "
        "date is the issue `preview` shows by default."),
    Key("lang", False, "language tag",
        "The issue's language (`<html lang>`, e.g. `en-GB`), when it differs from "
        "`organisation.toml`'s.", "the organisation's language"),
    Key("greeting", False, "`true` or `false`",
        '`false` leaves out the "Dear …," line for this issue.', "`true`"),
    Key("archive", False, "`true` or `false`",
        "`false` keeps the issue out of the web archive.", "`true`"),
    Key("draft", False, "`true` or `false`",
        "`true` (written by `newsletter new`): previews and `--test` sends work, a real send "
        "is refused (even with `--force`), the archive leaves it out. Delete the line when "
        "the issue is ready.", "`false`"),
)  # fmt: skip
REQUIRED_KEYS = tuple(key.name for key in KEYS if key.required)
OPTIONAL_KEYS = tuple(key.name for key in KEYS if not key.required)
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


@dataclass(frozen=True)
class KeyProblem:
    """One thing wrong with the front matter's keys, at its line. ``key`` is the known key
    it concerns; ``written`` a key as written that is a near miss of ``key`` (a typo)."""

    message: str
    line: int
    hint: str = ""
    key: str = ""
    written: str = ""

    def error(self, path: Path) -> IssueError:
        return IssueError(self.message, path=path, line=self.line, hint=self.hint or None)


# What a misspelt optional key would silently do if it were ignored: its default applies.
_IGNORED_MEANS = {
    "draft": "ignored, it would not hold the issue back as a draft",
    "archive": "ignored, it would let the issue be published in the web archive",
    "greeting": "ignored, it would let members be greeted by name",
    "lang": "ignored, it would leave the organisation's language in use",
}
# Words chairs use for a key that difflib does not find close enough.
_ALIASES = {"language": "lang", "locale": "lang"}


def near_miss(written: str, present: dict[str, Any] | None = None) -> str | None:
    """The known key a front-matter key not among them was most likely meant to be
    (``Draft``, ``darft``, ``archve``, ``pre-header``), or None for a key unlike any.

    A close spelling of a key that is set as well (``subtitle`` beside ``title``) is
    another key, not a typo of it; a case or separator variant is a typo all the same."""
    import difflib

    known = REQUIRED_KEYS + OPTIONAL_KEYS
    if written in known:
        return None
    folded = re.sub(r"[\s_-]+", "", written.casefold())
    if folded in known:
        return folded
    close = _ALIASES.get(folded) or next(
        iter(difflib.get_close_matches(folded, known, n=1, cutoff=0.75)), None
    )
    if close is None or (present is not None and close in present):
        return None
    return close


def key_problems(meta: dict[str, Any], text: str) -> list[KeyProblem]:
    """Every missing, misspelt, empty or mistyped key, in the order a reader meets them;
    ``text`` is the whole file, for the line numbers."""
    problems: list[KeyProblem] = []
    typos = {key: meant for key in meta if (meant := near_miss(key, meta)) is not None}
    for key in REQUIRED_KEYS:
        if key not in meta:
            typo = next((k for k, meant in typos.items() if meant == key), None)
            if typo:
                problems.append(
                    KeyProblem(
                        f"unknown key {typo!r}: did you mean {key!r}?",
                        key_line(text, typo),
                        f"rename it to '{key}:'",
                        key,
                        typo,
                    )
                )
            else:
                problems.append(
                    KeyProblem(
                        f"front matter has no {key!r}",
                        1,
                        f"add a line '{key}: …' between the --- lines",
                        key,
                    )
                )
            continue
        if meta[key] is None or (isinstance(meta[key], str) and not meta[key].strip()):
            problems.append(KeyProblem(f"{key!r} is empty", key_line(text, key), "write it", key))
    for typo, key in typos.items():
        if key in REQUIRED_KEYS:
            continue  # said above, as the required key it stands for
        # A misspelt optional key is ignored, so its guard is off: `darft: true` let a
        # draft be sent, `archve: false` published the issue. An error, as a required one.
        problems.append(
            KeyProblem(
                f"unknown key {typo!r}: did you mean {key!r}?",
                key_line(text, typo),
                f"rename it to '{key}:' ({_IGNORED_MEANS[key]})",
                key,
                typo,
            )
        )
    return problems + _value_problems(meta, text)


def _value_problems(meta: dict[str, Any], text: str) -> list[KeyProblem]:
    problems = []
    for key in ("title", "subject", "preheader"):
        value = meta.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue  # missing or empty: said already
        if not isinstance(value, str):
            problems.append(
                KeyProblem(f"{key!r} must be text", key_line(text, key), "quote it", key)
            )
        elif "\n" in value.strip():
            problems.append(KeyProblem(f"{key!r} must be one line", key_line(text, key), key=key))
    for key in ("greeting", "archive", "draft"):
        if key in meta and not isinstance(meta[key], bool):
            problems.append(
                KeyProblem(f"{key!r} must be true or false", key_line(text, key), key=key)
            )
    lang = meta.get("lang") or ""
    if not isinstance(lang, str) or "\n" in lang.strip():
        problems.append(
            KeyProblem(
                f"'lang' must be a language tag, not {lang!r}",
                key_line(text, "lang"),
                "write e.g. 'lang: en-GB', or leave it out for the organisation's language",
                "lang",
            )
        )
    return problems


def check_keys(meta: dict[str, Any], text: str, path: Path) -> None:
    """Raise :class:`IssueError` (naming the line) for the first missing, misspelt, empty
    or mistyped key; ``text`` is the whole file, for the line numbers."""
    problems = key_problems(meta, text)
    if problems:
        raise problems[0].error(path)


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


# ---- read for the pre-flight report: every problem found, none raised --------------------


def read_leniently(text: str, path: Path) -> tuple[dict[str, Any], str, int, list[KeyProblem]]:
    """(front matter as written, body, body line, every problem) where
    :func:`split_front_matter` and :func:`check_keys` raise the first. The caller goes on
    to check the body with :func:`usable_front_matter`: `check` reports a misspelt key
    together with the draft flag, a broken picture and a missing unsubscribe link."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != _FENCE:
        try:
            split_front_matter(text, path)
        except IssueError as error:
            return {}, text, 1, [_problem(error)]
    try:
        meta, body, body_line = split_front_matter(text, path)
    except IssueError as error:
        end = next((n for n, line in enumerate(lines[1:], start=1) if line.strip() == _FENCE), 0)
        if not end:  # never closed: it is all front matter
            return {}, "", len(lines) + 1, [_problem(error)]
        body, body_line = "".join(lines[end + 1 :]), end + 2
        meta = _without_dates(lines[1:end])
        if meta is None:  # not YAML at all: the one problem is what to fix first
            return {}, body, body_line, [_problem(error)]
        # A date YAML could not build ("2024-13-45"): read as text, said by issue_date.
    return meta, body, body_line, key_problems(meta, text)


def _problem(error: IssueError) -> KeyProblem:
    return KeyProblem(error.message, error.line or 1, error.hint or "")


def _without_dates(lines: list[str]) -> dict[str, Any] | None:
    """The front matter with dates left as text (None if it is not YAML even so)."""
    import yaml

    class NoDates(yaml.SafeLoader):
        pass

    NoDates.yaml_implicit_resolvers = {
        first: [(tag, regex) for tag, regex in resolvers if not tag.endswith(":timestamp")]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    try:
        meta = yaml.load("".join(lines), Loader=NoDates) or {}  # a SafeLoader
    except (ValueError, yaml.YAMLError):
        return None
    if not isinstance(meta, dict):
        return None
    _keep_hashes(meta, lines)
    return {str(k): v for k, v in meta.items()}


def usable_front_matter(
    meta: dict[str, Any], problems: list[KeyProblem], stem: str
) -> dict[str, Any]:
    """The front matter as the chair meant it, to check the rest of the issue with: a
    misspelt key's value under the key it stands for (``Draft: true`` is a draft), a
    stand-in for a required text that is missing or unusable, an unusable optional value
    left out. Never sent: only `check` reads an issue so, and the problems are errors."""
    fixed = dict(meta)
    for problem in problems:
        if problem.written and problem.key not in meta:
            fixed[problem.key] = meta[problem.written]
    for key in ("title", "subject", "preheader", "lang"):
        value = fixed.get(key)
        if key in fixed and (not isinstance(value, str) or "\n" in value.strip()):
            del fixed[key]
    for key in ("greeting", "archive", "draft"):
        if key in fixed and not isinstance(fixed[key], bool):
            del fixed[key]  # its default: the problem is an error of its own
    for key in ("title", "subject", "preheader"):
        if not str(fixed.get(key) or "").strip():
            fixed[key] = fixed.get("title") or stem if key != "preheader" else ""
    return fixed
