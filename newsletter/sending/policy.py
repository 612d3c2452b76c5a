"""The ``send`` command's policy: which options go together, which findings refuse a send,
what ``--yes`` may skip, the daily cap, when a run stops, and how it ended (:class:`SendEnd`).

The CLI only parses options into :class:`SendOptions`, calls :func:`send` with a
:class:`SendUI` (its prompts, progress bar and printing), and prints what comes back.
Nothing here prints or reads the terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Protocol

from ..common.config import Settings
from ..common.errors import (
    CheckFailed,
    DeliveryError,
    DeliveryIncomplete,
    NewsletterError,
    UsageError,
)
from ..content.likeness import body_words, subject_words
from ..domain.offline import for_check
from ..mail.providers import SIGN_IN_GUIDANCE, provider_from_smtp_host
from ..mail.smtp import Transport
from ..members.recipients import RecipientReport
from ..members.suppression import load_suppressed
from ..records.journal import Journal, RunStop, address_key
from . import campaign as campaign_mod
from . import plan as sending
from .checks.findings import Check, Finding, Report
from .daily import DailyBudget, daily_budget, duration, when
from .engine import DeliveryResult, EventHandler
from .stops import Stop
from .testcopy import TestSend, send_test_copy


@dataclass(frozen=True)
class SendOptions:
    """The ``send`` command's options, as given (None/False: not given)."""

    dry_run: bool = False
    out: Path | None = None
    recipients: Path | None = None
    test: bool = False
    to: tuple[str, ...] = ()
    as_address: str | None = None
    yes: bool = False
    limit: int | None = None
    resend_unknown: bool = False
    retry_failed: bool = False
    skip_invalid: bool = False
    force: bool = False
    changed_ok: bool = False
    connections: int | None = None
    rate: float | None = None
    batch_size: int | None = None
    batch_pause: float | None = None
    resend_of: str | None = None  # the slug of a sent issue this one may be a copy of


# Options that only mean something for a real send to the members.
# Pre-flight findings that --force cannot override, with what to do instead.
UNFORCEABLE = {
    Check.DRAFT: "a draft is never sent, even with --force: delete its 'draft: true' line",
    Check.WEAK_SECRET: "a guessable NEWSLETTER_SECRET is never used, even with --force (members' "
    "unsubscribe links could be forged): set a long random one",
    Check.NO_UNSUBSCRIBE: "a bulletin without an unsubscribe link is never sent, even with "
    "--force: set NEWSLETTER_UNSUBSCRIBE_URL (and NEWSLETTER_SECRET) or "
    "NEWSLETTER_UNSUBSCRIBE_MAILTO",
    # Everyone would get the same bulletin twice: only the explicit flag sends it again.
    Check.SENT_BEFORE: "a copy of an issue members already got is not sent with --force: "
    "add --resend-of and the earlier issue's name (above) to send it again anyway",
    Check.RENAMED: "an issue members already got under another name is not sent with "
    "--force: rename it back, or add --resend-of and its old name (above) to send it again",
    # Microsoft 365 refuses the password at the first connection anyway (535 5.7.139).
    Check.BASIC_AUTH_ENDED: "Microsoft 365 no longer takes passwords for SMTP: " + SIGN_IN_GUIDANCE,
}

_MEMBER_SEND_ONLY = {
    "yes": "--yes",
    "limit": "--limit",
    "resend_unknown": "--resend-unknown",
    "retry_failed": "--retry-failed",
    "skip_invalid": "--skip-invalid",
    "force": "--force",
    "changed_ok": "--changed-ok",
    "connections": "--connections",
    "rate": "--rate",
    "batch_size": "--batch-size",
    "batch_pause": "--batch-pause",
    "resend_of": "--resend-of",
}


