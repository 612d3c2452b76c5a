"""The ``newsletter`` commands: options in, one core call, its typed result shown and returned.

Each command parses its options, calls one core function, hands the result to a view
(:mod:`.views`) and returns it; :mod:`.exits` maps what it returns, or the
:class:`NewsletterError` it raised, to the exit status. Heavy libraries (jinja2, mjml,
premailer, lxml, smtplib) are imported inside the commands, so ``--help`` is fast.
"""

from __future__ import annotations

# Not imported per command like the heavy libraries: Typer has loaded it already.
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from .. import __version__
from ..common.errors import Interrupted
from ..common.exitstatus import ExitStatus
from . import exits, views
from .arguments import RecipientsOpt, ResendOfOpt, in_project, load, newest_or, slug_of
from .setup_commands import DnsOpt
from .setup_commands import register as register_setup_commands
from .views import kb, notice, say, skipped

if TYPE_CHECKING:  # only for helpers' hints: Typer evaluates the commands' own hints
    pass

# `--help` lists the commands in the order a chair uses them in a month, not A-Z or the
# order they happen to be defined in; a command not listed here comes after these.
COMMAND_ORDER = (
    "new", "preview", "check", "send", "status", "list", "archive", "unsubscribe", "feedback",
    "resubscribe", "render", "login", "logout", "setup", "doctor",
)  # fmt: skip


class _ChairOrder(TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(names, key=lambda name: rank.get(name, len(rank)))

    def invoke(self, ctx: Any) -> ExitStatus:
        # Typer turns a KeyboardInterrupt escaping a command into a silent exit 130; catch
        # it first so main() prints one line for every command's Ctrl-C.
        try:
            result = super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted() from None
        status = exits.exit_status(result)
        if status is not ExitStatus.OK:
            # click's way to end with a status, in main() and in Typer's CliRunner alike.
            raise typer.Exit(status)
        return status


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

    settings = in_project(load())
    html_path, text_path, size = render_files(settings, slug_of(settings, slug), out)
    say(f"wrote {html_path} ({kb(size)}) and {text_path}")


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
    settings = in_project(load())
    slug = slug_of(settings, slug) if slug is not None else None
    if out is not None:
        path, size = preview_mod.write_email_html(settings, slug, out, skipped, as_address)
        say(f"wrote {path} ({kb(size)})")
        return
    from ..web.server import serve

    serve(
        settings,
        slug,
        port=port or 0,
        open_browser=True if open_browser is None else open_browser,
        echo=say,
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
    resend_of: ResendOfOpt = None,
) -> object:  # MemberSend | DryRun | TestSend (Typer resolves the hint: no import)
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
        batch_pause=batch_pause, resend_of=resend_of,
    )  # fmt: skip
    send_run.check_options(options)  # a usage mistake is reported before any setting
    settings = in_project(load())
    slug = slug_of(settings, slug)
    if resend_of is not None:
        from dataclasses import replace

        options = replace(options, resend_of=slug_of(settings, resend_of))
    outcome = send_run.send(settings, slug, options, views.SendTerminal(settings))
    if isinstance(outcome, send_run.DryRun):
        views.print_dry_run(outcome.campaign, outcome.result, outcome.refusals)
    elif isinstance(outcome, send_run.TestSend):
        views.print_test_send(settings, slug, outcome)
    else:
        views.print_result(slug, outcome)
    return outcome


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
    from ..content.dates import read_date
    from ..content.skeleton import start_issue

    settings = load()
    in_project(settings, also=(settings.templates_dir / "organisation.toml",))
    try:
        day = read_date(date) if date else None  # None: from the slug, or today
    except ValueError as exc:
        raise IssueError(f"--date {date!r} is not a date", hint=str(exc)) from None
    made = start_issue(settings.issues_dir, settings.templates_dir, slug, date=day, title=title)
    slug = made.path.stem
    say(
        f"created {made.path} ({made.title!r}, dated {made.date.isoformat()}): write it, then "
        f"'newsletter preview {slug}' and 'newsletter check {slug}'"
    )


