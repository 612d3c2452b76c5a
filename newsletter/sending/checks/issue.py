"""Checks of the issue itself: front matter, draft, a renamed file sent before, text the
skeleton wrote that nobody changed. Also where a finding in the issue points (file:line)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ...common.limits import SUBJECT_MAX
from ...content.frontmatter import OPTIONAL_KEYS, REQUIRED_KEYS, key_line
from ...content.inlines import FIELD_RE
from ..campaign import Campaign
from .findings import Check, Report, Severity

# Template syntax a member would see as typed (member fields aside, which are filled in).
TEMPLATE_SYNTAX = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{\{|\{%")


def in_issue(campaign: Campaign, line: int) -> str:
    return f"{campaign.issue.path}:{line}" if line else str(campaign.issue.path)


def check_front_matter(campaign: Campaign, report: Report) -> None:
    issue = campaign.issue
    # With member fields the length depends on the member: measured in check_members.
    if not campaign.rendered.subject_filled.has_slots and len(issue.subject) > SUBJECT_MAX:
        report.add(
            Check.SUBJECT_LONG,
            Severity.WARNING,
            in_issue(campaign, key_line(campaign.issue.source, "subject")),
            f"subject is {len(issue.subject)} characters; inboxes cut it at about {SUBJECT_MAX}",
            "put the words that matter first, or shorten it",
        )
    if len(issue.preheader) < 30:
        report.add(
            Check.PREHEADER_SHORT,
            Severity.WARNING,
            in_issue(campaign, key_line(campaign.issue.source, "preheader")),
            "preheader is very short; inboxes fill the rest with the first words of the body",
            "write a sentence (40–100 characters) that adds to the subject",
        )
    # Member fields are filled in the preheader too; other template syntax is not.
    for key, value in (("title", issue.title), ("preheader", FIELD_RE.sub("", issue.preheader))):
        syntax = TEMPLATE_SYNTAX.search(value)
        if syntax:
            # Only the subject, the preheader and the body are filled in per member: here
            # every member, and the archive, would read the braces as typed.
            report.add(
                Check.TEMPLATE_SYNTAX,
                Severity.ERROR,
                in_issue(campaign, key_line(campaign.issue.source, key)),
                f"{key} holds {syntax.group(0)!r}, which every member would see as typed: "
                "member fields are filled in the subject, the preheader and the body only",
                f"write the {key} without it",
            )
    if issue.preheader.strip().lower() == issue.subject.strip().lower():
        report.add(
            Check.PREHEADER_REPEATS_SUBJECT,
            Severity.WARNING,
            in_issue(campaign, key_line(campaign.issue.source, "preheader")),
            "preheader repeats the subject",
            "use it to say what else is inside",
        )
    import difflib

    known = REQUIRED_KEYS + OPTIONAL_KEYS
    for key in issue.front_matter:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
            report.add(
                Check.UNKNOWN_KEY,
                Severity.WARNING,
                in_issue(campaign, key_line(campaign.issue.source, key)),
                f"unknown front-matter key {key!r} is ignored"
                + (f": did you mean {close[0]!r}?" if close else ""),
                f"known keys: {', '.join(known)}",
            )


def check_draft(campaign: Campaign, report: Report) -> None:
    if campaign.issue.draft:
        report.add(
            Check.DRAFT,
            Severity.ERROR,
            in_issue(campaign, key_line(campaign.issue.source, "draft")),
            "this issue is a draft (draft: true): it cannot be sent to members",
            "delete the 'draft: true' line when it is ready; previews and --test sends work "
            "meanwhile",
        )


def check_renamed(campaign: Campaign, report: Report) -> None:
    """An issue sent, then its file renamed (``january.md`` → ``january-2026.md``): the
    journal knows its members by the old slug, so a send under the new one would mail every
    one of them a second copy. Compared by the rendered issue's hash, never by name."""
    from ...records.journal import JOURNAL_NAME, Journal
    from ..campaign import sent_before_as

    path = campaign.settings.state_dir / JOURNAL_NAME
    if not path.is_file():
        return
    with Journal.open(path) as journal:
        if any(journal.counts(campaign.issue.slug).values()):
            return  # sent (or begun) under this name: a resume, not a rename
        runs: dict[str, str] = {}
        counts: dict[str, int] = {}
        for summary in journal.issues_summary():
            last = journal.last_run(summary.slug)
            if last and summary.counts.get("sent"):
                runs[summary.slug], counts[summary.slug] = last[0], summary.counts["sent"]
    old = sent_before_as(campaign, runs)
    if old:
        report.add(
            Check.RENAMED,
            Severity.ERROR,
            in_issue(campaign, 1),
            f"this issue was already sent to {counts[old]} member(s) as {old!r}; its file "
            "was renamed since, and under the new name every one of them would get it again",
            f"rename it back to {campaign.settings.issues_dir / (old + '.md')} "
            f"('newsletter status {old}' shows who got it)",
        )


def body_lines(campaign: Campaign) -> Iterator[tuple[int, str]]:
    """(line number, text) of the issue's body, without comments and fenced code."""
    from ...content.body import blank_comments

    source = campaign.issue.source
    lines = source.splitlines()
    fences = [n for n, line in enumerate(lines) if line.strip() == "---"][:2]
    start = fences[1] + 1 if len(fences) == 2 else 0
    body = blank_comments("\n".join(lines[start:])).split("\n")
    fenced = False
    for offset, line in enumerate(body):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if not fenced:
            yield start + offset + 1, line


def check_skeleton(campaign: Campaign, report: Report) -> None:
    """Text that ``newsletter new`` wrote and nobody changed must not reach members."""
    from ...content.skeleton import skeleton_text

    issue = campaign.issue
    skeleton = skeleton_text(campaign.settings.templates_dir, issue, campaign.org)
    if skeleton is None:
        return
    preheader, lines = skeleton
    if issue.preheader == preheader:
        report.add(
            Check.SKELETON,
            Severity.ERROR,
            in_issue(campaign, key_line(issue.source, "preheader")),
            "the preheader is still the skeleton's placeholder",
            "write one sentence on what is inside this issue",
        )
    for number, line in body_lines(campaign):
        if line.strip() and line.strip() in lines:
            text = line.strip()
            shown = text if len(text) <= 70 else text[:67] + "…"
            report.add(
                Check.SKELETON,
                Severity.ERROR,
                in_issue(campaign, number),
                f"skeleton text left in the issue: {shown!r}",
                "write your own text here, or delete the line",
            )
