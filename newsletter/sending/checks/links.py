"""Checks of links and pictures in the issue: alt text, https, link targets (none, a
placeholder, http://, unusual) and link text (none, or "click here")."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from ...content import model
from ...content.images import is_local
from ..campaign import Campaign
from .findings import Check, Report, Severity
from .issue import in_issue
from .settings import PLACEHOLDER_HOSTS

VAGUE_LINK_TEXT = {
    "here",
    "click here",
    "this",
    "link",
    "this link",
    "read more",
    "more",
    "click",
    "click this",
    "go",
    "website",
    "this page",
    "here.",
    "more info",
    "learn more",
}


def links_in(
    blocks: list[model.Block],
) -> Iterator[tuple[int, model.Link, tuple[model.Inline, ...]]]:
    """Every link with its block's line and the inline run (sentence) around it."""

    def walk(nodes: tuple[model.Inline, ...], line: int, context: tuple[model.Inline, ...]):
        for node in nodes:
            if isinstance(node, model.Link):
                yield line, node, context
            elif isinstance(node, model.Emphasis):
                yield from walk(node.children, line, context)

    for block in blocks:
        if isinstance(block, model.Paragraph):
            yield from walk(block.content, block.line, block.content)
        elif isinstance(block, model.BulletList):
            lists = [block]
            while lists:
                current = lists.pop()
                for index, item in enumerate(current.items):
                    yield from walk(item, block.line, item)
                    if current.sublist(index):
                        lists.append(current.sublist(index))
        elif isinstance(block, model.Quote):
            for para in block.paragraphs:
                yield from walk(para, block.line, para)
        elif isinstance(block, model.Facts):
            for fact in block.facts:
                yield from walk(fact.value, block.line, fact.value)
        elif isinstance(block, model.Button):
            yield block.line, model.Link(block.href, (model.Text(block.text),)), ()
        elif isinstance(block, model.Image) and block.href:
            yield block.line, model.Link(block.href, (model.Text(block.alt),)), ()


def source_line(campaign: Campaign, start: int, needle: str) -> int:
    """The line at or after ``start`` that holds ``needle`` (a block spans several lines)."""
    lines = campaign.issue.source.splitlines()
    for number in range(max(start, 1), len(lines) + 1):
        if needle in lines[number - 1]:
            return number
    return start


def _sentence(context: tuple[model.Inline, ...], label: str) -> str:
    text = " ".join(model.plain(context).split())
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        if label in sentence:
            return sentence if len(sentence) <= 120 else sentence[:117] + "…"
    return text[:120]


def check_content(campaign: Campaign, report: Report) -> None:
    blocks = list(campaign.issue.all_blocks())
    for block in blocks:
        if isinstance(block, model.Image):
            where = in_issue(campaign, block.line)
            if not block.alt.strip():
                report.add(
                    Check.IMAGE_ALT,
                    Severity.ERROR,
                    where,
                    f"image {block.src} has no alt text",
                    "describe it: ![what the picture shows](…); many clients block images",
                )
            if not is_local(block.src) and not block.src.lower().startswith(("https://", "data:")):
                report.add(
                    Check.IMAGE_NOT_HTTPS,
                    Severity.WARNING,
                    where,
                    f"image {block.src} is not an https URL",
                    "host it on a website and use its https:// address",
                )
    for line, link, context in links_in(blocks):
        label = " ".join(model.plain(link.children).split())
        href = link.href.strip()
        where = in_issue(campaign, source_line(campaign, line, f"]({href}" if href else "]("))
        said = f'"{label}"'
        context_note = f' (in: "{_sentence(context, label)}")' if context else ""
        host = (urlsplit(href).hostname or "").lower() if "://" in href else ""
        if not href or href == "#":
            report.add(
                Check.LINK_NO_TARGET,
                Severity.WARNING,
                where,
                f"link {said} has no target" + context_note,
                "add the URL in (…)",
            )
        elif "todo" in href.lower() or "tbc" in href.lower() or host.endswith(PLACEHOLDER_HOSTS):
            report.add(
                Check.LINK_PLACEHOLDER,
                Severity.WARNING,
                where,
                f"link {said} points at a placeholder: {href}" + context_note,
                "replace it with the real address",
            )
        elif href.lower().startswith("http://"):
            report.add(
                Check.LINK_HTTP,
                Severity.WARNING,
                where,
                f"link {said} uses http://" + context_note,
                "use https:// if the site has it",
            )
        elif not href.lower().startswith(("https://", "mailto:", "tel:", "#")):
            report.add(
                Check.LINK_UNUSUAL,
                Severity.WARNING,
                where,
                f"link {said} has an unusual target: {href}" + context_note,
                "links in email must be absolute (https://…)",
            )
        if not label:
            report.add(
                Check.LINK_NO_TEXT,
                Severity.WARNING,
                where,
                f"link to {href or '(nothing)'} has no text" + context_note,
                "write the words to click between the [ ]",
            )
        elif label.lower().strip(" .!") in VAGUE_LINK_TEXT:
            report.add(
                Check.LINK_VAGUE,
                Severity.WARNING,
                where,
                f"link text {said} does not say where it goes" + context_note,
                "make the link text describe the target, e.g. 'register on the Innovate UK site'",
            )
