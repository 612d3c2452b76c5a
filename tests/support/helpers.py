"""Helpers shared by the tests: the CLI in-process and its environment, members' lists and
issue files written into a project, dry runs read back, check findings, fake clocks."""

from __future__ import annotations

import email
import email.policy
import functools
import http.server
import json
import os
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from newsletter.common.config import Settings
from support.smtp_servers import PASSWORD, USERNAME, Server, free_port

# ---- settings and environments -------------------------------------------------------------

# Not .env.example's placeholders: `check` and a real send refuse those.
READY_ENV = {
    "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
    "NEWSLETTER_UNSUBSCRIBE_URL": "https://wmhtc.co.uk/u?t={token}",
    "NEWSLETTER_SECRET": "a-long-random-test-secret",
}
# What `check` needs to say READY from the command line: the settings above and a server.
CHECK_ENV = {**READY_ENV, "NEWSLETTER_SMTP_HOST": "smtp.wmhtc.co.uk"}
SECRET = READY_ENV["NEWSLETTER_SECRET"]
TEST_TO = "chair@wmhtc.co.uk"
ARCHIVE_URL = "https://wmhtc.co.uk/news"


def settings_for(server: Server | None, **changes: object) -> Settings:
    """Plain SMTP to ``server`` on 127.0.0.1 (no server: a port nobody listens on)."""
    values: dict[str, object] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": server.port if server else free_port(),
        "smtp_security": "none",
        "smtp_timeout": 5.0,
        "retry_base_delay": 0.01,
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


def tls_settings(server: Server, **changes: object) -> Settings:
    """STARTTLS (trusting the test CA) and AUTH with the test account."""
    base: dict[str, object] = {
        "smtp_security": "starttls",
        "smtp_cafile": server.cafile,
        "smtp_username": USERNAME,
        "smtp_password": PASSWORD,
    }
    base.update(changes)
    return settings_for(server, **base)