def check_options(options: SendOptions) -> None:
    """Refuse combinations where an option would be ignored or misread (nothing sent)."""
    if options.to and not options.test:
        raise UsageError(
            "--to needs --test",
            hint="without --test the issue goes to every member; nothing was sent",
        )
    if options.as_address is not None and not options.test:
        raise UsageError(
            "--as needs --test", hint="it personalises the test copy; nothing was sent"
        )
    if options.dry_run and options.test:
        raise UsageError(
            "--dry-run and --test do not go together",
            hint="--dry-run writes every member's message to disk, --test sends you one copy",
        )
    if options.out is not None and not options.dry_run:
        raise UsageError("--out needs --dry-run", hint="it is where the dry run writes")
    mode = "--dry-run" if options.dry_run else "--test" if options.test else ""
    if mode:
        for name, flag in _MEMBER_SEND_ONLY.items():
            if getattr(options, name) not in (None, False):
                raise UsageError(
                    f"{flag} does nothing with {mode}",
                    hint=f"it is for the real send to the members: drop it, or drop {mode}; "
                    "nothing was sent",
                )


class SendUI(Protocol):
    """What the policy needs from the terminal (the CLI implements it)."""

    def notice(self, text: str) -> None: ...

    def finding(self, line: str) -> None:
        """A pre-flight error that refuses (or, with --force, does not refuse) the send."""

    def plan(self, plan: sending.SendPlan, checks: str) -> None:
        """Show who will get it, before any question."""

    def confirm(self, question: str, no_terminal_hint: str) -> bool:
        """Ask [y/N]; raise NewsletterError(hint=no_terminal_hint) when nobody can answer."""

    def deliver(
        self, total: int, run: Callable[[EventHandler | None], DeliveryResult]
    ) -> DeliveryResult:
        """Call ``run`` with an event handler (a progress bar) and return its result."""


@dataclass
class Totals:
    """Where the current list stands for the issue after the run."""

    sent: int = 0
    failed: int = 0
    pending: int = 0
    unknown: int = 0


class SendEnd(Enum):
    """How a real send ended (the CLI maps it to the exit status)."""

    DONE = "done"  # everyone it set out to reach has it (or nothing was to send, or declined)
    # Members failed, unknown (cut off mid-send) or pending other than by --limit: deferred,
    # held back by the daily cap, returned by a sender refusal.
    UNFINISHED = "unfinished"
    INTERRUPTED = "interrupted"  # Ctrl-C during the delivery


@dataclass
class MemberSend:
    """What a real send did, for the final summary; ``end`` is how it ended."""

    plan: sending.SendPlan
    result: DeliveryResult | None = None
    totals: Totals = field(default_factory=Totals)
    declined: bool = False
    stopped: Stop | None = None  # why the run stopped early
    resume_after: str = ""  # held back by the daily cap: when they can go
    stop_resume: str = ""  # stopped by a provider's daily limit: when a re-run can work
    end: SendEnd = SendEnd.DONE
    resume: str = ""  # the command that resumes this send, e.g. "newsletter send SLUG"
    details: str = ""  # the status command for the same members list


@dataclass
class DryRun:
    campaign: campaign_mod.Campaign
    result: campaign_mod.DryRunResult
    # What a real send would refuse in the issue (a draft, skeleton text, ...): the dry run
    # writes every message all the same, and says so.
    refusals: list[Finding] = field(default_factory=list)


def send(
    settings: Settings, slug: str, options: SendOptions, ui: SendUI
) -> DryRun | TestSend | MemberSend:
    """Run ``newsletter send``: a dry run, a test copy or the real send, as options say.

    Returns a :class:`DryRun`, :class:`TestSend` or :class:`MemberSend`."""
    check_options(options)
    settings = settings.with_overrides(
        connections=options.connections,
        rate=options.rate,
        batch_size=options.batch_size,
        batch_pause=options.batch_pause,
    )
    if options.dry_run:
        camp = campaign_mod.prepare(
            settings, slug, recipients=options.recipients, allow_example=True
        )
        for note in camp.notices:
            ui.notice(note)
        from .checks import issue_refusals

        out = options.out or settings.outbox / camp.issue.slug
        result = campaign_mod.dry_run(camp, out, journal=_journal_state(settings, camp))
        return DryRun(camp, result, issue_refusals(camp))
    settings.require_smtp()
    if options.test:
        return send_test_copy(
            settings,
            slug,
            recipients=options.recipients,
            to=options.to,
            as_address=options.as_address,
        )
    return send_to_members(settings, slug, options, ui)


