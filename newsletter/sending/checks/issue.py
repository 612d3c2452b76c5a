"""Checks of the issue itself: front matter, draft, a renamed file sent before, text the
skeleton wrote that nobody changed. Also where a finding in the issue points (file:line)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ...common.limits import SUBJECT_MAX
from ...content.frontmatter import OPTIONAL_KEYS, REQUIRED_KEYS, key_line, near_miss
from ...content.inlines import FIELD_RE
from ..campaign import Campaign
from .findings import Check, Report, Severity

# Template syntax a member would see as typed (member fields aside, which are filled in).
TEMPLATE_SYNTAX = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{\{|\{%")


def in_issue(campaign: Campaign, line: int) -> str:
    return f"{campaign.issue.path}:{line}" if line else str(campaign.issue.path)


def check_front_matter(campaign: Campaign, report: Report) -> None:
    issue = campaign.issue
    # Read for `check`, the front matter's problems are all here (a send stops at the
    # first): errors, and the keys they concern are not judged again below.
    broken = set()
    for problem in campaign.front_matter_problems:
        broken.add(problem.key)
        report.add(
            Check.MISSPELT_KEY if problem.written else Check.FRONT_MATTER,
            Severity.ERROR,
            in_issue(campaign, problem.line),
            problem.message,
            problem.hint,
        )
    # With member fields the length depends on the member: measured in check_members.
    long = len(issue.subject) > SUBJECT_MAX and "subject" not in broken
    if not campaign.rendered.subject_filled.has_slots and long:
        report.add(
            Check.SUBJECT_LONG,
            Severity.WARNING,
            in_issue(campaign, key_line(campaign.issue.source, "subject")),
            f"subject is {len(issue.subject)} characters; inboxes cut it at about {SUBJECT_MAX}",
            "put the words that matter first, or shorten it",
        )
    if len(issue.preheader) < 30 and "preheader" not in broken:
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
    known = REQUIRED_KEYS + OPTIONAL_KEYS
    for key in issue.front_matter:
        # A near miss of a known key is an error (above): this is a key unlike any.
        if key not in known and near_miss(key, issue.front_matter) is None:
            report.add(
                Check.UNKNOWN_KEY,
                Severity.WARNING,
                in_issue(campaign, key_line(campaign.issue.source, key)),
                f"unknown front-matter key {key!r} is ignored",
                f"known keys: {', '.join(known)}",
            )


def check_member_fields(campaign: Campaign, report: Report) -> None:
    """Member fields the list has no column for: with a fallback every member reads the
    fallback (a warning); without one, a gap (an error, where a send refuses at once)."""
    for missing in campaign.missing_fields:
        where = missing.error.location()
        if missing.fallback:
            report.add(
                Check.UNKNOWN_FIELD,
                Severity.WARNING,
                where,
                f"{missing.error.message}: every member reads the fallback {missing.fallback!r}",
                f"add the column to the list to use it ({missing.error.hint})",
            )
        else:
            report.add(
                Check.UNKNOWN_FIELD,
                Severity.ERROR,
                where,
                missing.error.message,
                missing.error.hint or "",
            )


def check_draft(campaign: Campaign, report: Report) -> None:
    if campaign.issue.draft:
        # A draft flag read from a misspelt key ('Draft: true') is named as written, at its
        # own line, so the finding agrees with that key's own error.
        from ...content.frontmatter import near_miss

        written = next(
            (
                k
                for k in campaign.issue.front_matter
                if k == "draft" or near_miss(str(k)) == "draft"
            ),
            "draft",
        )
        report.add(
            Check.DRAFT,
            Severity.ERROR,
            in_issue(campaign, key_line(campaign.issue.source, written)),
            f"this issue is a draft ({written}: true): it cannot be sent to members",
            "delete the 'draft: true' line when it is ready; previews and --test sends work "
            "meanwhile",
        )


def check_renamed(campaign: Campaign, report: Report, resend_of: str = "") -> str | None:
    """An issue sent, then its file renamed (``january.md`` → ``january-2026.md``): the
    journal knows its members by the old slug, so a send under the new one would mail every
    one of them a second copy. Compared by the rendered issue's hash, never by name.
    Returns the old slug; ``--resend-of`` it makes the error a warning (sent again)."""
    from ...records.journal import JOURNAL_NAME, Journal
    from ..campaign import sent_before_as

    path = campaign.settings.state_dir / JOURNAL_NAME
    if not path.is_file():
        return None
    with Journal.open(path) as journal:
        if any(journal.counts(campaign.issue.slug).values()):
            return None  # sent (or begun) under this name: a resume, not a rename
        runs: dict[str, str] = {}
        counts: dict[str, int] = {}
        for summary in journal.issues_summary():
            last = journal.last_run(summary.slug)
            if last and summary.counts.get("sent"):
                runs[summary.slug], counts[summary.slug] = last[0], summary.counts["sent"]
    old = sent_before_as(campaign, runs)
    if old and old == resend_of:
        report.add(
            Check.RENAMED,
            Severity.WARNING,
            in_issue(campaign, 1),
            f"this issue was already sent to {counts[old]} member(s) as {old!r}: sent again "
            f"as asked (--resend-of {old}), every one of them gets it a second time",
        )
    elif old:
        report.add(
            Check.RENAMED,
            Severity.ERROR,
            in_issue(campaign, 1),
            f"this issue was already sent to {counts[old]} member(s) as {old!r}; its file "
            "was renamed since, and under the new name every one of them would get it again",
            f"rename it back to {campaign.settings.issues_dir / (old + '.md')} "
            f"('newsletter status {old}' shows who got it), or add --resend-of {old} to "
            "send it again anyway",
        )
    return old


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
