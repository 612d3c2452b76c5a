"""The worker threads of one delivery run and the state they share: the message source,
claims in the journal, each transaction and what its outcome means for the run (record,
retry, stop). :func:`newsletter.sending.engine.deliver` starts and watches them.

Claims: a worker claims its next members in one durable commit (up to ``CLAIM_AHEAD`` when
the run is not paced: one fsync for them all), sends them one by one in claim order, each
outcome committed before the next transaction begins, and puts back (``release``) the ones
it did not begin when the run stops. So after a crash (``kill -9``, a power cut) a
connection leaves at most ``CLAIM_AHEAD`` members ``sending`` (unknown), of which only the
first can have reached the server (see :mod:`newsletter.records.journal`).
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from ..common.config import Settings
from ..common.errors import DeliveryError
from ..mail.envelope import Envelope as OutgoingMessage
from ..mail.failures import PermanentFailure, SendFailure, TemporaryFailure, UnknownOutcome
from ..mail.refusals import CircuitBreaker, classify, is_permanent, reply_shape
from ..mail.smtp import Transport
from ..records.journal import Claim, Journal, address_key
from .outcomes import DeliveryEvent, DeliveryResult, Outcome
from .pacing import Pacer, retry_delay
from .stops import Stop, StopReason, stop_for

# Connection-level failures in a row (no greeting, 421, no reply, a reset; no message
# accepted between them) after which the server is taken to have gone away: retrying every
# member against it would hammer a busy server and, at a timeout each, look like a hang.
TROUBLE_LIMIT = 3
_POLL = 0.05  # seconds; how often waiting threads look at the stop flag
# Members a connection claims in one durable commit when the run is not paced: one fsync
# for them all instead of one each (the disk flush was ~40 % of a message's time on
# loopback). The price: a crash (kill -9, power cut) leaves up to this many per connection
# "sending" (unknown); all but the one in flight were never sent (see records.journal).
CLAIM_AHEAD = 8


@dataclass(order=True)
class Job:
    due: float
    seq: int
    msg: OutgoingMessage = field(compare=False)
    attempts: int = field(default=0, compare=False)  # SMTP attempts made in this run
    last_reply: str = field(default="", compare=False)


class Run:
    """State shared by the worker threads of one :func:`deliver` call."""

    def __init__(
        self,
        messages: Iterable[OutgoingMessage],
        *,
        slug: str,
        sender: str,
        journal: Journal,
        transport_factory: Callable[[], Transport],
        settings: Settings,
        resend_unknown: bool,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        rng: Callable[[], float],
        wanted: Callable[[OutgoingMessage], bool] | None = None,
    ) -> None:
        self.slug = slug
        self.wanted = wanted or (lambda msg: True)
        self.sender = sender
        self.journal = journal
        self.transport_factory = transport_factory
        self.settings = settings
        self.resend_unknown = resend_unknown
        self.clock = clock
        self.sleep = sleep
        self.rng = rng
        self.pacer = Pacer(settings, clock)
        self.stop = threading.Event()
        self.events: queue.Queue[DeliveryEvent | None] = queue.Queue()  # None: worker ended
        self.error: BaseException | None = None
        self.breaker = CircuitBreaker(
            earlier={
                address_key(row.address): reply_shape(row.reply)
                for row in journal.rows(slug, "deferred")
                if is_permanent(row.reply)
            }
        )
        self.trouble = 0  # connection-level failures in a row (guarded by _lock)
        self.abandoned = False  # set when the main thread stopped waiting for workers

        self._messages: Iterator[OutgoingMessage] = iter(messages)
        self._exhausted = False
        self._retries: list[Job] = []  # heap by due time
        self._seq = itertools.count()
        self._source_lock = threading.Lock()

        self._lock = threading.Lock()  # guards everything below
        self._claimed: set[str] = set()  # keys taken in this run: duplicates are skipped
        self._in_flight: dict[str, str] = {}  # key -> address, between send and outcome
        # Claimed but not begun, by key: whoever takes one out (its worker to send it or
        # to put it back, the main thread to put it back) is the only one to touch it.
        self._ahead: dict[str, tuple[Job, Claim]] = {}
        self._released: list[Job] = []  # retries claimed but released (the run stopped)
        # Members the breaker put back to pending: a FAILED event for one of them that
        # another thread emits late (after the breaker tripped) must not count it failed.
        self._returned: set[str] = set()
        self.result = DeliveryResult()

    # -- the message source ---------------------------------------------------------------

    def next_job(self, *, wait: bool = True) -> Job | None:
        """A due retry, else a fresh message; None when everything is done or stopped (or,
        without ``wait``, when nothing is due right now)."""
        while not self.stop.is_set():
            with self._source_lock:
                now = self.clock()
                if self._retries and self._retries[0].due <= now:
                    return heapq.heappop(self._retries)
                if not self._exhausted:
                    try:
                        msg = next(self._messages)
                    except StopIteration:
                        self._exhausted = True
                    else:
                        return Job(now, next(self._seq), msg)
                if not self._retries or not wait:
                    return None
                due = self._retries[0].due - now
            self.sleep(min(max(due, 0.0), _POLL))
        return None

    def schedule_retry(self, job: Job, delay: float) -> None:
        with self._source_lock:
            job.due = self.clock() + delay
            job.seq = next(self._seq)
            heapq.heappush(self._retries, job)

    def pending_retries(self) -> list[Job]:
        with self._source_lock:
            return list(self._retries)

    def released(self) -> list[Job]:
        with self._lock:
            return list(self._released)

    def wait_until(self, deadline: float) -> bool:
        """Sleep until ``deadline`` (clock time); False if the run was stopped meanwhile."""
        while not self.stop.is_set():
            remaining = deadline - self.clock()
            if remaining <= 0:
                return True
            self.sleep(min(remaining, _POLL))
        return False

    # -- bookkeeping ----------------------------------------------------------------------

    def emit(self, outcome: Outcome, job: Job, reply: str = "") -> None:
        address = job.msg.to
        with self._lock:
            r = self.result
            key = address_key(address)
            if outcome is Outcome.FAILED and key in self._returned:
                outcome = Outcome.PENDING  # already listed in r.returned by return_failed
            elif outcome is Outcome.PENDING:
                if key not in self._returned:
                    self._returned.add(key)
                    r.returned.append(address)
            elif outcome is Outcome.SENT:
                r.sent += 1
            elif outcome is Outcome.FAILED:
                r.failed += 1
                r.failures.append((address, reply))
            elif outcome is Outcome.DEFERRED:
                r.deferred += 1
                r.deferrals.append((address, reply))
            elif outcome is Outcome.SKIPPED:
                r.skipped += 1
            event = DeliveryEvent(
                outcome, address, job.msg.row, reply, job.attempts,
                r.sent, r.failed, r.deferred, r.skipped,
            )  # fmt: skip
        self.events.put(event)

    def fail(self, error: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = error
        self.stop.set()

    def halt(self, stop: Stop) -> None:
        """Stop the run at once for a reason that concerns every member (the first wins)."""
        with self._lock:
            if self.result.stopped is None:
                self.result.stopped = stop
        self.stop.set()

    def return_failed(self, addresses: list[str], reply: str) -> None:
        """Members recorded ``failed`` before the breaker saw it was the sender: pending.

        Each keeps the server's reply about *them* (``reply`` only where none was kept)."""
        keys = {address_key(a) for a in addresses}
        with self._lock:
            # A refusal after the trip trips again: list each member once.
            fresh = [a for a in addresses if address_key(a) not in self._returned]
            self._returned |= keys
            own = {address_key(a): why for a, why in self.result.failures}
        for address in addresses:
            self.journal.mark_deferred(self.slug, address, own.get(address_key(address), reply))
        with self._lock:
            r = self.result
            kept = [(a, why) for a, why in r.failures if address_key(a) not in keys]
            r.failed -= len(r.failures) - len(kept)
            r.failures = kept
            r.returned.extend(fresh)

    def unknown(self) -> list[str]:
        """Members left ``sending`` should the run end now: those whose transaction began
        and has no outcome, and those claimed for the next ones."""
        with self._lock:
            return [*self._in_flight.values(), *(job.msg.to for job, _ in self._ahead.values())]

    def in_flight(self) -> int:
        with self._lock:
            return len(self._in_flight)

    # -- the worker thread ----------------------------------------------------------------

    def work(self) -> None:
        transport: Transport | None = None
        claimed: deque[tuple[Job, Claim]] = deque()  # this worker's, not yet sent
        failed: list[BaseException] = []  # the message source's, once these are sent
        try:
            transport = self.transport_factory()
            while True:
                if not claimed:
                    if failed:
                        raise failed[0]
                    claimed.extend(self.claim_next(failed))
                    if not claimed:
                        if failed:
                            raise failed[0]
                        break
                job, _ = claimed[0]
                if not self.wanted(job.msg):  # e.g. unsubscribed since it was built
                    self.release([claimed.popleft()[0]])
                    continue
                if not self.begin(job):
                    break  # the run stopped: no new transaction; the claimed go back below
                claimed.popleft()
                while claimed and not self.wanted(claimed[0][0].msg):
                    self.release([claimed.popleft()[0]])
                # Announced to the transport so that, pipelining, the next message's
                # commands ride with this one's data (its claim is already durable).
                following = claimed[0][0].msg if claimed else None
                self.handle(transport, job, following)
        except BaseException as error:  # re-raised by the main thread
            if not self.abandoned:
                self.fail(error)
        finally:
            if claimed and not self.abandoned:
                try:
                    self.release([job for job, _ in claimed])
                except BaseException as error:  # left "sending" (unknown): never resent
                    self.fail(error)
            if transport is not None:
                try:
                    transport.close()
                except Exception:  # closing is best effort; the outcome is recorded
                    pass
            self.events.put(None)

    def claim_next(self, failed: list[BaseException]) -> list[tuple[Job, Claim]]:
        """This worker's next members, claimed in the journal in one durable commit: up to
        CLAIM_AHEAD of them (one fsync for all) when the run is not paced, else one, once
        its time slot has come. Empty when nothing is left (or the run stopped). An error
        of the message source after the first is put in ``failed``: raised once the
        members taken before it are sent, as when they were taken one by one."""
        size = 1 if self.pacer.paced else CLAIM_AHEAD
        while True:
            jobs = self._take(size, failed)
            # Paced: wait for the slot *before* claiming, so that if the run stops
            # meanwhile, nothing is left half-done in the journal.
            if not jobs or (self.pacer.paced and not self.wait_until(self.pacer.reserve())):
                return []
            claims = self.journal.claim(
                self.slug, [(job.msg, self.resend_unknown and job.attempts == 0) for job in jobs]
            )
            taken: list[tuple[Job, Claim]] = []
            for job, claim in zip(jobs, claims, strict=True):
                if claim is None:
                    self.emit(Outcome.SKIPPED, job, "already sent (or unknown) in the journal")
                    continue
                with self._lock:
                    self._ahead[address_key(job.msg.to)] = (job, claim)
                taken.append((job, claim))
            if taken or failed:
                return taken

    def _take(self, size: int, failed: list[BaseException]) -> list[Job]:
        """Up to ``size`` jobs: the first waited for, the others only if ready now."""
        jobs: list[Job] = []
        while len(jobs) < size:
            try:
                job = self.next_job(wait=not jobs)
            except Exception as error:
                if not jobs:
                    raise
                failed.append(error)
                break
            if job is None:
                break
            if job.attempts == 0 and self._skipped(job):
                continue
            jobs.append(job)
        return jobs

    def _skipped(self, job: Job) -> bool:
        """A fresh message that needs no transaction: a duplicate address in this run, or
        (paced) a member the journal already has as sent or unknown."""
        key = address_key(job.msg.to)
        with self._lock:
            duplicate = key in self._claimed
            self._claimed.add(key)
        if duplicate:
            self.emit(Outcome.SKIPPED, job, "duplicate address")
            return True
        # The claim checks again; looking first only spares a paced time slot.
        status = self.journal.status_of(self.slug, job.msg.to) if self.pacer.paced else None
        if status == "sent" or (status == "sending" and not self.resend_unknown):
            self.emit(Outcome.SKIPPED, job, f"already {status} in the journal")
            return True
        return False

    def begin(self, job: Job) -> bool:
        """Take a claimed member out of the claimed-ahead set to send it now; False if the
        run stopped (or its claim was put back meanwhile): it must not be sent."""
        key = address_key(job.msg.to)
        with self._lock:
            if self.stop.is_set() or self._ahead.pop(key, None) is None:
                return False
            self._in_flight[key] = job.msg.to
        return True

    def release(self, jobs: Iterable[Job] | None = None) -> None:
        """Put members claimed but not begun back as they were before the claim (the run
        stopped before their turn): ``jobs`` (a worker's), or every one (the main thread,
        abandoning workers). A retry among them is counted deferred, as it was."""
        with self._lock:
            keys = self._ahead if jobs is None else [address_key(job.msg.to) for job in jobs]
            taken = {key: claimed for key in list(keys) if (claimed := self._ahead.pop(key, None))}
        if not taken:
            return
        try:
            self.journal.release(self.slug, [claim for _, claim in taken.values()])
        except BaseException:
            with self._lock:  # still "sending" in the journal: reported unknown
                self._ahead.update(taken)
            raise
        with self._lock:
            self._released.extend(job for job, _ in taken.values() if job.attempts)

    def handle(self, transport: Transport, job: Job, following: OutgoingMessage | None) -> None:
        """One transaction for a claimed member, and what its outcome means for the run."""
        msg, slug = job.msg, self.slug
        key = address_key(msg.to)
        job.attempts += 1
        try:
            reply = transport.send(msg, self.sender, following)
        except (SendFailure, DeliveryError) as error:
            outcome: str | BaseException = error
        else:
            outcome = reply
        # Any other exception propagates and leaves the member "sending": we cannot tell.
        if self.abandoned:
            # deliver() has returned and reported this member unknown; the caller may have
            # closed the journal. Keep it "sending" rather than contradict that report.
            return
        if isinstance(outcome, PermanentFailure) or (
            isinstance(outcome, TemporaryFailure) and not outcome.connection
        ):
            with self._lock:  # a reply about this message: the server is still answering
                self.trouble = 0
        if isinstance(outcome, str):
            self.journal.mark_sent(slug, msg.to, outcome)
            self._settle(key)
            with self._lock:
                self.breaker.success()
                self.trouble = 0
            self.emit(Outcome.SENT, job, outcome)
        elif isinstance(outcome, UnknownOutcome):
            # Stays in _in_flight, so DeliveryResult.unknown lists it; the journal keeps
            # it "sending" with the reason.
            self.journal.mark_unknown(slug, msg.to, outcome.reply)
            self.emit(Outcome.UNKNOWN, job, outcome.reply)
            self._connection_trouble(outcome)
        elif isinstance(outcome, PermanentFailure):
            self._refused(job, key, outcome.reply)
        elif isinstance(outcome, TemporaryFailure):
            self.journal.mark_deferred(slug, msg.to, outcome.reply)
            self._settle(key)
            job.last_reply = outcome.reply
            quota = classify(outcome.reply)  # a quota said with 4xx: retrying cannot help
            if quota is not None:
                self.emit(Outcome.PENDING, job, outcome.reply)
                self.halt(Stop.refused(quota))
            elif outcome.connection and self._connection_trouble(outcome, job):
                pass  # the run stopped; this member is pending
            elif job.attempts >= self.settings.max_attempts or self.stop.is_set():
                self.emit(Outcome.DEFERRED, job, outcome.reply)
            else:
                delay = retry_delay(job.attempts - 1, self.settings.retry_base_delay, self.rng)
                self.schedule_retry(job, delay)
                self.emit(Outcome.RETRY, job, outcome.reply)
        else:
            # DeliveryError is raised before this message's transaction began (connect,
            # TLS, AUTH, sender refused): it certainly was not accepted.
            self.journal.mark_deferred(slug, msg.to, str(outcome))
            self._settle(key)
            with self._lock:
                sent = self.result.sent
            stop = stop_for(outcome, sent=sent)
            if stop is None:
                self.emit(Outcome.DEFERRED, job, str(outcome))
                raise outcome
            self.emit(Outcome.PENDING, job, stop.reply)
            self.halt(stop)

    def _connection_trouble(self, failure: SendFailure, job: Job | None = None) -> bool:
        """Count a connection-level failure; True if the run stopped for it (then ``job``,
        if given, is emitted pending). Otherwise this worker backs off before its next
        connection, so a busy server (421 at connect) is not hammered."""
        with self._lock:
            self.trouble += 1
            trouble = self.trouble
        # With N connections, the first round alone can bring N - 1 refusals before the one
        # that gets through succeeds (a server allowing fewer connections than asked for).
        if trouble >= TROUBLE_LIMIT + self.settings.connections - 1:
            if job is not None:
                self.emit(Outcome.PENDING, job, failure.reply)
            timeout = self.settings.smtp_timeout if failure.timed_out else None
            self.halt(
                Stop(
                    StopReason.CONNECTIONS_FAILING,
                    failure.reply,
                    failures=trouble,
                    timeout=timeout,
                )
            )
            return True
        delay = retry_delay(trouble - 1, self.settings.retry_base_delay, self.rng)
        self.wait_until(self.clock() + delay)
        return False

    def _refused(self, job: Job, key: str, reply: str) -> None:
        """A permanent refusal: the member's own failure, unless it is about the sender."""
        address = job.msg.to
        known = classify(reply)
        if known is not None:
            self.journal.mark_deferred(self.slug, address, reply)
            self._settle(key)
            self.emit(Outcome.PENDING, job, reply)
            self.halt(Stop.refused(known))
            return
        self.journal.mark_failed(self.slug, address, reply)
        self._settle(key)
        with self._lock:
            tripped = self.breaker.refused(address, reply)
            earlier = (
                [m for m in self.breaker.returned() if address_key(m) != key] if tripped else []
            )
        if tripped is None:
            self.emit(Outcome.FAILED, job, reply)
            return
        self.journal.mark_deferred(self.slug, address, reply)
        self.return_failed(earlier, reply)
        self.emit(Outcome.PENDING, job, reply)
        self.halt(Stop.refused(tripped))

    def _settle(self, key: str) -> None:
        with self._lock:
            self._in_flight.pop(key, None)
