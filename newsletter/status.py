"""What the journal says: per-issue send state (``list``) and one issue's detail (``status``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .config import Settings
from .issue import SkipHandler, parse_all
from .journal import JOURNAL_NAME, STATUSES, Journal


@dataclass
class IssueState:
    slug: str
    date: dt.date
    title: str
    subject: str
    counts: dict[str, int]
    test_sends: int

    def describe(self, members: int | None) -> str:
        sent, failed = self.counts.get("sent", 0), self.counts.get("failed", 0)
        pending = self.counts.get("deferred", 0) + self.counts.get("sending", 0)
        if not any(self.counts.values()):
            return "test-sent" if self.test_sends else "never sent"
        attempted = sum(self.counts.values())
        # Sends may have used another list (-r): never claim "10 of 6".
        total = max(members or 0, attempted)
        of = f" of {total}" if members is not None else ""
        text = f"sent to {sent}{of}"
        if failed:
            text += f", failed {failed}"
        if pending:
            text += f", {pending} pending"
        return text


def _journal(settings: Settings) -> Journal | None:
    path = settings.state_dir / JOURNAL_NAME
    return Journal.open(path) if path.is_file() else None


def list_issues(settings: Settings, on_skip: SkipHandler | None = None) -> list[IssueState]:
    """Every issue, newest first, with its journal totals (unreadable files: ``on_skip``)."""
    journal = _journal(settings)
    summaries = {s.slug: s for s in journal.issues_summary()} if journal else {}
    if journal:
        journal.close()
    states = []
    for issue in parse_all(settings.issues_dir, on_skip):
        summary = summaries.get(issue.slug)
        states.append(
            IssueState(
                slug=issue.slug,
                date=issue.date,
                title=issue.title,
                subject=issue.subject,
                counts=dict(summary.counts) if summary else dict.fromkeys(STATUSES, 0),
                test_sends=summary.test_sends if summary else 0,
            )
        )
    return sorted(states, key=lambda s: (s.date, s.slug), reverse=True)


def member_count(recipients: Path, suppressed: Path) -> int | None:
    """How many members the current list would mail (None when there is no list)."""
    from .recipients import iter_recipients
    from .suppression import load_suppressed

    if not recipients.is_file():
        return None
    return sum(1 for _ in iter_recipients(recipients, suppressed=load_suppressed(suppressed)))


@dataclass
class SendStatus:
    slug: str
    counts: dict[str, int]
    failures: list[dict[str, object]] = field(default_factory=list)
    unknown: list[dict[str, object]] = field(default_factory=list)
    deferred: list[dict[str, object]] = field(default_factory=list)
    test_sends: list[dict[str, object]] = field(default_factory=list)
    last_update: str = ""
    # From newsletter feedback: members per kind (hard, soft, complaint, unsubscribe).
    feedback: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _feedback_counts(settings: Settings, slug: str) -> dict[str, int]:
    from .feedback_log import FeedbackLog

    log = FeedbackLog.open_existing(settings.state_dir)
    if log is None:
        return {}
    with log:
        return log.counts(slug)


def send_status(settings: Settings, slug: str) -> SendStatus:
    status = _send_status(settings, slug)
    status.feedback = _feedback_counts(settings, slug)
    return status


def _send_status(settings: Settings, slug: str) -> SendStatus:
    journal = _journal(settings)
    if journal is None:
        return SendStatus(slug=slug, counts=dict.fromkeys(STATUSES, 0))
    try:
        rows = journal.rows(slug)
        status = SendStatus(slug=slug, counts=journal.counts(slug))
        for row in rows:
            record = asdict(row)
            if row.status == "failed":
                status.failures.append(record)
            elif row.status == "sending":
                status.unknown.append(record)
            elif row.status == "deferred":
                status.deferred.append(record)
            status.last_update = max(status.last_update, row.updated)
        status.test_sends = [asdict(t) for t in journal.test_sends(slug)]
        return status
    finally:
        journal.close()
