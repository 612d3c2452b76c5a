"""A real send, planned and carried out: who is still to get the issue, then delivery.

``plan`` goes through the member list against the journal and counts who is to be sent
(within ``--limit`` and the daily cap), who already has it, who is unknown (cut off
mid-send) and who is skipped; the CLI shows that before asking for confirmation.
``execute`` goes through it again, builds each pending member's message lazily and hands
them to :func:`newsletter.sending.engine.deliver`. A real send reads the CSV once for both (see
``Campaign.read_members_once``); the policy around them lives in :mod:`newsletter.sending.policy`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..common.errors import (
    ConfigError,
    DeliveryIncomplete,
    NewsletterError,
    RecipientsError,
)
from ..mail.envelope import Envelope as OutgoingMessage
from ..mail.failures import SendFailure, UnknownOutcome
from ..mail.refusals import is_permanent
from ..mail.smtp import Transport
from ..members.recipients import (
    Recipient,
    RecipientReport,
    iter_recipients,
    unwrap_address,
    validate_address,
)
from ..members.suppression import load_suppressed
from ..records.journal import Journal, address_key
from .campaign import Campaign
from .engine import DeliveryResult, EventHandler, deliver


@contextmanager
def run_lock(state_dir: Path, slug: str) -> Iterator[None]:
    """One send of an issue at a time. Two at once could both claim a member left unknown
    (``--resend-unknown``) while the other is still talking to the server about it.

    The send also holds a second lock, ``send-SLUG.running``, for ``status`` to probe: a
    probe of the send lock itself, at the moment a send starts, made that send fail with
    "another send is running". A probe of the second one only makes a starting send wait
    the instant the probe takes."""
    # filelock: flock on Linux and macOS, LockFileEx on Windows (fcntl does not exist there).
    from filelock import FileLock, Timeout

    state_dir.mkdir(parents=True, exist_ok=True)
    # Who holds it goes beside the lock: Windows locks the lock file's bytes against reading.
    owner = state_dir / f"send-{slug}.owner"
    lock = FileLock(state_dir / f"send-{slug}.lock", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        try:
            holder = owner.read_text(encoding="utf-8").strip()
        except OSError:
            holder = ""
        raise NewsletterError(
            f"another send of {slug!r} is running ({holder or 'another process'})",
            hint="wait for it to finish, or stop it; then run this again to resume",
        ) from None
    try:
        # Only `running_send` ever takes this one, for an instant, so the wait is short.
        running = FileLock(_running_path(state_dir, slug), timeout=_PROBE_WAIT)
        with running:
            owner.write_text(f"pid {os.getpid()}\n", encoding="utf-8")
            yield
    finally:
        lock.release()


_PROBE_WAIT = 30.0  # seconds a starting send waits for status probes (each takes an instant)


def _running_path(state_dir: Path, slug: str) -> Path:
    return state_dir / f"send-{slug}.running"


def running_send(state_dir: Path, slug: str) -> str:
    """Who is sending ``slug`` right now ("pid 4242"), or "" if no send of it runs.

    Never waits, and never takes the send lock (see :func:`run_lock`)."""
    from filelock import FileLock, Timeout

    path = _running_path(state_dir, slug)
    if not path.exists():
        return ""
    probe = FileLock(path, timeout=0)
    try:
        probe.acquire()
    except Timeout:
        try:
            owner = (state_dir / f"send-{slug}.owner").read_text(encoding="utf-8").strip()
        except OSError:
            owner = ""
        return owner or "another process"
    probe.release()
    return ""


@dataclass
class SendPlan:
    campaign: Campaign
    report: RecipientReport
    to_send: int = 0  # pending members this run will attempt (after --limit)
    pending_total: int = 0  # all pending members (before --limit)
    already_sent: int = 0
    failed_before: int = 0  # `failed` in the journal, left alone unless --retry-failed
    unknown: list[str] = field(default_factory=list)  # `sending`: cut off mid-transaction
    resend_unknown: bool = False
    retry_failed: bool = False
    limit: int | None = None
    # The daily cap (NEWSLETTER_DAILY_LIMIT): sent in the last 24 hours over all issues,
    # and how many pending members it holds back today (they stay pending).
    daily_limit: int = 0
    daily_used: int = 0
    held_back: int = 0
    resume_after: str = ""  # when the held-back members can go, e.g. "after 14:05"
    duration: str = ""  # e.g. "about 33 minutes at 30 a minute"
    issue_changed: bool = False  # the rendered issue differs from what members already got

    @property
    def resuming(self) -> bool:
        return bool(self.already_sent or self.unknown or self.failed_before)


def plan(
    campaign: Campaign,
    journal: Journal,
    *,
    resend_unknown: bool = False,
    retry_failed: bool = False,
    limit: int | None = None,
    skip_invalid: bool = False,
    daily_left: int | None = None,
) -> SendPlan:
    """Count who this run would send to; refuses invalid rows unless ``skip_invalid``."""
    slug = campaign.issue.slug
    sent = journal.addresses(slug, "sent")
    failed = journal.addresses(slug, "failed")
    sending = journal.addresses(slug, "sending")
    result = SendPlan(
        campaign, RecipientReport(), resend_unknown=resend_unknown,
        retry_failed=retry_failed, limit=limit,
    )  # fmt: skip
    for recipient in campaign.recipients(result.report):
        key = address_key(recipient.email)
        if key in sent:
            result.already_sent += 1
        elif key in sending and not resend_unknown:
            result.unknown.append(recipient.email)
        elif key in failed and not retry_failed:
            result.failed_before += 1
        else:
            result.pending_total += 1
    if result.report.invalid and not skip_invalid:
        rows = ", ".join(str(row) for row, _, _ in result.report.invalid[:10])
        raise RecipientsError(
            f"{len(result.report.invalid)} invalid address(es) (rows {rows}); nothing was sent",
            path=campaign.recipients_path,
            hint="fix them, or add --skip-invalid to leave them out",
        )
    result.to_send = min(result.pending_total, limit) if limit is not None else result.pending_total
    if daily_left is not None and result.to_send > daily_left:
        result.held_back = result.to_send - daily_left
        result.to_send = daily_left
    return result


def pending_messages(
    send_plan: SendPlan, journal: Journal, suppressed: SuppressionWatch | None = None
) -> Iterator[OutgoingMessage]:
    """The messages of this run, built lazily in CSV order (nothing held in memory), those
    an earlier run left pending after a 5xx refusal last, none for a member suppressed
    meanwhile (``suppressed``: the run's watch on the list)."""
    campaign = send_plan.campaign
    slug = campaign.issue.slug
    skip = journal.addresses(slug, "sent")
    if not send_plan.resend_unknown:
        skip |= journal.addresses(slug, "sending")
    if not send_plan.retry_failed:
        skip |= journal.addresses(slug, "failed")
    # Members an earlier run put back to pending after a 5xx (the circuit breaker, a known
    # provider refusal) go last. If that refusal was in fact about them (five colleagues
    # at one organisation refused by its policy), they would otherwise trip the breaker
    # again first on every re-run, and nobody after them in the list would ever get it.
    last = {
        address_key(row.address)
        for row in journal.rows(slug, "deferred")
        if is_permanent(row.reply)
    }
    builder = campaign.builder()
    suppressed = suppressed or SuppressionWatch(campaign)
    produced = 0
    for held_back in (False, True):
        for recipient in campaign.recipients(RecipientReport()):
            if produced >= send_plan.to_send:  # --limit and the daily cap
                return
            key = address_key(recipient.email)
            if key in skip or (key in last) != held_back:
                continue
            if suppressed.now(recipient.email):
                continue  # unsubscribed (or bounced) while this run was going on
            produced += 1
            yield builder.build(recipient)


class SuppressionWatch:
    """The suppression list as it is now, not as it was when the run started: a paced send
    of a long list takes hours, and a member who unsubscribes meanwhile (``newsletter
    unsubscribe`` from the unsubscribe page, a ``feedback`` run) must not get it. Reloaded
    only when the file changed (a ``stat`` per message); its writes are atomic replaces."""

    def __init__(self, campaign: Campaign) -> None:
        self._path = Path(campaign.settings.suppressed)
        self._stamp = self._stat()
        self._known = campaign.suppressed

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            info = self._path.stat()
        except OSError:
            return None
        # Every write replaces the file: a new inode even within a coarse mtime's tick.
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def now(self, address: str) -> bool:
        stamp = self._stat()
        if stamp != self._stamp:
            try:
                self._known = self._known | load_suppressed(self._path)
            except NewsletterError:
                pass  # a broken edit: keep what was known (never fewer suppressions)
            self._stamp = stamp
        return address.casefold() in self._known


def execute(
    send_plan: SendPlan,
    journal: Journal,
    transport_factory: Callable[[], Transport],
    *,
    on_event: EventHandler | None = None,
    on_stopping: Callable[[str], None] | None = None,
) -> DeliveryResult:
    campaign = send_plan.campaign
    if not campaign.sender.has_unsubscribe:
        raise ConfigError(
            "a real send needs an unsubscribe link",
            setting="NEWSLETTER_UNSUBSCRIBE_URL",
            hint="set NEWSLETTER_UNSUBSCRIBE_URL (with NEWSLETTER_SECRET) "
            "or NEWSLETTER_UNSUBSCRIBE_MAILTO",
        )
    suppressed = SuppressionWatch(campaign)
    return deliver(
        pending_messages(send_plan, journal, suppressed),
        slug=campaign.issue.slug,
        sender=campaign.sender.address,
        journal=journal,
        transport_factory=transport_factory,
        settings=campaign.settings,
        on_event=on_event,
        on_stopping=on_stopping,
        resend_unknown=send_plan.resend_unknown,
        # Checked again just before each transaction: messages are built a few ahead.
        wanted=lambda msg: not suppressed.now(msg.to),
    )


# ---- test sends ----------------------------------------------------------------------------


def _checked_address(address: str, source: str = "--to") -> str:
    # As a mail program copies it ("Deputy Chair <deputy@x.org>", Outlook's To line), as
    # `unsubscribe` and the members list read it.
    normalised, reason = validate_address(unwrap_address(address))
    if normalised is None:
        raise ConfigError(f"{address!r} is not a valid address: {reason}", setting=source)
    return normalised


def test_recipient(campaign: Campaign, as_address: str | None) -> Recipient:
    """Whom the test copy is personalised as: ``--as`` (a CSV row) or the first member."""
    report = RecipientReport()
    if as_address is not None:  # pasted as a mail program copies it, as --to is
        as_address = unwrap_address(as_address)
    try:
        for recipient in campaign.recipients(report):
            if as_address is None or address_key(recipient.email) == address_key(as_address):
                return recipient
    except RecipientsError:
        if as_address is not None:
            raise
    if as_address is not None:
        # A suppressed (or unsubscribed) member is still in the list: the copy goes to the
        # chair, never to them, so it may show their fields (as the preview's --as does).
        for recipient in iter_recipients(campaign.recipients_path):
            if address_key(recipient.email) == address_key(as_address):
                return recipient
        raise RecipientsError(
            f"{as_address} is not a member in the list",
            path=campaign.recipients_path,
            hint="--as takes an address from the recipients CSV",
        )
    return Recipient(email="member@example.org", row=0, fields={"email": "member@example.org"})


def send_test(
    campaign: Campaign,
    to: list[str],
    transport_factory: Callable[[], Transport],
    journal: Journal,
    *,
    as_address: str | None = None,
    member: Recipient | None = None,
    source: str = "--to",
) -> list[tuple[str, str]]:
    """One copy per address in ``to``, subject prefixed "[TEST] "; never a member send.
    Personalised as ``member``, else as :func:`test_recipient` finds ``as_address``.
    ``source``: where ``to`` came from (``--to`` or the setting), for error messages.

    A local picture that cannot be used refuses it, as every other output does: the copy
    would show a broken picture."""
    if campaign.rendered.pictures is not None:
        campaign.rendered.pictures.require()
    if not to:
        raise ConfigError(
            "no address for the test copy",
            setting="NEWSLETTER_TEST_TO",
            hint="set it in .env, or pass --to ADDRESS",
        )
    to = [_checked_address(address, source) for address in to]
    member = member or test_recipient(campaign, as_address)
    builder = campaign.builder(subject_prefix="[TEST] ")
    transport = transport_factory()
    sent: list[tuple[str, str]] = []
    try:
        try:
            transport.connect()
        except SendFailure as failure:  # "421 busy" at connect: nothing was sent
            raise DeliveryIncomplete(
                f"the server is busy, the test copy was not sent: {failure.reply}",
                host=campaign.settings.smtp_host,
                port=campaign.settings.port,
                hint="run the same command again in a few minutes",
            ) from None
        for address in to:
            # Personalised as the member, addressed to the tester, and unsubscribing the
            # tester: the chair trying the Unsubscribe link (or Gmail's button) in the copy
            # would otherwise take the member off the list.
            message = builder.build(member, to=address, unsubscribe_as=address)
            try:
                reply = transport.send(message, campaign.sender.address)
            except SendFailure as failure:
                what = (
                    "may or may not have arrived (look in its inbox)"
                    if isinstance(failure, UnknownOutcome)
                    else "was not accepted"
                )
                raise DeliveryIncomplete(
                    f"the test copy to {address} {what}: {failure.reply}",
                    host=campaign.settings.smtp_host,
                    port=campaign.settings.port,
                ) from None
            journal.record_test_send(campaign.issue.slug, address, message.message_id)
            sent.append((address, reply))
    finally:
        transport.close()
    return sent
