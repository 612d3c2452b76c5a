"""Every error a user can cause, as one typed exception family.

The CLI catches :class:`NewsletterError` and prints ``str(error)`` as a single line; each
subclass puts its context (file:line, CSV row, host:port) at the front of that line so the
user knows where to look, and ``hint`` says what to do about it.

The exit status an error ends the command with is its class's (``status=`` in the class
line, :data:`ExitStatus.USAGE` unless said): decided where the error is created, by the
class chosen, and read-only on an instance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from .exitstatus import ExitStatus


class NewsletterError(Exception):
    """Base class: a problem the user can fix, reported as one line."""

    _status: ClassVar[ExitStatus] = ExitStatus.USAGE

    def __init_subclass__(cls, *, status: ExitStatus | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls._status = status

    @property
    def status(self) -> ExitStatus:
        """How the command ends when this error stops it (a property: no setter)."""
        return self._status

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def location(self) -> str:
        return ""

    def __str__(self) -> str:
        where = self.location()
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text = f"{text} ({self.hint})"
        # One line, always: a multi-line message from a library must not break the format.
        return " ".join(text.split())


class FileLocatedError(NewsletterError):
    """An error in a file, optionally at a 1-based line."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = Path(path) if path is not None else None
        self.line = line

    def location(self) -> str:
        if self.path is None:
            return ""
        return f"{self.path}:{self.line}" if self.line else str(self.path)


class IssueError(FileLocatedError):
    """An issue file is missing, or its front matter or body is invalid."""


class TemplateError(FileLocatedError):
    """A template failed to render or compile (Jinja2, MJML, CSS inlining)."""


class ConfigError(NewsletterError):
    """A setting is missing or invalid."""

    def __init__(self, message: str, *, setting: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.setting = setting

    def location(self) -> str:
        return self.setting or ""


class RecipientsError(FileLocatedError):
    """The recipients (or suppression) CSV cannot be used; ``row`` is the 1-based file row."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        row: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, path=path, line=None, hint=hint)
        self.row = row

    def location(self) -> str:
        base = super().location()
        return f"{base}, row {self.row}" if self.row else base


class DeliveryError(NewsletterError):
    """The SMTP server cannot be used at all (unreachable, TLS failure, AUTH refused)."""

    def __init__(
        self,
        message: str,
        *,
        host: str | None = None,
        port: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.host = host
        self.port = port

    def location(self) -> str:
        if self.host is None:
            return ""
        return f"{self.host}:{self.port}" if self.port else self.host


class DeliveryIncomplete(DeliveryError, status=ExitStatus.FAILED):
    """The server was usable, but the delivery did not finish: a test copy not sent or not
    accepted, or a send cut short after some members got it (the same command resumes)."""


class DailyCapReached(NewsletterError, status=ExitStatus.FAILED):
    """NEWSLETTER_DAILY_LIMIT holds back what was asked for: nothing wrong, just not today."""


class CheckFailed(NewsletterError):
    """Pre-flight checks found errors; the send refuses to start (nothing sent: exit 2)."""


class MailboxError(DeliveryError):
    """The IMAP mailbox cannot be used (unreachable, TLS failure, login refused, no folder)."""


class UsageError(NewsletterError):
    """Options that contradict each other or would be silently ignored (exit 2)."""


class Interrupted(NewsletterError, status=ExitStatus.INTERRUPTED):
    """Ctrl-C: reported as "interrupted" plus what that left behind (exit 130).

    Typer would turn the KeyboardInterrupt into a silent exit 130; every command's
    interruption comes here instead, so it always ends with one line saying so.
    ``where``: when it came, e.g. "at the question" ("interrupted at the question: …")."""

    def __init__(self, what: str = "", *, where: str = "") -> None:
        head = f"interrupted {where}" if where else "interrupted"
        super().__init__(f"{head}: {what}" if what else head)


class SignInError(NewsletterError):
    """Signing in with the mail provider (OAuth 2.0) failed: unreachable sign-in service,
    refused app registration, a failed token command, a browser sign-in that timed out."""


class SignInRequired(DeliveryError):
    """No usable sign-in: never signed in, or the refresh token expired or was revoked.

    A DeliveryError, so a send stops at once (no message can go out without it)."""

    def __init__(self, reason: str = "") -> None:
        super().__init__("sign in again: newsletter login", hint=reason or None)
