"""What the ``newsletter`` commands print: summaries, the send's prompts and progress bar,
tables and notes. Nothing here decides anything: each function shows a typed result the
core returned (:mod:`.commands` calls the core, :mod:`.exits` decides the exit status).

Text from outside (servers' replies, mail anyone can send) goes through :func:`plain`
before it reaches the terminal. Heavy libraries (rich) are imported where they are used.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer

from ..common.errors import Interrupted

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from pathlib import Path

    from ..common.config import Settings
    from ..sending.campaign import Campaign, DryRunResult
    from ..sending.checks import Report
    from ..sending.checks.findings import Finding
    from ..sending.engine import DeliveryEvent, DeliveryResult
    from ..sending.plan import SendPlan
    from ..sending.policy import MemberSend, TestSend
    from ..sending.status import IssueState, SendStatus
    from ..signin.tokens import SignIn


def say(message: str = "", err: bool = False) -> None:
    """One line of the command's output (stdout, or stderr with ``err``)."""
    typer.echo(message, err=err)


def notice(message: str) -> None:
    """A yellow "note: …" on stderr: something to know, not an error."""
    typer.secho(f"note: {message}", fg="yellow", err=True)


def skipped(error: Exception) -> None:
    """What a command left out and why (a broken draft, a picture it could not use)."""
    notice(f"skipped: {error}")


def kb(size: int) -> str:
    """``size`` bytes as the summaries show it: "41.3 KB"."""
    return f"{size / 1024:.1f} KB"


def size(count: int) -> str:
    """``count`` bytes in the unit that reads best: "41.3 KB", "12.5 MB", "1.4 GB"."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return kb(count)


def _server(settings: Settings) -> str:
    if settings.smtp_security == "none":  # "(none)" read as if no server was used at all
        return f"{settings.smtp_host}:{settings.port} without TLS"
    return f"{settings.smtp_host}:{settings.port} ({settings.smtp_security})"


def _signed_in_as(settings: Settings) -> str:
    """Which mailbox the send signs in as, for the summary before [y/N] (a wrong account is
    easier to spot there than in the refusals afterwards)."""
    from ..signin.oauth import sending_account

    account = sending_account(settings)
    if not account:
        return ""
    how = "OAuth 2.0" if settings.auth_mode == "oauth2" else "password"
    return f", signed in as {account} ({how})"


class SendTerminal:
    """The send's prompts, progress bar and plan display (send_run.SendUI)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def notice(self, text: str) -> None:
        notice(text)

    def finding(self, line: str) -> None:
        typer.secho(line, fg="red", err=True)

    def plan(self, plan: SendPlan, checks: str) -> None:
        # The campaign's settings are the run's: .env with --rate/--connections/… applied.
        print_plan(plan.campaign.settings, plan)
        say(f"Checks:    {checks}")

    def confirm(self, question: str, no_terminal_hint: str) -> bool:
        from ..sending.policy import no_terminal

        if not sys.stdin.isatty():
            raise no_terminal(no_terminal_hint)
        try:
            return typer.confirm(question, default=False)
        except typer.Abort:  # Ctrl-C (or end of input) at the question
            typer.echo(err=True)  # the question's line is left open: end it first
            raise Interrupted("nothing was sent", where="at the question") from None

    def deliver(
        self, total: int, run: Callable[[Callable[[DeliveryEvent], None]], DeliveryResult]
    ) -> DeliveryResult:
        return deliver_with_progress(total, run)


