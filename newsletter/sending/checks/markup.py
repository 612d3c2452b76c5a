"""Checks of what members would see as typed: template syntax other than member fields,
raw HTML, footnotes, strikethrough, link syntax Markdown could not read, an unclosed
comment, unpaired bold, indented text shown as code, links in headings or member fields
in a link's address."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from ...content import model
from ...content.body import indented_code_lines
from ...content.inlines import FIELD_RE
from ..campaign import Campaign
from .findings import Check, Report, Severity
from .issue import TEMPLATE_SYNTAX, body_lines, in_issue
from .links import links_in, source_line

# HTML tags shown as typed; <br> is not among them: the parser reads it as a line break.
_RAW_HTML = re.compile(r"</?(?![Bb][Rr]\s*/?>)[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_FOOTNOTE = re.compile(r"\[\^[^\]]+\]")
_STRIKE = re.compile(r"~~[^~]+~~")


class _Rule(NamedTuple):
    """Markup found in a line: reported once a line, with what was found in ``message``."""

    pattern: re.Pattern[str]
    check: Check
    severity: Severity
    message: str  # a format string: {!r} is what the pattern found
    fix: str


# Searched once member fields are taken out: any template syntax left is sent as typed.
_UNFILLED_SYNTAX = _Rule(
    TEMPLATE_SYNTAX,
    Check.TEMPLATE_SYNTAX,
    Severity.ERROR,
    "template syntax {!r} would be sent as typed",
    'only member fields are filled in, e.g. {{ recipient.first_name or "member" }}',
)
_SHOWN_AS_TYPED = (
    _Rule(
        _RAW_HTML,
        Check.RAW_HTML,
        Severity.WARNING,
        "raw HTML {!r} is shown as text in the email",
        "use Markdown instead: **bold**, _italic_, [text](https://…), a blank line",
    ),
    _Rule(
        _FOOTNOTE,
        Check.FOOTNOTE,
        Severity.WARNING,
        "footnote {!r} is not supported: it is shown as typed",
        "put the source in the sentence, or make it a link",
    ),
    _Rule(
        _STRIKE,
        Check.STRIKETHROUGH,
        Severity.WARNING,
        "strikethrough {!r} is not supported: it is shown as typed",
        "delete the words instead",
    ),
)


def _report_first(report: Report, where: str, text: str, rule: _Rule) -> None:
    """The rule's first match in ``text``, if any, as one finding at ``where``."""
    found = rule.pattern.search(text)
    if found:
        report.add(rule.check, rule.severity, where, rule.message.format(found.group(0)), rule.fix)


def check_source(campaign: Campaign, report: Report) -> None:
    """What the chair typed that the email would show literally: template syntax other than
    member fields (an error), raw HTML, footnotes, strikethrough (warnings)."""
    for number, line in body_lines(campaign):
        where = in_issue(campaign, number)
        field = FIELD_RE.search(line)
        if field and (line.lstrip().startswith("#") or "{.button}" in line or "![" in line):
            report.add(
                Check.TEMPLATE_SYNTAX,
                Severity.ERROR,
                where,
                f"member field {field.group(0)!r} cannot be filled in a heading, button or "
                "image text",
                "use it in a paragraph, list, quote, facts block or table",
            )
        without_code = re.sub(r"`[^`]*`", "", line)  # `{{ x }}` in code is shown on purpose
        if campaign.issue.archived:
            for used in FIELD_RE.finditer(without_code):
                if not (used.group(2) or used.group(3)):
                    report.add(
                        Check.FIELD_NO_FALLBACK,
                        Severity.WARNING,
                        where,
                        f"{used.group(0)!r} has no fallback: the web archive page shows "
                        "nothing there",
                        f'add one, e.g. {{{{ recipient.{used.group(1)} or "…" }}}}, '
                        "or 'archive: false' in the front matter",
                    )
        _report_first(report, where, FIELD_RE.sub("", without_code), _UNFILLED_SYNTAX)
        for rule in _SHOWN_AS_TYPED:
            _report_first(report, where, without_code, rule)


# Markdown link syntax left in the text: markdown-it did not read it as a link (a space in
# the address, a space before "(", an undefined [reference], a missing ")").
_BROKEN_LINK = re.compile(
    r"!?\[[^\[\]\n]*\](?:\(|\[[^\[\]\n]*\]|\s+\((?=\s*<?(?:https?:|www\.|mailto:|tel:)))"
)


# Numbered references typed as text ("as shown [1][2]") are meant to be seen as typed.
_CITATION = re.compile(r"\[[\d,\s–-]+\]\[[\d,\s–-]+\]$")

_HEADING_LINK = re.compile(r" {0,3}#{1,6}\s.*\[[^\[\]]*\]\([^)]*\)")
# "## [Register now](https://…)": an article or sub-heading that is one link keeps it.
_HEADING_ALL_LINK = re.compile(r" {0,3}#{2,6}\s+\[[^\[\]]*\]\([^)]*\)\s*#*\s*$")


