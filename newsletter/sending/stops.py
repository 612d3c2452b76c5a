"""Why a delivery run stopped early, as a typed value; the sentences are made from it.

A run stops at once, for every member, when the provider refuses the sender (a quota, a
blocked account, the circuit breaker's conclusion), when connections keep failing, or when
a connection cannot be set up any more after messages went out (the server gone, a sign-in
revoked, TLS failing). Which of these it is comes from typed values — the refusal's kind
(:mod:`newsletter.mail.refusals`), the set-up step that failed
(:class:`~newsletter.mail.failures.ConnectProblem`), the failures counted in a row — never
from the words of a message, so rewording one cannot change what a send does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from ..common.errors import DeliveryError, SignInRequired
from ..mail.failures import ConnectionFailed, ConnectProblem, SenderRefused
from ..mail.refusals import SenderRefusal, classify


class StopReason(StrEnum):
    """Why a run stopped early."""

    SENDER_REFUSED = "sender-refused"  # the provider refused the sender (``refusal`` says how)
    SENDER_NO_LONGER_ACCEPTED = "sender-no-longer-accepted"  # MAIL FROM refused, words unknown
    CONNECTIONS_FAILING = "connections-failing"  # connection failures in a row
    STOPPED_ANSWERING = "stopped-answering"  # the server cannot be reached any more
    SIGN_IN_EXPIRED = "sign-in-expired"  # the sign-in (refresh token) expired or was revoked
    NO_TOKEN = "no-token"  # the provider's sign-in service gave no token
    SIGN_IN_REFUSED = "sign-in-refused"  # the server refused the sign-in
    TLS_FAILED = "tls-failed"
    SERVER_UNUSABLE = "server-unusable"  # any other failed set-up


# A connection that cannot be set up after messages went out: why the run stops.
_AFTER_SETUP: dict[ConnectProblem, StopReason] = {
    ConnectProblem.UNREACHABLE: StopReason.STOPPED_ANSWERING,
    ConnectProblem.TLS: StopReason.TLS_FAILED,
    ConnectProblem.SIGN_IN: StopReason.SIGN_IN_REFUSED,
    ConnectProblem.NO_TOKEN: StopReason.NO_TOKEN,
    ConnectProblem.OTHER: StopReason.SERVER_UNUSABLE,
}
# What failed, for the stops a setting or a new sign-in fixes.
_WHAT_FAILED: dict[StopReason, str] = {
    StopReason.SIGN_IN_EXPIRED: "the sign-in expired or was revoked",
    StopReason.NO_TOKEN: "the provider's sign-in service gave no token",
    StopReason.SIGN_IN_REFUSED: "the server refused the sign-in",
    StopReason.TLS_FAILED: "the secure connection (TLS) failed",
    StopReason.SERVER_UNUSABLE: "the server could no longer be used",
}
_RESUME = "run the same command to resume once it answers again"
_AGAIN = "then run the same command again"


@dataclass(frozen=True, slots=True)
class Stop:
    """Why a run stopped, and what it knew then; :attr:`reason` and :attr:`advice` are
    the words for the user, made from it."""

    why: StopReason
    reply: str  # the server's (or the failed set-up's) words, as one line
    refusal: SenderRefusal | None = None  # SENDER_REFUSED: the provider's refusal
    sent: int = 0  # messages the run sent in all (filled in when it ends)
    failures: int = 0  # CONNECTIONS_FAILING: connection failures in a row
    timeout: float | None = None  # CONNECTIONS_FAILING on a silent server: the SMTP timeout
    fix: str = ""  # what to do, for the stops a setting or a new sign-in fixes

    @classmethod
    def refused(cls, refusal: SenderRefusal) -> Stop:
        """The provider refused the sender (a known refusal, or the breaker tripped)."""
        return cls(StopReason.SENDER_REFUSED, refusal.reply, refusal=refusal)

    @property
    def reason(self) -> str:
        """What happened, e.g. "the server stopped answering after 120 message(s)"."""
        if self.refusal is not None:
            return self.refusal.reason
        after = f"after {self.sent} message(s)"
        if self.why is StopReason.SENDER_NO_LONGER_ACCEPTED:
            return f"the server stopped accepting the sender {after}"
        if self.why is StopReason.CONNECTIONS_FAILING:
            # "stopped taking messages after 0 message(s)" reads oddly.
            taking = f"stopped taking messages {after}" if self.sent else "took no message"
            return (
                f"the server {taking} ({self.failures} connection failures in a row: no "
                "answer, refused or dropped)"
            )
        if self.why is StopReason.STOPPED_ANSWERING:
            return f"the server stopped answering {after}"
        return f"{_WHAT_FAILED[self.why]} {after}"

    @property
    def advice(self) -> str:
        """What to do, e.g. "run the same command again in 24 hours"."""
        if self.refusal is not None:
            return self.refusal.advice
        if self.why is StopReason.SENDER_NO_LONGER_ACCEPTED:
            return f"check the account with your provider, {_AGAIN}"
        if self.why is StopReason.CONNECTIONS_FAILING and self.timeout is not None:
            return (
                f"{_RESUME} (a server that is only slow: raise NEWSLETTER_SMTP_TIMEOUT, now "
                f"{self.timeout:g} s)"
            )
        if self.why in (StopReason.CONNECTIONS_FAILING, StopReason.STOPPED_ANSWERING):
            return _RESUME
        return f"{self.fix}, {_AGAIN}"

    @property
    def retry_after(self) -> timedelta | None:
        """When a plain re-run can work, if known (a provider's daily limit)."""
        return self.refusal.retry_after if self.refusal is not None else None


def stop_for(error: DeliveryError, *, sent: int) -> Stop | None:
    """Why a DeliveryError should end the run with a summary: any, once messages went out
    in this run (``sent``); None before that: a setup problem, reported as one error line.
    A refusal of the sender the provider's words explain ends it in any case."""
    if isinstance(error, SenderRefused):
        known = classify(error.reply)
        if known is not None:
            return Stop.refused(known)
        return Stop(StopReason.SENDER_NO_LONGER_ACCEPTED, error.reply) if sent else None
    if not sent:
        return None  # nothing went out: a setup problem, one error line (exit 2)
    if isinstance(error, SignInRequired):
        why = StopReason.SIGN_IN_EXPIRED
    elif isinstance(error, ConnectionFailed):
        why = _AFTER_SETUP[error.problem]
    else:
        why = StopReason.SERVER_UNUSABLE
    if why is StopReason.STOPPED_ANSWERING:
        return Stop(why, error.message)
    # Sign-in or TLS refused after messages went out (a password changed, SMTP AUTH
    # switched off, a revoked sign-in): still a setting to fix, but the run has a
    # history, so it ends with the final summary like every other stopped run.
    where = error.location()
    reply = f"{where}: {error.message}" if where else error.message
    if why is StopReason.SIGN_IN_EXPIRED:
        reply = f"{reply} ({error.hint})" if error.hint else reply
        return Stop(why, reply, fix="sign in again with 'newsletter login'")
    return Stop(why, reply, fix=error.hint or "fix the settings")