def print_plan(settings: Settings, plan: SendPlan) -> None:
    """The summary before [y/N]: what goes, to whom, through which server, how fast."""
    camp, report = plan.campaign, plan.report
    say(f"Issue:     {camp.issue.title} ({camp.issue.slug})")
    say(f"Subject:   {camp.rendered.subject_display}")
    _say_example_subject(camp, indent=11)
    say(f"From:      {camp.sender.name} <{camp.sender.address}>")
    say(f"Server:    {_server(settings)}{_signed_in_as(settings)}")
    rate = f"{settings.rate:g} messages/minute" if settings.rate else "no rate limit"
    batches = (
        f", pause {settings.batch_pause:g} s every {settings.batch_size}"
        if settings.batch_size
        else ""
    )
    say(f"Pacing:    {rate}, {settings.connections} connection(s){batches}")
    if plan.daily_limit:
        say(
            f"Today:     {plan.daily_used} of {plan.daily_limit} sent in the last 24 hours "
            f"(NEWSLETTER_DAILY_LIMIT); {max(0, plan.daily_limit - plan.daily_used)} left"
        )
    say(f"Members:   {camp.recipients_path}")
    say(f"Size:      message {kb(camp.message_bytes())}, HTML {kb(camp.rendered.html_bytes)}")
    limited = f" (--limit {plan.limit} of {plan.pending_total} pending)" if plan.limit else ""
    took = f", {plan.duration}" if plan.duration else ""
    say(f"To send:   {plan.to_send}{limited}{took}")
    if plan.held_back:
        later = f" {plan.resume_after}" if plan.resume_after else " tomorrow"
        say(
            f"Held back: {plan.held_back} by the daily limit: they stay pending; run the same "
            f"command again{later}"
        )
    if plan.resuming:
        total = plan.already_sent + plan.pending_total + len(plan.unknown) + plan.failed_before
        if plan.already_sent == total:
            say(f"Already:   all {total} member(s) have it: nothing to resume")
        else:
            say(f"Resuming:  {plan.already_sent} of {total} already sent")
    if plan.issue_changed:
        say("Changed:   the issue changed since members got it; the rest get the new version")
    if plan.failed_before:
        say(f"Failed before: {plan.failed_before} (not retried; --retry-failed retries them)")
    if plan.unknown:
        shown = ", ".join(plan.unknown[:5]) + (", …" if len(plan.unknown) > 5 else "")
        say(f"Unknown:   {len(plan.unknown)} cut off mid-send, not re-sent: {shown}")
        say("           (check with them, then --resend-unknown sends them another copy)")
    for line in report.summary_lines()[1:]:
        say(f"Skipped:   {line}")


# The progress bar shows a rate once it means something: after the first message alone it
# read "7035/min" (one message in a few milliseconds).
RATE_AFTER_MESSAGES = 5
RATE_AFTER_SECONDS = 10.0


def _rate(sent: int, seconds: float) -> str:
    """' · 20/min' once enough messages and time went by to measure it; else ''."""
    if sent < RATE_AFTER_MESSAGES or seconds < RATE_AFTER_SECONDS:
        return ""
    return f" · {sent / seconds * 60:.0f}/min"


def deliver_with_progress(
    total: int,
    run: Callable[[Callable[[DeliveryEvent], None]], Any],
    clock: Callable[[], float] | None = None,
) -> Any:
    """``run(on_event)`` under a progress bar of ``total`` messages; what ``run`` returns.
    ``clock`` (monotonic seconds) measures the rate shown."""
    import time

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("sent {task.fields[sent]} · failed {task.fields[failed]} · "
                   "deferred {task.fields[deferred]}{task.fields[rate]}"),
        TimeRemainingColumn(),
    )  # fmt: skip
    clock = clock or time.monotonic
    started = clock()
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("Sending", total=total, sent=0, failed=0, deferred=0, rate="")
        other = 0

        def on_event(event: DeliveryEvent) -> None:
            nonlocal other
            other += event.outcome in ("unknown", "pending")  # done, but neither of the above
            done = event.sent + event.failed + event.deferred + event.skipped + other
            progress.update(
                task, completed=done, sent=event.sent, failed=event.failed,
                deferred=event.deferred, rate=_rate(event.sent, clock() - started),
            )  # fmt: skip

        return run(on_event)


