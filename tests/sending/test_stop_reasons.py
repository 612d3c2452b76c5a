"""Why a send stops is a typed value (StopReason); the sentences are made from it.

The decision is taken from the failure's type and fields (ConnectionFailed.problem,
SenderRefused, SignInRequired, a timeout flag), never from its words: a message reworded
in the transport cannot change what a send does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from newsletter.common.config import Settings
from newsletter.common.errors import DeliveryError, SignInRequired
from newsletter.mail.envelope import Envelope
from newsletter.mail.failures import (
    ConnectionFailed,
    ConnectProblem,
    SenderRefused,
    TemporaryFailure,
)
from newsletter.mail.refusals import RefusalKind, SenderRefusal, classify
from newsletter.records.journal import Journal
from newsletter.sending.engine import deliver
from newsletter.sending.stops import Stop, StopReason, stop_for

SLUG = "2024-01-cluster-news"
GMAIL_DAILY = "550 5.4.5 Daily user sending limit exceeded."
RESUME = "run the same command to resume once it answers again"


def _settings(**changes: object) -> Settings:
    values: dict[str, object] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": 2525,
        "smtp_security": "none",
        "smtp_timeout": 7.0,
        "retry_base_delay": 0.0,  # no back-off wait between connection failures
        "max_attempts": 1,
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


def _messages(n: int) -> Iterator[Envelope]:
    for i in range(n):
        yield Envelope(f"m{i}@members.example", i + 2, f"<{i}@x>", b"Subject: x\r\n\r\nx\r\n")


class _Transport:
    """Accepts ``accept`` messages, then raises what ``failure()`` makes for every other."""

    def __init__(self, accept: int, failure: Callable[[], Exception]) -> None:
        self.accept = accept
        self.failure = failure

    def connect(self) -> None:
        pass

    def send(self, msg: Envelope, sender: str, following: object = None) -> str:
        if self.accept:
            self.accept -= 1
            return "250 2.0.0 Ok"
        raise self.failure()

    def close(self) -> None:
        pass


def _run(journal: Journal, transport: _Transport, members: int = 4, **settings: object):
    return deliver(
        _messages(members),
        slug=SLUG,
        sender="news@wmhtc.example",
        journal=journal,
        transport_factory=lambda: transport,
        settings=_settings(**settings),
        clock=time.monotonic,
        sleep=lambda _s: None,
        rng=lambda: 0.5,
    )


# -- each stop reason and its sentence -----------------------------------------------------


@pytest.mark.parametrize(
    ("stop", "reason", "advice"),
    [
        (
            Stop(StopReason.STOPPED_ANSWERING, "connection refused", sent=12),
            "the server stopped answering after 12 message(s)",
            RESUME,
        ),
        (
            Stop(StopReason.CONNECTIONS_FAILING, "421 busy", sent=3, failures=3),
            "the server stopped taking messages after 3 message(s) (3 connection failures "
            "in a row: no answer, refused or dropped)",
            RESUME,
        ),
        (
            Stop(StopReason.CONNECTIONS_FAILING, "421 busy", sent=0, failures=4),
            "the server took no message (4 connection failures in a row: no answer, refused "
            "or dropped)",
            RESUME,
        ),
        (
            Stop(StopReason.CONNECTIONS_FAILING, "x", sent=1, failures=3, timeout=30.0),
            "the server stopped taking messages after 1 message(s) (3 connection failures "
            "in a row: no answer, refused or dropped)",
            f"{RESUME} (a server that is only slow: raise NEWSLETTER_SMTP_TIMEOUT, now 30 s)",
        ),
        (
            Stop(StopReason.SENDER_NO_LONGER_ACCEPTED, "550 not allowed", sent=3),
            "the server stopped accepting the sender after 3 message(s)",
            "check the account with your provider, then run the same command again",
        ),
        (
            Stop(StopReason.SIGN_IN_EXPIRED, "x", sent=500, fix="sign in again"),
            "the sign-in expired or was revoked after 500 message(s)",
            "sign in again, then run the same command again",
        ),
        (
            Stop(StopReason.NO_TOKEN, "x", sent=2, fix="try again in a few minutes"),
            "the provider's sign-in service gave no token after 2 message(s)",
            "try again in a few minutes, then run the same command again",
        ),
        (
            Stop(StopReason.SIGN_IN_REFUSED, "x", sent=2, fix="check the password"),
            "the server refused the sign-in after 2 message(s)",
            "check the password, then run the same command again",
        ),
        (
            Stop(StopReason.TLS_FAILED, "x", sent=2, fix="fix the settings"),
            "the secure connection (TLS) failed after 2 message(s)",
            "fix the settings, then run the same command again",
        ),
        (
            Stop(StopReason.SERVER_UNUSABLE, "x", sent=2, fix="fix the settings"),
            "the server could no longer be used after 2 message(s)",
            "fix the settings, then run the same command again",
        ),
    ],
    ids=lambda value: value.why.value if isinstance(value, Stop) else "",
)
def test_each_stop_reason_has_its_sentence(stop: Stop, reason: str, advice: str) -> None:
    assert stop.reason == reason
    assert stop.advice == advice
    assert stop.retry_after is None


def test_every_stop_reason_can_be_said() -> None:
    # A reason added to the enum without its words would fail at the end of a real send.
    for why in StopReason:
        refusal = classify(GMAIL_DAILY) if why is StopReason.SENDER_REFUSED else None
        stop = Stop(why, "reply", refusal=refusal, sent=1, failures=3, fix="fix it")
        assert stop.reason and stop.advice


def test_a_provider_refusal_speaks_for_itself_and_says_when_to_resume() -> None:
    refusal = classify(GMAIL_DAILY)
    assert refusal is not None and refusal.kind is RefusalKind.GMAIL_DAILY
    stop = Stop.refused(refusal)
    assert stop.why is StopReason.SENDER_REFUSED and stop.reply == GMAIL_DAILY
    assert stop.reason == "Gmail's daily sending limit was reached"
    assert stop.advice == "run the same command again in 24 hours"
    assert stop.retry_after == timedelta(hours=24)


def test_the_breaker_s_refusal_carries_its_numbers_not_its_sentence() -> None:
    one = SenderRefusal("554 no", RefusalKind.SAME_REFUSAL, members=5, domains=1, domain="nhs.uk")
    assert one.reason.startswith("the server refused 5 different members in a row")
    assert "(all 5 are at nhs.uk:" in one.advice
    spread = SenderRefusal("554 no", RefusalKind.SAME_REFUSAL, members=5, domains=3)
    assert "are at" not in spread.advice and spread.retry_after is None


# -- the decision is made from the type, not the words ---------------------------------------


@pytest.mark.parametrize(
    ("problem", "why"),
    [
        (ConnectProblem.UNREACHABLE, StopReason.STOPPED_ANSWERING),
        (ConnectProblem.TLS, StopReason.TLS_FAILED),
        (ConnectProblem.SIGN_IN, StopReason.SIGN_IN_REFUSED),
        (ConnectProblem.NO_TOKEN, StopReason.NO_TOKEN),
        (ConnectProblem.OTHER, StopReason.SERVER_UNUSABLE),
    ],
)
@pytest.mark.parametrize(
    "words",
    [
        # Each of these once decided the outcome by its words alone.
        "connection refused",
        "TLS handshake failed: certificate authentication sign-in",
        "sign-in service",
        "something nobody has written yet",
    ],
)
def test_a_failed_set_up_stops_by_its_problem_whatever_its_words(
    problem: ConnectProblem, why: StopReason, words: str
) -> None:
    error = ConnectionFailed(words, problem=problem, host="smtp.example", port=587, hint="h")
    stop = stop_for(error, sent=3)
    assert stop is not None and stop.why is why


def test_nothing_sent_yet_a_failed_set_up_is_an_error_not_a_stop() -> None:
    error = ConnectionFailed("connection refused", problem=ConnectProblem.UNREACHABLE)
    assert stop_for(error, sent=0) is None
    assert stop_for(SignInRequired("expired"), sent=0) is None


def test_other_delivery_errors_stop_by_their_class() -> None:
    expired = stop_for(SignInRequired("the refresh token expired"), sent=4)
    assert expired is not None and expired.why is StopReason.SIGN_IN_EXPIRED
    assert (
        expired.advice == "sign in again with 'newsletter login', then run the same command again"
    )
    assert expired.reply == "sign in again: newsletter login (the refresh token expired)"
    # A DeliveryError that says "connection refused" but is no failed set-up: not "gone".
    other = stop_for(DeliveryError("connection refused", host="h", port=25), sent=4)
    assert other is not None and other.why is StopReason.SERVER_UNUSABLE
    assert other.reply == "h:25: connection refused"


def test_a_refused_sender_stops_by_the_provider_s_words_or_once_messages_went_out() -> None:
    def refused(reply: str) -> SenderRefused:
        return SenderRefused(
            f"server refused sender: {reply}", reply=reply, host="h", port=25, hint="x"
        )

    daily = stop_for(refused(GMAIL_DAILY), sent=0)  # a known quota stops even at once
    assert daily is not None and daily.why is StopReason.SENDER_REFUSED
    assert daily.refusal is not None and daily.refusal.kind is RefusalKind.GMAIL_DAILY
    assert stop_for(refused("550 not today"), sent=0) is None  # a setup problem: one line
    later = stop_for(refused("550 not today"), sent=2)
    assert later is not None and later.why is StopReason.SENDER_NO_LONGER_ACCEPTED


def test_a_send_stops_as_the_failure_s_type_says_even_in_new_words(journal: Journal) -> None:
    """Through the whole run: after two accepted messages the server cannot be reached,
    in words the engine has never seen; the run stops as "stopped answering" and counts
    what went out; the same words typed as a TLS failure stop it as a TLS failure."""
    gone = _Transport(
        2, lambda: ConnectionFailed("gone fishing", problem=ConnectProblem.UNREACHABLE)
    )
    result = _run(journal, gone)
    assert result.sent == 2 and result.stopped is not None
    assert result.stopped.why is StopReason.STOPPED_ANSWERING
    assert result.stopped.reason == "the server stopped answering after 2 message(s)"
    assert result.stopped.reply == "gone fishing"
    assert result.returned == ["m2@members.example"]


def test_words_of_an_unreachable_server_typed_as_tls_stop_as_tls(tmp_path: Path) -> None:
    with Journal.for_state_dir(tmp_path / "other") as journal:
        tls = _Transport(
            1, lambda: ConnectionFailed("connection refused", problem=ConnectProblem.TLS)
        )
        result = _run(journal, tls)
    assert result.stopped is not None and result.stopped.why is StopReason.TLS_FAILED
    assert result.stopped.reason == "the secure connection (TLS) failed after 1 message(s)"


@pytest.mark.parametrize(
    ("failure", "advice"),
    [
        # Timed out: the advice names the timeout to raise.
        (
            lambda: TemporaryFailure(
                "no reply within 7s during RCPT", connection=True, timed_out=True
            ),
            f"{RESUME} (a server that is only slow: raise NEWSLETTER_SMTP_TIMEOUT, now 7 s)",
        ),
        # The server's own words say "within" but nothing timed out: no timeout advice.
        (
            lambda: TemporaryFailure("421 4.7.0 try again within the hour", code=421),
            RESUME,
        ),
    ],
)
def test_connection_failures_in_a_row_stop_the_run_and_a_timeout_is_a_flag(
    journal: Journal, failure: Callable[[], Exception], advice: str
) -> None:
    result = _run(journal, _Transport(1, failure), members=6)
    assert result.stopped is not None
    assert result.stopped.why is StopReason.CONNECTIONS_FAILING
    assert result.stopped.failures == 3 and result.stopped.sent == 1
    assert result.stopped.advice == advice
