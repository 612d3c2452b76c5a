"""Find issue files and parse one into the content model.

An issue is ``issues/<slug>.md``: YAML front matter between ``---`` lines, then a CommonMark
body. ``#`` starts a section, ``##`` an article, ``###`` a sub-heading; ``::: facts`` holds an
event's key facts as ``Label: value`` lines; ``[Text](url){.button}`` on its own line is a
call-to-action button; ``::: signoff`` holds the closing words. Every error names the file
and line.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..common.errors import IssueError
from .model import (
    Article,
    Block,
    BulletList,
    Button,
    Code,
    Emphasis,
    Fact,
    Facts,
    Field,
    Image,
    Inline,
    Issue,
    LineBreak,
    Link,
    Paragraph,
    Quote,
    Section,
    SubHeading,
    Table,
    Text,
    plain,
)

SkipHandler = Callable[[IssueError], None]
REQUIRED_KEYS = ("title", "subject", "preheader", "date")
# Optional front-matter keys (documented in the README).
OPTIONAL_KEYS = ("lang", "greeting", "archive", "draft")
CONTAINERS = ("facts", "signoff")
_FENCE = "---"


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
            text = _read(path)
            meta, _, _ = split_front_matter(text, path)
            dated.append((_date(meta, text, path), path.name, path))
        except IssueError as error:
            errors.append(error)
            if on_skip is not None:
                on_skip(error)
    if not dated:
        raise errors[0]
    return max(dated)[2]


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
    return parse_issue(issue_path(slug_or_path, issues_dir))


def parse_issue(path: Path) -> Issue:
    text = _read(path)
    meta, body, body_line = split_front_matter(text, path)
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
    sections, signoff = _BodyParser(path, body_line).parse(escape_field_pipes(blank_comments(body)))
    return Issue(
        slug=path.stem,
        path=path,
        title=meta["title"].strip(),
        subject=meta["subject"].strip(),
        preheader=meta["preheader"].strip(),
        date=_date(meta, text, path),
        sections=sections,
        signoff=signoff,
        front_matter=meta,
        source=text,
        lang=lang.strip(),
        greeting=meta.get("greeting", True),
        archive=meta.get("archive", True),
        draft=meta.get("draft", False),
    )


def indented_code_lines(issue: Issue) -> list[int]:
    """File lines where an indented code block starts (4 spaces or a tab): prose indented
    as in a word processor, which shows as code. Fenced code (```) is meant; not listed."""
    _, body, body_line = split_front_matter(issue.source, issue.path)
    tokens = _markdown().parse(escape_field_pipes(blank_comments(body)))
    return [body_line + t.map[0] for t in tokens if t.type == "code_block" and t.map]


def _misspelt(key: str, meta: dict[str, Any]) -> str | None:
    """The front-matter key that is most likely a typo of the missing ``key``."""
    import difflib

    unknown = [k for k in meta if k not in REQUIRED_KEYS and k not in OPTIONAL_KEYS]
    close = difflib.get_close_matches(key, unknown, n=1, cutoff=0.75)
    return close[0] if close else None


# ---- front matter --------------------------------------------------------------------------


def _read(path: Path) -> str:
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


_COMMENT = re.compile(r"<!--.*?-->", re.S)
# A paragraph that is one ![alt](target) and nothing else (see _BodyParser.spaced_image).
_LONE_IMAGE = re.compile(r"\A!\[(?P<alt>[^\]\n]*)\]\((?P<target>[^\n]*)\)\s*\Z")
_TRAILING_TITLE = re.compile(r"""\s+("[^"]*"|'[^']*')\s*\Z""")


def blank_comments(body: str) -> str:
    """Drop <!-- guidance comments --> but keep their line breaks, so line numbers hold."""
    return _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), body)


_BRACES = re.compile(r"\{\{[^{}\n]*\|[^{}\n]*\}\}")
_CODE_SPAN = re.compile(r"`[^`\n]*`")


def escape_field_pipes(body: str) -> str:
    """``{{ recipient.x | default("…") }}`` holds a pipe, which in a table row would split
    the cell: escape it (``\\|``, which CommonMark and GFM tables both read as ``|``) —
    outside code, where a backslash would show. Line numbers are kept."""
    out: list[str] = []
    fenced = False
    for line in body.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and "|" in line and "{{" in line:
            spans = [m.span() for m in _CODE_SPAN.finditer(line)]

            def escape(match: re.Match[str], spans: list[tuple[int, int]] = spans) -> str:
                if any(a <= match.start() < b for a, b in spans):
                    return match.group(0)
                return re.sub(r"(?<!\\)\|", r"\\|", match.group(0))

            line = _BRACES.sub(escape, line)
        out.append(line)
    return "\n".join(out)


def key_line(text: str, key: str) -> int:
    """The 1-based line where front-matter ``key`` is set (1 if it is not)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"{re.escape(key)}\s*:", line):
            return number
    return 1


def _date(meta: dict[str, Any], text: str, path: Path) -> dt.date:
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


# Month names and the abbreviations people write, as in dates and slugs.
MONTHS = {
    name: number
    for number, names in enumerate(
        (
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
        ),
        start=1,
    )
    for name in names
}
_WEEKDAY = (
    r"(?:(?P<weekday>mon|tue|wed|thu|fri|sat|sun)(?:day|s|nes|nesday|rs|rsday|urday)?\.?,?\s+)?"
)
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_MONTH = r"(?P<month>[a-z]+)\.?"
_YEAR = r"(?P<year>\d{4})"
# "1 December 2023", "Friday 1st Dec 2023" (British); "December 1, 2023" (American): the
# month is a word, so neither can be misread, unlike 01/12/2023.
_WRITTEN_DATES = (
    re.compile(rf"{_WEEKDAY}{_DAY}\s+(?:of\s+)?{_MONTH},?\s+{_YEAR}"),
    re.compile(rf"{_WEEKDAY}{_MONTH}\s+{_DAY},?\s+{_YEAR}"),
)
_YEAR_FIRST = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_NUMERIC_DATE = re.compile(r"(?P<a>\d{1,2})[/.-](?P<b>\d{1,2})[/.-](?P<year>\d{4})")


def read_date(text: str) -> dt.date:
    """An issue date: ``YYYY-MM-DD``, or written out with the month's name in English
    (``1 December 2023``, ``December 1, 2023``). Numbers only in another order
    (``01/12/2023``: 1 December in Britain, 12 January in the US) are refused; the
    ValueError says what to write instead, in the YYYY-MM-DD form."""
    value = " ".join(text.split())
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        pass
    year_first = _YEAR_FIRST.fullmatch(value)
    if year_first:  # 2023-12-1, 2023/12/01: the year first is always year, month, day
        year, month, day = (int(part) for part in year_first.groups())
        try:
            return dt.date(year, month, day)
        except ValueError:
            month_name = (
                f"{dt.date(year, month, 1):%B %Y} has no day {day}: " if 1 <= month <= 12 else ""
            )
            raise ValueError(f"{month_name}write it as YYYY-MM-DD, e.g. 2023-12-14") from None
    lowered = value.lower()
    for pattern in _WRITTEN_DATES:
        match = pattern.fullmatch(lowered)
        if match and match.group("month") in MONTHS:
            day, year = int(match.group("day")), int(match.group("year"))
            month = MONTHS[match.group("month")]
            try:
                day_ = dt.date(year, month, day)
            except ValueError:
                raise ValueError(
                    f"{dt.date(year, month, 1):%B %Y} has no day {day}: write it as YYYY-MM-DD"
                ) from None
            weekday = match.group("weekday")
            if weekday and weekday != f"{day_:%a}".lower():
                # "Monday 1 December 2023" was a Friday: which of the two was meant?
                raise ValueError(
                    f"{day_.day} {day_:%B %Y} is a {day_:%A}, not a "
                    f"{value.split()[0].rstrip(',.')}: write it as YYYY-MM-DD, "
                    f"e.g. {day_.isoformat()}"
                )
            return day_
    numeric = _NUMERIC_DATE.fullmatch(value)
    if numeric:
        a, b, year = (int(numeric.group(n)) for n in ("a", "b", "year"))
        readings = []
        for day, month in ((a, b), (b, a)):
            try:
                readings.append(dt.date(year, month, day))
            except ValueError:
                continue
        readings = sorted(set(readings))
        if len(readings) == 2:
            first, second = readings
            raise ValueError(
                f"it could be {first.day} {first:%B} or {second.day} {second:%B}: "
                f"write it as YYYY-MM-DD, {first.isoformat()} or {second.isoformat()}"
            )
        if readings:
            raise ValueError(f"write it as YYYY-MM-DD: {readings[0].isoformat()}")
    raise ValueError("write it as YYYY-MM-DD, e.g. 2023-12-14 (or 14 December 2023)")


# ---- body ----------------------------------------------------------------------------------


def _markdown():
    from markdown_it import MarkdownIt
    from mdit_py_plugins.attrs import attrs_plugin
    from mdit_py_plugins.container import container_plugin

    # GFM tables; bare URLs become links (linkify-it-py), but only with a scheme or www.
    md = MarkdownIt("commonmark", {"html": False, "typographer": False, "linkify": True})
    md.enable(["table", "linkify"])
    md.linkify.set({"fuzzy_email": False})
    for name in CONTAINERS:
        md.use(container_plugin, name=name)
    return md.use(attrs_plugin)


class _BodyParser:
    """Walks markdown-it's token stream once and builds sections, articles and blocks."""

    def __init__(self, path: Path, first_line: int) -> None:
        self.path = path
        self.offset = first_line  # token.map[0] is 0-based within the body

    def error(self, message: str, token: Any, hint: str | None = None) -> IssueError:
        line = self.offset + token.map[0] if token is not None and token.map else None
        return IssueError(message, path=self.path, line=line, hint=hint)

    def line(self, token: Any) -> int:
        return self.offset + token.map[0] if token.map else 0

    def parse(self, body: str) -> tuple[list[Section], list[Block]]:
        tokens = _markdown().parse(body)
        sections: list[Section] = []
        signoff: list[Block] = []
        target: list[Block] | None = None  # where the next block goes
        in_signoff = False
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            if tok.type == "heading_open":
                nodes = self.inlines(tokens[i + 1])
                text = plain(nodes)
                level = int(tok.tag[1])
                # A heading that is one link ("## [Register now](https://…)") keeps it;
                # a link among other words in a heading is `check`'s error.
                whole = nodes[0] if len(nodes) == 1 and isinstance(nodes[0], Link) else None
                href = whole.href if whole is not None and level > 1 else ""
                if in_signoff:
                    raise self.error("headings are not allowed in a signoff block", tok)
                if level == 1:
                    sections.append(Section(title=text, line=self.line(tok)))
                    target = sections[-1].blocks
                elif level == 2:
                    if not sections:
                        sections.append(Section(title="", line=self.line(tok)))
                    article = Article(title=text, line=self.line(tok), href=href)
                    sections[-1].articles.append(article)
                    target = article.blocks
                else:
                    if target is None:
                        sections.append(Section(title="", line=self.line(tok)))
                        target = sections[-1].blocks
                    target.append(SubHeading(text=text, line=self.line(tok), href=href))
                if not text.strip():
                    raise self.error("empty heading", tok)
                i += 3
                continue
            if tok.type == "container_signoff_open":
                in_signoff = True
                i += 1
                continue
            if tok.type == "container_signoff_close":
                in_signoff = False
                i += 1
                continue
            if tok.type == "hr":
                i += 1
                continue
            parsed, i = self.block(tokens, i)
            for block in parsed if isinstance(parsed, list) else [parsed]:
                if in_signoff:
                    signoff.append(block)
                else:
                    if target is None:
                        sections.append(Section(title="", line=block.line))
                        target = sections[-1].blocks
                    target.append(block)
        if not sections:
            raise IssueError(
                "the issue has no content",
                path=self.path,
                line=self.offset,
                hint="write '# Section' and '## Article' headings with paragraphs below it",
            )
        return sections, signoff

    # Each block parser takes the index of an *_open token and returns (block, next index).
    def block(self, tokens: list[Any], i: int) -> tuple[Block | list[Block], int]:
        tok = tokens[i]
        kind = tok.type
        if kind == "paragraph_open":
            return self.paragraph(tokens[i + 1], tok), i + 3
        if kind in ("bullet_list_open", "ordered_list_open"):
            whole, after = self.list_block(tokens, i)
            return _restarted(whole, tokens, i, self.line), after
        if kind == "blockquote_open":
            close = _closing(tokens, i)
            return Quote(paragraphs=self.quoted(tokens[i + 1 : close]), line=self.line(tok)), (
                close + 1
            )
        if kind == "container_facts_open":
            close = _closing(tokens, i)
            return self.facts(tokens[i + 1 : close], tok), close + 1
        if kind == "table_open":
            close = _closing(tokens, i)
            return self.table(tokens[i + 1 : close], tok), close + 1
        if kind in ("fence", "code_block"):
            return Paragraph(content=_code_lines(tok), line=self.line(tok)), i + 1
        raise self.error(f"unsupported Markdown ({kind.replace('_open', '')})", tok)

    def quoted(self, inner: list[Any]) -> tuple[tuple[Inline, ...], ...]:
        """A quote's paragraphs. Code blocks are not inline tokens (read apart, or a quoted
        code block was lost); a quoted list item starts with its bullet or number, which
        a quote of paragraphs otherwise drops ("1. Apply" read as "Apply")."""
        paragraphs: list[tuple[Inline, ...]] = []
        numbers: list[int | None] = []  # per open list: the next number, None for bullets
        marker: tuple[Inline, ...] = ()
        for tok in inner:
            if tok.type == "bullet_list_open":
                numbers.append(None)
            elif tok.type == "ordered_list_open":
                numbers.append(int(tok.attrs.get("start", 1)))
            elif tok.type in ("bullet_list_close", "ordered_list_close"):
                numbers.pop()
            elif tok.type == "list_item_open" and numbers:
                indent = "   " * (len(numbers) - 1)
                number = numbers[-1]
                marker = (Text(f"{indent}• " if number is None else f"{indent}{number}. "),)
                if number is not None:
                    numbers[-1] = number + 1
            elif tok.type == "inline":
                paragraphs.append(_merge_text(marker + self.inlines(tok)))
                marker = ()
            elif tok.type in ("fence", "code_block"):
                paragraphs.append(_code_lines(tok))
        return tuple(paragraphs)

    def table(self, inner: list[Any], opener: Any) -> Table:
        header: list[tuple[Inline, ...]] = []
        rows: list[list[tuple[Inline, ...]]] = []
        align: list[str] = []
        in_head = False
        for tok in inner:
            if tok.type == "thead_open":
                in_head = True
            elif tok.type == "thead_close":
                in_head = False
            elif tok.type == "tr_open" and not in_head:
                rows.append([])
            elif tok.type == "th_open":
                style = str(tok.attrs.get("style", ""))
                align.append(style.partition("text-align:")[2].strip())
            elif tok.type == "inline":
                cell = self.inlines(tok)
                if in_head:
                    header.append(cell)
                else:
                    rows[-1].append(cell)
        return Table(
            header=tuple(header),
            rows=tuple(tuple(row) for row in rows),
            align=tuple(align),
            line=self.line(opener),
        )

    def buttons(self, only: list[Any], opener: Any) -> list[Block] | None:
        """A paragraph of nothing but ``[Text](url){.button}`` links: one button each."""
        found: list[Block] = []
        j = 0
        while j < len(only):
            child = only[j]
            if child.type in ("softbreak", "hardbreak") or (
                child.type == "text" and not child.content.strip()
            ):
                j += 1
                continue
            if (
                child.type != "link_open"
                or "button" not in str(child.attrs.get("class", "")).split()
            ):
                return None
            close = next(k for k in range(j + 1, len(only)) if only[k].type == "link_close")
            if any(c.type == "link_open" for c in only[j + 1 : close]):
                return None
            found.append(
                Button(
                    text=plain(self.inlines_of(only[j + 1 : close])),
                    href=str(child.attrs.get("href", "")),
                    line=self.line(opener)
                    + sum(1 for c in only[:j] if c.type in ("softbreak", "hardbreak")),
                )
            )
            j = close + 1
        return found or None

    def paragraph(self, inline: Any, opener: Any) -> Block | list[Block]:
        children = inline.children or []
        if inline.content.startswith(":::"):
            name = inline.content[3:].split("\n")[0].strip()
            raise self.error(
                f"unknown block '::: {name}'" if name else "':::' closes no open block",
                opener,
                hint=f"known blocks: {', '.join('::: ' + c for c in CONTAINERS)}",
            )
        only = [c for c in children if not (c.type == "text" and not c.content.strip())]
        if not any(c.type == "image" for c in only) and _LONE_IMAGE.match(inline.content):
            only = self.spaced_image(inline, opener)
        # A lone image is an image block; a lone image inside a link is a linked one.
        href = ""
        if (
            len(only) == 3
            and [c.type for c in only] == ["link_open", "image", "link_close"]
            and "button" not in str(only[0].attrs.get("class", "")).split()
        ):
            href = str(only[0].attrs.get("href", ""))
            only = only[1:2]
        if len(only) == 1 and only[0].type == "image":
            img = only[0]
            return Image(
                src=img.attrs.get("src", ""),
                alt=plain(self.inlines_of(img.children or [])),
                title=str(img.attrs.get("title") or ""),
                line=self.line(opener),
                href=href,
            )
        # Links marked {.button} alone in a paragraph (one or several): calls to action.
        buttons = self.buttons(only, opener)
        if buttons:
            return buttons[0] if len(buttons) == 1 else buttons
        return Paragraph(content=self.inlines(inline), line=self.line(opener))

    def spaced_image(self, inline: Any, opener: Any) -> list[Any]:
        """A line written as an image that CommonMark did not take as one: almost always a
        file name with spaces (``Team Photo.JPG``, ``IMG 0042 (1).jpg``), which CommonMark
        only accepts between ``<…>``. Read it so; anything else is an error naming the line,
        never raw Markdown shown to every member."""
        match = _LONE_IMAGE.match(inline.content)
        assert match is not None
        alt, target = match.group("alt"), match.group("target").strip()
        title = _TRAILING_TITLE.search(target)
        path = target[: title.start()].strip() if title else target
        if path and "<" not in path and ">" not in path:
            rest = f" {title.group(1)}" if title else ""
            tokens = _markdown().parseInline(f"![{alt}](<{path}>{rest})")[0].children or []
            found = [c for c in tokens if not (c.type == "text" and not c.content.strip())]
            if len(found) == 1 and found[0].type == "image":
                return found
        if path.lower().startswith("file:"):
            hint = "write the file's path relative to the issue file, e.g. images/photo.jpg"
        else:
            hint = (
                "write it as ![what the picture shows](images/photo.jpg), "
                "the path relative to the issue file"
            )
        raise self.error(
            "this line looks like a picture but Markdown cannot read it as one",
            opener,
            hint=hint,
        )

    def list_block(self, tokens: list[Any], i: int) -> tuple[BulletList, int]:
        opener = tokens[i]
        close = _closing(tokens, i)
        items: list[tuple[Inline, ...]] = []
        sublists: list[BulletList | None] = []
        after_code = False
        j = i + 1
        while j < close:
            tok = tokens[j]
            if tok.type == "list_item_open":
                items.append(())
                sublists.append(None)
            elif tok.type in ("bullet_list_open", "ordered_list_open"):
                sublists[-1], j = self.list_block(tokens, j)
                continue
            elif tok.type == "table_open":
                # A list item holds lines, not blocks: a table indented under an item had
                # its cells run together ("Event Date Expo 9 May"). One line per row,
                # each cell with its column's label, as the table reads on a phone.
                end = _closing(tokens, j)
                rows = _table_lines(self.table(tokens[j + 1 : end], tok))
                for row in rows:
                    items[-1] = items[-1] + ((LineBreak(),) if items[-1] else ()) + row
                after_code = True
                j = end + 1
                continue
            elif tok.type == "inline":
                # A second paragraph in the same item reads on after a space (after a code
                # block, on a line of its own).
                joiner = ((LineBreak(),) if after_code else (Text(" "),)) if items[-1] else ()
                items[-1] = items[-1] + joiner + self.inlines(tok)
            elif tok.type in ("fence", "code_block"):
                # An indented code block in an item: on lines of its own, never dropped.
                joiner = (LineBreak(),) if items[-1] else ()
                items[-1] = items[-1] + joiner + _code_lines(tok)
            if tok.type in ("inline", "fence", "code_block", "list_item_open"):
                after_code = tok.type in ("fence", "code_block")
            j += 1
        block = BulletList(
            items=tuple(items),
            ordered=opener.type == "ordered_list_open",
            line=self.line(opener),
            sublists=tuple(sublists) if any(sublists) else (),
            start=int(opener.attrs.get("start", 1)),
        )
        return block, close + 1

    def facts(self, inner: list[Any], opener: Any) -> Facts:
        facts: list[Fact] = []
        for tok in inner:
            if tok.type in ("paragraph_open", "paragraph_close"):
                continue
            if tok.type != "inline":
                raise self.error("a facts block holds only 'Label: value' lines", tok or opener)
            for number, line_nodes in enumerate(_split_lines(self.inlines(tok))):
                line_no = self.line(tok) + number
                first = line_nodes[0] if line_nodes else None
                if not isinstance(first, Text) or ":" not in first.text:
                    raise IssueError(
                        "each line of a facts block must be 'Label: value'",
                        path=self.path,
                        line=line_no,
                        hint="e.g. 'Date: 6-8 March 2024'; end the block with a ':::' line",
                    )
                label, _, rest = first.text.partition(":")
                value = ((Text(rest.lstrip()),) if rest.strip() else ()) + tuple(line_nodes[1:])
                if not label.strip() or not value:
                    raise IssueError(
                        "a fact needs a label and a value",
                        path=self.path,
                        line=line_no,
                        hint="e.g. 'Location: Houston, Texas'",
                    )
                facts.append(Fact(label=label.strip(), value=value))
        if not facts:
            raise self.error("empty facts block", opener)
        return Facts(facts=tuple(facts), line=self.line(opener))

    def inlines(self, inline_token: Any) -> tuple[Inline, ...]:
        children = inline_token.children or []
        for child in children:
            if child.type == "image":
                alone = [c for c in children if not (c.type == "text" and not c.content.strip())]
                if len(alone) == 1:  # alone, but in a heading, list item, quote, cell or facts
                    raise self.error(
                        "a picture cannot be inside a heading, list, quote, table or facts block",
                        inline_token,
                        hint="put it on a line of its own, with a blank line before and after",
                    )
                raise self.error(
                    "an image must stand on a line of its own",
                    inline_token,
                    hint="put a blank line before and after it",
                )
        return self.inlines_of(children)

    def inlines_of(self, children: list[Any]) -> tuple[Inline, ...]:
        """markdown-it's flat inline tokens → a nested tuple of our inline nodes."""
        stack: list[tuple[str, dict[str, Any], list[Inline]]] = [("root", {}, [])]
        for child in children:
            kind = child.type
            out = stack[-1][2]
            if kind == "text":
                if child.content:
                    out.append(Text(child.content))
            elif kind == "softbreak":
                out.append(Text("\n"))
            elif kind == "hardbreak":
                out.append(LineBreak())
            elif kind == "code_inline":
                out.append(Code(child.content))
            elif kind == "image":
                out.append(Text(child.content))
            elif kind.endswith("_open"):
                attrs = dict(child.attrs)
                if child.markup == "linkify":
                    attrs["linkify"] = True
                stack.append((kind, attrs, []))
            elif kind.endswith("_close"):
                opened, attrs, nodes = stack.pop()
                if opened == "link_open":
                    href = str(attrs.get("href", ""))
                    if attrs.get("linkify") and not plain(tuple(nodes)).startswith("http"):
                        href = "https://" + href.removeprefix("http://")  # "www.…" written
                    node: Inline = Link(
                        href=href,
                        children=tuple(nodes),
                        title=str(attrs.get("title") or ""),
                    )
                elif opened == "strong_open":
                    node = Emphasis(tuple(nodes), strong=True)
                else:
                    node = Emphasis(tuple(nodes))
                stack[-1][2].append(node)
            elif kind == "html_inline":
                out.append(Text(child.content))
        return _fields(_line_breaks(_merge_text(tuple(stack[0][2]))))


# A member field the chair may write in the body or subject, with an optional fallback:
# {{ recipient.first_name }}, {{ recipient.first_name or "member" }},
# {{ recipient.first_name | default("member") }}. Anything else in {{ }} is reported.
FIELD_RE = re.compile(
    r"""\{\{-?\s*recipient\.([A-Za-z_][A-Za-z0-9_]*)\s*"""
    r"""(?:(?:or\s*|\|\s*default\(\s*)(?:"([^"]*)"|'([^']*)')\s*(?:,\s*true\s*)?\)?\s*)?-?\}\}"""
)


def field_of(match: re.Match[str]) -> Field:
    return Field(match.group(1), match.group(2) or match.group(3) or "")


_BR = re.compile(r"<br\s*/?>", re.I)


def _map_text(
    nodes: tuple[Inline, ...], split: Callable[[str], list[Inline] | None]
) -> tuple[Inline, ...]:
    """``nodes`` with each text node replaced by what ``split`` makes of its text (None:
    kept as it is), inside emphasis and link text too."""
    out: list[Inline] = []
    for node in nodes:
        if isinstance(node, Text):
            parts = split(node.text)
            out.extend([node] if parts is None else parts)
        elif isinstance(node, Emphasis):
            out.append(Emphasis(_map_text(node.children, split), node.strong))
        elif isinstance(node, Link):
            out.append(Link(node.href, _map_text(node.children, split), node.title))
        else:
            out.append(node)
    return tuple(out)


def _split_br(text: str) -> list[Inline] | None:
    if "<" not in text or not _BR.search(text):
        return None
    out: list[Inline] = []
    for number, part in enumerate(_BR.split(text)):
        if number:
            out.append(LineBreak())
        if part:
            out.append(Text(part))
    return out


def _split_fields(text: str) -> list[Inline] | None:
    if "{{" not in text:
        return None
    out: list[Inline] = []
    at = 0
    for match in FIELD_RE.finditer(text):
        if match.start() > at:
            out.append(Text(text[at : match.start()]))
        out.append(field_of(match))
        at = match.end()
    if at < len(text):
        out.append(Text(text[at:]))
    return out


def _line_breaks(nodes: tuple[Inline, ...]) -> tuple[Inline, ...]:
    """``<br>`` typed out of habit is a line break, as the chair meant, not text every member
    reads; all other HTML is shown as typed (``check`` warns)."""
    return _map_text(nodes, _split_br)


def _fields(nodes: tuple[Inline, ...]) -> tuple[Inline, ...]:
    """Split ``{{ recipient.x }}`` out of text nodes into :class:`Field` nodes."""
    return _map_text(nodes, _split_fields)


def _code_lines(token: Any) -> tuple[Inline, ...]:
    """A code block (fenced or indented) as code spans, one a line, with line breaks."""
    lines: list[Inline] = []
    for number, text in enumerate(token.content.rstrip("\n").split("\n")):
        lines.extend(((LineBreak(),) if number else ()) + (Code(text),))
    return tuple(lines)


def _restarted(
    whole: BulletList, tokens: list[Any], i: int, line_of: Callable[[Any], int]
) -> BulletList | list[BulletList]:
    """CommonMark runs "1. one" on from a list just above it (even after a blank line):
    typed "2023. … 2024. …" then "1. one", members read "2025. one". An item typed "1."
    after items typed with other numbers starts a new list, as the chair meant ("1. 1. 1.",
    numbering left to Markdown, stays one list)."""
    if not whole.ordered:
        return whole
    level = tokens[i].level + 1
    close = _closing(tokens, i)
    opened = [t for t in tokens[i + 1 : close] if t.type == "list_item_open" and t.level == level]
    typed = [t.info for t in opened]
    cuts = [n for n in range(1, len(typed)) if typed[n] == "1" and typed[n - 1] != "1"]
    if not cuts or len(typed) != len(whole.items):
        return whole
    parts = []
    for start, end in zip([0, *cuts], [*cuts, len(typed)], strict=True):
        parts.append(
            BulletList(
                items=whole.items[start:end],
                ordered=True,
                line=whole.line if start == 0 else line_of(opened[start]),
                sublists=whole.sublists[start:end] if whole.sublists else (),
                start=whole.start if start == 0 else 1,
            )
        )
    return parts


def _table_lines(table: Table) -> list[tuple[Inline, ...]]:
    """A table as lines of ``Label: value; Label: value`` (empty cells left out), for where
    a table cannot stand (inside a list item)."""
    labels = [plain(cell).strip() for cell in table.header]
    lines: list[tuple[Inline, ...]] = []
    for row in table.rows:
        line: tuple[Inline, ...] = ()
        for n, cell in enumerate(row):
            if not plain(cell).strip():
                continue
            label = labels[n] if n < len(labels) else ""
            line += ((Text("; "),) if line else ()) + ((Text(f"{label}: "),) if label else ())
            line += cell
        if line:
            lines.append(_merge_text(line))
    return lines


def _closing(tokens: list[Any], i: int) -> int:
    """Index of the token that closes tokens[i] (same nesting level)."""
    level = tokens[i].level
    close_type = tokens[i].type.replace("_open", "_close")
    for j in range(i + 1, len(tokens)):
        if tokens[j].type == close_type and tokens[j].level == level:
            return j
    return len(tokens) - 1


def _merge_text(nodes: tuple[Inline, ...]) -> tuple[Inline, ...]:
    out: list[Inline] = []
    for node in nodes:
        if isinstance(node, Text) and out and isinstance(out[-1], Text):
            out[-1] = Text(out[-1].text + node.text)
        else:
            out.append(node)
    return tuple(out)


def _split_lines(nodes: tuple[Inline, ...]) -> list[list[Inline]]:
    """Split top-level inline nodes at soft line breaks (facts are one per line)."""
    lines: list[list[Inline]] = [[]]
    for node in nodes:
        if isinstance(node, Text) and "\n" in node.text:
            parts = node.text.split("\n")
            for k, part in enumerate(parts):
                if k:
                    lines.append([])
                if part:
                    lines[-1].append(Text(part))
        elif isinstance(node, LineBreak):
            lines.append([])
        else:
            lines[-1].append(node)
    return [line for line in lines if line]