def print_result(slug: str, outcome: MemberSend) -> None:
    """The summary after a real send: this run, the whole send, and what to do next."""
    from ..sending.policy import SendEnd

    unfinished = outcome.end is SendEnd.UNFINISHED
    plan, result, totals = outcome.plan, outcome.result, outcome.totals
    if outcome.declined:
        say("Nothing was sent.")
        return
    if result is None:
        say("Nothing to send.")
    else:
        say("")
        say(f"This run:  sent {result.sent}, failed {result.failed}, deferred {result.deferred}")
        if result.skipped:
            say(f"Skipped:   {result.skipped} (already sent or in progress elsewhere)")
        say(f"Time:      {result.elapsed:.1f} s")
        if result.slowed_to:
            # The provider said "too fast": next time start at the rate that got through.
            say(
                f"Slowed:    the server said the run sent too fast; it went on at "
                f"{result.slowed_to:g} a minute (set NEWSLETTER_RATE={result.slowed_to:g} "
                "or a little under your provider's limit to avoid it)"
            )
        for address, reply in result.failures[:20]:
            say(f"  failed   {address}: {reply}")
        for address, reply in result.deferrals[:20]:
            say(f"  deferred {address}: {reply}")
        if result.unknown:
            say(
                f"Unknown:   {len(result.unknown)} cut off mid-send: {', '.join(result.unknown[:5])}"
            )
    say(
        f"Sent:      {totals.sent}   Failed: {totals.failed}   Pending: {totals.pending}   "
        f"Unknown: {totals.unknown}"
    )
    if outcome.stopped is not None:
        stop = outcome.stopped
        typer.secho(f"Stopped:   {stop.reason}.", fg="yellow")
        say(f"Provider:  {stop.reply}")
        at = f" ({outcome.stop_resume})" if outcome.stop_resume else ""
        say(f"Next:      {stop.advice}{at}: {outcome.resume}")
        say(
            f"           It resumes with the {totals.pending} pending member(s); nobody gets "
            "a second copy."
        )
    if result is not None and result.interrupted:
        typer.secho(
            f"Interrupted. Re-run '{outcome.resume}' to resume: only members who have not "
            "got it will be sent to.", fg="yellow", err=True,
        )  # fmt: skip
        return
    if outcome.stopped is not None:
        pass  # its Next: line above is the one next step
    elif outcome.resume_after or (plan.held_back and totals.pending):
        later = outcome.resume_after or "tomorrow"
        say(
            f"Daily limit: {totals.pending} member(s) stay pending; run '{outcome.resume}' "
            f"again {later}."
        )
    elif unfinished and totals.pending and outcome.stopped is None:
        # Deferred after their retries (a busy or flaky server): say how to resume too.
        say(
            f"Next:      run '{outcome.resume}' again later: it retries the {totals.pending} "
            "pending member(s); nobody gets a second copy."
        )
    elif totals.pending:  # left out on purpose (--limit): how to send them, when wanted
        say(
            f"Next:      run '{outcome.resume}' for the other {totals.pending} member(s) "
            "(with --limit N, N at a time); nobody gets a second copy."
        )
    if unfinished and totals.unknown and not (result is not None and result.interrupted):
        say(
            f"Unknown:   {totals.unknown} member(s) may or may not have it (cut off mid-send): "
            f"check with them; '{outcome.resume} --resend-unknown' sends them another copy."
        )
    if unfinished:
        # Only when this run deferred some (a busy server): after a provider's stop the
        # Next: line says it all, and "deferred 0" beside "Deferred members are retried"
        # read as a contradiction.
        deferred = result is not None and result.deferred and outcome.stopped is None
        retried = " Deferred members are retried on the next run." if deferred else ""
        say(f"Details: {outcome.details}.{retried}")
    elif result is not None:
        have = totals.sent + totals.failed + totals.pending + totals.unknown
        if result.sent == have:
            say(f"Done: {slug!r} sent to {result.sent} member(s).")
        else:  # a resumed or --limit run: what this run did, and where the whole send stands
            say(
                f"Done: {slug!r} sent to {result.sent} member(s) in this run; "
                f"{totals.sent} of {have} have it."
            )


def _say_example_subject(camp: Campaign, indent: int) -> None:
    example = camp.example_subject()
    if example is not None:
        subject, member = example
        say(f'{" " * indent}e.g. "{subject}" ({member.email}, row {member.row})')


