"""The first-time commands: ``setup`` (the settings, asked for once) and ``doctor`` (is it
all set up, will members' servers trust the mail). Registered on the app by commands.py;
what they show is :mod:`.setupview`'s, the doctor's exit status :mod:`.exits`'s."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..common.errors import UsageError
from . import setupview

# `check --dns`: declared here with the other set-up options, used by commands.check.
DnsOpt = Annotated[
    bool,
    typer.Option("--dns", help="Also check the From domain's MX, SPF, DKIM, DMARC and alignment."),
]


def setup(
    from_address: Annotated[
        str | None,
        typer.Option("--from", metavar="ADDRESS", help="The address the bulletin is sent from."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="The sender's name members see.")] = None,
    provider: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="microsoft365, google, ses, postmark, mailgun or other [default: from the domain's MX records].",
        ),
    ] = None,
    smtp_host: Annotated[
        str | None, typer.Option(metavar="HOST", help="SMTP server (relays).")
    ] = None,
    smtp_port: Annotated[int | None, typer.Option(min=1, max=65535, help="SMTP port.")] = None,
    smtp_security: Annotated[
        str | None, typer.Option(metavar="MODE", help="starttls, ssl or none.")
    ] = None,
    username: Annotated[str | None, typer.Option(help="SMTP username (password sign-in).")] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read the SMTP password from the first line of standard input."
        ),
    ] = False,
    password_store: Annotated[
        str | None,
        typer.Option(
            metavar="WHERE", help="keyring or env (.env) [default: keyring where there is one]."
        ),
    ] = None,
    oauth_client_id: Annotated[
        str | None,
        typer.Option(
            metavar="ID", help="The app registration's client ID (Microsoft 365, Google)."
        ),
    ] = None,
    oauth_tenant: Annotated[
        str | None,
        typer.Option(
            metavar="TENANT", help="Microsoft: tenant ID or domain [default: the From domain]."
        ),
    ] = None,
    oauth_client_secret_stdin: Annotated[
        bool,
        typer.Option(
            "--oauth-client-secret-stdin",
            help="Google: read the OAuth client secret from the first line of standard input.",
        ),
    ] = False,
    imap_host: Annotated[
        str | None,
        typer.Option(metavar="HOST", help="IMAP server of the sending mailbox, for feedback."),
    ] = None,
    imap_username: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS",
            help="IMAP username of that mailbox [default: with a relay, the From address; "
            "otherwise the SMTP username].",
        ),
    ] = None,
    test_to: Annotated[
        str | None,
        typer.Option(metavar="ADDRESS", help="Where test copies go [default: the From address]."),
    ] = None,
    unsubscribe_mailto: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS",
            help="Where members write to unsubscribe [default: the From address].",
        ),
    ] = None,
    recipients: Annotated[
        str | None,
        typer.Option(
            "--recipients",
            "-r",
            metavar="CSV",
            help="The members list (exported CSV) [default: recipients.csv].",
        ),
    ] = None,
    dns_server: Annotated[
        str | None,
        typer.Option(
            metavar="HOST[:PORT]",
            help="DNS server to ask for the MX records (recorded as NEWSLETTER_DNS_SERVER).",
        ),
    ] = None,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            "-y",
            help="Ask nothing: take the defaults and write (replacing values in .env).",
        ),
    ] = False,
) -> None:
    """Write the settings a send needs into .env, asking for what it cannot find out.

    Finds the provider from the From domain's MX records (Microsoft 365, Google; anything
    else asks for the relay), fills in the SMTP and IMAP servers and the sign-in, the test
    and unsubscribe addresses, a random NEWSLETTER_SECRET and the members list. Re-running
    shows the current values and changes only what you change. A password goes to the
    keyring where there is one. Never prints a secret. Without a terminal (or with --yes)
    it asks nothing: the options are the answers.

    Example: newsletter setup --from news@your-cluster.org --name "Cluster News" --yes
    """
    import os

    from ..setup.configure import SetupOptions, run_setup

    # Secrets come on standard input, never as a value on the command line (which shell
    # history and the process list keep); one line each, so one of them per run.
    if password_stdin and oauth_client_secret_stdin:
        raise UsageError(
            "--password-stdin and --oauth-client-secret-stdin both read standard input",
            hint="a password sign-in takes the one, Google's OAuth sign-in the other",
        )
    password = _stdin_line("--password-stdin") if password_stdin else None
    client_secret = (
        _stdin_line("--oauth-client-secret-stdin") if oauth_client_secret_stdin else None
    )
    options = SetupOptions(
        from_address=from_address, name=name, provider=provider, smtp_host=smtp_host,
        smtp_port=smtp_port, smtp_security=smtp_security, username=username, password=password,
        password_store=password_store, oauth_client_id=oauth_client_id, oauth_tenant=oauth_tenant,
        oauth_client_secret=client_secret, imap_host=imap_host, imap_username=imap_username,
        test_to=test_to, unsubscribe_mailto=unsubscribe_mailto,
        recipients=recipients, dns_server=dns_server, yes=yes,
    )  # fmt: skip
    org = _organisation()
    result = run_setup(
        options,
        # Questions only at a terminal: piped or scheduled, the options are the answers.
        setupview.SetupTerminal(
            interactive=not yes
            and sys.stdin.isatty()
            and not password_stdin
            and not oauth_client_secret_stdin
        ),
        env_path=Path(".env"),
        organisation=(org[0], org[1] or ""),
        environ_dns_server=os.environ.get("NEWSLETTER_DNS_SERVER", ""),
    )
    setupview.print_setup(result)


def _stdin_line(flag: str) -> str:
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise UsageError(f"{flag} read an empty line: nothing was written")
    return line


def _organisation() -> tuple[str, str]:
    from ..common.config import load_settings
    from ..common.errors import NewsletterError
    from ..content.organisation import load_organisation

    try:
        org = load_organisation(load_settings().templates_dir)
    except NewsletterError:
        return "", ""
    return org.name, org.email


def doctor(
    slug: Annotated[
        str | None,
        typer.Argument(metavar="SLUG", help="Issue the round trip sends [default: the newest]."),
    ] = None,
    json_out: Annotated[
        bool,
        typer.Option("--json", help="Print the findings as JSON (check, status, message, fix)."),
    ] = False,
    no_send: Annotated[
        bool, typer.Option("--no-send", help="Skip the round trip (no mail is sent).")
    ] = False,
    dkim_selector: Annotated[
        list[str] | None,
        typer.Option(
            "--dkim-selector",
            metavar="NAME",
            help="DKIM selector to look up (repeatable) [default: the provider's].",
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="ADDRESS",
            help="Send the round trip's copy here [default: NEWSLETTER_TEST_TO].",
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for the copy in the mailbox.")
    ] = 120.0,
) -> object:  # a DoctorReport (Typer resolves the hint: no import)
    """Check the set-up, the sending domain's DNS and a real round trip; one verdict.

    Checks: settings, smtp-auth, mx, spf, dkim, dmarc, alignment; then (unless --no-send)
    sends a test copy with a unique token to the test address, finds it over IMAP and
    reads the receiving server's verdicts (received-spf, received-dkim, received-dmarc),
    its size against Gmail's clip and its List-Unsubscribe headers. Every failure names
    the DNS record or setting to fix. Exits 1 if a check fails.

    Example: newsletter doctor --no-send
    """
    import datetime as dt

    from ..common.config import load_settings
    from ..setup.doctor import run_doctor

    settings = load_settings()
    round_trip = None
    if not no_send:
        from ..setup.roundtrip import round_trip_checks

        def round_trip():
            return round_trip_checks(settings, slug, to=to, timeout=timeout)

    report = run_doctor(
        settings,
        today=dt.date.today(),
        dkim_selectors=tuple(dkim_selector or ()),
        round_trip=round_trip,
    )
    setupview.print_doctor(report, as_json=json_out)
    return report  # exits.exit_status: 1 if a check failed, as check's errors


def register(app: typer.Typer) -> None:
    app.command()(setup)
    app.command()(doctor)
