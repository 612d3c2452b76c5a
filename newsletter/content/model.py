"""The content model of one issue: what the chair wrote, independent of any output format.

Both the HTML (via MJML) and the plain-text part are generated from this model, so the two
can never drift apart. Inline content is a small tree of nodes; blocks are dataclasses.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

# ---- inline nodes -------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Emphasis:
    children: tuple[Inline, ...]
    strong: bool = False


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Link:
    href: str
    children: tuple[Inline, ...]
    title: str = ""


@dataclass(frozen=True)
class LineBreak:
    pass


@dataclass(frozen=True)
class Field:
    """A member field the chair wrote in the body, e.g. ``{{ recipient.organisation }}``:
    filled per member, with ``fallback`` when the member's value is empty."""

    name: str
    fallback: str = ""


Inline = Union[Text, Emphasis, Code, Link, LineBreak, Field]  # noqa: UP007 (used at runtime)


def plain(nodes: tuple[Inline, ...]) -> str:
    """The inline content as plain text, without any markup or URLs."""
    out: list[str] = []
    for node in nodes:
        if isinstance(node, Text | Code):
            out.append(node.text)
        elif isinstance(node, Field):
            out.append(node.fallback or node.name)
        elif isinstance(node, Emphasis | Link):
            out.append(plain(node.children))
        else:
            out.append(" ")
    return "".join(out)


# ---- blocks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Paragraph:
    content: tuple[Inline, ...]
    line: int = 0


@dataclass(frozen=True)
class BulletList:
    items: tuple[tuple[Inline, ...], ...]
    ordered: bool = False
    line: int = 0
    # A nested list under each item, or None (parallel to ``items``; empty = none at all).
    sublists: tuple[BulletList | None, ...] = ()
    start: int = 1  # the first number of an ordered list ("3. Attend" continues a list)

    def sublist(self, index: int) -> BulletList | None:
        return self.sublists[index] if index < len(self.sublists) else None


@dataclass(frozen=True)
class Quote:
    paragraphs: tuple[tuple[Inline, ...], ...]
    line: int = 0


@dataclass(frozen=True)
class Fact:
    label: str
    value: tuple[Inline, ...]


@dataclass(frozen=True)
class Facts:
    """An event's key facts (date, location, closing date, host …): a scannable block."""

    facts: tuple[Fact, ...]
    line: int = 0


@dataclass(frozen=True)
class Button:
    """A call to action."""

    text: str
    href: str
    line: int = 0


@dataclass(frozen=True)
class Table:
    """A GFM table: a header row and body rows of inline cells; ``align`` per column
    ("left", "center", "right" or "")."""

    header: tuple[tuple[Inline, ...], ...]
    rows: tuple[tuple[tuple[Inline, ...], ...], ...]
    align: tuple[str, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class Image:
    src: str
    alt: str
    title: str = ""
    line: int = 0
    href: str = ""  # a picture that is a link: [![alt](src)](href)


@dataclass(frozen=True)
class SubHeading:
    """A ``###`` heading inside an article (e.g. "Speakers")."""

    text: str
    line: int = 0
    href: str = ""  # the heading is one link: "### [Speakers](https://…)"


Block = Union[Paragraph, BulletList, Quote, Facts, Button, Image, SubHeading, Table]  # noqa: UP007


@dataclass
class Article:
    """A ``##`` heading and what follows it."""

    title: str
    blocks: list[Block] = field(default_factory=list)
    line: int = 0
    href: str = ""  # the heading is one link: "## [Register now](https://…)"

    @property
    def anchor(self) -> str:
        return slugify(self.title)


@dataclass
class Section:
    """A ``#`` heading (a band such as "Cluster's events"); ``title`` is empty for the opening
    articles that come before the first ``#`` heading."""

    title: str
    blocks: list[Block] = field(default_factory=list)  # before its first article
    articles: list[Article] = field(default_factory=list)
    line: int = 0

    @property
    def anchor(self) -> str:
        return slugify(self.title) if self.title else "opening"


@dataclass
class Issue:
    slug: str
    path: Path
    title: str
    subject: str
    preheader: str
    date: dt.date
    sections: list[Section]
    signoff: list[Block] = field(default_factory=list)
    front_matter: dict[str, object] = field(default_factory=dict)  # as written, for checks
    source: str = ""  # the file's text, for checks that report lines
    # The optional front-matter keys, typed and validated by the parser: templates and
    # the archive read these, never ``front_matter``, so a key's meaning lives in one place.
    lang: str = ""  # "" = the organisation's language
    greeting: bool = True  # False leaves out the "Dear …," line
    archive: bool = True  # False keeps the issue out of the web archive
    draft: bool = False  # True: not finished; kept out of the web archive

    @property
    def archived(self) -> bool:
        """Whether the web archive publishes this issue."""
        return self.archive and not self.draft

    def all_blocks(self):  # -> Iterator[Block]
        for section in self.sections:
            yield from section.blocks
            for article in section.articles:
                yield from article.blocks
        yield from self.signoff

    @property
    def articles(self) -> list[Article]:
        return [a for s in self.sections for a in s.articles]


def slugify(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