def _journal_state(
    settings: Settings, camp: campaign_mod.Campaign
) -> tuple[set[str], set[str]] | None:
    """(have it, failed or cut off before) for the dry run's summary; None before any real
    send of the issue. Read only: a dry run never creates the journal."""
    from ..records.journal import JOURNAL_NAME

    path = settings.state_dir / JOURNAL_NAME
    if not path.is_file():
        return None
    with Journal.open(path) as journal:
        slug = camp.issue.slug
        sent = journal.addresses(slug, "sent")
        if not sent and not any(journal.counts(slug).values()):
            return None
        return sent, journal.addresses(slug, "failed", "sending")


@dataclass
class CheckRun:
    """What ``newsletter check`` prints: the notes about the run, then the report."""

    notes: list[str]
    report: Report


def check(
    settings: Settings,
    slug: str,
    *,
    recipients: Path | None = None,
    skip_invalid: bool = False,
    resend_of: str = "",
    today: date | None = None,
    dns: bool = False,
) -> CheckRun:
    """The pre-flight report a real send would act on (``skip_invalid``, ``resend_of`` as
    the send's flags). The front matter's problems are findings with everything else, not
    a stop at the first. The sign-in is checked as the send will do it: a stale access
    token is refreshed, so a revoked sign-in is NOT READY here, not a surprise at the
    first connection. The set-up checks (sign-in, SMTP) are judged on ``today``; ``dns``:
    the sending domain's too."""
    from ..signin.oauth import sending_account, sign_in_problem
    from .checks import run_checks

    camp = campaign_mod.prepare(
        settings, slug, recipients=recipients, allow_example=True, lenient=True
    )
    # Without an unsubscribe link the last note says what the report's error says again.
    notes = camp.notices[:-1] if not camp.sender.has_unsubscribe else list(camp.notices)
    missing, fix = sign_in_problem(settings)
    account = sending_account(settings)
    setup = for_check(settings, today or date.today())
    if dns:
        from ..domain.dnschecks import domain_checks

        setup += domain_checks(
            settings.dns_server,
            camp.sender.domain,
            provider_from_smtp_host(settings.smtp_host),
            envelope_domain=account.rpartition("@")[2] if "@" in account else "",
            dkim_selectors=settings.dkim_selectors,
        )
    report = run_checks(
        camp,
        smtp_username=account,
        sign_in_missing=missing,
        sign_in_fix=fix,
        skip_invalid=skip_invalid,
        resend_of=resend_of,
        setup=setup,
    )
    return CheckRun(notes, report)