def print_dry_run(camp: Campaign, result: DryRunResult, refusals: list[Finding]) -> None:
    """What a dry run wrote, and what a real send would do now (or refuse)."""
    report = result.report
    say(f"Dry run of {camp.issue.slug!r}: {camp.issue.title}")
    say(f"  subject:   {camp.rendered.subject_display}")
    _say_example_subject(camp, indent=13)
    say(f"  from:      {camp.sender.name} <{camp.sender.address}>")
    say(f"  members:   {camp.recipients_path}")
    if result.already_sent is None:
        say(f"  will send: {result.written} message(s), written to {result.out_dir}/")
    else:  # sent before: every member's message is written, fewer would go now
        say(f"  written:   {result.written} message(s), every member's, to {result.out_dir}/")
        held = (
            f", {result.held} failed or cut off before (left out unless --retry-failed "
            "or --resend-unknown)"
            if result.held
            else ""
        )
        say(
            f"  will send: {result.would_send} message(s) now; {result.already_sent} already "
            f"have it (the journal){held}"
        )
    if report.columns:
        say(f"  columns:   {report.columns_line()}")
    for line in report.summary_lines()[1:]:
        say(f"  skipped:   {line}")
    for note in report.note_lines():
        say(f"  note:      {note}")
    if report.invalid:  # the dry run writes the others; a real send would not start
        say("  refused:   a real send stops at invalid rows: fix them, or add --skip-invalid")
    _say_refusals(camp, refusals)
    if report.accented:  # the names themselves, rather than "look in a dry run"
        say(f"  note:      read as {report.encoding} (not UTF-8): do these names look right?")
        say(f"  names:     {report.accented_line().removeprefix('names as read: ')}")
    elif report.encoding:
        say(f"  note:      {report.encoding_line()}")
    if report.lost_letters:
        from ..members.recipients import REEXPORT_HINT

        say(f"  refused:   {report.lost_letters_line()}; {REEXPORT_HINT}")
    if result.written:
        average = result.total_bytes // result.written
        say(
            f"  size:      HTML {kb(result.html_bytes)}, message {kb(average)} on average, "
            f"{kb(result.largest_bytes)} largest; {size(result.total_bytes)} written in all"
        )
    if result.images_bytes:
        say(f"  pictures:  embedded, {kb(result.images_bytes)} in each message")
    for offline in result.offline:
        notice(f"{offline.line()}: publish the archive first (newsletter archive)")
    say("No mail was sent.")


def _say_refusals(camp: Campaign, refusals: list[Finding]) -> None:
    """The dry run's lines for what a real send would refuse in the issue."""
    if not refusals:
        return
    say(
        f"  refused:   a real send would refuse this issue ({len(refusals)} error(s); "
        f"'newsletter check {camp.issue.slug}' has them all):"
    )
    for finding in refusals:
        say(f"             {finding.where}: {finding.message}")


def print_test_send(settings: Settings, slug: str, outcome: TestSend) -> None:
    """Where the test copies went, as whom, and what the copy shows broken or a real send
    would refuse."""
    who = f", personalised as {outcome.member}," if outcome.member else ""
    for address, reply in outcome.sent:
        say(f"test copy of {slug!r}{who} sent to {address} via {_server(settings)}: {reply}")
    for finding in outcome.refusals:
        notice(f"a real send would refuse this issue: {finding.where}: {finding.message}")
    for offline in outcome.offline:
        notice(f"{offline.line()}: the copy shows it broken; publish the archive first "
               "(newsletter archive) before the real send")  # fmt: skip
    for note in outcome.notes:
        notice(note)


def print_findings(report: Report) -> None:
    """The pre-flight findings, coloured by severity, then the verdict."""
    from ..sending.checks.findings import Severity

    colours = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: None}
    for finding in report.findings:
        typer.secho(finding.line(), fg=colours[finding.severity])
    typer.secho(report.verdict(), bold=True, fg="red" if report.errors else "green")


def print_issues(settings: Settings, states: list[IssueState]) -> None:
    """``newsletter list``: one issue per two lines, newest first."""
    if not states:
        say(f"no issues in {settings.issues_dir}/ yet: start one with 'newsletter new SLUG'")
    width = max([24, *(len(state.slug) for state in states)])
    for state in states:
        day = "(no date)" if state.error else state.date.isoformat()
        say(f"{day:<10}  {state.slug:<{width}} {state.describe()}")
        say(
            f"            {state.title}" + (f" — subject: {state.subject}" if state.subject else "")
        )


