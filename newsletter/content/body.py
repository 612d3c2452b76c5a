"""An issue's body: CommonMark read into sections, articles and blocks.

``#`` starts a section, ``##`` an article, ``###`` a sub-heading; ``::: facts`` holds an
event's key facts as ``Label: value`` lines; ``[Text](url){.button}`` on its own line is a
call-to-action button; ``::: signoff`` holds the closing words. Every error names the file
and line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..common.errors import IssueError
from .frontmatter import split_front_matter
from .inlines import code_lines, inline_nodes, merge_text, split_lines
from .model import (
    Article,
    Block,
    BulletList,
    Button,
    Fact,
    Facts,
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

CONTAINERS = ("facts", "signoff")

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


def parse_body(body: str, path: Path, first_line: int) -> tuple[list[Section], list[Block]]:
    """The sections and the signoff of ``body``, which starts at line ``first_line`` of
    ``path`` (for the line numbers in errors)."""
    return _BodyParser(path, first_line).parse(escape_field_pipes(blank_comments(body)))


def indented_code_lines(issue: Issue) -> list[int]:
    """File lines where an indented code block starts (4 spaces or a tab): prose indented
    as in a word processor, which shows as code. Fenced code (```) is meant; not listed."""
    _, body, body_line = split_front_matter(issue.source, issue.path)
    tokens = _markdown().parse(escape_field_pipes(blank_comments(body)))
    return [body_line + t.map[0] for t in tokens if t.type == "code_block" and t.map]


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
            return Paragraph(content=code_lines(tok), line=self.line(tok)), i + 1
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
                paragraphs.append(merge_text(marker + self.inlines(tok)))
                marker = ()
            elif tok.type in ("fence", "code_block"):
                paragraphs.append(code_lines(tok))
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
                    text=plain(inline_nodes(only[j + 1 : close])),
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
                alt=plain(inline_nodes(img.children or [])),
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
                items[-1] = items[-1] + joiner + code_lines(tok)
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
            for number, line_nodes in enumerate(split_lines(self.inlines(tok))):
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
        return inline_nodes(children)


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
            lines.append(merge_text(line))
    return lines


def _closing(tokens: list[Any], i: int) -> int:
    """Index of the token that closes tokens[i] (same nesting level)."""
    level = tokens[i].level
    close_type = tokens[i].type.replace("_open", "_close")
    for j in range(i + 1, len(tokens)):
        if tokens[j].type == close_type and tokens[j].level == level:
            return j
    return len(tokens) - 1
