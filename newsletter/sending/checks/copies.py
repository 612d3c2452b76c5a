"""A copy of an issue members already got, under another file name: ``cp
january-2027.md january-2027-final.md`` passed as READY and would have mailed everyone the
same bulletin again. The journal knows members by slug, so the new name looks unsent.

Compared by what the chair wrote (:mod:`newsletter.content.likeness`): with every issue the
journal says reached at least one member, by the text recorded when its send started, or
for a send recorded before that, by its issue file. ``--resend-of SLUG`` sends it anyway.
Counted on the member list a send now would mail: ``-r OTHER.csv`` may share only some of
its members with the list the copy went to, or none (then there is nothing to say)."""

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


@dataclass(frozen=True)
class Overlap:
    """Of the member list a send now would mail, those who already received a copy:
    with ``-r OTHER.csv`` a list may share only some members, or none, with the one the
    copy went to."""

    on_list: int  # members on this list
    received: int  # of them, those the journal says got the copy
    first: str = ""  # YYYY-MM-DD (UTC, as `newsletter list`) the first of them got it
    last: str = ""  # ... and the last (a send held by a daily limit spans days)

    def when(self) -> str:
        return f"on {self.first}" if self.first == self.last else f"{self.first} to {self.last}"


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


def overlaps(campaign: Campaign, copies: list[SentCopy]) -> dict[str, Overlap] | None:
    """Per copy's slug, how many members on this campaign's list already received it, by
    one read of the list; None when the list cannot be read (its own check says why)."""
    from ...members.recipients import RecipientReport
    from ...records.journal import JOURNAL_NAME, Journal, address_key

    if not copies:
        return {}
    with Journal.open(campaign.settings.state_dir / JOURNAL_NAME) as journal:
        # key -> date it was marked sent, per copy: one query each, a dict lookup per member.
        when = {
            copy.slug: {
                address_key(r.address): r.updated[:10] for r in journal.rows(copy.slug, "sent")
            }
            for copy in copies
        }
    on_list = 0
    dates: dict[str, list[str]] = {copy.slug: [] for copy in copies}
    try:
        for recipient in campaign.recipients(RecipientReport()):
            on_list += 1
            key = address_key(recipient.email)
            for slug, got in when.items():
                if key in got:
                    dates[slug].append(got[key])
    except NewsletterError:
        return None
    return {
        slug: Overlap(on_list, len(found), min(found, default=""), max(found, default=""))
        for slug, found in dates.items()
    }


def check_sent_before(
    campaign: Campaign, report: Report, resend_of: str = "", renamed: str | None = None
) -> None:
    """An error for each sent issue this one is a copy of, naming it and how many members
    on this list already received it (none: no finding; nobody would get it twice); a
    warning instead for the one ``--resend-of`` names (sent again as asked). ``renamed``:
    the old name the rename check found this very issue sent under (said there already)."""
    copies = [copy for copy in sent_copies(campaign) or [] if copy.slug != renamed]
    shared = overlaps(campaign, copies)
    where = in_issue(campaign, 1)
    reported = set()
    for copy in copies:
        overlap = shared.get(copy.slug) if shared is not None else None
        if overlap is not None and not overlap.received:
            continue  # a list of other members: nobody on it would get the copy twice
        reported.add(copy.slug)
        alike = f"{copy.score:.0%} of its text is the same"
        gone = "; its file is gone since" if copy.file_gone else ""
        if overlap is None:  # the list is unreadable: say what the journal knows
            what = (
                f"this issue is a copy of {copy.slug!r} ({alike}{gone}), which "
                f"{copy.members} member(s) already received"
            )
            again, twice = "those of them on the list would get it again", "those of them"
        else:
            received = (
                f"all {overlap.on_list}"
                if overlap.received == overlap.on_list
                else f"{overlap.received} of the {overlap.on_list}"
            )
            what = (
                f"this issue is a copy of {copy.slug!r} ({alike}{gone}): {received} "
                f"member(s) on this list already received it {overlap.when()}"
            )
            twice = "that member" if overlap.received == 1 else f"those {overlap.received}"
            again = f"{twice} would get it again"
        if copy.slug == resend_of:
            report.add(
                Check.SENT_BEFORE,
                Severity.WARNING,
                where,
                f"{what}: sent again as asked (--resend-of {copy.slug}), {twice} get it "
                "a second time",
            )
            continue
        report.add(
            Check.SENT_BEFORE,
            Severity.ERROR,
            where,
            f"{what}; sent under this name, {again}",
            f"write this issue's own text, or add --resend-of {copy.slug} to send it "
            f"again anyway ('newsletter status {copy.slug}' shows who got it)",
        )
    if resend_of and resend_of not in reported | {renamed}:
        copied = any(copy.slug == resend_of for copy in copies)
        why = (
            f"none of the members on this list received {resend_of!r}"
            if copied
            else f"this issue is not a copy of an issue sent as {resend_of!r}"
        )
        report.add(
            Check.SENT_BEFORE,
            Severity.WARNING,
            "--resend-of",
            f"--resend-of {resend_of} does nothing: {why}",
            "leave it out",
        )