def print_status(slug: str, report: SendStatus, members_list: Path) -> None:
    """``newsletter status``: the journal's counts, who is pending, failures with replies."""
    # "sending" is the journal's word for a member cut off mid-send; after the run the
    # chair's word (as in every summary) is "unknown".
    cut_off = "sending" if report.running else "unknown"  # in flight now, or cut off
    counts = ", ".join(
        f"{cut_off if name == 'sending' else name} {count}" for name, count in report.counts.items()
    )
    say(
        f"{slug}: {counts}" + (f" (last update {report.last_update})" if report.last_update else "")
    )
    if report.running:
        say(
            f"running: a send of {slug} is running now ({report.running}); these are its counts so far"
        )
    if report.stopped is not None and not report.running:
        stop = report.stopped
        import datetime as dt

        at = dt.datetime.fromisoformat(stop["stopped"]).astimezone()
        say(
            f"stopped: {stop['reason']}, at {at:%Y-%m-%d %H:%M} (the provider: {plain(stop['reply'])})"
        )
        resume = f": {stop['resume']}" if stop["resume"] else ""
        when = f" ({report.resume_when})" if report.resume_when else ""
        say(f"resume:  {stop['advice']}{when}{resume}")
    if report.pending is not None:
        say(
            f"pending: {report.pending} of the {report.members} member(s) in "
            f"{members_list} have not got it yet"
        )
    elif report.members_error:
        say(f"pending: not counted, the members list cannot be read: {report.members_error}")
    for label, rows in (
        ("failed", report.failures),
        ("deferred (retried on the next run)", report.deferred),
        (
            "sending now (in flight)"
            if report.running
            else "unknown: cut off mid-send, not re-sent unless --resend-unknown",
            report.unknown,
        ),
    ):
        if rows:
            say(f"{label}:")
            for row in rows:
                cut = "in flight" if report.running else "no reply (the run ended mid-transaction)"
                if rows is report.unknown and not row.get("begun", True):
                    # Claimed with the one before it, whose transaction was still going.
                    cut = (
                        "claimed, waiting its turn"
                        if report.running
                        else "claimed but not begun when the run ended: not sent (unless the "
                        "computer itself lost power)"
                    )
                reply = row["reply"] or (cut if rows is report.unknown else "-")
                say(f"  row {row['row']}: {row['address']}: {reply} ({row['updated']})")
    for test in report.test_sends:
        say(f"test copy to {test['address']} at {test['sent_at']}")
    if report.feedback:
        fb = report.feedback
        say(
            f"feedback: bounced {fb['hard'] + fb['soft']} (hard {fb['hard']}, soft {fb['soft']}), "
            f"complained {fb['complaint']}, unsubscribed {fb['unsubscribe']}"
        )


def print_not_signed_in(settings: Settings, *, password_set_up: bool) -> None:
    """``login --status`` with nobody signed in (or a set-up that signs in with a password)."""
    if password_set_up:
        say(
            f"not signed in: this set-up uses NEWSLETTER_SMTP_AUTH={settings.auth_mode} with "
            f"{settings.smtp_host or 'no SMTP host'}, no Microsoft 365 or Google sign-in"
        )
    else:
        say("not signed in (run: newsletter login)")


def print_sign_in(info: SignIn, mismatch: str, now: datetime) -> None:
    """Who is signed in and until when (``now``: to say "expired" or "expires")."""
    import datetime as dt

    if info.provider == "token command":
        expiry = "tokens come from NEWSLETTER_SMTP_OAUTH_TOKEN_COMMAND at each connection"
    elif info.expires_at is None:
        # MSAL drops expired access tokens from its cache: none may mean "expired".
        expiry = "no current access token (a new one is fetched at the next send)"
    else:
        when = dt.datetime.fromtimestamp(info.expires_at).astimezone()
        verb = "expired" if when < now else "expires"
        expiry = f"access token {verb} {when:%Y-%m-%d %H:%M %Z} (renewed automatically)"
    where = f"; tokens in {info.path}" if info.path else ""
    say(f"signed in as {info.username} ({info.provider}): {expiry}{where}")
    if mismatch:
        say(mismatch)


def plain(text: str) -> str:
    """Text from mail anyone can send, as the terminal may show it: without control
    characters (an escape sequence can draw a link of the sender's choosing, clear the
    screen or retitle the window). Printed as rich ``Text``, never as markup."""
    return "".join(ch for ch in text if ch.isprintable() or ch == " ")
