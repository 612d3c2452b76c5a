"""A relay that says "too fast" or "too much" mid-run (Amazon SES's 454 replies).

"Maximum sending rate exceeded" is about the pace: the run slows down (its shared pacer,
at once) and retries the message, and finishes. "Daily message quota exceeded" is a quota:
retrying cannot help, so the run stops cleanly, `status` says why and when to resume, and
the re-run sends the rest; nobody gets two copies. Pacing and back-off run on a fake clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.helpers import FakeClock, run_cli, settings_for
from support.smtp_servers import (
    SES_QUOTA_EXCEEDED,
    SES_RATE_EXCEEDED,
    QuotaHandler,
    ThrottlingHandler,
    addresses,
    make_message,
    start_server,
)

from newsletter.mail.refusals import DAY, RefusalKind, Throttle, classify, throttle
from newsletter.mail.smtp import transport_factory
from newsletter.records.journal import Journal
from newsletter.sending.engine import Outcome, deliver
from newsletter.sending.pacing import SLOWEST_RATE, THROTTLE_WINDOW, Pacer
from newsletter.sending.stops import StopReason

SLUG = "2024-01-cluster-news"


def messages(to: list[str]) -> Iterator:
    for row, address in enumerate(to, start=2):
        yield make_message(address, row)


# -- the replies, typed ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [SES_RATE_EXCEEDED, "454 4.7.0 Throttling failure: Maximum sending rate exceeded"],
)
def test_the_rate_reply_is_a_throttle_not_a_refusal_of_the_sender(reply: str) -> None:
    assert throttle(reply) is Throttle.SES_RATE
    assert classify(reply) is None  # the run goes on


@pytest.mark.parametrize(
    "reply", [SES_QUOTA_EXCEEDED, "454 4.7.0 Throttling failure: Daily message quota exceeded"]
)
def test_the_quota_reply_is_a_quota_stop_resumable_in_a_day(reply: str) -> None:
    refusal = classify(reply)
    assert refusal is not None and refusal.kind is RefusalKind.SES_DAILY
    assert refusal.retry_after == DAY
    assert throttle(reply) is None


@pytest.mark.parametrize(
    "reply",
    [
        "451 4.7.1 greylisted, try again later",
        "454 4.7.0 TLS not available due to local problem",
        "550 Throttling failure: Maximum sending rate exceeded",  # not SES's code
    ],
)
def test_other_replies_are_neither(reply: str) -> None:
    assert throttle(reply) is None and classify(reply) is None


# -- the pacer --------------------------------------------------------------------------------


def test_slowing_down_halves_the_rate_once_per_window_and_not_below_the_floor() -> None:
    clock = FakeClock()
    pacer = Pacer(settings_for(None, rate=600), clock)
    assert pacer.slow_down(observed=0) and pacer.rate == 300
    # Other connections' replies to transactions begun at the old rate: not halved again.
    assert not pacer.slow_down(observed=0) and pacer.rate == 300
    clock.sleep(THROTTLE_WINDOW)
    assert pacer.slow_down(observed=0) and pacer.rate == 150
    for _ in range(5):
        clock.sleep(THROTTLE_WINDOW)
        pacer.slow_down(observed=0)
    assert pacer.rate == SLOWEST_RATE
    clock.sleep(THROTTLE_WINDOW)
    assert not pacer.slow_down(observed=0)


def test_an_unpaced_run_is_paced_from_what_it_was_sending() -> None:
    pacer = Pacer(settings_for(None, rate=0), FakeClock())
    assert not pacer.paced
    assert pacer.slow_down(observed=1200)
    assert pacer.paced and pacer.rate == 600
    unknown = Pacer(settings_for(None, rate=0), FakeClock())
    assert unknown.slow_down(observed=0) and unknown.rate == SLOWEST_RATE


# -- a run against a server that says "too fast" ----------------------------------------------


def test_too_fast_slows_the_run_retries_and_completes(journal: Journal) -> None:
    to = addresses(30, "members.org")
    handler = ThrottlingHandler(accept=10, throttled=3)
    clock = FakeClock()
    starts: list[float] = []
    events = []
    with start_server(handler) as server:
        settings = settings_for(server, rate=0, retry_base_delay=2.0, max_attempts=5)
        make = transport_factory(settings)

        class Timed:  # the production transport, noting when each transaction starts
            def __init__(self) -> None:
                self.inner = make()

            def connect(self) -> None:
                self.inner.connect()

            def send(self, msg, sender, following=None):  # type: ignore[no-untyped-def]
                starts.append(clock())
                return self.inner.send(msg, sender, following)

            def close(self) -> None:
                self.inner.close()

        result = deliver(
            messages(to), slug=SLUG, sender="news@example.org", journal=journal,
            transport_factory=Timed, settings=settings, on_event=events.append,
            clock=clock, sleep=clock.sleep, rng=lambda: 0.5,
        )  # fmt: skip
    assert (result.sent, result.failed, result.deferred, result.stopped) == (30, 0, 0, None)
    assert handler.copies() == {a.casefold(): 1 for a in to}  # nobody twice, nobody missed
    assert len(handler.refused) == 3
    retried = [e.address for e in events if e.outcome is Outcome.RETRY]
    assert sorted(retried) == sorted(handler.refused)
    assert all(e.reply == SES_RATE_EXCEEDED for e in events if e.outcome is Outcome.RETRY)
    # It slowed down: ten sent in no (fake) time stand for the rate it had; half that now.
    assert result.slowed_to == pytest.approx(10 * 60 / THROTTLE_WINDOW / 2)
    interval = 60 / result.slowed_to
    # Once the members claimed before the reply are out, each start waits for its slot.
    tail = starts[-10:]
    gaps = [b - a for a, b in zip(tail, tail[1:], strict=False)]
    assert all(gap >= interval - 1e-9 for gap in gaps), gaps
    # The retries came back after their back-off (2 s at the first attempt) and got through.
    assert len(starts) == 33 and clock() - clock.start >= 2.0
    assert not journal.rows(SLUG, "deferred")


# -- a run against a server whose daily quota is spent -----------------------------------------


def _env(port: int) -> dict[str, str]:
    return {
        "NEWSLETTER_SMTP_HOST": "127.0.0.1",
        "NEWSLETTER_SMTP_PORT": str(port),
        "NEWSLETTER_SMTP_SECURITY": "none",
        "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
        "NEWSLETTER_UNSUBSCRIBE_URL": "https://wmhtc.co.uk/u?t={token}",
        "NEWSLETTER_SECRET": "a-long-random-test-secret",
    }


@pytest.mark.parametrize("stage", ["MAIL", "DATA"])
def test_daily_quota_stops_cleanly_status_says_so_and_a_re_run_resumes(
    project: Path, stage: str
) -> None:
    to = [f"member{n}@members.wmhtc.co.uk" for n in range(12)]
    rows = "".join(f"{a},Name{n}\n" for n, a in enumerate(to))
    (project / "recipients.csv").write_text("email,first_name\n" + rows, encoding="utf-8")
    handler = QuotaHandler(5, SES_QUOTA_EXCEEDED, stage)
    slug = "december-2023"
    with start_server(handler) as server:
        first = run_cli(["send", slug, "--yes"], _env(server.port))
        assert first.returncode == 1, first.stdout + first.stderr
        assert "Stopped:   Amazon SES's daily sending quota for the account was reached." in (
            first.stdout
        )
        assert handler.refused == 1  # stopped at the first such reply: no retries
        assert "It resumes with the 7 pending member(s); nobody gets a second copy." in (
            first.stdout
        )
        status = run_cli(["status", slug, "--json"], _env(server.port))
        stopped = __import__("json").loads(status.stdout)["stopped"]
        assert stopped["why"] == StopReason.SENDER_REFUSED.value
        assert stopped["reason"] == "Amazon SES's daily sending quota for the account was reached"
        assert stopped["resume_after"] > stopped["stopped"]

        handler.recover()  # the next day
        again = run_cli(["send", slug, "--yes"], _env(server.port))
        assert again.returncode == 0, again.stdout + again.stderr
        assert "stopped:" not in run_cli(["status", slug], _env(server.port)).stdout
    assert handler.copies() == {a: 1 for a in to}
