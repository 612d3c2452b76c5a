"""The ``newsletter`` command: options, prompts, progress and exit codes — no business logic.

Each command parses its options, calls one core function, and prints the result. Errors
are :class:`NewsletterError` subclasses, turned into one line and an exit code by
:func:`main` (the only place that maps exceptions to exit codes). Heavy libraries (jinja2,
mjml, premailer, lxml, smtplib) are imported inside the commands, so ``--help`` is fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from .. import __version__
from ..common.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Interrupted,
    NewsletterError,
)
from .setup_commands import register as register_setup_commands

# `--help` lists the commands in the order a chair uses them in a month, not A-Z or the
# order they happen to be defined in; a command not listed here comes after these.
COMMAND_ORDER = (
    "new", "preview", "check", "send", "status", "list", "archive", "unsubscribe", "feedback",
    "resubscribe", "render", "login", "logout", "setup", "doctor",
)  # fmt: skip


class _ChairOrder(TyperGroup):
    def list_commands(self, ctx) -> list[str]:
        names = super().list_commands(ctx)
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(names, key=lambda name: rank.get(name, len(rank)))

    def invoke(self, ctx):
        # Typer turns a KeyboardInterrupt escaping a command into a silent exit 130; catch
        # it first so main() prints one line for every command's Ctrl-C.
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted() from None


app = typer.Typer(
    cls=_ChairOrder,
    name="newsletter",
    help="Write, preview and send the members' e-bulletin from Markdown issues.\n\n"
    "Example: newsletter send december-2023 --dry-run",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

RecipientsOpt = Annotated[
    Path | None,
    typer.Option(
        "--recipients", "-r", help="Members CSV [default: NEWSLETTER_RECIPIENTS or recipients.csv]."
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"newsletter {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    pass


def _settings(**overrides):
    from ..common.config import load_settings

    return load_settings().with_overrides(**overrides)


def _slug(settings, slug: str) -> str:
    """SLUG as given, or as tab completion writes it (``issues/december-2023.md``)."""
    from ..content.issue import issue_slug

    return issue_slug(slug, settings.issues_dir)


def _project(settings, **where):
    """``settings``, once the current folder is a project (config.require_project)."""
    from ..common.config import require_project

    require_project(settings, **where)
    return settings


def _say(message: str = "", err: bool = False) -> None:
    typer.echo(message, err=err)


def _notice(message: str) -> None:
    typer.secho(f"note: {message}", fg="yellow", err=True)


def _skipped(error) -> None:
    _notice(f"skipped: {error}")


def _kb(size: int) -> str:
    return f"{size / 1024:.1f} KB"


@app.command()
def render(
    slug: Annotated[
        str, typer.Argument(metavar="SLUG", help="Issue slug (file name in issues/ without .md).")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to write SLUG.html and SLUG.txt into.")
    ] = Path("."),
) -> None:
    """Render an issue to SLUG.html (final email HTML) and SLUG.txt (plain-text part).

    Example: newsletter render december-2023 --out build/
    """
    from ..web.preview import render_files

    settings = _project(_settings())
    html_path, text_path, size = render_files(settings, _slug(settings, slug), out)
    _say(f"wrote {html_path} ({_kb(size)}) and {text_path}")


@app.command()
def preview(
    slug: Annotated[
        str | None,
        typer.Argument(metavar="SLUG", help="Issue slug; default: the newest issue by date."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the final email HTML to this file and exit."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Port on 127.0.0.1 [default: 0, any free port]."),
    ] = None,
    open_browser: Annotated[
        bool | None,
        typer.Option("--open/--no-open", help="Open the default browser [default: --open]."),
    ] = None,
    as_address: Annotated[
        str | None,
        typer.Option(
            "--as", metavar="ADDRESS", help="Personalise as this member [default: the first]."
        ),
    ] = None,
) -> None:
    """Preview an issue in the browser: inbox line, desktop and mobile widths, plain text.

    Serves a page on 127.0.0.1 that re-renders and reloads when the issue or a template
    changes. Shows the issue personalised as the first member of the list (or --as), as a
    test send does. Ctrl-C stops it.

    Example: newsletter preview december-2023 --no-open
    """
    from ..web import preview as preview_mod

    if out is not None and (port is not None or open_browser is not None):
        from ..common.errors import UsageError

        flag = "--port" if port is not None else "--open/--no-open"
        raise UsageError(f"{flag} does nothing with --out", hint="--out writes a file, no server")
    settings = _project(_settings())
    slug = _slug(settings, slug) if slug is not None else None
    if out is not None:
        path, size = preview_mod.write_email_html(settings, slug, out, _skipped, as_address)
        _say(f"wrote {path} ({_kb(size)})")
        return
    from ..web.server import serve

    serve(
        settings,
        slug,
        port=port or 0,
        open_browser=True if open_browser is None else open_browser,
        echo=_say,
        as_address=as_address,
    )


@app.command()
def send(
    slug: Annotated[str, typer.Argument(metavar="SLUG", help="Issue slug, e.g. december-2023.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Write every message to disk instead of sending.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Dry-run folder [default: outbox/SLUG].")
    ] = None,
    recipients: RecipientsOpt = None,
    test: Annotated[
        bool,
        typer.Option(
            "--test", help="Send one copy to NEWSLETTER_TEST_TO (or --to); members get nothing."
        ),
    ] = False,
    to: Annotated[
        list[str] | None,
        typer.Option(
            "--to", metavar="ADDRESS", help="With --test: where the copy goes (repeatable)."
        ),
    ] = None,
    as_address: Annotated[
        str | None,
        typer.Option(
            "--as", metavar="ADDRESS", help="With --test: personalise as this member of the CSV."
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Send to the next N pending members only.")
    ] = None,
    resend_unknown: Annotated[
        bool,
        typer.Option(
            "--resend-unknown",
            help="Also send to members whose earlier transaction was cut off (they may get a second copy).",
        ),
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Retry members the server refused before.")
    ] = False,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid", help="Send even though some CSV rows are invalid (they are left out)."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Send even though 'newsletter check' finds errors.")
    ] = False,
    connections: Annotated[
        int | None, typer.Option(min=1, help="Parallel SMTP connections [NEWSLETTER_CONNECTIONS].")
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(min=0, help="Messages per minute, 0 = unlimited [NEWSLETTER_RATE]."),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(min=0, help="Pause after every N messages [NEWSLETTER_BATCH_SIZE]."),
    ] = None,
    batch_pause: Annotated[
        float | None,
        typer.Option(min=0, help="Seconds to pause between batches [NEWSLETTER_BATCH_PAUSE]."),
    ] = None,
    changed_ok: Annotated[
        bool,
        typer.Option(
            "--changed-ok",
            help="Resume even though the issue changed since some members got it.",
        ),
    ] = False,
) -> None:
    """Send an issue to every member in the recipients CSV, or write them all with --dry-run.

    A real send runs the pre-flight checks, shows who will get it and asks [y/N], then
    delivers with a progress bar and a summary. It is resumable: re-run the same command
    after a crash, Ctrl-C, a provider's daily limit or the daily cap, and only members who
    have not got it are sent to. --to, --as need --test; --out needs --dry-run.

    Example: newsletter send december-2023 --test
    """
    from ..sending import policy as send_run

    options = send_run.SendOptions(
        dry_run=dry_run, out=out, recipients=recipients, test=test, to=tuple(to or ()),
        as_address=as_address, yes=yes, limit=limit, resend_unknown=resend_unknown,
        retry_failed=retry_failed, skip_invalid=skip_invalid, force=force,
        changed_ok=changed_ok, connections=connections, rate=rate, batch_size=batch_size,
        batch_pause=batch_pause,
    )  # fmt: skip
    send_run.check_options(options)  # a usage mistake is reported before any setting
    settings = _project(_settings())
    slug = _slug(settings, slug)
    outcome = send_run.send(settings, slug, options, _SendTerminal(settings))
    if isinstance(outcome, send_run.DryRun):
        _print_dry_run(outcome.campaign, outcome.result)
    elif isinstance(outcome, send_run.TestSend):
        for address, reply in outcome.sent:
            _say(f"test copy of {slug!r} sent to {address} via {_server(settings)}: {reply}")
        for offline in outcome.offline:
            _notice(f"{offline.line()}: the copy shows it broken; publish the archive first "
                    "(newsletter archive) before the real send")  # fmt: skip
        for note in outcome.notes:
            _notice(note)
    else:
        _print_result(slug, outcome)
        if outcome.exit_code:
            raise typer.Exit(outcome.exit_code)


def _server(settings) -> str:
    return f"{settings.smtp_host}:{settings.port} ({settings.smtp_security})"


def _signed_in_as(settings) -> str:
    """Which mailbox the send signs in as, for the summary before [y/N] (a wrong account is
    easier to spot there than in the refusals afterwards)."""
    from ..signin.oauth import sending_account

    account = sending_account(settings)
    if not account:
        return ""
    how = "OAuth 2.0" if settings.auth_mode == "oauth2" else "password"
    return f", signed in as {account} ({how})"


class _SendTerminal:
    """The send's prompts, progress bar and plan display (send_run.SendUI)."""

    def __init__(self, settings) -> None:
        self.settings = settings

    def notice(self, text: str) -> None:
        _notice(text)

    def finding(self, line: str) -> None:
        typer.secho(line, fg="red", err=True)

    def plan(self, plan, checks: str) -> None:
        # The campaign's settings are the run's: .env with --rate/--connections/… applied.
        _print_plan(plan.campaign.settings, plan)
        _say(f"Checks:    {checks}")

    def confirm(self, question: str, no_terminal_hint: str) -> bool:
        from ..sending.policy import no_terminal

        if not sys.stdin.isatty():
            raise no_terminal(no_terminal_hint)
        try:
            return typer.confirm(question, default=False)
        except typer.Abort:  # Ctrl-C (or end of input) at the question
            typer.secho("\ninterrupted at the question: nothing was sent", fg="yellow", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None

    def deliver(self, total: int, run):
        return _deliver_with_progress(total, run)


def _print_plan(settings, plan) -> None:
    camp, report = plan.campaign, plan.report
    _say(f"Issue:     {camp.issue.title} ({camp.issue.slug})")
    _say(f"Subject:   {camp.rendered.subject_display}")
    _say_example_subject(camp, indent=11)
    _say(f"From:      {camp.sender.name} <{camp.sender.address}>")
    _say(f"Server:    {_server(settings)}{_signed_in_as(settings)}")
    rate = f"{settings.rate:g} messages/minute" if settings.rate else "no rate limit"
    batches = (
        f", pause {settings.batch_pause:g} s every {settings.batch_size}"
        if settings.batch_size
        else ""
    )
    _say(f"Pacing:    {rate}, {settings.connections} connection(s){batches}")
    if plan.daily_limit:
        _say(
            f"Today:     {plan.daily_used} of {plan.daily_limit} sent in the last 24 hours "
            f"(NEWSLETTER_DAILY_LIMIT); {max(0, plan.daily_limit - plan.daily_used)} left"
        )
    _say(f"Members:   {camp.recipients_path}")
    _say(f"Size:      message {_kb(camp.message_bytes())}, HTML {_kb(camp.rendered.html_bytes)}")
    limited = f" (--limit {plan.limit} of {plan.pending_total} pending)" if plan.limit else ""
    took = f", {plan.duration}" if plan.duration else ""
    _say(f"To send:   {plan.to_send}{limited}{took}")
    if plan.held_back:
        later = f" {plan.resume_after}" if plan.resume_after else " tomorrow"
        _say(
            f"Held back: {plan.held_back} by the daily limit: they stay pending; run the same "
            f"command again{later}"
        )
    if plan.resuming:
        total = plan.already_sent + plan.pending_total + len(plan.unknown) + plan.failed_before
        if plan.already_sent == total:
            _say(f"Already:   all {total} member(s) have it: nothing to resume")
        else:
            _say(f"Resuming:  {plan.already_sent} of {total} already sent")
    if plan.issue_changed:
        _say("Changed:   the issue changed since members got it; the rest get the new version")
    if plan.failed_before:
        _say(f"Failed before: {plan.failed_before} (not retried; --retry-failed retries them)")
    if plan.unknown:
        shown = ", ".join(plan.unknown[:5]) + (", …" if len(plan.unknown) > 5 else "")
        _say(f"Unknown:   {len(plan.unknown)} cut off mid-send, not re-sent: {shown}")
        _say("           (check with them, then --resend-unknown sends them another copy)")
    for line in report.summary_lines()[1:]:
        _say(f"Skipped:   {line}")


# The progress bar shows a rate once it means something: after the first message alone it
# read "7035/min" (one message in a few milliseconds).
RATE_AFTER_MESSAGES = 5
RATE_AFTER_SECONDS = 10.0


def _rate(sent: int, seconds: float) -> str:
    """' · 20/min' once enough messages and time went by to measure it; else ''."""
    if sent < RATE_AFTER_MESSAGES or seconds < RATE_AFTER_SECONDS:
        return ""
    return f" · {sent / seconds * 60:.0f}/min"


def _deliver_with_progress(total: int, run, clock=None):
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

        def on_event(event) -> None:
            nonlocal other
            other += event.outcome in ("unknown", "pending")  # done, but neither of the above
            done = event.sent + event.failed + event.deferred + event.skipped + other
            progress.update(
                task, completed=done, sent=event.sent, failed=event.failed,
                deferred=event.deferred, rate=_rate(event.sent, clock() - started),
            )  # fmt: skip

        return run(on_event)


def _print_result(slug: str, outcome) -> None:
    plan, result, totals = outcome.plan, outcome.result, outcome.totals
    if outcome.declined:
        _say("Nothing was sent.")
        return
    if result is None:
        _say("Nothing to send.")
    else:
        _say("")
        _say(f"This run:  sent {result.sent}, failed {result.failed}, deferred {result.deferred}")
        if result.skipped:
            _say(f"Skipped:   {result.skipped} (already sent or in progress elsewhere)")
        _say(f"Time:      {result.elapsed:.1f} s")
        for address, reply in result.failures[:20]:
            _say(f"  failed   {address}: {reply}")
        for address, reply in result.deferrals[:20]:
            _say(f"  deferred {address}: {reply}")
        if result.unknown:
            _say(
                f"Unknown:   {len(result.unknown)} cut off mid-send: {', '.join(result.unknown[:5])}"
            )
    _say(
        f"Sent:      {totals.sent}   Failed: {totals.failed}   Pending: {totals.pending}   "
        f"Unknown: {totals.unknown}"
    )
    if outcome.stopped is not None:
        stop = outcome.stopped
        typer.secho(f"Stopped:   {stop.reason}.", fg="yellow")
        _say(f"Provider:  {stop.reply}")
        at = f" ({outcome.stop_resume})" if outcome.stop_resume else ""
        _say(f"Next:      {stop.advice}{at}: {outcome.resume}")
        _say(
            f"           It resumes with the {totals.pending} pending member(s); nobody gets "
            "a second copy."
        )
    if result is not None and result.interrupted:
        typer.secho(
            f"Interrupted. Re-run '{outcome.resume}' to resume: only members who have not "
            "got it will be sent to.", fg="yellow", err=True,
        )  # fmt: skip
        return
    if outcome.resume_after or (plan.held_back and totals.pending):
        later = outcome.resume_after or "tomorrow"
        _say(
            f"Daily limit: {totals.pending} member(s) stay pending; run '{outcome.resume}' "
            f"again {later}."
        )
    elif outcome.exit_code and totals.pending and outcome.stopped is None:
        # Deferred after their retries (a busy or flaky server): say how to resume too.
        _say(
            f"Next:      run '{outcome.resume}' again later: it retries the {totals.pending} "
            "pending member(s); nobody gets a second copy."
        )
    elif totals.pending:  # left out on purpose (--limit): how to send them, when wanted
        _say(
            f"Next:      run '{outcome.resume}' for the other {totals.pending} member(s) "
            "(with --limit N, N at a time); nobody gets a second copy."
        )
    if outcome.exit_code and totals.unknown and not (result is not None and result.interrupted):
        _say(
            f"Unknown:   {totals.unknown} member(s) may or may not have it (cut off mid-send): "
            f"check with them; '{outcome.resume} --resend-unknown' sends them another copy."
        )
    if outcome.exit_code:
        retried = " Deferred members are retried on the next run." if totals.pending else ""
        _say(f"Details: {outcome.details}.{retried}")
    elif result is not None:
        have = totals.sent + totals.failed + totals.pending + totals.unknown
        if result.sent == have:
            _say(f"Done: {slug!r} sent to {result.sent} member(s).")
        else:  # a resumed or --limit run: what this run did, and where the whole send stands
            _say(
                f"Done: {slug!r} sent to {result.sent} member(s) in this run; "
                f"{totals.sent} of {have} have it."
            )


def _say_example_subject(camp, indent: int) -> None:
    example = camp.example_subject()
    if example is not None:
        subject, member = example
        _say(f'{" " * indent}e.g. "{subject}" ({member.email}, row {member.row})')


def _print_dry_run(camp, result) -> None:
    report = result.report
    _say(f"Dry run of {camp.issue.slug!r}: {camp.issue.title}")
    _say(f"  subject:   {camp.rendered.subject_display}")
    _say_example_subject(camp, indent=13)
    _say(f"  from:      {camp.sender.name} <{camp.sender.address}>")
    _say(f"  members:   {camp.recipients_path}")
    if result.already_sent is None:
        _say(f"  will send: {result.written} message(s), written to {result.out_dir}/")
    else:  # sent before: every member's message is written, fewer would go now
        _say(f"  written:   {result.written} message(s), every member's, to {result.out_dir}/")
        held = (
            f", {result.held} failed or cut off before (left out unless --retry-failed "
            "or --resend-unknown)"
            if result.held
            else ""
        )
        _say(
            f"  will send: {result.would_send} message(s) now; {result.already_sent} already "
            f"have it (the journal){held}"
        )
    if report.columns:
        _say(f"  columns:   {report.columns_line()}")
    for line in report.summary_lines()[1:]:
        _say(f"  skipped:   {line}")
    for note in report.note_lines():
        _say(f"  note:      {note}")
    if report.invalid:  # the dry run writes the others; a real send would not start
        _say("  refused:   a real send stops at invalid rows: fix them, or add --skip-invalid")
    if report.encoding:
        _say(f"  note:      {report.encoding_line()}")
    if result.written:
        average = result.total_bytes // result.written
        _say(
            f"  size:      HTML {_kb(result.html_bytes)}, message {_kb(average)} on average, "
            f"{_kb(result.largest_bytes)} largest"
        )
    if result.images_bytes:
        _say(f"  pictures:  embedded, {_kb(result.images_bytes)} in each message")
    for offline in result.offline:
        _notice(f"{offline.line()}: publish the archive first (newsletter archive)")
    _say("No mail was sent.")


@app.command()
def new(
    slug: Annotated[
        str, typer.Argument(metavar="SLUG", help="Slug of the new issue, e.g. january-2024.")
    ],
    date: Annotated[
        str | None,
        typer.Option(
            help="Issue date, YYYY-MM-DD or written out ('3 December 2026') "
            "[default: the slug's month, or today]."
        ),
    ] = None,
    title: Annotated[
        str | None, typer.Option(help="Title [default: '<bulletin> – <Month YYYY>'].")
    ] = None,
) -> None:
    """Start a new issue from the skeleton in templates/new-issue.md.j2 (never overwrites).

    Example: newsletter new january-2024 --date 2024-01-18
    """
    from ..common.errors import IssueError
    from ..content.issue import read_date
    from ..content.skeleton import start_issue

    settings = _settings()
    _project(settings, also=(settings.templates_dir / "organisation.toml",))
    try:
        day = read_date(date) if date else None  # None: from the slug, or today
    except ValueError as exc:
        raise IssueError(f"--date {date!r} is not a date", hint=str(exc)) from None
    made = start_issue(settings.issues_dir, settings.templates_dir, slug, date=day, title=title)
    slug = made.path.stem
    _say(
        f"created {made.path} ({made.title!r}, dated {made.date.isoformat()}): write it, then "
        f"'newsletter preview {slug}' and 'newsletter check {slug}'"
    )


@app.command()
def check(
    slug: Annotated[str, typer.Argument(metavar="SLUG", help="Issue slug, e.g. december-2023.")],
    recipients: RecipientsOpt = None,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid",
            help="Check as 'send --skip-invalid' sends: invalid CSV rows are a warning.",
        ),
    ] = False,
    dns: Annotated[
        bool,
        typer.Option(
            "--dns", help="Also check the From domain's MX, SPF, DKIM, DMARC and alignment."
        ),
    ] = False,
) -> None:
    """Pre-flight report: every problem with its location, severity and fix, then a verdict.

    Checks the front matter, links and images, size against Gmail's clip, unsubscribe and
    sender details, the SMTP sign-in, and renders every member's message (--dns: the
    sending domain's DNS records too). Exits 1 if there are errors.

    Example: newsletter check december-2023 --recipients members.csv
    """
    import datetime as dt

    from ..sending import policy as send_run

    settings = _project(_settings())
    result = send_run.check(
        settings, _slug(settings, slug), recipients=recipients, skip_invalid=skip_invalid,
        today=dt.date.today(), dns=dns,
    )  # fmt: skip
    for note in result.notes:
        _notice(note)
    _print_findings(result.report)
    if result.report.errors:
        raise typer.Exit(1)


