"""How a ``newsletter`` run ends: the one place that decides the exit status.

A command returns its typed result (or ``None``: it did what was asked);
:func:`exit_status` maps it to an :class:`ExitStatus`. An error ends the run with the
status its class carries (:mod:`newsletter.common.errors`); :func:`run` prints it as one
line. Nothing else in the package picks an exit code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from enum import Enum

import typer

from ..common.errors import Interrupted, NewsletterError
from ..common.exitstatus import ExitStatus
from .views import plain


class Ended(Enum):
    """A command's result that is neither an error nor a core object."""

    # `login --status` with nobody signed in: exit 1, documented, so a chair's script can
    # test "signed in?" with the status alone.
    NOBODY_SIGNED_IN = "nobody is signed in"


def exit_status(result: object) -> ExitStatus:
    """The status a command's ``result`` ends the run with."""
    if result is None:
        return ExitStatus.OK
    if isinstance(result, Ended):
        return ExitStatus.FAILED  # the only one: NOBODY_SIGNED_IN
    # Imported here, where a send or a check already loaded them: not on every start.
    from ..sending.policy import CheckRun, DryRun, MemberSend, SendEnd, TestSend

    if isinstance(result, MemberSend):
        return {
            SendEnd.DONE: ExitStatus.OK,
            SendEnd.UNFINISHED: ExitStatus.FAILED,
            SendEnd.INTERRUPTED: ExitStatus.INTERRUPTED,
        }[result.end]
    if isinstance(result, CheckRun):
        return ExitStatus.FAILED if result.report.errors else ExitStatus.OK
    if isinstance(result, DryRun | TestSend):
        return ExitStatus.OK  # a failed test copy is an error (DeliveryIncomplete), not this
    from ..setup.doctor import DoctorReport

    if isinstance(result, DoctorReport):
        return ExitStatus.FAILED if result.failed else ExitStatus.OK  # as check's errors
    raise TypeError(f"no exit status for a {type(result).__name__}")  # a bug of ours: exit 70


def run(app: typer.Typer, argv: Sequence[str] | None) -> ExitStatus:
    """Run ``app`` on ``argv``; print the one line an error ends it with; its status."""
    try:
        # Without standalone mode click returns the status of a typer.Exit (the group
        # raises one for a result that is not OK; --help and --version end with 0).
        ended = app(args=list(argv) if argv is not None else None, standalone_mode=False)
        return ExitStatus(ended or ExitStatus.OK)
    except Interrupted as error:
        typer.secho(str(error), fg="yellow", err=True)
        return error.status
    except NewsletterError as error:
        # plain: errors quote servers' words (SMTP, IMAP, OAuth, the sign-in redirect's
        # ?error=), which must not reach the terminal as escape sequences.
        typer.secho(f"error: {plain(str(error))}", fg="red", err=True)
        return error.status
    except KeyboardInterrupt:  # outside a command (while parsing the options)
        typer.secho("interrupted", fg="yellow", err=True)
        return ExitStatus.INTERRUPTED
    except _click_exceptions() as error:
        return _click_ended(error)
    except Exception as error:  # noqa: BLE001 - a bug of ours: still one line, no traceback
        if os.environ.get("NEWSLETTER_DEBUG"):
            raise
        typer.secho(
            f"internal error: {type(error).__name__}: {redacted(str(error))} "
            "(please report it; NEWSLETTER_DEBUG=1 shows the traceback)",
            fg="red",
            err=True,
        )
        return ExitStatus.INTERNAL


def main(app: typer.Typer, argv: Sequence[str] | None = None) -> None:
    """Run ``app`` and exit the process with its status."""
    from .ctrlc import handled

    with handled():  # a Ctrl-C after the one the run is ending for changes nothing
        status = run(app, argv)
    sys.exit(status)


_SECRET_NAMES = ("PASSWORD", "SECRET", "TOKEN")


def redacted(text: str) -> str:
    """``text`` with every secret setting's value (from the environment or ``.env``) blanked:
    an unexpected error's message may quote what it choked on, and it is printed."""
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


def _click_ended(error: BaseException) -> ExitStatus:
    if isinstance(error, typer.Exit):
        return ExitStatus(error.exit_code)
    if isinstance(error, typer.Abort):
        typer.secho("aborted", fg="yellow", err=True)
        return ExitStatus.INTERRUPTED
    error.show()  # type: ignore[attr-defined]  # "Usage: …" and one "Error: …" line
    return ExitStatus.USAGE