def send_to_members(
    settings: Settings,
    slug: str,
    options: SendOptions,
    ui: SendUI,
    *,
    journal_clock: Callable[[], datetime] | None = None,
    transport_factory: Callable[[], Transport] | None = None,
    today: date | None = None,
) -> MemberSend:
    """The real send: checks, plan, confirmation, delivery, final summary.

    ``journal_clock`` (what "the last 24 hours" is measured against) and
    ``transport_factory`` (one SMTP connection per call) default to the real ones;
    ``today``, what the set-up checks are judged on, to the journal clock's day."""
    from ..mail.smtp import transport_factory as smtp_factory
    from ..signin.oauth import sending_account, sign_in_missing
    from .checks import run_checks

    resume, details = resume_commands(slug, options)
    camp = campaign_mod.prepare(settings, slug, recipients=options.recipients)
    camp.read_members_once()  # checks, plan and delivery share one read of the CSV
    day = today or (journal_clock().date() if journal_clock else date.today())
    checks = run_checks(
        camp,
        smtp_username=sending_account(settings),
        sign_in_missing=sign_in_missing(settings),
        resend_of=options.resend_of or "",
        setup=for_check(settings, day),
    )
    problems = [
        f for f in checks.errors if not (options.skip_invalid and f.check is Check.INVALID_ROWS)
    ]
    for finding in problems:
        ui.finding(finding.line())
    # --force cannot send a draft to members, nor a bulletin members cannot leave, nor sign
    # unsubscribe links with a secret anyone could guess (every member's link forgeable).
    unforceable = [f for f in problems if f.check in UNFORCEABLE]
    if problems and (not options.force or unforceable):
        raise CheckFailed(
            f"{len(problems)} pre-flight error(s); nothing was sent",
            hint=(
                UNFORCEABLE[unforceable[0].check]
                if unforceable
                else f"see 'newsletter check {slug}', or add --force to send anyway"
            ),
        )
    factory = transport_factory or smtp_factory(settings)
    warnings = len(checks.warnings)
    checked = f"{warnings} warning(s): see 'newsletter check {slug}'" if warnings else "passed"
    if problems:  # only here with --force
        checked = f"{len(problems)} error(s) overridden with --force: see 'newsletter check {slug}'"
    opened = (
        Journal.for_state_dir(settings.state_dir, clock=journal_clock)
        if journal_clock
        else Journal.for_state_dir(settings.state_dir)
    )
    with sending.run_lock(settings.state_dir, camp.issue.slug), opened as journal:
        budget = daily_budget(journal, settings.daily_limit)
        plan = sending.plan(
            camp, journal, resend_unknown=options.resend_unknown,
            retry_failed=options.retry_failed, limit=options.limit,
            skip_invalid=options.skip_invalid, daily_left=budget.left if budget else None,
        )  # fmt: skip
        _describe(plan, settings, journal, budget)
        outcome = MemberSend(plan, resume=resume, details=details)
        ui.plan(plan, checked)
        if plan.to_send == 0:
            return _finish(outcome, camp, journal, settings)
        if not _confirmed(plan, options, ui):
            outcome.declined = True
            return outcome
        journal.record_run(camp.issue.slug, camp.content_hash(), plan.report.accepted)
        # What it says, so that a copy under another name is known later (checks.copies).
        journal.record_text(camp.issue.slug, subject_words(camp.issue), body_words(camp.issue))
        try:
            outcome.result = ui.deliver(
                plan.to_send,
                lambda on_event: sending.execute(
                    plan, journal, factory, on_event=on_event, on_stopping=ui.notice
                ),
            )
        except DeliveryError as error:
            # The server became unusable in a way that is a setting's to fix (AUTH, TLS).
            sent_now = journal.counts(camp.issue.slug)["sent"] - plan.already_sent
            if sent_now <= 0:
                raise
            # Some members have it: the send is unfinished, not refused (exit 1, not 2).
            raise DeliveryIncomplete(
                error.message,
                host=error.host,
                port=error.port,
                hint=(f"{error.hint}; " if error.hint else "")
                + (
                    f"{sent_now} message(s) were sent before it: once fixed, run "
                    f"'{resume}' to resume; nobody gets a second copy"
                ),
            ) from error
        return _finish(outcome, camp, journal, settings)


def resume_commands(slug: str, options: SendOptions) -> tuple[str, str]:
    """The command that resumes this send, and the status command for it.

    It carries what decides *who* is sent to and whether the send may start (the members
    list, --skip-invalid, --force): a bare 'newsletter send SLUG' would read another list,
    or refuse the rows this run skipped. Not --yes, --limit, --retry-failed or
    --resend-unknown (each a decision for that run only) nor pacing (settings have it)."""
    import shlex

    members = f" --recipients {shlex.quote(str(options.recipients))}" if options.recipients else ""
    flags = "".join(
        f" {flag}"
        for flag, given in (("--skip-invalid", options.skip_invalid), ("--force", options.force))
        if given
    )
    return f"newsletter send {slug}{members}{flags}", f"newsletter status {slug}{members}"


def _describe(
    plan: sending.SendPlan, settings: Settings, journal: Journal, budget: DailyBudget | None
) -> None:
    slug = plan.campaign.issue.slug
    last = journal.last_run(slug)
    plan.issue_changed = bool(
        last and last[0] != plan.campaign.content_hash() and plan.already_sent
    )
    if budget is not None:
        plan.daily_limit, plan.daily_used = budget.limit, budget.used
        if plan.held_back:
            moment = budget.free_again(plan.to_send + 1, journal.now())
            plan.resume_after = when(moment, journal.now()) if moment else ""
    plan.duration = duration(plan.to_send, settings.rate, settings.batch_size, settings.batch_pause)