def cli_env(server: Any = None, **extra: str) -> dict[str, str]:
    """The environment for a `newsletter` run: this process's, without any NEWSLETTER_*
    setting, plus READY_ENV and NEWSLETTER_TEST_TO; with ``server`` (anything with ``host``
    and ``port``) its SMTP settings: STARTTLS and the test account when it has a CA file
    (``smtp_server``), else plain. ``extra`` is applied last."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    if server is not None:
        env.update(NEWSLETTER_SMTP_HOST=server.host, NEWSLETTER_SMTP_PORT=str(server.port))
        cafile = getattr(server, "cafile", None)
        if cafile:
            env.update(
                NEWSLETTER_SMTP_SECURITY="starttls",
                NEWSLETTER_SMTP_CAFILE=cafile,
                NEWSLETTER_SMTP_USERNAME=USERNAME,
                NEWSLETTER_SMTP_PASSWORD=PASSWORD,
            )
        else:
            env.update(NEWSLETTER_SMTP_SECURITY="none")
    env.update(READY_ENV, NEWSLETTER_TEST_TO=TEST_TO)
    env.update(extra)
    return env


# ---- the CLI -------------------------------------------------------------------------------


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(
    args: Sequence[str],
    env: Mapping[str, str | None] | None = None,
    input: str | None = None,
) -> CliResult:
    """``newsletter ARGS`` in this process, through the real entry point (:func:`main`, which
    maps errors to one line and an exit code), with Typer's CliRunner capturing the streams
    and applying ``env`` for the call. Run from the current folder (the ``project``
    fixture's). Use a real process only where that is the point (signals, ``python -m``)."""
    from newsletter.cli.commands import main

    runner = CliRunner()
    code = 0
    with runner.isolation(input=input, env=env) as (out, err, _):
        try:
            main(list(args))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        stdout, stderr = out.getvalue(), err.getvalue()
    return CliResult(code, stdout.decode("utf-8"), stderr.decode("utf-8"))


def newsletter(project: Path, env: dict[str, str], *args: str) -> CliResult:
    """``newsletter ARGS`` in-process (run_cli) from ``project``, which must be the current
    folder (the ``project`` fixture's)."""
    assert project == Path.cwd()
    return run_cli(args, env)


def one_line(text: str) -> str:
    """The one line ``text`` holds: no traceback, no internal error."""
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text and "internal error" not in text, text
    return lines[0]


# ---- what a project holds ------------------------------------------------------------------

PREHEADER = "What is inside this month, in a sentence of a useful length."
THREE_MEMBERS = ["ann@nghealth.uk", "bob@mmedtech.uk", "cat@cdhealth.uk"]


def write_issue(project: Path, body: str, subject: str = "Cluster News – January") -> str:
    """issues/probe.md with a valid front matter and ``body``; returns its slug."""
    # A JSON string is a valid YAML scalar, whatever quotes the subject holds.
    front = f"---\ntitle: January\nsubject: {json.dumps(subject)}\npreheader: {PREHEADER}\n"
    (project / "issues" / "probe.md").write_text(
        front + "date: 2024-01-18\n---\n" + body, encoding="utf-8"
    )
    return "probe"


def write_probe(folder: Path, front: str, body: str = "## News\n\nText.\n") -> Path:
    """``folder``/probe.md: title, subject and preheader, then the ``front`` lines."""
    path = folder / "probe.md"
    path.write_text(
        f"---\ntitle: Probe\nsubject: Probe subject\npreheader: {PREHEADER}\n{front}---\n{body}",
        encoding="utf-8",
    )
    return path


def write_dated_issue(project: Path, slug: str, day: str, extra: str = "") -> None:
    """issues/SLUG.md dated ``day`` (front-matter lines ``extra`` added), with one link."""
    (project / "issues" / f"{slug}.md").write_text(
        f"---\ntitle: Cluster News {slug}\nsubject: Cluster News {slug}\n"
        f"preheader: {PREHEADER}\ndate: {day}\n{extra}---\n\n## News\n\nWelcome to "
        f"[our news](https://wmhtc.co.uk/news).\n",
        encoding="utf-8",
    )


def write_three_members(project: Path) -> None:
    """recipients.csv: THREE_MEMBERS, first names their initials."""
    rows = "".join(f"{a},{a[0].upper()}\n" for a in THREE_MEMBERS)
    (project / "recipients.csv").write_text("email,first_name\n" + rows, encoding="utf-8")


def write_members(project: Path, count: int = 40) -> list[str]:
    """recipients.csv with ``count`` members (memberN@members.wmhtc.co.uk, NameN Surname)."""
    # Not example.org: `check` refuses a list of placeholder addresses only.
    addresses = [f"member{n}@members.wmhtc.co.uk" for n in range(count)]
    rows = "".join(f"{a},Name{n},Surname\n" for n, a in enumerate(addresses))
    (project / "recipients.csv").write_text("email,first_name,last_name\n" + rows, encoding="utf-8")
    return addresses


def first_member(project: Path) -> str:
    """The address on the first row of the project's recipients.csv."""
    return (project / "recipients.csv").read_text(encoding="utf-8").splitlines()[1].split(",")[0]


# ---- dry runs read back, check findings ----------------------------------------------------


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def dry_run_cli(project: Path, slug: str, *extra: str) -> list[EmailMessage]:
    """``newsletter send SLUG --dry-run`` (READY_ENV): every .eml it wrote, parsed, in
    member order."""
    done = run_cli(["send", slug, "--dry-run", *extra], env=READY_ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    return [parse(path.read_bytes()) for path in sorted((project / "outbox" / slug).glob("*.eml"))]


def html_and_text(message: EmailMessage) -> tuple[str, str]:
    """(HTML, plain text) of one member's message, line ends as \\n."""
    html = text = ""
    for part in message.walk():
        if part.get_content_type() == "text/html":
            html = part.get_content().replace("\r\n", "\n")
        elif part.get_content_type() == "text/plain":
            text = part.get_content().replace("\r\n", "\n")
    return html, text


def text_and_html(message: EmailMessage) -> tuple[str, str]:
    """(plain text, HTML) of one member's message, as its bodies hold them."""
    return (
        message.get_body(("plain",)).get_content(),
        message.get_body(("html",)).get_content(),
    )


def dry_run_in_process(
    settings: Settings, slug: str, recipients: Path | None = None
) -> tuple[Any, list[EmailMessage]]:
    """The dry run of ``slug`` into settings.outbox: its result and every message, parsed."""
    from newsletter.sending import campaign as campaign_mod

    camp = campaign_mod.prepare(settings, slug, recipients=recipients)
    result = campaign_mod.dry_run(camp, settings.outbox / slug)
    return result, [parse(path.read_bytes()) for path in sorted(result.out_dir.glob("*.eml"))]


def run_check(settings: Settings, slug: str, recipients: Path | None = None) -> Any:
    """`check`'s report on ``slug``."""
    from newsletter.sending import campaign as campaign_mod
    from newsletter.sending.checks import run_checks

    return run_checks(campaign_mod.prepare(settings, slug, recipients=recipients))


def said(report: Any, severity: str) -> list[str]:
    """The report's findings of ``severity``, as "where: message" lines."""
    return [f"{f.where}: {f.message}" for f in report.findings if f.severity == severity]


# ---- a web server for the published archive ----------------------------------------------


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files, logging nothing."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextmanager
def web_server(folder: Path) -> Iterator[str]:
    """A plain static web server for ``folder`` on 127.0.0.1 (the published archive); yields
    its address, ending in /news/."""
    folder.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/news/"
    finally:
        httpd.shutdown()
        httpd.server_close()


# ---- clocks --------------------------------------------------------------------------------


class FakeClock:
    """A monotonic clock that moves only when someone sleeps on it.

    Pass ``clock`` and ``clock.sleep`` to :func:`newsletter.sending.engine.deliver`: pacing, batch
    pauses and retry back-off then take no real time, and every time they produce is exact
    (no scheduler jitter), so tests can assert on it. Thread-safe: with several worker
    threads each sleep adds to the one shared time, so time only runs faster, never
    backwards, and a transaction can never start before its slot.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.start = start
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += max(seconds, 0.0)


class TickingClock:
    """A wall clock (UTC datetimes) for the journal: 2024-01-15 09:30, one second more at
    each reading, so every time recorded is known."""

    def __init__(self) -> None:
        self.now = datetime(2024, 1, 15, 9, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now
