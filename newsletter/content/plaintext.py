"""The plain-text twin, written from the content model (never scraped from the HTML).

Links become numbered references ("register your interest [3]") listed after each article,
lines are wrapped at 78 characters, and non-ASCII text is kept as it is.
"""

from __future__ import annotations

import re
import textwrap
import unicodedata
from collections.abc import Callable

from .model import Code, Emphasis, Field, Inline, LineBreak, Link, Table, Text

WIDTH = 78
# Stands for a space of code that wrapping must keep (a run of spaces aligns code); turned
# back into a space once the lines are wrapped.
KEPT_SPACE = "\x02"


class TextWriter:
    """Turns inline nodes into wrapped text and collects link references on the way."""

    def __init__(
        self,
        url: Callable[[str], str] = str,
        width: int = WIDTH,
        field: Callable[[Field], str] = lambda node: node.fallback,
    ) -> None:
        self.url = url  # e.g. adds UTM tags; applied to every link target
        self.field = field  # a member field: its slot token, filled per member
        self.width = width
        self.count = 0
        self.pending: list[tuple[int, str]] = []
        self.numbers: dict[str, int] = {}  # a URL cited again keeps its first number

    def inline(self, nodes: tuple[Inline, ...]) -> str:
        out: list[str] = []
        for node in nodes:
            if isinstance(node, Text):
                out.append(node.text)
            elif isinstance(node, Field):
                out.append(self.field(node))
            elif isinstance(node, Code):
                # Runs of spaces align code: all but the first survive the wrapping.
                out.append(re.sub(r"(?<= ) ", KEPT_SPACE, node.text))
            elif isinstance(node, LineBreak):
                out.append("\n")
            elif isinstance(node, Emphasis):
                inner = self.inline(node.children)
                out.append(f"*{inner}*" if node.strong else f"_{inner}_")
            elif isinstance(node, Link):
                out.append(self.link(self.inline(node.children), node.href))
        return "".join(out)

    def link(self, label: str, href: str) -> str:
        target = self.url(href)
        bare = href.removeprefix("mailto:")
        if label.strip() in (href, bare):
            # The text already is the address: repeating it as a reference helps nobody.
            return label if href.startswith("mailto:") else f"<{target}>"
        if "://" in href and label.strip() == href.split("://", 1)[1].rstrip("/"):
            return label  # a bare "www.…" the chair wrote: readable and typeable as it is
        if target not in self.numbers:
            self.count += 1
            self.numbers[target] = self.count
            self.pending.append((self.count, target))
        return f"{label} [{self.numbers[target]}]"

    def wrap(self, text: str, indent: str = "", first: str | None = None) -> str:
        """Wrap each hard line of ``text``; soft line breaks read as spaces."""
        lines: list[str] = []
        for k, hard in enumerate(text.split("\n\x00")):
            prefix = first if (first is not None and k == 0) else indent
            # A hard line starting with spaces is a code block's line (Markdown strips them
            # from prose): its indentation is meaning (Python, YAML), so it is kept.
            lead = " " * (len(hard) - len(hard.lstrip(" " + KEPT_SPACE)))
            lines.extend(
                textwrap.wrap(
                    " ".join(hard.lstrip(" " + KEPT_SPACE).split()),
                    width=self.width,
                    initial_indent=prefix + lead,
                    subsequent_indent=indent + lead,
                    break_long_words=False,
                    break_on_hyphens=False,
                )
                or [prefix.rstrip()]
            )
        return "\n".join(lines).replace(KEPT_SPACE, " ")

    def paragraph(
        self, nodes: tuple[Inline, ...], indent: str = "", first: str | None = None
    ) -> str:
        # A hard break (two spaces or backslash at line end) must survive the wrapping.
        return self.wrap(self.inline(_mark_hard_breaks(nodes)), indent, first)

    def table(self, table: Table) -> str:
        """Aligned columns when they fit the line width; else one "Label: value" line per
        cell, a blank line between rows (a narrow client still reads it)."""

        def cell_text(cell: tuple[Inline, ...]) -> str:
            return " ".join(self.inline(cell).replace(KEPT_SPACE, " ").split())

        header = [cell_text(cell) for cell in table.header]
        rows = [[cell_text(cell) for cell in row] for row in table.rows]
        columns = len(header)
        rows = [(row + [""] * columns)[:columns] for row in rows]
        widths = [
            max(display_width(text) for text in [header[k]] + [row[k] for row in rows])
            for k in range(columns)
        ]
        if sum(widths) + 2 * (columns - 1) <= self.width:
            align = list(table.align) + [""] * columns

            def line(cells: list[str]) -> str:
                padded = []
                for k, text in enumerate(cells):
                    pad = " " * (widths[k] - display_width(text))
                    padded.append(pad + text if align[k] == "right" else text + pad)
                return "  ".join(padded).rstrip()

            rule = "  ".join("-" * width for width in widths)
            return "\n".join([line(header), rule] + [line(row) for row in rows])
        blocks = []
        for row in rows:
            blocks.append(
                "\n".join(
                    self.wrap(value, "    ", f"{label}: " if label else "")
                    for label, value in zip(header, row, strict=True)
                    if value
                )
            )
        return "\n\n".join(blocks)

    def references(self) -> str:
        """The links collected since the last call, one per line."""
        lines = [self.labelled(f"[{n}]", url) for n, url in self.pending]
        self.pending = []
        return "\n".join(lines)

    def labelled(self, label: str, url: str) -> str:
        """``label url`` on one line, or the URL on a line of its own when that is too long
        (a URL cannot be wrapped without breaking it)."""
        line = f"{label} {url}"
        return line if len(line) <= self.width else f"{label}\n{url}"


def _mark_hard_breaks(nodes: tuple[Inline, ...]) -> tuple[Inline, ...]:
    return tuple(Text("\n\x00") if isinstance(n, LineBreak) else n for n in nodes)


def display_width(text: str) -> int:
    """Columns a terminal or mail client gives ``text``: wide (CJK, emoji) count twice."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def underline(text: str, char: str = "=") -> str:
    """A heading, wrapped at the line width like the paragraphs (a 200-character title ran
    on as one line), underlined as wide as its widest line."""
    lines = textwrap.wrap(
        " ".join(text.split()), width=WIDTH, break_long_words=False, break_on_hyphens=False
    ) or [""]
    width = min(max(display_width(line) for line in lines), WIDTH)
    return "\n".join(lines) + f"\n{char * width}"