@app.command()
def check(
    slug: Annotated[
        str | None,
        typer.Argument(metavar="SLUG", help="Issue slug; default: the newest issue by date."),
    ] = None,
    recipients: RecipientsOpt = None,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid",
            help="Check as 'send --skip-invalid' sends: invalid CSV rows are a warning.",
        ),
    ] = False,
    resend_of: ResendOfOpt = None,
    dns: DnsOpt = False,
) -> object:  # a CheckRun (Typer resolves the hint: no import)
    """Pre-flight report: every problem with its location, severity and fix, then a verdict.

    Checks the settings a send needs, the front matter, a copy of an issue already sent,
    links and images, size against Gmail's clip, unsubscribe and sender details, and
    renders every member's message (--dns: the sending domain's DNS records too). Exits 1
    if there are errors.

    Example: newsletter check december-2023 --recipients members.csv
    """
    from ..sending import policy as send_run

    settings = in_project(load())
    slug = newest_or(settings, slug)
    result = send_run.check(
        settings,
        slug,
        recipients=recipients,
        skip_invalid=skip_invalid,
        resend_of=slug_of(settings, resend_of) if resend_of else "",
        today=dt.date.today(),
        dns=dns,
    )
    for note in result.notes:
        notice(note)
    views.print_findings(result.report)
    return result


@app.command("list")
def list_() -> None:
    """Every issue, newest first: date, title, subject and what its send reached, from the
    journal ("sent 128 of 500; 372 pending"), whatever the members CSV holds today.

    Example: newsletter list
    """
    from ..sending.status import list_issues

    settings = in_project(load())
    states = list_issues(settings, lambda error: notice(f"{error} (subject shown as written)"))
    views.print_issues(settings, states)


@app.command()
def status(
    slug: Annotated[
        str | None,
        typer.Argument(metavar="SLUG", help="Issue slug; default: the newest issue by date."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    recipients: RecipientsOpt = None,
) -> None:
    """Show an issue's delivery record: counts by status, members of the current list still
    pending, failures with server replies, when.

    Example: newsletter status december-2023 --json
    """
    from ..sending.status import send_status

    settings = in_project(load())
    slug = newest_or(settings, slug)
    report = send_status(settings, slug, recipients)
    if as_json:
        import json

        say(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        return
    views.print_status(slug, report, recipients or settings.recipients)


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

    settings = in_project(load())
    result = build_archive(settings, out, skipped)
    say(f"wrote {len(result.pages)} issue page(s), {result.index} and {result.feed}")
    for page in result.kept:
        say(f"kept {page}: members were sent it, and its issue file is gone (renamed or deleted)")
    if not settings.archive_url:
        notice("NEWSLETTER_ARCHIVE_URL is not set: the feed's links are relative")


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
    from ..members.suppression import add_suppressed, not_members

    settings = load()
    in_project(settings, creates=settings.suppressed)
    added, present = add_suppressed(
        settings.suppressed, addresses, reason=reason, today=dt.date.today()
    )
    for address in added:
        say(f"suppressed {address}")
    for address in present:
        say(f"already suppressed: {address}")
    for address, close in not_members(settings.recipients, added):
        notice(
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
    from .feedbackview import print_feedback

    settings = in_project(load())
    report = run_feedback(settings, dry_run=dry_run, since=day, move_to=move_to)
    print_feedback(report)


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

    settings = in_project(load())
    taken_off = resubscribe_address(settings, address, reason)
    say(f"resubscribed {taken_off}: {reason}")


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
) -> exits.Ended | None:
    """Sign the sending mailbox in with Microsoft 365 or Google (OAuth 2.0), once.

    Opens the provider's sign-in page in the browser; the tokens are kept in the state
    folder (readable by you only) and renewed silently at every send.

    Example: newsletter login --device-code
    """
    import webbrowser

    from ..signin import oauth

    if status and device_code:
        from ..common.errors import UsageError

        raise UsageError(
            "--device-code does nothing with --status", hint="--status signs nobody in"
        )
    settings = load()
    if status:
        info = oauth.sign_in_status(settings)
        if info is None:
            views.print_not_signed_in(settings, password_set_up=oauth.password_set_up(settings))
            return exits.Ended.NOBODY_SIGNED_IN
    else:
        try:
            info = oauth.login(
                settings, device_code=device_code, open_browser=webbrowser.open, echo=say
            )
        except KeyboardInterrupt:  # tokens are stored only once the sign-in completes
            raise Interrupted("nobody was signed in") from None
    views.print_sign_in(
        info, oauth.username_mismatch(settings, info), now=dt.datetime.now().astimezone()
    )
    return None


@app.command()
def logout() -> None:
    """Forget the mailbox's sign-in tokens (revoked at the provider where it allows it).

    Example: newsletter logout
    """
    from ..signin import oauth

    info = oauth.logout(load())
    say(f"signed out {info.username} ({info.provider})" if info else "nobody was signed in")


register_setup_commands(app)  # setup and doctor, the first-time commands


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the app; exit with its status (errors printed as one line)."""
    exits.main(app, argv)
