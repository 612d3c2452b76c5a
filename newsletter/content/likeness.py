"""Whether two issues are the same issue for the members: the rule that stops a copy of a
sent issue (``cp january-2027.md january-2027-final.md``) going to everyone again.

The rule, as the documentation states it:

* Only the words the chair wrote count: the body's headings, paragraphs, lists, quotes,
  facts, tables, buttons and picture descriptions, lower-cased, without punctuation,
  links' addresses, member fields or the template around them (every month shares the
  header and footer, and often the section headings).
* Two issues are the same when at least :data:`SAME_ISSUE` (80 %) of their runs of
  :data:`SHINGLE` (three) consecutive words are shared (Jaccard similarity of the two
  sets). A corrected typo changes three runs out of hundreds: the same issue. A new month
  with the same layout and new articles shares the headings only: another issue.
* Texts shorter than :data:`MIN_WORDS` words are not compared: too little to tell a copy
  from two short notes that happen to match.

Pure functions over the content model: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from .inlines import FIELD_RE
from .model import (
    Block,
    BulletList,
    Button,
    Facts,
    Field,
    Image,
    Inline,
    Issue,
    Paragraph,
    Quote,
    SubHeading,
    Table,
    plain,
)

SAME_ISSUE = 0.8
SHINGLE = 3
MIN_WORDS = 20
_WORD = re.compile(r"\w+")


def words(text: str) -> str:
    """``text`` as the comparison sees it: lower-case words, one space between them."""
    return " ".join(_WORD.findall(text.casefold()))


def body_words(issue: Issue) -> str:
    """The words of what the chair wrote in the body (see the module's rule)."""
    parts: list[str] = []
    for section in issue.sections:
        parts.append(section.title)
        parts.extend(_block_texts(section.blocks))
        for article in section.articles:
            parts.append(article.title)
            parts.extend(_block_texts(article.blocks))
    parts.extend(_block_texts(issue.signoff))
    return words(" ".join(parts))


def subject_words(issue: Issue) -> str:
    """The subject without member fields, as the comparison sees it."""
    return words(FIELD_RE.sub(" ", issue.subject))


def _block_texts(blocks: Iterable[Block]) -> Iterator[str]:
    for block in blocks:
        if isinstance(block, Paragraph):
            yield _text(block.content)
        elif isinstance(block, BulletList):
            for index, item in enumerate(block.items):
                yield _text(item)
                sub = block.sublist(index)
                if sub is not None:
                    yield from _block_texts([sub])
        elif isinstance(block, Quote):
            yield from (_text(paragraph) for paragraph in block.paragraphs)
        elif isinstance(block, Facts):
            for fact in block.facts:
                yield f"{fact.label} {_text(fact.value)}"
        elif isinstance(block, Button):
            yield block.text
        elif isinstance(block, Image):
            yield block.alt
        elif isinstance(block, SubHeading):
            yield block.text
        elif isinstance(block, Table):
            for row in (block.header, *block.rows):
                yield from (_text(cell) for cell in row)


def _text(nodes: tuple[Inline, ...]) -> str:
    # A member field is left out: filled per member, it is not what the chair wrote.
    return plain(tuple(node for node in nodes if not isinstance(node, Field)))


def shingles(text: str) -> set[tuple[str, ...]]:
    """The runs of :data:`SHINGLE` consecutive words in ``text`` (already :func:`words`)."""
    split = text.split()
    size = min(SHINGLE, len(split))
    return {tuple(split[i : i + size]) for i in range(len(split) - size + 1)} if split else set()


def similarity(first: str, second: str) -> float | None:
    """How alike two texts (already :func:`words`) are, from 0 to 1; None when either is
    shorter than :data:`MIN_WORDS` words (not compared)."""
    if len(first.split()) < MIN_WORDS or len(second.split()) < MIN_WORDS:
        return None
    a, b = shingles(first), shingles(second)
    return len(a & b) / len(a | b)


def same_issue(first: str, second: str) -> bool:
    """Whether two body texts (already :func:`words`) are the same issue by the rule."""
    score = similarity(first, second)
    return score is not None and score >= SAME_ISSUE
