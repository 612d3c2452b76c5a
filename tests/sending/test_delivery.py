"""deliver() end to end against real aiosmtpd servers on 127.0.0.1, with a real journal."""

from __future__ import annotations

import _thread
import inspect
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.helpers import FakeClock, settings_for, tls_settings
from support.projects import ROOT
from support.smtp_servers import (
    PASSWORD,
    MisbehavingHandler,
    RecordingHandler,
    Server,
    addresses,
    make_message,
    start_server,
)

from newsletter.common.config import Settings
from newsletter.common.errors import DeliveryError
from newsletter.mail.smtp import Transport, transport_factory
from newsletter.records.journal import Journal
from newsletter.sending.engine import (
    CLAIM_AHEAD,
    MAX_RETRY_DELAY,
    DeliveryEvent,
    DeliveryResult,
    Outcome,
    _Pacer,
    deliver,
    retry_delay,
)
from newsletter.sending.message import OutgoingMessage

SLUG = "2024-01-cluster-news"
SENDER = "news@example.org"


def messages(to: list[str]) -> Iterator[OutgoingMessage]:
    # A generator, like the real builder: deliver() must consume it lazily.
    for row, address in enumerate(to, start=2):
        yield make_message(address, row)


def run(
    server: Server | None,
    journal: Journal,
    to: list[str],
    settings: Settings | None = None,
    **kwargs: object,
) -> DeliveryResult:
    settings = settings or settings_for(server)
    return deliver(
        messages(to),
        slug=SLUG,
        sender=SENDER,
        journal=journal,
        transport_factory=transport_factory(settings),
        settings=settings,
        **kwargs,  # type: ignore[arg-type]
    )


class _Timed:
    """The production transport, noting the (fake) clock when each transaction starts."""

    def __init__(self, inner: Transport, clock: FakeClock, log: list[tuple[float, str]]) -> None:
        self.inner, self.clock, self.log = inner, clock, log

    def connect(self) -> None:
        self.inner.connect()

    def send(self, msg: OutgoingMessage, sender: str, following: object = None) -> str:
        self.log.append((self.clock(), msg.to))  # list.append is atomic: threads may share
        return self.inner.send(msg, sender)

    def close(self) -> None:
        self.inner.close()


