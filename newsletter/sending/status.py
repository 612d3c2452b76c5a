"""What the journal says: per-issue send state (``list``) and one issue's detail (``status``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..common.config import Settings
from ..common.errors import IssueError, NewsletterError
from ..content.issue import parse_issue
from ..content.issuefiles import SkipHandler, issue_path, list_issue_files
from ..records.journal import JOURNAL_NAME, STATUSES, Journal, address_key
from .plan import running_send


@dataclass
class IssueState:
    slug: str
    date: dt.date
    title: str
    subject: str
    counts: dict[str, int]
    test_sends: int
    members: int | None = None  # the list's size when the last real send started
    draft: bool = False
    file: bool = True  # False: only the journal knows it (its file renamed or deleted)
    error: str = ""  # why its file cannot be read (a parse error): listed all the same

    def describe(self) -> str:
        """What the issue's send reached, from the journal alone (not today's CSV):
        "sent 128 of 500; 372 pending"."""
        sent, failed = self.counts.get("sent", 0), self.counts.get("failed", 0)
        unknown = self.counts.get("sending", 0)
        if not any(self.counts.values()):
            said = "test-sent" if self.test_sends else "never sent"
            return f"{said} (draft)" if self.draft else said
        attempted = sum(self.counts.values())
        total = max(self.members or 0, attempted)  # never "10 of 6"
        pending = total - sent - failed - unknown  # deferred, and never attempted yet
        text = f"sent {sent} of {total}"
        if pending:
            text += f"; {pending} pending"
        if failed:
            text += f"; {failed} failed"
        if unknown:
            text += f"; {unknown} unknown"
        return text


def _journal(settings: Settings) -> Journal | None:
    path = settings.state_dir / JOURNAL_NAME
    return Journal.open(path) if path.is_file() else None


def list_issues(settings: Settings, on_skip: SkipHandler | None = None) -> list[IssueState]:
    """Every issue, newest first, with its journal totals. A file that cannot be read is
    listed first, with why (``error``): it was left out with only a note, and looked gone.
    ``on_skip`` hears of a subject that cannot be rendered (the raw subject is shown)."""
    from ..content.organisation import load_organisation
    from ..content.render import sample_subject

    journal = _journal(settings)
    summaries = {s.slug: s for s in journal.issues_summary()} if journal else {}
    members = journal.run_members() if journal else {}
    if journal:
        journal.close()
    states = []
    org = None
    for path in list_issue_files(settings.issues_dir):
        try:
            issue = parse_issue(path)
        except NewsletterError as error:
            summary = summaries.get(path.stem)
            states.append(
                IssueState(
                    slug=path.stem,
                    date=dt.date.max,  # first in the list: it is the one to fix
                    title=f"cannot be read: {error}",
                    subject="",
                    counts=dict(summary.counts) if summary else dict.fromkeys(STATUSES, 0),
                    test_sends=summary.test_sends if summary else 0,
                    members=members.get(path.stem),
                    error=str(error),
                )
            )
            continue
        subject = issue.subject
        try:  # as a member without a name sees it, not "{{ recipient.first_name or … }}"
            org = org or load_organisation(settings.templates_dir)
            subject = sample_subject(issue, settings.templates_dir, org)
        except NewsletterError as error:
            if on_skip is not None:
                on_skip(error)
        summary = summaries.get(issue.slug)
        states.append(
            IssueState(
                slug=issue.slug,
                date=issue.date,
                title=issue.title,
                subject=subject,
                counts=dict(summary.counts) if summary else dict.fromkeys(STATUSES, 0),
                test_sends=summary.test_sends if summary else 0,
                members=members.get(issue.slug),
                draft=issue.draft,
            )
        )
    # Sends whose issue file is gone (renamed or deleted) are still part of the record.
    files = {state.slug for state in states}
    for slug, summary in summaries.items():
        if slug in files or not any(summary.counts.values()):
            continue
        states.append(
            IssueState(
                slug=slug,
                date=dt.date.fromisoformat(summary.last_update[:10]),
                title=f"(no issue file {slug}.md any more: renamed or deleted)",
                subject="",
                counts=dict(summary.counts),
                test_sends=summary.test_sends,
                members=members.get(slug),
                file=False,
            )
        )
    return sorted(states, key=lambda s: (s.date, s.slug), reverse=True)


FEEDBACK_KINDS = ("hard", "soft", "complaint", "unsubscribe")


@dataclass
class SendStatus:
    slug: str
    counts: dict[str, int]
    failures: list[dict[str, object]] = field(default_factory=list)
    unknown: list[dict[str, object]] = field(default_factory=list)
    deferred: list[dict[str, object]] = field(default_factory=list)
    test_sends: list[dict[str, object]] = field(default_factory=list)
    last_update: str = ""
    members: int | None = None  # in the current list (None: there is no list)
    pending: int | None = None  # of them, not sent, failed or unknown yet
    running: str = ""  # a send of the issue is running now: who ("pid 4242")
    # From newsletter feedback: members per kind (hard, soft, complaint, unsubscribe).
    feedback: dict[str, int] = field(default_factory=dict)
    # Why members/pending are None although a list was to be read ("" when they are not):
    # the journal's record is shown all the same, whatever state the CSV is in.
    members_error: str = ""
    # Why the last run stopped before its end (a provider's daily limit, a blocked
    # account): reason, reply, advice, stopped, resume_after (ISO 8601, UTC; "" if not
    # known), resume (the command); None when it did not.
    stopped: dict[str, str] | None = None
    # resume_after as the chair reads it: "after 09:14 on Tue 8 Dec", or "it can run now"
    resume_when: str = ""

    def as_dict(self) -> dict[str, object]:
        """For ``status --json``: the same keys whatever has happened yet (the feedback
        counts are 0 before ``newsletter feedback`` first ran, not missing)."""
        values = asdict(self)
        values["feedback"] = {**dict.fromkeys(FEEDBACK_KINDS, 0), **self.feedback}
        return values


def _feedback_counts(settings: Settings, slug: str) -> dict[str, int]:
    from ..records.feedback_log import FeedbackLog

    log = FeedbackLog.open_existing(settings.state_dir)
    if log is None:
        return {}
    with log:
        # resubscribe creates the memory too: no counts until a feedback run is recorded
        return log.counts(slug) if log.has_run() else {}


def send_status(settings: Settings, slug: str, recipients: Path | None = None) -> SendStatus:
    """One issue's record; ``recipients``: the list to count pending members against
    (default: the configured one). An issue that neither exists nor was ever sent is an
    error naming the issues that do. With what ``newsletter feedback`` found for it."""
    status = _send_status(settings, slug, recipients)
    status.feedback = _feedback_counts(settings, slug)
    return status


def _send_status(settings: Settings, slug: str, recipients: Path | None) -> SendStatus:
    journal = _journal(settings)
    if journal is None or not any(journal.counts(slug).values()) and not journal.test_sends(slug):
        try:
            issue_path(slug, settings.issues_dir)  # raises IssueError listing the issues
        except IssueError as error:
            if journal is not None:
                sent = [s.slug for s in journal.issues_summary()]
                journal.close()
                _suggest_sent(error, slug, settings.issues_dir, sent)
            raise
    if journal is None:
        status = SendStatus(slug=slug, counts=dict.fromkeys(STATUSES, 0))
        _count_pending(status, settings, recipients, set())
        return status
    try:
        rows = journal.rows(slug)
        status = SendStatus(slug=slug, counts=journal.counts(slug))
        status.running = running_send(settings.state_dir, slug)  # "sending" is in flight
        _count_pending(status, settings, recipients, journal.addresses(slug, *_SETTLED))
        waiting = journal.not_begun(slug)
        for row in rows:
            record = asdict(row)
            if row.status == "failed":
                status.failures.append(record)
            elif row.status == "sending":
                # False: claimed with others and not begun when the run ended (see
                # Journal.not_begun); True: in flight, or the message went out.
                record["begun"] = address_key(row.address) not in waiting
                status.unknown.append(record)
            elif row.status == "deferred":
                status.deferred.append(record)
            status.last_update = max(status.last_update, row.updated)
        status.test_sends = [asdict(t) for t in journal.test_sends(slug)]
        stop = journal.last_stop(slug)
        if stop is not None:
            status.stopped = asdict(stop)
            if stop.resume_after:
                from .daily import when

                after, now = dt.datetime.fromisoformat(stop.resume_after), journal.now()
                status.resume_when = when(after, now) if after > now else "it can run now"
        return status
    finally:
        journal.close()


def _suggest_sent(error: IssueError, slug: str, issues_dir: Path, sent: list[str]) -> None:
    """A typo of an issue only the journal knows (its file renamed or deleted since the
    send: `status` still shows it) is suggested too, not only the files' names."""
    import difflib

    files = [p.stem for p in issues_dir.glob("*.md")] if issues_dir.is_dir() else []
    close = difflib.get_close_matches(slug, sorted({*files, *sent}), n=1, cutoff=0.6)
    if close and close[0] not in files:
        meant = f"did you mean {close[0]} (sent; its file is gone)?"
        error.message = f"no issue called {slug!r}: {meant}"


_SETTLED = ("sent", "failed", "sending")  # everything else is still to be sent


def _count_pending(
    status: SendStatus, settings: Settings, recipients: Path | None, settled: set[str]
) -> None:
    from ..common.errors import NewsletterError
    from ..members.recipients import iter_recipients
    from ..members.suppression import load_suppressed
    from ..records.journal import address_key

    path = recipients or settings.recipients
    if not path.is_file():
        if recipients is not None:
            status.members_error = f"{path}: no such file"
        return
    members = pending = 0
    try:
        for member in iter_recipients(path, suppressed=load_suppressed(settings.suppressed)):
            members += 1
            pending += address_key(member.email) not in settled
    except NewsletterError as error:
        # A list being edited, or broken, must not hide what was sent.
        status.members_error = str(error)
        return
    status.members, status.pending = members, pending
