"""Inline content: markdown-it's flat inline tokens made into our nested nodes (text,
emphasis, links, code, line breaks, member fields), and small helpers on such runs.

A member field is ``{{ recipient.x }}``, optionally with a fallback; ``<br>`` typed out of
habit is a line break.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .model import Code, Emphasis, Field, Inline, LineBreak, Link, Text, plain

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


def inline_nodes(children: list[Any]) -> tuple[Inline, ...]:
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
    return _fields(_line_breaks(merge_text(tuple(stack[0][2]))))


def code_lines(token: Any) -> tuple[Inline, ...]:
    """A code block (fenced or indented) as code spans, one a line, with line breaks."""
    lines: list[Inline] = []
    for number, text in enumerate(token.content.rstrip("\n").split("\n")):
        lines.extend(((LineBreak(),) if number else ()) + (Code(text),))
    return tuple(lines)


def merge_text(nodes: tuple[Inline, ...]) -> tuple[Inline, ...]:
    out: list[Inline] = []
    for node in nodes:
        if isinstance(node, Text) and out and isinstance(out[-1], Text):
            out[-1] = Text(out[-1].text + node.text)
        else:
            out.append(node)
    return tuple(out)


def split_lines(nodes: tuple[Inline, ...]) -> list[list[Inline]]:
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