def _print_findings(report) -> None:
    colours = {"error": "red", "warning": "yellow", "info": None}
    for finding in report.findings:
        typer.secho(finding.line(), fg=colours[finding.severity])
    typer.secho(report.verdict(), bold=True, fg="red" if report.errors else "green")


@app.command("list")
def list_() -> None:
    """Every issue, newest first: date, title, subject and what its send reached, from the
    journal ("sent 128 of 500; 372 pending"), whatever the members CSV holds today.

    Example: newsletter list
    """
    from ..sending.status import list_issues

    settings = _project(_settings())
    states = list_issues(settings, lambda error: _notice(f"{error} (subject shown as written)"))
    if not states:
        _say(f"no issues in {settings.issues_dir}/ yet: start one with 'newsletter new SLUG'")
    width = max([24, *(len(state.slug) for state in states)])
    for state in states:
        day = "(no date)" if state.error else state.date.isoformat()
        _say(f"{day:<10}  {state.slug:<{width}} {state.describe()}")
        _say(
            f"            {state.title}" + (f" — subject: {state.subject}" if state.subject else "")
        )


@app.command()
def status(
    slug: Annotated[str, typer.Argument(metavar="SLUG", help="Issue slug, e.g. december-2023.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    recipients: RecipientsOpt = None,
) -> None:
    """Show an issue's delivery record: counts by status, members of the current list still
    pending, failures with server replies, when.

    Example: newsletter status december-2023 --json
    """
    from ..sending.status import send_status

    settings = _project(_settings())
    slug = _slug(settings, slug)
    report = send_status(settings, slug, recipients)
    if as_json:
        import json

        _say(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        return
    # "sending" is the journal's word for a member cut off mid-send; after the run the
    # chair's word (as in every summary) is "unknown".
    cut_off = "sending" if report.running else "unknown"  # in flight now, or cut off
    counts = ", ".join(
        f"{cut_off if name == 'sending' else name} {count}" for name, count in report.counts.items()
    )
    _say(
        f"{slug}: {counts}" + (f" (last update {report.last_update})" if report.last_update else "")
    )
    if report.running:
        _say(
            f"running: a send of {slug} is running now ({report.running}); these are its counts so far"
        )
    if report.pending is not None:
        _say(
            f"pending: {report.pending} of the {report.members} member(s) in "
            f"{recipients or settings.recipients} have not got it yet"
        )
    elif report.members_error:
        _say(f"pending: not counted, the members list cannot be read: {report.members_error}")
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
            _say(f"{label}:")
            for row in rows:
                cut = "in flight" if report.running else "no reply (the run ended mid-transaction)"
                reply = row["reply"] or (cut if rows is report.unknown else "-")
                _say(f"  row {row['row']}: {row['address']}: {reply} ({row['updated']})")
    for test in report.test_sends:
        _say(f"test copy to {test['address']} at {test['sent_at']}")
    if report.feedback:
        fb = report.feedback
        _say(
            f"feedback: bounced {fb['hard'] + fb['soft']} (hard {fb['hard']}, soft {fb['soft']}), "
            f"complained {fb['complaint']}, unsubscribed {fb['unsubscribe']}"
        )


@app.command()
def archive(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for the site (replaced).")
    ] = Path("archive"),
) -> None:
    """Build the web archive: one page per issue, an index page and an Atom feed.

    Pages carry no member data and no unsubscribe link. Set NEWSLETTER_ARCHIVE_URL to where
    the folder will be published, so the feed has absolute links and each email links to
    its page ("View in your browser"). Local pictures go into assets/, from where hosted
    emails (NEWSLETTER_IMAGES=hosted) load them: publish the folder before sending.

    Example: newsletter archive --out site/
    """
    from ..web.archive import build_archive

    settings = _project(_settings())
    result = build_archive(settings, out, _skipped)
    _say(f"wrote {len(result.pages)} issue page(s), {result.index} and {result.feed}")
    for page in result.kept:
        _say(f"kept {page}: members were sent it, and its issue file is gone (renamed or deleted)")
    if not settings.archive_url:
        _notice("NEWSLETTER_ARCHIVE_URL is not set: the feed's links are relative")


@app.command()
def unsubscribe(
    addresses: Annotated[
        list[str], typer.Argument(metavar="ADDRESS...", help="One or more email addresses.")
    ],
    reason: Annotated[
        str, typer.Option(help="Why (kept in the suppression list).")
    ] = "unsubscribed",
) -> None:
    """Add addresses to the suppression list: they are never mailed again.

    Example: newsletter unsubscribe jane@example.org --reason "asked by phone"
    """
    import datetime as dt

    from ..members.suppression import add_suppressed, not_members

    settings = _settings()
    _project(settings, creates=settings.suppressed)
    added, present = add_suppressed(
        settings.suppressed, addresses, reason=reason, today=dt.date.today()
    )
    for address in added:
        _say(f"suppressed {address}")
    for address in present:
        _say(f"already suppressed: {address}")
    for address, close in not_members(settings.recipients, added):
        _notice(
            f"{address} is not one of the members {settings.recipients} mails"
            + (f": did you mean {close}? (then: newsletter unsubscribe {close})" if close else "")
        )


@app.command()
def feedback(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be done; change nothing.")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            metavar="YYYY-MM-DD",
            help="Only messages from this day on (default: the day before the first send; "
            "before any send, the last 30 days).",
        ),
    ] = None,
    move_to: Annotated[
        str | None,
        typer.Option(
            "--move-to", metavar="FOLDER", help="Move processed feedback (not replies) there."
        ),
    ] = None,
) -> None:
    """Read the sending mailbox: suppress hard bounces, complaints and unsubscribe requests.

    Classifies what came back since the last run (delivery reports, non-standard bounces,
    ARF complaints, unsubscribe mails, auto-replies, replies), matches it to members by the
    Message-IDs in the journal, and updates the suppression list in one write. Soft bounces
    suppress after NEWSLETTER_SOFT_BOUNCE_LIMIT different issues. Never deletes a message;
    re-runs skip what was processed. Replies from people are listed for you to read.

    Example: newsletter feedback --dry-run --since 2023-12-01
    """
    import datetime as dt

    from ..common.errors import UsageError
    from ..feedback.run import run_feedback

    day = None
    if since:
        try:
            day = dt.date.fromisoformat(since)
        except ValueError:
            raise UsageError(
                f"--since {since!r} is not a date", hint="write it as YYYY-MM-DD"
            ) from None
    settings = _project(_settings())
    report = run_feedback(settings, dry_run=dry_run, since=day, move_to=move_to)
    _print_feedback(report)


