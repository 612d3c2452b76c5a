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

from .errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, NewsletterError

app = typer.Typer(
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


def _settings(**overrides):
    from .config import load_settings

    return load_settings().with_overrides(**overrides)


def _say(message: str = "", err: bool = False) -> None:
    typer.echo(message, err=err)


def _notice(message: str) -> None:
    typer.secho(f"note: {message}", fg="yellow", err=True)


def _kb(size: int) -> str:
    return f"{size / 1024:.1f} KB"


@app.command()
def render(
    slug: Annotated[str, typer.Argument(help="Issue slug (file name in issues/ without .md).")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to write SLUG.html and SLUG.txt into.")
    ] = Path("."),
) -> None:
    """Render an issue to SLUG.html (final email HTML) and SLUG.txt (plain-text part).

    Example: newsletter render december-2023 --out build/
    """
    from .preview import render_files

    settings = _settings()
    html_path, text_path, size = render_files(settings, slug, out)
    _say(f"wrote {html_path} ({_kb(size)}) and {text_path}")


@app.command()
def preview(
    slug: Annotated[
        str | None, typer.Argument(help="Issue slug; default: the newest issue by date.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the final email HTML to this file and exit."),
    ] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 = any free port).")] = 0,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the default browser.")
    ] = True,
) -> None:
    """Preview an issue in the browser: inbox line, desktop and mobile widths, plain text.

    Serves a page on 127.0.0.1 that re-renders and reloads when the issue or a template
    changes. Ctrl-C stops it.

    Example: newsletter preview december-2023 --no-open
    """
    from . import preview as preview_mod

    settings = _settings()
    if out is not None:
        path, size = preview_mod.write_email_html(settings, slug, out)
        _say(f"wrote {path} ({_kb(size)})")
        return
    preview_mod.serve(settings, slug, port=port, open_browser=open_browser, echo=_say)


@app.command()
def send(
    slug: Annotated[str, typer.Argument(help="Issue slug, e.g. december-2023.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Write every message to disk instead of sending.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Dry-run folder [default: outbox/SLUG].")
    ] = None,
    recipients: RecipientsOpt = None,
) -> None:
    """Send an issue to every member in the recipients CSV (or write them all with --dry-run).

    Example: newsletter send december-2023 --dry-run
    """
    from . import campaign as campaign_mod

    settings = _settings()
    if not dry_run:
        raise NewsletterError(
            "real sending is not available yet", hint="use --dry-run to write the messages to disk"
        )
    camp = campaign_mod.prepare(settings, slug, recipients=recipients, allow_example=True)
    for note in camp.notices:
        _notice(note)
    out_dir = out or settings.outbox / camp.issue.slug
    result = campaign_mod.dry_run(camp, out_dir)
    _print_dry_run(camp, result)


def _print_dry_run(camp, result) -> None:
    report = result.report
    _say(f"Dry run of {camp.issue.slug!r}: {camp.issue.title}")
    _say(f"  subject:   {camp.rendered.subject}")
    _say(f"  from:      {camp.sender.name} <{camp.sender.address}>")
    _say(f"  members:   {camp.recipients_path}")
    _say(f"  will send: {result.written} message(s), written to {result.out_dir}/")
    for line in report.summary_lines()[1:]:
        _say(f"  skipped:   {line}")
    if result.written:
        average = result.total_bytes // result.written
        _say(
            f"  size:      HTML {_kb(result.html_bytes)}, message {_kb(average)} on average, "
            f"{_kb(result.largest_bytes)} largest"
        )
    _say("No mail was sent.")


@app.command()
def new(
    slug: Annotated[str, typer.Argument(help="Slug of the new issue, e.g. january-2024.")],
    date: Annotated[
        str | None, typer.Option(help="Issue date, YYYY-MM-DD [default: today].")
    ] = None,
    title: Annotated[
        str | None, typer.Option(help="Title [default: '<bulletin> – <Month YYYY>'].")
    ] = None,
) -> None:
    """Start a new issue from the skeleton in templates/new-issue.md.j2 (never overwrites).

    Example: newsletter new january-2024 --date 2024-01-18
    """
    import datetime as dt

    from .errors import IssueError
    from .skeleton import create_issue

    settings = _settings()
    try:
        day = dt.date.fromisoformat(date) if date else dt.date.today()
    except ValueError:
        raise IssueError(f"--date {date!r} is not a date", hint="write it as YYYY-MM-DD") from None
    path = create_issue(settings.issues_dir, settings.templates_dir, slug, date=day, title=title)
    _say(
        f"created {path}: write it, then 'newsletter preview {slug}' and 'newsletter check {slug}'"
    )


@app.command()
def check(
    slug: Annotated[str, typer.Argument(help="Issue slug, e.g. december-2023.")],
    recipients: RecipientsOpt = None,
) -> None:
    """Pre-flight report: every problem with its location, severity and fix, then a verdict.

    Checks the front matter, links and images, size against Gmail's clip, unsubscribe and
    sender details, and renders every member's message. Exits 1 if there are errors.

    Example: newsletter check december-2023 --recipients members.csv
    """
    from . import campaign as campaign_mod
    from .preflight import run_checks

    settings = _settings()
    camp = campaign_mod.prepare(settings, slug, recipients=recipients, allow_example=True)
    for note in camp.notices[:-1] if not camp.sender.has_unsubscribe else camp.notices:
        _notice(note)
    report = run_checks(camp, smtp_username=settings.smtp_username)
    _print_findings(report)
    if report.errors:
        raise typer.Exit(1)


def _print_findings(report) -> None:
    colours = {"error": "red", "warning": "yellow", "info": None}
    for finding in report.findings:
        typer.secho(finding.line(), fg=colours[finding.severity])
    typer.secho(report.verdict(), bold=True, fg="red" if report.errors else "green")


@app.command()
def unsubscribe(
    addresses: Annotated[list[str], typer.Argument(help="One or more email addresses.")],
    reason: Annotated[
        str, typer.Option(help="Why (kept in the suppression list).")
    ] = "unsubscribed",
) -> None:
    """Add addresses to the suppression list: they are never mailed again.

    Example: newsletter unsubscribe jane@example.org --reason "asked by phone"
    """
    import datetime as dt

    from .suppression import add_suppressed

    settings = _settings()
    added, present = add_suppressed(
        settings.suppressed, addresses, reason=reason, today=dt.date.today()
    )
    for address in added:
        _say(f"suppressed {address}")
    for address in present:
        _say(f"already suppressed: {address}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning our errors into one line and an exit code."""
    try:
        # Without standalone mode click returns the code of a typer.Exit instead of exiting.
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except NewsletterError as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        typer.secho("interrupted", fg="yellow", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except _click_exceptions() as error:
        _handle_click(error)
    except Exception as error:  # noqa: BLE001 - a bug of ours: still one line, no traceback
        import os

        if os.environ.get("NEWSLETTER_DEBUG"):
            raise
        typer.secho(
            f"internal error: {type(error).__name__}: {error} "
            "(please report it; NEWSLETTER_DEBUG=1 shows the traceback)",
            fg="red",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)
    sys.exit(EXIT_OK)


def _click_exceptions():
    import click

    return (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort)


def _handle_click(error) -> None:
    import click

    if isinstance(error, click.exceptions.Exit):
        sys.exit(error.exit_code)
    if isinstance(error, click.exceptions.Abort):
        typer.secho("aborted", fg="yellow", err=True)
        sys.exit(EXIT_INTERRUPTED)
    error.show()
    sys.exit(error.exit_code)
