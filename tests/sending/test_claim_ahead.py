"""deliver() claims a few members at a time (one fsync for them all) when the run is not
paced, one at a time when it is; whatever stops a run puts back the claims it did not
begin, so only a crash leaves more than the member in flight unknown."""

from __future__ import annotations

import _thread
import asyncio
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from support.helpers import FakeClock, settings_for
from support.pipelining_servers import Script, start_pipelining_server
from support.smtp_servers import (
    GMAIL_DAILY_LIMIT,
    QuotaHandler,
    RecordingHandler,
    Server,
    addresses,
    make_message,
    start_server,
)

from newsletter.common.config import Settings
from newsletter.mail.envelope import Envelope
from newsletter.mail.smtp import transport_factory
from newsletter.records.journal import Claim, Journal
from newsletter.sending.engine import CLAIM_AHEAD, DeliveryResult, deliver

SLUG = "2024-01-cluster-news"
SENDER = "news@example.org"


class CountingJournal(Journal):
    """The real journal, noting the size of each claim (one durable commit each)."""

    sizes: list[int]

    def claim(self, slug: str, members: Sequence[tuple[Envelope, bool]]) -> list[Claim | None]:
        self.sizes.append(len(members))
        return super().claim(slug, members)


@pytest.fixture
def counting(tmp_path: Path) -> Iterator[CountingJournal]:
    with CountingJournal.for_state_dir(tmp_path / "state") as journal:
        journal.sizes = []
        yield journal  # type: ignore[misc]


def send(
    server: Server, journal: Journal, to: list[str], settings: Settings, **kwargs: object
) -> DeliveryResult:
    return deliver(
        (make_message(address, row) for row, address in enumerate(to, start=2)),
        slug=SLUG,
        sender=SENDER,
        journal=journal,
        transport_factory=transport_factory(settings),
        settings=settings,
        **kwargs,  # type: ignore[arg-type]
    )


def test_an_unpaced_run_claims_eight_at_a_time(
    plain_smtp_server: Server, counting: CountingJournal
) -> None:
    to = addresses(20)
    result = send(plain_smtp_server, counting, to, settings_for(plain_smtp_server))
    assert result.sent == 20
    assert counting.sizes == [CLAIM_AHEAD, CLAIM_AHEAD, 20 - 2 * CLAIM_AHEAD]
    assert plain_smtp_server.handler.copies() == {a: 1 for a in to}
    assert counting.counts(SLUG)["sending"] == 0


def test_a_paced_run_claims_one_at_a_time_when_its_slot_comes(
    plain_smtp_server: Server, counting: CountingJournal
) -> None:
    clock = FakeClock()
    settings = settings_for(plain_smtp_server, rate=600)  # one every 0.1 s of fake time
    result = send(
        plain_smtp_server, counting, addresses(5), settings, clock=clock, sleep=clock.sleep
    )
    assert result.sent == 5
    assert counting.sizes == [1] * 5


def test_the_next_claimed_message_rides_with_the_one_before(counting: CountingJournal) -> None:
    # Pipelining across messages: each message's data goes out with the next one's MAIL,
    # RCPT and DATA (already claimed, so durable), in one write.
    server = start_pipelining_server(Script())
    try:
        to = addresses(10)
        result = send(server, counting, to, settings_for(server))
    finally:
        server.stop()
    assert result.sent == 10
    assert server.handler.copies() == {a: 1 for a in to}
    carriers = [c for c in server.chunks if b"\r\n.\r\nMAIL FROM:" in c.upper()]
    # Within each claim of eight (and the last two): the data of all but its last.
    assert len(carriers) == (CLAIM_AHEAD - 1) + (10 - CLAIM_AHEAD - 1)


def test_a_stop_mid_claim_puts_back_the_members_not_begun(counting: CountingJournal) -> None:
    # A provider's daily limit at the third transaction: the run stops; the five members
    # claimed with it but not begun are back as they were (no row), not unknown.
    handler = QuotaHandler(accept=2, reply=GMAIL_DAILY_LIMIT, stage="RCPT")
    with start_server(handler) as server:
        to = addresses(12)
        result = send(server, counting, to, settings_for(server))
    assert result.stopped is not None and result.sent == 2
    assert result.unknown == []
    assert counting.counts(SLUG) == {"sending": 0, "sent": 2, "failed": 0, "deferred": 1}
    assert {row.address for row in counting.rows(SLUG)} == set(to[:3])
    assert counting.sizes == [CLAIM_AHEAD]


