"""``newsletter feedback``: read the sending mailbox, match what came back, keep the list clean.

One run: (1) permanent 5.1.x refusals the SMTP server gave at RCPT during a send, read from
the journal (no need to wait for a DSN); (2) every message in the folder not processed
before (folder, UIDVALIDITY, UID), classified by feedback.py and matched to a member and an
issue by the Message-ID the journal recorded (in the attached original, In-Reply-To or
References), then by address; (3) the actions — one atomic write of the suppression list,
then one transaction of the feedback memory, then (``--move-to``) the move.

A dry run opens the folder read-only (EXAMINE) and writes nothing at all.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

from ..common.config import Settings
from ..mail.imap import (
    Authenticator,
    Mailbox,
    authenticator_for,
    connect,
    derived_host,
    imap_params,
)
from ..mail.refusals import is_unknown_address
from ..records.feedback_log import EventKind, FeedbackLog
from ..records.journal import JOURNAL_NAME, Journal
from .actions import Action, Decisions, FeedbackAction, FeedbackReport, Note, Reply, Row
from .bounces import Failure, Severity
from .classify import Feedback, FeedbackKind, classify

__all__ = [
    "FIRST_RUN_DAYS",
    "FeedbackReport",
    "Row",
    "rcpt_hard_refusal",
    "resubscribe",
    "run_feedback",
]

# Before any send there is no first send to start reading from: read this many days back
# (--since reads further). Feedback on a bulletin arrives within days; older mail is not it.
FIRST_RUN_DAYS = 30

# Reconnections one run makes after the server dropped the connection while a message was
# read (each damaged message costs two); past this, what was read is saved and the run ends.
MAX_RECONNECTS = 6

# A bounce's severity as the event recorded for the member.
_EVENT = {Severity.HARD: EventKind.HARD, Severity.SOFT: EventKind.SOFT}


def rcpt_hard_refusal(reply: str) -> bool:
    """Whether a journal reply is a permanent address failure (``550 5.1.1 ...``): a 5xx
    reply whose enhanced code is 5.1.x *about the recipient* (5.1.7/5.1.8 are the sender's
    address: refusals.py holds that one definition)."""
    return is_unknown_address(reply)


class _Matcher:
    def __init__(self, journal: Journal | None) -> None:
        self.journal = journal

    def by_message_id(self, fb: Feedback) -> tuple[str, str] | None:
        if self.journal is None:
            return None
        for message_id in fb.message_ids:
            found = self.journal.find_message_id(message_id)
            if found:
                return found
        return None

    def not_ours(self, fb: Feedback) -> bool:
        """The report names the message it is about, and that is none the journal sent: the
        chair's own mail from the same mailbox, or backscatter of mail forged with our
        address. (Without any Message-ID it may still be ours: matched by address.)"""
        return self.journal is not None and bool(fb.message_ids) and self.by_message_id(fb) is None

    def by_address(self, address: str) -> tuple[str, str] | None:
        if self.journal is None or not address:
            return None
        slugs = self.journal.slugs_for_address(address)
        return (slugs[0], address) if slugs else None

    def member(self, fb: Feedback, address: str, *, sole: bool) -> tuple[str, str] | None:
        """(slug, address) for one reported address. The Message-ID decides when the report
        is about a single recipient (the address may be a forward of the member's)."""
        found = self.by_message_id(fb)
        if found and (sole or found[1].casefold() == address.casefold()):
            return found
        return self.by_address(address)


def _detail(failure: Failure) -> str:
    """The server's words for the detail column, its reason as early as possible (a narrow
    terminal cuts the rest): the status only when the words lack it, and without
    "<member address>:", which the member column shows already."""
    words = re.sub(
        rf"<?{re.escape(failure.address)}>?:\s*", "", failure.diagnostic, flags=re.IGNORECASE
    )
    if failure.status and failure.status not in words:
        words = f"{failure.status} {words}"
    return " ".join(words.split())[:160]


def _handle(fb: Feedback, source: str, matcher: _Matcher, decide: Decisions) -> bool:
    """Record the rows and decisions for one message; whether it counts as feedback
    (moved by --move-to)."""
    report = decide.report
    report.count(fb.kind)
    kind = fb.kind
    if kind in (FeedbackKind.HARD_BOUNCE, FeedbackKind.SOFT_BOUNCE, FeedbackKind.DELAYED):
        matched_any = False
        not_ours = matcher.not_ours(fb)
        for failure in fb.failures:
            detail = _detail(failure)
            if failure.severity is Severity.DELAY:
                ignored = Action(FeedbackAction.IGNORED)
                report.rows.append(Row(source, kind, failure.address, "", ignored, detail))
                matched_any = True
                continue
            if not_ours:
                # Not a bulletin: no issue's soft-bounce count may grow from it. An address
                # that does not exist is still gone, whoever wrote to it.
                member = matcher.by_address(failure.address)
                if failure.severity is Severity.HARD and member:
                    action = decide.act(member[1], EventKind.HARD, "", detail, date=fb.date)
                    noted = action.noted(Note.NOT_A_BULLETIN)
                    report.rows.append(Row(source, kind, member[1], "", noted, detail))
                else:
                    left = Action(FeedbackAction.LEFT_NOT_A_BULLETIN)
                    report.rows.append(Row(source, kind, failure.address, "", left, detail))
                continue
            found = matcher.member(fb, failure.address, sole=len(fb.failures) == 1)
            if found is None:
                left = Action(FeedbackAction.LEFT_NO_MEMBER)
                report.rows.append(Row(source, kind, failure.address, "", left, detail))
                continue
            matched_any = True
            slug, address = found
            event = _EVENT[failure.severity]
            action = decide.act(address, event, slug, detail, date=fb.date)
            report.rows.append(Row(source, kind, address, slug, action, detail))
        return matched_any
    if kind is FeedbackKind.COMPLAINT:
        found = None
        for address in fb.addresses or ("",):
            found = matcher.member(fb, address, sole=True) if address else matcher.by_message_id(fb)
            if found:
                break
        if found is None:
            left = Action(FeedbackAction.LEFT_NO_MEMBER)
            report.rows.append(Row(source, kind, "", "", left, fb.detail))
            return False
        slug, address = found
        action = decide.act(address, EventKind.COMPLAINT, slug, fb.detail, date=fb.date)
        report.rows.append(Row(source, kind, address, slug, action, fb.detail))
        return True
    if kind is FeedbackKind.UNSUBSCRIBE:
        # Honoured even when no send matches (the issue is then unknown). The member the
        # Message-ID points at and the sender may differ (a forwarding address replying):
        # both are suppressed, since mailing someone who asked to stop is the worse error.
        found = matcher.by_message_id(fb) or matcher.by_address(fb.sender)
        slug, address = found if found else ("", fb.sender)
        if not address:
            left = Action(FeedbackAction.LEFT_NO_SENDER)
            report.rows.append(Row(source, kind, "", "", left, fb.subject))
            return False
        targets = [address]
        if fb.sender and fb.sender.casefold() != address.casefold():
            targets.append(fb.sender)
        acted = False
        for target in targets:
            action = decide.act(target, EventKind.UNSUBSCRIBE, slug, fb.subject, date=fb.date)
            acted = acted or not action.left
            if not found:
                # Honoured, but the chair should know no member was taken off: often a
                # member writing from another address, whose member address stays mailed.
                action = action.noted(Note.NOT_A_MEMBER)
            report.rows.append(Row(source, kind, target, slug, action, fb.subject))
        return acted  # a request nobody could be taken off for stays in the folder
    if kind is FeedbackKind.AUTO_REPLY:
        ignored = Action(FeedbackAction.IGNORED)
        report.rows.append(Row(source, kind, fb.sender, "", ignored, fb.detail))
        return True
    # A subject can be any length; a screenful of one would bury the other replies.
    report.replies.append(Reply(fb.sender, fb.subject[:200], fb.date))
    return False


# A send in which at least this many members, and more than were delivered, were refused
# as unknown at RCPT says more about the server than about the members (an inbound mail
# server set as NEWSLETTER_SMTP_HOST refuses every outside address): nobody is suppressed.
SUSPECT_REFUSALS = 5


def _journal_refusals(journal: Journal, log: FeedbackLog | None, decide: Decisions) -> None:
    rcpt = FeedbackKind.RCPT_REFUSED
    for summary in journal.issues_summary():
        slug, source = summary.slug, f"send {summary.slug}"
        refused = [
            row
            for row in journal.rows(slug, "failed")
            if rcpt_hard_refusal(row.reply)
            and not (log is not None and log.has_event(row.address, slug, EventKind.RCPT))
        ]
        delivered = summary.counts.get("sent", 0)
        if len(refused) >= SUSPECT_REFUSALS and len(refused) > delivered:
            # One line, not one per member: the chair checks the server, not each address.
            left = Action(
                FeedbackAction.LEFT_SUSPECT_SERVER, count=len(refused), delivered=delivered
            )
            decide.report.rows.append(Row(source, rcpt, "", slug, left, refused[0].reply[:160]))
            continue
        for row in refused:
            decide.report.count(rcpt)
            action = decide.act(row.address, EventKind.RCPT, slug, row.reply)
            decide.report.rows.append(Row(source, rcpt, row.address, slug, action, row.reply[:160]))


def run_feedback(
    settings: Settings,
    *,
    dry_run: bool = False,
    since: dt.date | None = None,
    move_to: str | None = None,
    authenticate: Authenticator | None = None,
    open_mailbox: Callable[..., Mailbox] = connect,
    today: dt.date | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> FeedbackReport:
    """Process the mailbox once; see the module docstring. ``authenticate`` defaults to
    the password sign-in from the settings."""
    from ..common.errors import MailboxError
    from ..members.suppression import load_suppressed, suppress_entries

    if not move_to and not settings.imap_host and not derived_host(settings.smtp_host):
        # No mailbox to read: the members the server refused outright at RCPT during a send
        # are still in the journal, and must not be mailed (nor counted READY) again.
        return _journal_only(settings, dry_run=dry_run, today=today, now=now)
    params = imap_params(settings)
    if move_to and move_to.strip().casefold() == params.folder.strip().casefold():
        from ..common.errors import UsageError

        # Moved into itself, each message would come back with a new UID, as new, every run.
        raise UsageError(
            f"--move-to {move_to!r} is the folder feedback reads (NEWSLETTER_IMAP_FOLDER)",
            hint="name another folder, e.g. --move-to Processed",
        )
    sign_in = authenticate or authenticator_for(settings, params)
    report = FeedbackReport(folder=params.folder, dry_run=dry_run, move_to=move_to or "")
    state_dir = Path(settings.state_dir)
    log = FeedbackLog.open_existing(state_dir) if dry_run else FeedbackLog.for_state_dir(state_dir)
    journal_path = state_dir / JOURNAL_NAME
    journal = Journal.open(journal_path) if journal_path.is_file() else None
    own = _own_address(settings)
    try:
        decide = Decisions(log, settings.soft_bounce_limit, report)
        if journal is not None:
            _journal_refusals(journal, log, decide)
        matcher = _Matcher(journal)
        if since is None and journal is not None:
            # Nothing from before the first bulletin can be about one: without this, the
            # first run on an organisation's mailbox would download years of mail and list
            # every message in it as a reply to read. (A day's margin for time zones.)
            first = journal.first_send()
            if first is not None:
                since = first.date() - dt.timedelta(days=1)
                report.since_first_send = True
        if since is None:
            # Nothing sent yet (feedback tried before the first send): no first send bounds
            # the read, but the whole mailbox is still years of mail that is no feedback.
            since = (today or dt.date.today()) - dt.timedelta(days=FIRST_RUN_DAYS)
            report.since_default = True
        report.since = since
        mailbox = open_mailbox(params, sign_in)
        try:
            if move_to and not dry_run and not mailbox.can_move():
                raise MailboxError(
                    "the server has neither MOVE nor UIDPLUS: moving could delete other mail",
                    host=params.host, port=params.port, hint="run without --move-to",
                )  # fmt: skip
            readonly = dry_run or not move_to
            uidvalidity = mailbox.open_folder(params.folder, readonly=readonly)
            done = log.processed_uids(params.folder, uidvalidity) if log else set()
            all_uids = mailbox.uids(since)
            report.already_processed = sum(1 for uid in all_uids if uid in done)
            processed: list[tuple[int, str, bool]] = []
            # Feedback an earlier run processed without --move-to is still in the folder:
            # moved now too, or `feedback` then `feedback --move-to` would leave it for good.
            earlier = log.movable_uids(params.folder, uidvalidity) if log and move_to else set()
            to_move: list[int] = [uid for uid in all_uids if uid in earlier]
            lost: MailboxError | None = None
            reconnects = 0
            suspect: int | None = None  # failed twice, on fresh connections

            def reopen() -> None:
                nonlocal mailbox
                mailbox.close()
                mailbox = open_mailbox(params, sign_in)
                if mailbox.open_folder(params.folder, readonly=readonly) != uidvalidity:
                    raise MailboxError(
                        f"folder {params.folder!r} was renumbered (new UIDVALIDITY) during "
                        "the run", host=params.host, port=params.port,
                        hint="run newsletter feedback again",
                    )  # fmt: skip

            for uid in all_uids:
                if uid in done:
                    continue
                data: bytes | None = None
                attempts = 0
                while True:
                    try:
                        data = mailbox.fetch(uid)
                        break
                    except MailboxError as error:
                        # The connection went away: reconnect and try again (a dropped
                        # link). Failing twice on one message, it is the message (Dovecot
                        # ends the connection on a damaged file): skipped, once the next
                        # message reads fine — or every run would stop at it for good.
                        if reconnects >= MAX_RECONNECTS:
                            lost = error
                            break
                        reconnects += 1
                        try:
                            reopen()
                        except MailboxError:
                            lost = error  # gone for good: say where it went away
                            break
                        attempts += 1
                        if attempts == 2:
                            if suspect is not None:
                                lost = error  # two in a row: the link, not the messages
                            suspect = uid
                            break
                if lost is not None:
                    if dry_run or log is None or not processed:
                        raise lost  # nothing read yet: "nothing was changed"
                    # What was read is saved below, so a large mailbox on a flaky link
                    # still gets through, run after run.
                    break
                if attempts == 2:
                    continue  # the suspect: confirmed when a later message reads fine
                if suspect is not None:
                    report.count(FeedbackKind.UNREADABLE)
                    fails = Action(FeedbackAction.LEFT_SERVER_FAILS)
                    report.rows.append(Row(f"UID {suspect}", FeedbackKind.UNREADABLE, "", "",
                                           fails, "read it in your mail client"))  # fmt: skip
                    processed.append((suspect, FeedbackKind.UNREADABLE, False))
                    suspect = None
                if data is None:
                    # Gone meanwhile, or refused by the server: tried again next run.
                    gone = Action(FeedbackAction.LEFT_NOT_RETURNED)
                    report.rows.append(Row(f"UID {uid}", FeedbackKind.UNREADABLE, "", "", gone))
                    continue
                fb = _classify(data, settings.unsubscribe_mailto, own)
                movable = _handle(fb, f"UID {uid}", matcher, decide)
                if movable:
                    to_move.append(uid)
                processed.append((uid, fb.kind, movable))
            if dry_run or log is None:
                already = load_suppressed(settings.suppressed)
                report.suppressed = [
                    entry for entry in decide.suppress.values()
                    if entry[0].casefold() not in already
                ]  # fmt: skip
                report.moved = len(to_move) if move_to else 0  # would be moved
                return report
            at = now().astimezone(dt.UTC).isoformat(timespec="seconds")
            # The suppression list first (one atomic write): it is what protects members;
            # then the memory, so that a crash in between only means re-doing idempotent work.
            report.suppressed = suppress_entries(
                settings.suppressed, decide.suppress.values(), today=today or dt.date.today()
            )
            log.commit(folder=params.folder, uidvalidity=uidvalidity, processed=processed,
                       events=decide.events, at=at)  # fmt: skip
            if lost is not None:
                raise MailboxError(
                    lost.message, host=params.host, port=params.port,
                    hint=f"the {len(processed)} message(s) read before it were processed and "
                    "saved; run newsletter feedback again for the rest",
                )  # fmt: skip
            if move_to and to_move:
                mailbox.move(to_move, move_to)
                report.moved = len(to_move)
            return report
        finally:
            mailbox.close()
    finally:
        if log is not None:
            log.close()
        if journal is not None:
            journal.close()


NO_MAILBOX = (
    "no IMAP server configured, so only the send journal's refusals were acted on: set "
    "NEWSLETTER_IMAP_HOST (with NEWSLETTER_IMAP_USERNAME and NEWSLETTER_IMAP_PASSWORD, or "
    "the SMTP ones) to read bounces, complaints and unsubscribe requests too"
)


def _journal_only(
    settings: Settings,
    *,
    dry_run: bool,
    today: dt.date | None,
    now: Callable[[], dt.datetime],
) -> FeedbackReport:
    """A feedback run without a mailbox: the journal's RCPT refusals alone."""
    from ..members.suppression import load_suppressed, suppress_entries

    report = FeedbackReport(folder="the send journal", dry_run=dry_run, mailbox_unread=NO_MAILBOX)
    state_dir = Path(settings.state_dir)
    log = FeedbackLog.open_existing(state_dir) if dry_run else FeedbackLog.for_state_dir(state_dir)
    journal_path = state_dir / JOURNAL_NAME
    journal = Journal.open(journal_path) if journal_path.is_file() else None
    try:
        decide = Decisions(log, settings.soft_bounce_limit, report)
        if journal is not None:
            _journal_refusals(journal, log, decide)
        if dry_run or log is None:
            already = load_suppressed(settings.suppressed)
            report.suppressed = [
                entry for entry in decide.suppress.values() if entry[0].casefold() not in already
            ]
            return report
        report.suppressed = suppress_entries(
            settings.suppressed, decide.suppress.values(), today=today or dt.date.today()
        )
        at = now().astimezone(dt.UTC).isoformat(timespec="seconds")
        log.commit(folder="", uidvalidity=0, processed=(), events=decide.events, at=at)
        return report
    finally:
        if log is not None:
            log.close()
        if journal is not None:
            journal.close()


def _classify(data: bytes, unsubscribe_mailto: str, own: str) -> Feedback:
    """Classify; a message no parser copes with is listed as a reply, never a crash that
    would stop every later run at the same message."""
    try:
        return classify(data, unsubscribe_mailto=unsubscribe_mailto, own_address=own)
    except Exception as error:  # noqa: BLE001 - third-party heuristics on hostile input
        return Feedback(FeedbackKind.REPLY, subject=f"(unreadable message: {type(error).__name__})")


def _own_address(settings: Settings) -> str:
    """The bulletin's From address: NEWSLETTER_FROM, else the organisation's email."""
    from email.utils import parseaddr

    from ..common.errors import NewsletterError
    from ..content.organisation import load_organisation

    if settings.from_:
        return parseaddr(settings.from_)[1]
    try:
        return load_organisation(settings.templates_dir).email
    except NewsletterError:
        return ""


def resubscribe(
    settings: Settings, address: str, reason: str, *, now: dt.datetime | None = None
) -> str:
    """Take an address off the suppression list and record who/why; the address as taken
    off (as typed, stray spaces and a copied "Name <…>" or "mailto:" taken away)."""
    from ..common.errors import RecipientsError
    from ..members.recipients import unwrap_address
    from ..members.suppression import remove_suppressed

    address = unwrap_address(address)
    removed = remove_suppressed(settings.suppressed, address)
    if not removed:
        raise RecipientsError(
            f"{address} is not on the suppression list",
            path=settings.suppressed,
            hint="nothing was changed",
        )
    at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")
    with FeedbackLog.for_state_dir(settings.state_dir) as log:
        log.record_resubscribe(address, reason, at)
    return address