def _inline_runs(block: model.Block) -> Iterator[tuple[model.Inline, ...]]:
    """Each run of inline content a block shows (items, quoted paragraphs, facts, cells)."""
    if isinstance(block, model.Paragraph):
        yield block.content
    elif isinstance(block, model.BulletList):
        for index, item in enumerate(block.items):
            yield item
            sub = block.sublist(index)
            if sub is not None:
                yield from _inline_runs(sub)
    elif isinstance(block, model.Quote):
        yield from block.paragraphs
    elif isinstance(block, model.Facts):
        for fact in block.facts:
            yield fact.value
    elif isinstance(block, model.Table):
        yield from block.header
        for row in block.rows:
            yield from row


def _shown_text(nodes: tuple[model.Inline, ...]) -> str:
    """The words a run shows as typed, code left out (code shows markup on purpose)."""
    out: list[str] = []
    for node in nodes:
        if isinstance(node, model.Text):
            out.append(node.text)
        elif isinstance(node, model.Emphasis | model.Link):
            out.append(_shown_text(node.children))
        elif isinstance(node, model.Field):
            out.append(f"{{{{ recipient.{node.name} }}}}")  # as typed, for the message
        else:
            out.append(" ")
    return "".join(out)


def _broken_link_hint(fragment: str, after: str) -> str:
    if fragment.endswith("]("):
        target = after.split(")", 1)[0] if ")" in after else ""
        if not target:
            return "close the ( … ) after the address: [text](https://…)"
        if "{{" in target:
            return (
                "a member field cannot be filled in a link's address: link to a page every "
                "member can use"
            )
        if " " in target.strip():
            return "a web address cannot hold spaces: write each as %20, or put it in <…>"
        return "write it as [text](https://…), on one line"
    if fragment.rstrip().endswith("("):
        return "remove the space between ] and ( : [text](https://…)"
    return "write it as [text](https://…) ([text][name] needs a line '[name]: https://…')"


# Markup still in the shown text after parsing was left open: (marker, check, severity,
# message, fix), reported at the first source line holding the marker.
_LEFT_OPEN = (
    (
        "<!--",
        Check.UNCLOSED_COMMENT,
        Severity.ERROR,
        "a comment '<!--' is never closed, so what follows shows as text",
        "end the comment with '-->'",
    ),
    (
        "**",
        Check.UNPAIRED_BOLD,
        Severity.WARNING,
        "'**' without its pair is shown as typed",
        "close the bold text with '**', or delete the '**'",
    ),
)


def check_literal_markdown(campaign: Campaign, report: Report) -> None:
    """Markup every member would see as typed, or a link that cannot work: link syntax
    markdown-it could not read (an error: the link is lost), a '<!--' never closed
    (an error: the rest of the issue shows as text), member fields in a link's address
    (an error: sent as typed), unmatched '**' (a warning)."""
    for block in campaign.issue.all_blocks():
        for run in _inline_runs(block):
            text = _shown_text(run)
            broken = next(
                (m for m in _BROKEN_LINK.finditer(text) if not _CITATION.match(m.group())), None
            )
            if broken:
                fragment = text[broken.start() : broken.end()]
                shown = text[broken.start() : broken.start() + 70].split("\n")[0]
                report.add(
                    Check.BROKEN_LINK,
                    Severity.ERROR,
                    in_issue(campaign, source_line(campaign, block.line, fragment)),
                    f"this is not read as a link, and every member would see it as typed: "
                    f"{shown!r}",
                    _broken_link_hint(fragment, text[broken.end() :]),
                )
            for marker, check, severity, message, fix in _LEFT_OPEN:
                if marker in text:
                    where = in_issue(campaign, source_line(campaign, block.line, marker))
                    report.add(check, severity, where, message, fix)
    for number in indented_code_lines(campaign.issue):
        report.add(
            Check.INDENTED_CODE,
            Severity.WARNING,
            in_issue(campaign, number),
            "this text is indented by 4 spaces or a tab, so it shows as code, in a typewriter font",
            "remove the indentation; for code on purpose, put ``` lines around it",
        )
    for number, line in body_lines(campaign):
        if _HEADING_LINK.match(line) and not _HEADING_ALL_LINK.match(line):
            report.add(
                Check.HEADING_LINK,
                Severity.ERROR,
                in_issue(campaign, number),
                "a heading shows text only: the link in it is left out of the email",
                "put the link in a sentence or a button under the heading",
            )
    for line, link, _ in links_in(list(campaign.issue.all_blocks())):
        if "{{" in link.href or "%7b%7b" in link.href.lower():
            report.add(
                Check.TEMPLATE_SYNTAX,
                Severity.ERROR,
                in_issue(campaign, source_line(campaign, line, "{{")),
                f"a member field in a link's address is not filled in: {link.href!r} "
                "would be sent as typed",
                "link to a page every member can use; member fields work in the text only",
            )