def test_ctrl_c_mid_claim_lets_the_transaction_finish_and_puts_back_the_rest(
    counting: CountingJournal,
) -> None:
    stopping = threading.Event()

    class InterruptedDuringTheSecond(RecordingHandler):
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            self.record(server, envelope)
            if self.count() == 2:
                _thread.interrupt_main()  # Ctrl-C while this one waits for its reply
                while not stopping.is_set():  # the run has stopped taking new ones
                    await asyncio.sleep(0.01)
            return "250 OK"

    with start_server(InterruptedDuringTheSecond()) as server:
        to = addresses(6)
        result = send(
            server,
            counting,
            to,
            settings_for(server),
            grace=60.0,
            on_stopping=lambda _text: stopping.set(),
        )
    assert stopping.is_set() and result.interrupted
    assert result.sent == 2 and result.unknown == []
    assert counting.counts(SLUG) == {"sending": 0, "sent": 2, "failed": 0, "deferred": 0}
    assert server.handler.copies() == {a: 1 for a in to[:2]}


def test_a_member_no_longer_wanted_at_its_turn_is_put_back_unsent(
    plain_smtp_server: Server, counting: CountingJournal
) -> None:
    to = addresses(6)
    leaver = to[3]  # built and claimed with the others, then unsubscribed
    result = send(
        plain_smtp_server,
        counting,
        to,
        settings_for(plain_smtp_server),
        wanted=lambda msg: msg.to != leaver,
    )
    assert result.sent == 5
    assert leaver not in plain_smtp_server.handler.copies()
    assert counting.status_of(SLUG, leaver) is None
    assert counting.counts(SLUG)["sending"] == 0


def test_a_retry_put_back_is_deferred_again_with_its_reply(journal: Journal) -> None:
    # A member greylisted earlier in the run, claimed again for its retry, then put back
    # because the run stopped first: deferred again (as before the claim), and the run
    # reports it among the deferred, as it does a retry still waiting for its time.
    import time

    from newsletter.sending.workers import Job, Run

    run_ = Run(
        [], slug=SLUG, sender=SENDER, journal=journal,
        transport_factory=lambda: None, settings=settings_for(None), resend_unknown=False,
        clock=time.monotonic, sleep=lambda _s: None, rng=lambda: 0.5,
    )  # fmt: skip
    msg = make_message("grey@example.org", 2)
    journal.mark_sending(SLUG, msg)
    journal.mark_deferred(SLUG, msg.to, "451 4.7.1 greylisted")
    job = Job(0.0, 0, msg, attempts=1, last_reply="451 4.7.1 greylisted")
    [claim] = journal.claim(SLUG, [(msg, False)])
    assert claim is not None
    run_._ahead["grey@example.org"] = (job, claim)
    assert run_.unknown() == [msg.to]  # claimed: unknown, should the program die now
    run_.release([job])
    assert run_.unknown() == [] and run_.released() == [job]
    [row] = journal.rows(SLUG)
    assert (row.status, row.attempts, row.reply) == ("deferred", 1, "451 4.7.1 greylisted")


def test_claims_that_cannot_be_put_back_stay_unknown_and_the_run_says_why(
    tmp_path: Path,
) -> None:
    # The journal refuses the put-back (a disk gone read-only): those members stay
    # "sending" (unknown, never resent by themselves) and the error ends the run.
    class StuckJournal(Journal):
        def release(self, slug: str, claims: Sequence[Claim]) -> None:
            raise OSError("disk I/O error")

    handler = QuotaHandler(accept=2, reply=GMAIL_DAILY_LIMIT, stage="RCPT")
    with (
        StuckJournal.for_state_dir(tmp_path / "state") as journal,
        start_server(handler) as server,
        pytest.raises(OSError, match="disk I/O error"),
    ):
        send(server, journal, addresses(12), settings_for(server))
    with Journal.for_state_dir(tmp_path / "state") as journal:
        assert journal.counts(SLUG)["sending"] == CLAIM_AHEAD - 3  # the five not begun
        assert journal.counts(SLUG)["sent"] == 2
    assert handler.count() == 2