def run_on_fake_clock(
    server: Server, journal: Journal, to: list[str], settings: Settings, **kwargs: object
) -> tuple[DeliveryResult, list[tuple[float, str]], FakeClock]:
    """deliver() to a real server, pacing and retries on a FakeClock: (result, starts, clock)
    where ``starts`` holds (clock time, address) of every SMTP transaction begun."""
    clock = FakeClock()
    log: list[tuple[float, str]] = []
    make = transport_factory(settings)
    result = deliver(
        messages(to), slug=SLUG, sender=SENDER, journal=journal,
        transport_factory=lambda: _Timed(make(), clock, log), settings=settings,
        clock=clock, sleep=clock.sleep, **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip
    return result, log, clock


def test_delivers_each_member_once_and_reports_events(
    plain_smtp_server: Server, journal: Journal
) -> None:
    to = addresses(25)
    events: list[DeliveryEvent] = []
    result = run(plain_smtp_server, journal, to, on_event=events.append)
    assert (result.sent, result.failed, result.deferred, result.skipped) == (25, 0, 0, 0)
    assert not result.interrupted and result.unknown == []
    assert plain_smtp_server.handler.copies() == dict.fromkeys(to, 1)
    assert plain_smtp_server.connections == 1
    assert [e.outcome for e in events] == [Outcome.SENT] * 25
    assert events[-1].sent == 25 and events[0].reply.startswith("250")
    assert journal.counts(SLUG)["sent"] == 25
    assert {r.reply for r in journal.rows(SLUG)} == {"250 2.0.0 Ok: queued"}


def test_events_relayed_in_batches_arrive_each_once_in_order_on_the_calling_thread(
    plain_smtp_server: Server, journal: Journal
) -> None:
    # The main thread takes the events waiting, a batch at a time, from 4 connections:
    # none lost, none twice, each on this thread (two workers may put theirs in either
    # order, so the running counts are compared as a set).
    to = addresses(60)
    seen: list[tuple[int, str, int]] = []

    def on_event(event: DeliveryEvent) -> None:
        seen.append((event.sent, event.address, threading.get_ident()))

    result = run(
        plain_smtp_server, journal, to, on_event=on_event,
        settings=settings_for(plain_smtp_server, connections=4),
    )  # fmt: skip
    assert result.sent == 60
    assert sorted(sent for sent, _, _ in seen) == list(range(1, 61))
    assert sorted(address for _, address, _ in seen) == sorted(to)
    assert {thread for _, _, thread in seen} == {threading.get_ident()}


def test_starttls_auth_run(smtp_server: Server, journal: Journal) -> None:
    settings = tls_settings(smtp_server, connections=2)
    result = run(smtp_server, journal, addresses(10), settings)
    assert result.sent == 10
    assert smtp_server.connections == 2


@pytest.mark.parametrize("connections", [1, 3])
def test_misbehaving_server(journal: Journal, connections: int) -> None:
    to = addresses(40)
    unknown = set(to[3:40:9])  # 4 members
    greylist = set(to[5:40:8]) - unknown
    handler = MisbehavingHandler(greylist=greylist, unknown=unknown, drop_every=7)
    with start_server(handler) as server:
        events: list[DeliveryEvent] = []
        settings = settings_for(server, connections=connections, max_attempts=4)
        result = run(server, journal, to, settings, on_event=events.append)
        copies = server.handler.copies()
    assert handler.drops >= 4
    deliverable = [a for a in to if a not in unknown]
    assert {a: copies.get(a, 0) for a in deliverable} == dict.fromkeys(deliverable, 1)
    assert not any(a in copies for a in unknown)
    assert result.sent == len(deliverable) and result.deferred == 0
    assert sorted(result.failures) == sorted((a, f"550 5.1.1 <{a}>: user unknown") for a in unknown)
    failed = {r.address: r.reply for r in journal.rows(SLUG, "failed")}
    assert failed == {a: f"550 5.1.1 <{a}>: user unknown" for a in unknown}
    assert journal.counts(SLUG) == {
        "sending": 0, "sent": len(deliverable), "failed": len(unknown), "deferred": 0,
    }  # fmt: skip
    retries = Counter(e.address for e in events if e.outcome is Outcome.RETRY)
    assert greylist <= set(retries)  # 451 then delivered
    assert sum(retries.values()) == len(greylist) + handler.drops
    for row in journal.rows(SLUG, "sent"):
        assert row.attempts == 1 + retries[row.address]


def test_temporary_failures_end_deferred_after_max_attempts(journal: Journal) -> None:
    class AlwaysGreylisting(MisbehavingHandler):
        async def handle_RCPT(self, server, session, envelope, address, options):  # type: ignore[no-untyped-def]
            if address.startswith("grey"):
                return "451 4.7.1 still greylisted"
            return await super().handle_RCPT(server, session, envelope, address, options)

    with start_server(AlwaysGreylisting()) as server:
        settings = settings_for(server, max_attempts=3, retry_base_delay=2.0)
        result, starts, clock = run_on_fake_clock(
            server, journal, ["grey@x.org", "a@x.org"], settings, rng=lambda: 0.5
        )
    assert result.sent == 1
    assert result.deferrals == [("grey@x.org", "451 4.7.1 still greylisted")]
    [row] = journal.rows(SLUG, "deferred")
    assert (row.address, row.attempts, row.reply) == ("grey@x.org", 3, "451 4.7.1 still greylisted")
    # Back-off: base * 2**0, then base * 2**1 (jitter 0.5 + 0.5 = 1), on the fake clock.
    grey = [t - clock.start for t, address in starts if address == "grey@x.org"]
    assert grey == pytest.approx([0.0, 2.0, 6.0])
    assert [t - clock.start for t, a in starts if a == "a@x.org"] == [0.0]  # not held up


def test_retry_delay_is_exponential_with_jitter_and_capped() -> None:
    assert retry_delay(0, 2.0, lambda: 0.5) == 2.0
    assert retry_delay(3, 2.0, lambda: 0.5) == 16.0
    assert retry_delay(3, 2.0, lambda: 0.0) == 8.0
    assert retry_delay(3, 2.0, lambda: 0.999) == pytest.approx(23.984)
    assert retry_delay(30, 2.0, lambda: 0.5) == MAX_RETRY_DELAY


def test_reconnects_after_max_per_connection(plain_smtp_server: Server, journal: Journal) -> None:
    result = run(
        plain_smtp_server,
        journal,
        addresses(10),
        settings_for(plain_smtp_server, smtp_max_per_connection=3),
    )
    assert result.sent == 10
    assert plain_smtp_server.connections == 4
    assert [m.connection for m in plain_smtp_server.handler.messages] == [1] * 3 + [2] * 3 + [
        3
    ] * 3 + [4]


def test_pacer_hands_out_evenly_spaced_slots_to_many_threads() -> None:
    clock = FakeClock()
    pacer = _Pacer(settings_for(None, rate=600), clock)  # one slot per 0.1 s
    slots: list[float] = []
    threads = [
        threading.Thread(target=lambda: slots.extend(pacer.reserve() for _ in range(25)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(s - clock.start for s in slots) == pytest.approx([k / 10 for k in range(200)])
    # After an idle spell the next slot is "now", not a burst of the slots missed meanwhile.
    clock.sleep(100.0)
    assert [pacer.reserve() - clock() for _ in range(3)] == pytest.approx([0.0, 0.1, 0.2])


def test_pacer_pauses_between_batches() -> None:
    clock = FakeClock()
    pacer = _Pacer(settings_for(None, batch_size=3, batch_pause=30.0), clock)
    first = [pacer.reserve() - clock.start for _ in range(4)]
    assert first == [0.0, 0.0, 0.0, 30.0]  # no rate limit: a batch goes out at once
    clock.sleep(30.0)
    assert [pacer.reserve() - clock.start for _ in range(3)] == [30.0, 30.0, 60.0]


@pytest.mark.parametrize("connections", [1, 3])
def test_rate_limit_spaces_transactions(
    plain_smtp_server: Server, journal: Journal, connections: int
) -> None:
    settings = settings_for(plain_smtp_server, rate=600, connections=connections)  # one per 0.1 s
    result, starts, clock = run_on_fake_clock(plain_smtp_server, journal, addresses(20), settings)
    assert result.sent == 20 and plain_smtp_server.handler.count() == 20
    times = sorted(t - clock.start for t, _ in starts)
    if connections == 1:  # nothing else moves the clock: exactly on the slots
        assert times == pytest.approx([k / 10 for k in range(20)])
    else:
        # The k-th transaction never starts before slot k, however the threads interleave.
        assert all(t >= k / 10 - 1e-9 for k, t in enumerate(times)), times
        assert plain_smtp_server.connections == connections


@pytest.mark.parametrize("connections", [1, 2])
def test_batches_pause_between_them(
    plain_smtp_server: Server, journal: Journal, connections: int
) -> None:
    settings = settings_for(
        plain_smtp_server, batch_size=4, batch_pause=600.0, connections=connections
    )
    result, starts, clock = run_on_fake_clock(plain_smtp_server, journal, addresses(10), settings)
    assert result.sent == 10
    times = sorted(t - clock.start for t, _ in starts)
    if connections == 1:
        assert times == pytest.approx([0.0] * 4 + [600.0] * 4 + [1200.0] * 2)
    else:  # no message of batch b starts before b pauses have passed
        assert all(t >= (k // 4) * 600.0 for k, t in enumerate(times)), times


def test_pacing_runs_on_the_real_clock_unless_given_another() -> None:
    """What the real-time smoke test used to show, without waiting on the wall clock: the
    pacing the fake-clock tests above check runs, by default, on the monotonic clock and
    really sleeps (the CLI relies on these defaults)."""
    parameters = inspect.signature(deliver).parameters
    assert parameters["clock"].default is time.monotonic
    assert parameters["sleep"].default is time.sleep


def test_parallel_connections_deliver_each_once(
    plain_smtp_server: Server, journal: Journal
) -> None:
    to = addresses(120)
    result = run(plain_smtp_server, journal, to, settings_for(plain_smtp_server, connections=4))
    assert result.sent == 120
    assert plain_smtp_server.handler.copies() == dict.fromkeys(to, 1)
    assert plain_smtp_server.connections == 4
    assert len({m.connection for m in plain_smtp_server.handler.messages}) == 4
    assert journal.counts(SLUG)["sent"] == 120


def test_resume_skips_sent_and_unknown(plain_smtp_server: Server, journal: Journal) -> None:
    to = addresses(12)
    for row, address in enumerate(to[:5]):
        journal.mark_sending(SLUG, make_message(address, row))
        if row < 4:
            journal.mark_sent(SLUG, address, "250 earlier run")
    # to[4] stays "sending": unknown, never resent automatically
    result = run(plain_smtp_server, journal, [a.upper() for a in to])  # compared casefolded
    assert (result.sent, result.skipped) == (7, 5)
    assert sorted(plain_smtp_server.handler.copies()) == sorted(a for a in to[5:])
    assert journal.status_of(SLUG, to[4]) == "sending"
    # Asked for explicitly, the unknown one is sent; the sent ones never are.
    again = run(plain_smtp_server, journal, to, resend_unknown=True)
    assert (again.sent, again.skipped) == (1, 11)
    assert plain_smtp_server.handler.copies() == dict.fromkeys(to[4:], 1)


def test_duplicate_addresses_in_the_stream_get_one_copy(
    plain_smtp_server: Server, journal: Journal
) -> None:
    result = run(plain_smtp_server, journal, ["a@x.org", "b@x.org", "A@X.org", "a@x.org"])
    assert (result.sent, result.skipped) == (2, 2)
    assert plain_smtp_server.handler.copies() == {"a@x.org": 1, "b@x.org": 1}


def test_bad_password_stops_the_run(smtp_server: Server, journal: Journal) -> None:
    settings = tls_settings(smtp_server, smtp_password="not-" + PASSWORD, connections=2)
    with pytest.raises(DeliveryError, match="535") as caught:
        run(smtp_server, journal, addresses(50), settings)
    assert smtp_server.handler.messages == []
    assert smtp_server.connections <= 2  # one failed login per connection, no retrying
    assert PASSWORD not in str(caught.value)
    counts = journal.counts(SLUG)
    assert counts["sent"] == 0 and counts["sending"] == 0  # the claimed ones: deferred


def test_connection_refused_stops_the_run(journal: Journal) -> None:
    settings = settings_for(None)
    with pytest.raises(DeliveryError, match="connection refused"):
        run(None, journal, addresses(5), settings)
    assert journal.counts(SLUG)["sent"] == 0


def test_errors_from_the_message_source_stop_the_run(
    plain_smtp_server: Server, journal: Journal
) -> None:
    def broken() -> Iterator[OutgoingMessage]:
        yield make_message("a@x.org")
        raise ValueError("row 3: bad address")

    settings = settings_for(plain_smtp_server)
    with pytest.raises(ValueError, match="row 3"):
        deliver(
            broken(), slug=SLUG, sender=SENDER, journal=journal,
            transport_factory=transport_factory(settings), settings=settings,
        )  # fmt: skip
    assert journal.counts(SLUG)["sent"] == 1


def test_ctrl_c_from_the_progress_callback(plain_smtp_server: Server, journal: Journal) -> None:
    produced = 0
    interrupted = threading.Event()

    def source() -> Iterator[OutgoingMessage]:
        nonlocal produced
        for msg in messages(addresses(200)):
            if produced == 7:  # hold the rest back until Ctrl-C: no race with the relay
                assert interrupted.wait(10)
            produced += 1
            yield msg

    def on_event(event: DeliveryEvent) -> None:
        if event.sent == 5:
            interrupted.set()
            raise KeyboardInterrupt

    settings = settings_for(plain_smtp_server, connections=2)
    result = deliver(
        source(), slug=SLUG, sender=SENDER, journal=journal,
        transport_factory=transport_factory(settings), settings=settings, on_event=on_event,
    )  # fmt: skip
    assert result.interrupted
    assert 5 <= result.sent <= 7
    # Lazily consumed: the source is released at Ctrl-C, and each of the 2 connections may
    # take one more message before it sees the stop (it then sends none: see `sent`).
    assert produced <= 7 + 2
    assert journal.counts(SLUG)["sending"] == 0 and result.unknown == []
    assert len(plain_smtp_server.handler.messages) == result.sent == journal.counts(SLUG)["sent"]


def test_ctrl_c_signal_stops_a_slow_run_promptly(
    plain_smtp_server: Server, journal: Journal
) -> None:
    # One message every 20 s: after the first, the workers wait on the pacer. A real
    # SIGINT-style interrupt then arrives while the main thread relays events.
    settings = settings_for(plain_smtp_server, rate=3, connections=3)
    before = set(threading.enumerate())  # main, the server's loop, the session's servers

    def on_event(event: DeliveryEvent) -> None:
        if event.sent == 1:
            threading.Timer(0.05, _thread.interrupt_main).start()

    result = run(plain_smtp_server, journal, addresses(50), settings, on_event=on_event)
    # Promptly, without timing it: had the stop waited for the next slot (20 s later), that
    # slot's message would have gone out first, and sent would be 2.
    assert result.interrupted and result.sent == 1
    assert len(plain_smtp_server.handler.messages) == 1
    left = [t for t in threading.enumerate() if t not in before]
    assert len(left) <= 1, left  # the workers ended (the interrupt's timer may be left)


def test_ctrl_c_abandons_a_hung_transaction(journal: Journal) -> None:
    arrived, release = threading.Event(), threading.Event()

    class Hanging(RecordingHandler):
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            self.record(server, envelope)
            arrived.set()
            while not release.is_set():  # hangs until the test is done
                await __import__("asyncio").sleep(0.01)
            return "250 OK"

    with start_server(Hanging()) as server:
        settings = settings_for(server, smtp_timeout=30.0)

        def interrupt_once_the_message_is_in() -> None:
            if arrived.wait(10):
                _thread.interrupt_main()

        threading.Thread(target=interrupt_once_the_message_is_in, daemon=True).start()
        try:
            result = run(server, journal, ["a@x.org", "b@x.org"], settings, grace=0.2)
        finally:
            release.set()
    assert result.interrupted
    # The server got it, but no 250 was seen: unknown, left "sending", never resent.
    assert result.unknown == ["a@x.org"]
    assert [r.address for r in journal.unknown(SLUG)] == ["a@x.org"]


def test_errors_in_the_event_handler_stop_the_run(
    plain_smtp_server: Server, journal: Journal
) -> None:
    failed = threading.Event()

    def source() -> Iterator[OutgoingMessage]:
        for n, msg in enumerate(messages(addresses(30))):
            if n == 3:  # the rest only after the handler failed: no race with the relay
                assert failed.wait(10)
            yield msg

    def on_event(event: DeliveryEvent) -> None:
        failed.set()
        raise RuntimeError("progress bar broke")

    settings = settings_for(plain_smtp_server)
    with pytest.raises(RuntimeError, match="progress bar"):
        deliver(
            source(), slug=SLUG, sender=SENDER, journal=journal,
            transport_factory=transport_factory(settings), settings=settings, on_event=on_event,
        )  # fmt: skip
    assert journal.counts(SLUG)["sending"] == 0
    assert journal.counts(SLUG)["sent"] <= 4


# -- crash safety: kill -9 in the middle of a run, then resume ------------------------------

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [{repo!r}, {tests!r}]
    from newsletter.common.config import Settings
    from newsletter.sending.engine import deliver
    from newsletter.records.journal import Journal
    from newsletter.mail.smtp import Transport, transport_factory
    from support.smtp_servers import addresses, make_message

    port, connections, state = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    settings = Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none",
                        connections=connections, retry_base_delay=0.01)
    with Journal.for_state_dir(state) as journal:
        result = deliver(
            (make_message(a, i) for i, a in enumerate(addresses({count}))),
            slug="crash", sender="news@example.org", journal=journal,
            transport_factory=transport_factory(settings), settings=settings,
        )
    print(result.sent, result.skipped)
    """
)


class SlowRecorder(RecordingHandler):
    """Stores the message, then takes a moment to answer: kills often land in between."""

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.record(server, envelope)
        await __import__("asyncio").sleep(0.002)
        return "250 OK"


@pytest.mark.parametrize(("kill_after", "connections"), [(1, 1), (60, 2), (150, 1)])
def test_kill_minus_9_then_resume(tmp_path: Path, kill_after: int, connections: int) -> None:
    count = 200
    script = tmp_path / "send.py"
    script.write_text(SCRIPT.format(repo=str(ROOT), tests=str(ROOT / "tests"), count=count))
    state = tmp_path / "state"
    with start_server(SlowRecorder()) as server:
        args = [sys.executable, str(script), str(server.port), str(connections), str(state)]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # Wait for progress, not for a time: woken when kill_after messages arrived, or
        # when the sender exited (then the kill below finds it gone and the test fails).
        try:
            server.handler.wait_for(kill_after, alive=lambda: proc.poll() is None)
        except AssertionError:
            proc.kill()
            raise
        proc.kill()  # SIGKILL; a no-op if the sender already ended (then the check fails)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        received_before = server.handler.count()
        assert kill_after <= received_before < count

        done = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        copies = server.handler.copies()

    with Journal.for_state_dir(state) as journal:
        unknown = {r.address for r in journal.unknown("crash")}
        counts = journal.counts("crash")
    # Each connection claims up to CLAIM_AHEAD members at once: a kill leaves them unknown,
    # but only the one in flight on each connection can have reached the server.
    assert len(unknown) <= connections * CLAIM_AHEAD
    assert sum(copies.get(address, 0) for address in unknown) <= connections
    assert counts["sent"] + len(unknown) == count, (counts, done.stdout)
    for address in addresses(count):
        if address in unknown:
            assert copies.get(address, 0) <= 1  # maybe got it, never twice
        else:
            assert copies.get(address, 0) == 1, address


class SlowToAnswer(RecordingHandler):
    """Stores the message, then answers too late for the client's timeout."""

    def __init__(self, slow: str, delay: float) -> None:
        super().__init__()
        self.slow, self.delay = slow, delay
        self.done = threading.Event()  # answered, or cancelled when the client hung up

    async def handle_DATA(self, server, session, envelope) -> str:
        self.record(server, envelope)
        if self.slow in envelope.rcpt_tos:
            import asyncio

            try:
                await asyncio.sleep(self.delay)
            finally:
                self.done.set()
        return "250 2.0.0 Ok: queued"


def test_no_reply_after_the_message_went_out_is_unknown_not_retried(journal: Journal) -> None:
    to = addresses(3)
    with start_server(SlowToAnswer(to[1], delay=2.0)) as slow:
        result = run(slow, journal, to, settings_for(slow, smtp_timeout=1.0))
        assert result.unknown == [to[1]] and result.sent == 2 and result.deferred == 0
        assert journal.status_of(SLUG, to[1]) == "sending"
        assert "may have been delivered" in journal.rows(SLUG, "sending")[0].reply
        again = run(slow, journal, to, settings_for(slow, smtp_timeout=1.0))
        assert again.sent == 0
        assert slow.handler.done.wait(10)  # let the slow reply finish before counting
        assert Counter(slow.handler.copies()) == Counter({a: 1 for a in to})


@pytest.mark.parametrize("connections", [1, 3])
def test_sender_refusals_stop_the_run_and_leave_members_pending(
    journal: Journal, connections: int
) -> None:
    from support.smtp_servers import GMAIL_DAILY_LIMIT, QuotaHandler, SameRefusalHandler

    to = addresses(30)
    handler = QuotaHandler(6, GMAIL_DAILY_LIMIT, "DATA")
    with start_server(handler) as server:
        settings = settings_for(server, connections=connections)
        result = run(server, journal, to, settings)
    assert result.stopped is not None and "Gmail" in result.stopped.reason
    assert result.sent == 6 and result.failed == 0 and result.returned
    counts = journal.counts(SLUG)
    assert counts["sent"] == 6 and counts["failed"] == 0 and counts["sending"] == 0
    # Stopped at once: at most one refusal per connection in flight.
    assert handler.refused <= connections
    # Everyone not sent is pending for the next run (no row, or deferred).
    assert counts["deferred"] == len(journal.rows(SLUG)) - 6

    # The circuit breaker: the same non-recipient refusal of different members.
    breaker = SameRefusalHandler(2)
    with start_server(breaker) as server:
        settings = settings_for(server, connections=connections)
        other = run(server, journal, [f"x{n}@example.net" for n in range(30)], settings)
    assert other.stopped is not None and "different members in a row" in other.stopped.reason
    assert other.failed == 0 and other.failures == [] and len(other.returned) >= 5
    assert journal.counts(SLUG)["failed"] == 0


def test_a_quota_said_with_a_4xx_reply_stops_instead_of_retrying(journal: Journal) -> None:
    from support.smtp_servers import QuotaHandler

    handler = QuotaHandler(3, "451 4.7.0 Daily user sending limit exceeded", "RCPT")
    with start_server(handler) as server:
        result = run(server, journal, addresses(12), settings_for(server, max_attempts=5))
    assert result.stopped is not None and "daily" in result.stopped.reason
    assert result.sent == 3 and handler.refused == 1  # no retries against a spent quota
    assert journal.counts(SLUG)["deferred"] == 1 and journal.counts(SLUG)["failed"] == 0


def test_a_failure_reported_after_the_breaker_returned_that_member_stays_pending(
    journal: Journal,
) -> None:
    """Three connections: member B's refusal (not yet enough to trip) is recorded in the
    breaker, then member A's trips it and returns B to pending — and only then does B's
    thread report B "failed". That late report must not count B failed (it flaked once in
    a full run on a busy machine: one member "failed" among the returned)."""
    from newsletter.sending.engine import Outcome, _Job, _Run

    reply = "550 5.7.1 Service unavailable, sender policy"
    run_ = _Run(
        [], slug=SLUG, sender="news@wmhtc.co.uk", journal=journal,
        transport_factory=lambda: None, settings=settings_for(None), resend_unknown=False,
        clock=time.monotonic, sleep=lambda _s: None, rng=lambda: 0.5,
    )  # fmt: skip
    b = OutgoingMessage(to="b@members.wmhtc.co.uk", row=3, message_id="<b@x>", data=b"x\r\n")
    journal.mark_sending(SLUG, b)
    journal.mark_failed(SLUG, b.to, reply)
    run_.return_failed([b.to], reply)  # A's thread: the breaker tripped
    run_.emit(Outcome.FAILED, _Job(0.0, 0, b), reply)  # B's thread, late
    run_.return_failed([b.to], reply)  # a refusal after the trip trips again
    assert run_.result.failed == 0 and run_.result.failures == []
    assert run_.result.returned == [b.to]
    assert journal.counts(SLUG)["failed"] == 0


def test_the_breaker_returns_every_member_refused_with_the_tripping_reply(
    journal: Journal,
) -> None:
    """With several connections a slower connection's success can land between two
    identical sender refusals and restart the breaker's count; when it trips, the member
    refused before that success (same reply) goes back to pending too, once."""
    from newsletter.mail.refusals import BREAKER_THRESHOLD
    from newsletter.records.journal import address_key
    from newsletter.sending.engine import _Job, _Run

    reply = "554 5.7.1 Message rejected: policy violation"
    run_ = _Run(
        [], slug=SLUG, sender="news@wmhtc.co.uk", journal=journal,
        transport_factory=lambda: None, settings=settings_for(None), resend_unknown=False,
        clock=time.monotonic, sleep=lambda _s: None, rng=lambda: 0.5,
    )  # fmt: skip

    def refuse(n: int) -> str:
        msg = OutgoingMessage(
            to=f"m{n}@members.wmhtc.co.uk", row=n + 2, message_id=f"<{n}@x>", data=b"x\r\n"
        )
        journal.mark_sending(SLUG, msg)
        run_._refused(_Job(0.0, n, msg), address_key(msg.to), reply)
        return msg.to

    first = refuse(0)
    run_.breaker.success()  # another connection's message, accepted just now
    others = [refuse(n) for n in range(1, BREAKER_THRESHOLD + 1)]
    assert run_.result.stopped is not None
    assert run_.result.failed == 0 and journal.counts(SLUG)["failed"] == 0
    assert sorted(run_.result.returned) == sorted([first, *others])
