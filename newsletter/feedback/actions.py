"""What ``newsletter feedback`` does about each address, as typed values, and the decisions.

An :class:`Action` records what was (in a dry run: would be) done — suppressed, a soft
bounce counted, or left alone and why — as a :class:`FeedbackAction` with its numbers.
The report's words are made from it (:attr:`Action.text`), and whether a message was acted
on (and so is moved by ``--move-to``) is decided from the enum, never from the words.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from enum import StrEnum

from ..records.feedback_log import Event, EventKind, FeedbackLog
from .classify import FeedbackKind

# What each event writes into the suppression list's reason column.
REASONS: dict[EventKind, str] = {
    EventKind.HARD: "bounced",
    EventKind.SOFT: "bounced",
    EventKind.COMPLAINT: "complained",
    EventKind.UNSUBSCRIBE: "unsubscribed",
    EventKind.RCPT: "bounced",
}


class FeedbackAction(StrEnum):
    """What was done about one address a message (or the journal) reported."""

    SUPPRESS = "suppress"
    SUPPRESS_AGAIN = "suppress-again"  # already suppressed earlier in this run
    SOFT_COUNTED = "soft-counted"  # a soft bounce counted, under the limit
    NOT_COUNTED = "not-counted"  # a soft bounce no issue could be matched to
    IGNORED = "ignored"  # a delay notice, an auto-reply
    # Left alone (the message is not moved by --move-to):
    LEFT_INVALID = "left-invalid"  # an address the suppression list cannot hold
    LEFT_RESUBSCRIBED = "left-resubscribed"  # resubscribed after the message was written
    LEFT_NOT_A_BULLETIN = "left-not-a-bulletin"  # a bounce of mail the journal never sent
    LEFT_NO_MEMBER = "left-no-member"
    LEFT_NO_SENDER = "left-no-sender"
    LEFT_SERVER_FAILS = "left-server-fails"  # the server fails on reading it, every time
    LEFT_NOT_RETURNED = "left-not-returned"  # the server did not return it: next run
    LEFT_SUSPECT_SERVER = "left-suspect-server"  # RCPT refusals that say more about the server


class Note(StrEnum):
    """Something the chair should know about an action."""

    NOT_A_BULLETIN = "not-a-bulletin"  # a hard bounce of mail that was no bulletin
    NOT_A_MEMBER = "not-a-member"  # an unsubscribe honoured for someone not on the list


_LEFT = frozenset(action for action in FeedbackAction if action.name.startswith("LEFT_"))
_WORDS: dict[FeedbackAction, str] = {
    FeedbackAction.SUPPRESS: "suppress",
    FeedbackAction.SUPPRESS_AGAIN: "suppress (again)",
    FeedbackAction.SOFT_COUNTED: "soft {count} of {limit}",
    FeedbackAction.NOT_COUNTED: "not counted: no issue",
    FeedbackAction.IGNORED: "ignored",
    FeedbackAction.LEFT_INVALID: "left: not a valid address",
    FeedbackAction.LEFT_RESUBSCRIBED: "left: resubscribed since ({since})",
    FeedbackAction.LEFT_NOT_A_BULLETIN: "left: not a bulletin",
    FeedbackAction.LEFT_NO_MEMBER: "left: no member",
    FeedbackAction.LEFT_NO_SENDER: "left: no sender",
    FeedbackAction.LEFT_SERVER_FAILS: "left: the server fails on it",
    FeedbackAction.LEFT_NOT_RETURNED: "left: the server did not return it",
    FeedbackAction.LEFT_SUSPECT_SERVER: (
        "left: {count} members refused as unknown, {delivered} delivered — nobody "
        "suppressed: check NEWSLETTER_SMTP_HOST is your sending server"
    ),
}
_NOTES: dict[Note, str] = {
    Note.NOT_A_BULLETIN: " (not a bulletin)",
    Note.NOT_A_MEMBER: " (not a member)",
}


@dataclass(frozen=True)
class Action:
    """What was done, with the numbers its words need."""

    what: FeedbackAction
    count: int = 0  # soft bounces: issues counted; LEFT_SUSPECT_SERVER: members refused
    limit: int = 0  # SOFT_COUNTED: NEWSLETTER_SOFT_BOUNCE_LIMIT
    delivered: int = 0  # LEFT_SUSPECT_SERVER: members delivered in that send
    since: str = ""  # LEFT_RESUBSCRIBED: the day of the resubscription
    note: Note | None = None

    @property
    def left(self) -> bool:
        """Nothing was done: the address (and the message) are left as they are."""
        return self.what in _LEFT

    @property
    def text(self) -> str:
        """The action column of the report, e.g. "soft 1 of 3"."""
        words = _WORDS[self.what].format(
            count=self.count, limit=self.limit, delivered=self.delivered, since=self.since
        )
        if self.what in (FeedbackAction.SUPPRESS, FeedbackAction.SUPPRESS_AGAIN) and self.count:
            words += f" ({self.count} issues)"  # suppressed for reaching the soft limit
        return words + (_NOTES[self.note] if self.note else "")

    def noted(self, note: Note) -> Action:
        return replace(self, note=note)


@dataclass(frozen=True)
class Row:
    """One line of the report."""

    source: str  # "UID 12" or "send december-2023"
    kind: FeedbackKind  # what the message is, or RCPT_REFUSED / UNREADABLE
    address: str  # the member ("" if none matched)
    issue: str
    done: Action  # what was (or, in a dry run, would be) done
    detail: str = ""

    @property
    def action(self) -> str:
        """What was done, in words."""
        return self.done.text


@dataclass(frozen=True)
class Reply:
    sender: str
    subject: str
    date: str


@dataclass
class FeedbackReport:
    folder: str
    dry_run: bool
    rows: list[Row] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    suppressed: list[tuple[str, str, str]] = field(default_factory=list)  # address, reason, issue
    counts: dict[str, int] = field(default_factory=dict)
    already_processed: int = 0
    moved: int = 0  # in a dry run: would be moved
    move_to: str = ""
    since: dt.date | None = None  # the first day read
    since_first_send: bool = False  # that day was taken from the journal's first send
    since_default: bool = False  # nothing sent yet: the last FIRST_RUN_DAYS days
    # Why the mailbox was not read and which settings would add it ("" when it was read):
    # without IMAP settings a run still acts on the journal's refusals at RCPT.
    mailbox_unread: str = ""

    def count(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1


class Decisions:
    """Collects what a run will do, so that everything is applied at once at the end."""

    def __init__(self, log: FeedbackLog | None, limit: int, report: FeedbackReport) -> None:
        self.log = log
        self.limit = limit
        self.report = report
        self.events: list[Event] = []
        self.suppress: dict[str, tuple[str, str, str]] = {}
        self.soft: dict[str, set[str]] = {}

    def suppress_address(self, address: str, kind: EventKind, slug: str, count: int = 0) -> Action:
        key = address.casefold()
        if key in self.suppress:
            return Action(FeedbackAction.SUPPRESS_AGAIN, count=count)
        self.suppress[key] = (address, REASONS[kind], slug)
        return Action(FeedbackAction.SUPPRESS, count=count)

    def act(
        self, address: str, kind: EventKind, slug: str, detail: str, *, date: str = ""
    ) -> Action:
        from ..members.recipients import validate_address

        if validate_address(address.strip())[0] is None:
            # A sender the suppression list cannot hold (raw 8-bit bytes in a From header,
            # say): one such message must not fail every run's write, or nothing would
            # ever be suppressed again. It is shown, for the chair to read.
            return Action(FeedbackAction.LEFT_INVALID)
        since = self._resubscribed_after(address, date)
        if since:
            # The chair took the address off the list after this message was written: an
            # old unsubscribe or bounce read again (moved back into the folder, a server
            # that renumbered it) must not undo that.
            return Action(FeedbackAction.LEFT_RESUBSCRIBED, since=since[:10])
        self.events.append(Event(address, slug, kind, detail[:300]))
        if kind is not EventKind.SOFT:
            return self.suppress_address(address, kind, slug)
        if not slug:
            return Action(FeedbackAction.NOT_COUNTED)
        key = address.casefold()
        if key not in self.soft:
            self.soft[key] = self.log.soft_bounce_issues(address) if self.log else set()
        self.soft[key].add(slug)
        count = len(self.soft[key])
        if count >= self.limit:
            return self.suppress_address(address, kind, slug, count)
        return Action(FeedbackAction.SOFT_COUNTED, count=count, limit=self.limit)

    def _resubscribed_after(self, address: str, date: str) -> str | None:
        """The last resubscription of ``address`` if it is later than ``date`` (a Date
        header); None when there is none, or the date cannot be read."""
        from email.utils import parsedate_to_datetime

        if not date or self.log is None:
            return None
        since = self.log.last_resubscribed(address)
        if not since:
            return None
        try:
            written = parsedate_to_datetime(date)
            if written.tzinfo is None:
                written = written.replace(tzinfo=dt.UTC)
            return since if written < dt.datetime.fromisoformat(since) else None
        except (TypeError, ValueError, IndexError):
            return None