def _print_feedback(report) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(soft_wrap=False)
    title = f"Feedback from {report.folder}" + (
        " (dry run: nothing changed)" if report.dry_run else ""
    )
    # One line per message, the facts in full; the detail (the server's words) gets the
    # width that is left, cut with an ellipsis. The width is set explicitly: left to rich
    # (a ratio column), a long detail squeezed the kind and issue columns out of the table.
    # On a terminal too narrow for a useful detail column, the detail goes on its own
    # indented line under its row.
    names = ("kind", "member", "issue", "action")
    cells = [
        tuple(map(_plain, (row.kind, row.address or "-", row.issue or "-", row.action, row.detail)))
        for row in report.rows
    ]
    widths = [max([len(name)] + [len(cell[at]) for cell in cells]) for at, name in enumerate(names)]
    room = console.width - sum(widths) - 2 * len(widths) - 1
    longest = max((len(cell[4]) for cell in cells), default=0)
    if report.rows and room >= min(24, longest):
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for name, width in zip(names, widths, strict=True):
            table.add_column(name, no_wrap=True, min_width=width)
        table.add_column("detail", no_wrap=True, overflow="ellipsis", width=room)
        for cell in cells:
            table.add_row(*map(Text, cell))
        console.print(table)
    elif report.rows:

        def line(text: str) -> None:
            console.print(Text(text), no_wrap=True, overflow="ellipsis", crop=True)

        line(title)
        line("  ".join(name.ljust(width) for name, width in zip(names, widths, strict=True)))
        line("-" * min(console.width, sum(widths) + 2 * (len(widths) - 1)))
        for cell in cells:
            line("  ".join(c.ljust(w) for c, w in zip(cell[:4], widths, strict=True)).rstrip())
            if cell[4]:
                line("    " + cell[4])
    counts = ", ".join(f"{kind} {n}" for kind, n in sorted(report.counts.items())) or "nothing new"
    if report.since_first_send:
        _say(f"Read from {report.since.isoformat()} on (the day before the first send)")
    elif report.since_default:
        from ..feedback.run import FIRST_RUN_DAYS

        _say(
            f"Read from {report.since.isoformat()} on (the last {FIRST_RUN_DAYS} days: nothing "
            "was sent yet; --since YYYY-MM-DD reads further back)"
        )
    if report.mailbox_unread:
        _say(f"Mailbox not read: {report.mailbox_unread}")
    else:
        _say(f"New: {counts}; already processed before: {report.already_processed}")
    verb = "Would suppress" if report.dry_run else "Suppressed"
    _say(f"{verb}: {len(report.suppressed)}")
    for address, reason, issue in report.suppressed:
        _say(_plain(f"  {address}: {reason}" + (f" ({issue})" if issue else "")))
    if report.moved:
        verb = "Would move" if report.dry_run else "Moved"
        _say(f"{verb}: {report.moved} message(s) to {report.move_to}")
    if report.replies:
        replies = Table(
            title="Replies to read in your mail client (no action taken)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        # Addresses and dates are not broken mid-word; the subject wraps at spaces.
        senders = [_plain(reply.sender) or "(no sender)" for reply in report.replies]
        replies.add_column("from", no_wrap=True, min_width=max(len(s) for s in senders))
        replies.add_column("date", no_wrap=True)
        replies.add_column("subject", overflow="fold", min_width=20)
        for sender, reply in zip(senders, report.replies, strict=True):
            subject = _plain(reply.subject) or "(no subject)"
            replies.add_row(Text(sender), Text(_plain(_short_date(reply.date))), Text(subject))
        console.print(replies)


def _plain(text: str) -> str:
    """Text from mail anyone can send, as the terminal may show it: without control
    characters (an escape sequence can draw a link of the sender's choosing, clear the
    screen or retitle the window). Printed as rich ``Text``, never as markup."""
    return "".join(ch for ch in text if ch.isprintable() or ch == " ")


def _short_date(value: str) -> str:
    """'Mon, 30 Nov 2026 09:31:07 +0100' → '30 Nov 2026 09:31' (as written, if unreadable)."""
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return value
    return f"{when.day} {when:%b %Y %H:%M}"


@app.command()
def resubscribe(
    address: Annotated[str, typer.Argument(metavar="ADDRESS", help="The address to mail again.")],
    reason: Annotated[str, typer.Option(help="Why (recorded).")] = "asked to be mailed again",
) -> None:
    """Take an address off the suppression list (undoes a bounce, complaint or unsubscribe).

    Earlier soft bounces no longer count towards NEWSLETTER_SOFT_BOUNCE_LIMIT.

    Example: newsletter resubscribe jane@example.org --reason "new mailbox works"
    """
    from ..feedback.run import resubscribe as resubscribe_address

    settings = _project(_settings())
    taken_off = resubscribe_address(settings, address, reason)
    _say(f"resubscribed {taken_off}: {reason}")


@app.command()
def login(
    device_code: Annotated[
        bool,
        typer.Option(
            "--device-code",
            help="Print a code to enter on another device (Microsoft; for a machine without a browser).",
        ),
    ] = False,
    status: Annotated[
        bool,
        typer.Option("--status", help="Show who is signed in and when the access token expires."),
    ] = False,
) -> None:
    """Sign the sending mailbox in with Microsoft 365 or Google (OAuth 2.0), once.

    Opens the provider's sign-in page in the browser; the tokens are kept in the state
    folder (readable by you only) and renewed silently at every send.

    Example: newsletter login --device-code
    """
    import datetime as dt
    import webbrowser

    from ..common.errors import EXIT_PARTIAL
    from ..signin import oauth

    if status and device_code:
        from ..common.errors import UsageError

        raise UsageError(
            "--device-code does nothing with --status", hint="--status signs nobody in"
        )
    settings = _settings()
    if status:
        info = oauth.sign_in_status(settings)
    else:
        try:
            info = oauth.login(
                settings, device_code=device_code, open_browser=webbrowser.open, echo=_say
            )
        except KeyboardInterrupt:  # tokens are stored only once the sign-in completes
            raise Interrupted("nobody was signed in") from None
    if info is None and oauth.password_set_up(settings):
        _say(
            f"not signed in: this set-up uses NEWSLETTER_SMTP_AUTH={settings.auth_mode} with "
            f"{settings.smtp_host or 'no SMTP host'}, no Microsoft 365 or Google sign-in"
        )
        raise typer.Exit(EXIT_PARTIAL)
    if info is None:
        _say("not signed in (run: newsletter login)")
        raise typer.Exit(EXIT_PARTIAL)
    if info.provider == "token command":
        expiry = "tokens come from NEWSLETTER_SMTP_OAUTH_TOKEN_COMMAND at each connection"
    elif info.expires_at is None:
        # MSAL drops expired access tokens from its cache: none may mean "expired".
        expiry = "no current access token (a new one is fetched at the next send)"
    else:
        when = dt.datetime.fromtimestamp(info.expires_at).astimezone()
        verb = "expired" if when < dt.datetime.now().astimezone() else "expires"
        expiry = f"access token {verb} {when:%Y-%m-%d %H:%M %Z} (renewed automatically)"
    where = f"; tokens in {info.path}" if info.path else ""
    _say(f"signed in as {info.username} ({info.provider}): {expiry}{where}")
    mismatch = oauth.username_mismatch(settings, info)
    if mismatch:
        _say(mismatch)


@app.command()
def logout() -> None:
    """Forget the mailbox's sign-in tokens (revoked at the provider where it allows it).

    Example: newsletter logout
    """
    from ..signin import oauth

    info = oauth.logout(_settings())
    _say(f"signed out {info.username} ({info.provider})" if info else "nobody was signed in")


register_setup_commands(app)  # setup and doctor, the first-time commands


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning our errors into one line and an exit code."""
    try:
        # Without standalone mode click returns the code of a typer.Exit instead of exiting.
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except Interrupted as error:
        typer.secho(str(error), fg="yellow", err=True)
        sys.exit(error.exit_code)
    except NewsletterError as error:
        # _plain: errors quote servers' words (SMTP, IMAP, OAuth, the sign-in redirect's
        # ?error=), which must not reach the terminal as escape sequences.
        typer.secho(f"error: {_plain(str(error))}", fg="red", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:  # outside a command (while parsing the options)
        typer.secho("interrupted", fg="yellow", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except _click_exceptions() as error:
        _handle_click(error)
    except Exception as error:  # noqa: BLE001 - a bug of ours: still one line, no traceback
        import os

        if os.environ.get("NEWSLETTER_DEBUG"):
            raise
        typer.secho(
            f"internal error: {type(error).__name__}: {_redacted(str(error))} "
            "(please report it; NEWSLETTER_DEBUG=1 shows the traceback)",
            fg="red",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)
    sys.exit(EXIT_OK)


_SECRET_NAMES = ("PASSWORD", "SECRET", "TOKEN")


def _redacted(text: str) -> str:
    """``text`` with every secret setting's value (from the environment or ``.env``) blanked:
    an unexpected error's message may quote what it choked on, and it is printed."""
    import os

    values = {v for k, v in os.environ.items() if k.startswith("NEWSLETTER_") and any(
        name in k for name in _SECRET_NAMES)}  # fmt: skip
    try:
        from dotenv import dotenv_values

        values |= {
            v for k, v in dotenv_values(".env").items()
            if v and k.startswith("NEWSLETTER_") and any(name in k for name in _SECRET_NAMES)
        }  # fmt: skip
    except (OSError, ValueError):
        pass
    # Longest first, so a secret that contains another is blanked whole; tiny values would
    # blank ordinary words, and no real secret is that short.
    for value in sorted((v for v in values if len(v) >= 4), key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def _click_exceptions() -> tuple[type[BaseException], ...]:
    # Typer ships its own copy of click (typer._click); find its ClickException through a
    # public class rather than importing a private module.
    click_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
    return (click_error, typer.Exit, typer.Abort)


def _handle_click(error) -> None:
    if isinstance(error, typer.Exit):
        sys.exit(error.exit_code)
    if isinstance(error, typer.Abort):
        typer.secho("aborted", fg="yellow", err=True)
        sys.exit(EXIT_INTERRUPTED)
    error.show()  # "Usage: …" and one "Error: …" line, as click formats them
    sys.exit(EXIT_USAGE)
