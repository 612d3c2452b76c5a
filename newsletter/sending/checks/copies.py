"""A copy of an issue members already got, under another file name: ``cp
january-2027.md january-2027-final.md`` passed as READY and would have mailed everyone the
same bulletin again. The journal knows members by slug, so the new name looks unsent.

Compared by what the chair wrote (:mod:`newsletter.content.likeness`): with every issue the
journal says reached at least one member, by the text recorded when its send started, or
for a send recorded before that, by its issue file. ``--resend-of SLUG`` sends it anyway."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...common.errors import NewsletterError
from ...content.likeness import SAME_ISSUE, body_words, similarity
from ..campaign import Campaign
from .findings import Check, Report, Severity
from .issue import in_issue


@dataclass(frozen=True)
class SentCopy:
    """An issue sent before that this one is the same as."""

    slug: str
    members: int  # members the journal says got it
    score: float  # how alike, 0 to 1 (content.likeness.similarity)
    file_gone: bool  # its issue file is no longer there (renamed or deleted)


def sent_copies(campaign: Campaign) -> list[SentCopy] | None:
    """The issues sent before that this one is a copy of, most alike first; None when this
    issue's own send has begun (a resume is no copy: it mails only those still pending)."""
    from ...records.journal import JOURNAL_NAME, Journal

    path = campaign.settings.state_dir / JOURNAL_NAME
    if not path.is_file():
        return []
    slug = campaign.issue.slug
    with Journal.open(path) as journal:
        if any(journal.counts(slug).values()):
            return None
        sent = {
            s.slug: s.counts["sent"]
            for s in journal.issues_summary()
            if s.counts.get("sent") and s.slug != slug
        }
        texts = journal.texts()
    mine = body_words(campaign.issue)
    copies = []
    for other, members in sorted(sent.items()):
        issues_dir = campaign.settings.issues_dir
        theirs = texts[other][1] if other in texts else _words_of_file(issues_dir, other)
        score = similarity(mine, theirs) if theirs is not None else None
        if score is not None and score >= SAME_ISSUE:
            gone = not (issues_dir / f"{other}.md").is_file()
            copies.append(SentCopy(other, members, score, gone))
    return sorted(copies, key=lambda copy: -copy.score)


def _words_of_file(issues_dir: Path, slug: str) -> str | None:
    """The body's words of ``issues/<slug>.md`` for a send recorded before the journal
    kept texts; None when the file is gone or cannot be read."""
    from ...content.issue import parse_issue

    path = issues_dir / f"{slug}.md"
    if not path.is_file():
        return None
    try:
        return body_words(parse_issue(path))
    except NewsletterError:
        return None


def check_sent_before(
    campaign: Campaign, report: Report, resend_of: str = "", renamed: str | None = None
) -> None:
    """An error for each sent issue this one is a copy of, naming it and whom it reached;
    a warning instead for the one ``--resend-of`` names (sent again as asked). ``renamed``:
    the old name the rename check found this very issue sent under (said there already)."""
    copies = [copy for copy in sent_copies(campaign) or [] if copy.slug != renamed]
    where = in_issue(campaign, 1)
    for copy in copies:
        alike = f"{copy.score:.0%} of its text is the same"
        what = (
            f"this issue is a copy of {copy.slug!r}, which {copy.members} member(s) already "
            f"got ({alike}{'; its file is gone since' if copy.file_gone else ''})"
        )
        if copy.slug == resend_of:
            report.add(
                Check.SENT_BEFORE,
                Severity.WARNING,
                where,
                f"{what}: sent again as asked (--resend-of {copy.slug}), every one of them "
                "gets it a second time",
            )
            continue
        report.add(
            Check.SENT_BEFORE,
            Severity.ERROR,
            where,
            f"{what}: sent under this name, every one of them would get it again",
            f"write this issue's own text, or add --resend-of {copy.slug} to send it "
            f"again anyway ('newsletter status {copy.slug}' shows who got it)",
        )
    if resend_of and resend_of not in {copy.slug for copy in copies} | {renamed}:
        report.add(
            Check.SENT_BEFORE,
            Severity.WARNING,
            "--resend-of",
            f"--resend-of {resend_of} does nothing: this issue is not a copy of an issue "
            f"sent as {resend_of!r}",
            "leave it out",
        )
