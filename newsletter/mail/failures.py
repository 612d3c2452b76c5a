"""What can go wrong with an SMTP connection or one message, as typed values.

Every failure is sorted into one of three kinds, because each calls for a different action:

* :class:`TemporaryFailure` (4xx reply, dropped connection, timeout, reset mid-send): this
  message was not accepted, try it again later.
* :class:`PermanentFailure` (5xx reply to RCPT or DATA): this recipient will not get it;
  record the server's reply and go on with the others.
* :class:`ConnectionFailed` and :class:`SenderRefused` (both a
  :class:`~newsletter.common.errors.DeliveryError`): no message can be sent, stop the run.
  ``ConnectionFailed.problem`` says what failed, so that the send decides how to stop
  from it, never from the words of the message.
"""

from __future__ import annotations

from enum import StrEnum

from ..common.errors import DeliveryError


class SendFailure(Exception):
    """One message was not accepted; ``reply`` is the server's answer as one line.

    ``timed_out``: no reply came within the SMTP timeout (a slow or silent server)."""

    def __init__(self, reply: str, *, code: int | None = None, timed_out: bool = False) -> None:
        super().__init__(reply)
        self.reply = reply
        self.code = code
        self.timed_out = timed_out


class TemporaryFailure(SendFailure):
    """Not accepted this time (4xx, dropped connection, timeout): retry later.

    ``connection``: the connection itself failed (no greeting, 421, a timeout, a reset),
    as opposed to a 4xx answer about this message from a server that is still talking
    (greylisting, "too many recipients"). Several in a row mean the server went away."""

    def __init__(
        self,
        reply: str,
        *,
        code: int | None = None,
        connection: bool = False,
        timed_out: bool = False,
    ) -> None:
        super().__init__(reply, code=code, timed_out=timed_out)
        self.connection = connection or code == 421


class PermanentFailure(SendFailure):
    """Refused for this recipient (5xx on RCPT or DATA): do not retry."""


class UnknownOutcome(SendFailure):
    """The whole message went out and the server's reply did not come in time (or was no
    reply to a message: ``timed_out=False``): it may be accepted (a slow server usually
    is). Never retried automatically, because a retry could be a second copy; the member
    stays ``sending`` (unknown) in the journal."""

    def __init__(self, reply: str, *, timed_out: bool = True) -> None:
        super().__init__(reply, timed_out=timed_out)


class ConnectProblem(StrEnum):
    """What stopped a connection from being set up."""

    UNREACHABLE = "unreachable"  # refused, unknown host, no answer, closed during set-up
    TLS = "tls"  # handshake, certificate, STARTTLS not offered or refused
    SIGN_IN = "sign-in"  # the server refused the sign-in (password or token)
    NO_TOKEN = "no-token"  # the provider's sign-in service (or token command) gave no token
    OTHER = "other"  # not an SMTP server, a CA file that cannot be read, AUTH never in clear


class ConnectionFailed(DeliveryError):
    """No connection could be set up; ``problem`` says which step failed."""

    def __init__(
        self,
        message: str,
        *,
        problem: ConnectProblem,
        host: str | None = None,
        port: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, host=host, port=port, hint=hint)
        self.problem = problem


class SenderRefused(DeliveryError):
    """The server refused the sender at MAIL FROM (5xx): no message can go out now.
    ``reply`` is the server's answer as one line (quota, blocked account, not allowed)."""

    def __init__(self, message: str, *, reply: str, host: str, port: int, hint: str) -> None:
        super().__init__(message, host=host, port=port, hint=hint)
        self.reply = reply
