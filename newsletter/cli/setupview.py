"""What ``setup`` and ``doctor`` show: setup's questions at the terminal (or piped answers),
what it wrote, and the doctor's report (a line per check, or JSON). Nothing here decides:
:mod:`.setup_commands` calls the core, :mod:`.exits` maps the doctor's report to the status.

DNS records and servers' replies are quoted in findings: they go through :func:`.views.plain`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from ..common.errors import Interrupted, NewsletterError, UsageError
from .views import notice, plain

if TYPE_CHECKING:
    from ..setup.configure import SetupResult
    from ..setup.doctor import DoctorReport

STATUS_COLOURS = {"pass": "green", "warn": "yellow", "fail": "red", "skip": None}


class SetupTerminal:
    """setup's questions (configure.Asker) on the terminal, or piped answers."""

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive

    def ask(self, question: str, default: str, *, secret: bool = False) -> str:
        try:
            if secret:
                return typer.prompt(question, default="", hide_input=True, show_default=False)
            return typer.prompt(question, default=default, show_default=bool(default))
        except typer.Abort as abort:
            # A hidden prompt ends its line itself when it gives up; a visible one does not.
            raise _no_answer(abort, line_open=not secret) from None

    def choose(self, question: str, choices: list[str], default: str) -> str:
        while True:
            answer = self.ask(f"{question} ({'/'.join(choices)})", default).strip().lower()
            if answer in choices:
                return answer
            typer.echo(f"Please answer one of: {', '.join(choices)}")

    def confirm(self, question: str, default: bool) -> bool:
        try:
            return typer.confirm(question, default=default)
        except typer.Abort as abort:
            raise _no_answer(abort, line_open=True) from None

    def say(self, text: str) -> None:
        typer.echo(text)


def _no_answer(abort: BaseException, *, line_open: bool) -> NewsletterError:
    """Why a question got no answer: Ctrl-C (the chair stopped it: exit 130) or the end of
    the input (Ctrl-D, a closed stdin: the advice to pass the answers as options)."""
    if line_open:
        typer.echo(err=True)  # the error's line must not run on after the question
    # click turns both into the same Abort, raised while handling the original: which one
    # it was is the exception it replaced (kept as __context__ by `raise ... from None`).
    if isinstance(abort.__context__, KeyboardInterrupt):
        return Interrupted("setup stopped, nothing was written", where="at the question")
    return UsageError(
        "no answer to the question (end of input): nothing was written",
        hint="run it in a terminal, or pass the answers as options with --yes "
        "(newsletter setup --help)",
    )


def print_setup(result: SetupResult) -> None:
    """What setup wrote (never a secret: only names, counts and where the password is)."""
    for note in result.notes:
        notice(note)
    if not result.changes:
        typer.echo(f"{result.env_path}: nothing to change")
    elif result.written:
        typer.echo(f"wrote {len(result.changes)} setting(s) to {result.env_path}")
    else:
        typer.echo(f"{result.env_path} left as it was")
        return
    if result.password_where == "keyring":
        typer.echo("the SMTP password is in the keyring (NEWSLETTER_PASSWORD_STORE=keyring)")
    elif result.password_where:
        typer.echo(f"the SMTP password is in {result.env_path} (readable by you only)")
    typer.echo("Next: " + ", then ".join(result.next_steps))


def print_doctor(report: DoctorReport, *, as_json: bool) -> None:
    """The doctor's findings, a line each with the fix under a failure or a warning, and
    the verdict; or ``doctor --json``'s list (check, status, message, fix)."""
    if as_json:
        import json

        typer.echo(json.dumps([f.as_json() for f in report.findings], indent=2))
        return
    from ..domain.findings import Status

    width = max(len(str(f.check)) for f in report.findings)
    for finding in report.findings:
        status = str(finding.status)
        typer.secho(
            f"{status:<5} {str(finding.check):<{width}}  ", fg=STATUS_COLOURS[status], nl=False
        )
        typer.echo(plain(finding.message))
        if finding.fix and finding.status in (Status.FAIL, Status.WARN):
            typer.echo(f"{'':<5} {'':<{width}}  fix: {plain(finding.fix)}")
    typer.secho(report.verdict(), bold=True, fg="red" if report.failed else "green")