def _confirmed(plan: sending.SendPlan, options: SendOptions, ui: SendUI) -> bool:
    """``--yes`` answers "send to N members?", but never "the issue changed: send anyway?"
    (that needs ``--changed-ok``): members would get two different versions."""
    if plan.issue_changed and not options.changed_ok:
        return ui.confirm(
            f"The issue changed since {plan.already_sent} member(s) got it; the other "
            f"{plan.to_send} would get the new version. Send it now?",
            "add --changed-ok to send the changed issue to the rest",
        )
    if options.yes:
        return True
    return ui.confirm(f"Send to {plan.to_send} member(s) now?", "add --yes to confirm")


def _finish(
    outcome: MemberSend, camp: campaign_mod.Campaign, journal: Journal, settings: Settings
) -> MemberSend:
    plan, result = outcome.plan, outcome.result
    outcome.totals = _totals(camp, journal)
    if result is not None:
        # The list as it stands now: members suppressed while the run went on (an
        # unsubscribe, a feedback run) are no longer counted, or `list` would call them
        # pending for ever ("sent 36 of 38; 2 pending" after a send that is done).
        totals = outcome.totals
        members = totals.sent + totals.failed + totals.pending + totals.unknown
        journal.record_run(camp.issue.slug, camp.content_hash(), members)
        outcome.stopped = result.stopped
        if result.stopped is not None and result.stopped.retry_after is not None:
            now = journal.now()
            outcome.stop_resume = when(now + result.stopped.retry_after, now)
        _remember_stop(journal, camp.issue.slug, result.stopped, outcome.resume)
        if result.interrupted:
            outcome.end = SendEnd.INTERRUPTED
            return outcome
    if outcome.totals.pending and (plan.held_back or plan.to_send == 0):
        budget = daily_budget(journal, settings.daily_limit)
        moment = budget.free_again() if budget else None
        outcome.resume_after = when(moment, journal.now()) if moment else ""
    # Members --limit left out are pending as asked; any other pending member (deferred,
    # held back by the daily cap, returned by a sender refusal) means "not done yet".
    left_by_limit = plan.pending_total - plan.to_send - plan.held_back if plan.limit else 0
    pending = outcome.totals.pending - max(0, left_by_limit)
    leftovers = outcome.totals.failed or pending > 0 or outcome.totals.unknown
    outcome.end = SendEnd.UNFINISHED if leftovers or outcome.stopped else SendEnd.DONE
    return outcome


def _remember_stop(journal: Journal, slug: str, stopped: Stop | None, resume: str) -> None:
    """Why this run stopped early, for `status` to say later (when, and from when a re-run
    can work); a run that got past such a stop forgets it."""
    if stopped is None:
        journal.clear_stop(slug)
        return
    now = journal.now()
    after = now + stopped.retry_after if stopped.retry_after is not None else None
    journal.record_stop(
        slug,
        RunStop(
            stopped.reason,
            stopped.reply,
            stopped.advice,
            stopped=now.isoformat(timespec="seconds"),
            resume_after=after.isoformat(timespec="seconds") if after else "",
            resume=resume,
            why=str(stopped.why),
        ),
    )


def _totals(camp: campaign_mod.Campaign, journal: Journal) -> Totals:
    slug = camp.issue.slug
    sent = journal.addresses(slug, "sent")
    failed = journal.addresses(slug, "failed")
    unknown = journal.addresses(slug, "sending")
    try:  # members who unsubscribed while the run went on are no longer pending
        suppressed_now = load_suppressed(camp.settings.suppressed)
    except NewsletterError:
        suppressed_now = frozenset()
    totals = Totals()
    for recipient in camp.recipients(RecipientReport()):
        key = address_key(recipient.email)
        if key in sent:
            totals.sent += 1
        elif key in failed:
            totals.failed += 1
        elif key in unknown:
            totals.unknown += 1
        elif recipient.email.casefold() not in suppressed_now:
            totals.pending += 1
    return totals


def no_terminal(hint: str) -> NewsletterError:
    return NewsletterError("no terminal to confirm the send; nothing was sent", hint=hint)
