"""One delivery run: parallel connections, a shared rate limit, batches, retries, journal.

Guarantee: nobody gets a second copy. Before each SMTP transaction the member is claimed in
the journal (``sending``, committed); after it, the outcome is committed. The claim is a
check-and-set in one SQLite transaction, so a member already ``sent`` (or ``sending``:
unknown, maybe in flight in another run) is skipped even if the caller passes it again.

Threads: ``settings.connections`` workers, each with its own transport (SMTP connection),
pull messages from the caller's iterator (under a lock: generators are not thread-safe).
The main thread only relays events to ``on_event`` and waits with timeouts, so Ctrl-C
(KeyboardInterrupt, delivered to the main thread only) is seen at once.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from ..common.config import Settings
from ..common.errors import DeliveryError
from ..mail.envelope import Envelope as OutgoingMessage
from ..mail.failures import PermanentFailure, SendFailure, TemporaryFailure, UnknownOutcome
from ..mail.refusals import CircuitBreaker, classify, is_permanent, reply_shape
from ..mail.smtp import Transport
from ..records.journal import Journal, address_key
from .outcomes import DeliveryEvent, DeliveryResult, EventHandler, Outcome
from .stops import Stop, StopReason, stop_for

__all__ = [
    "MAX_RETRY_DELAY",
    "TROUBLE_LIMIT",
    "DeliveryEvent",
    "DeliveryResult",
    "EventHandler",
    "Outcome",
    "Stop",
    "StopReason",
    "deliver",
    "retry_delay",
]

# Connection-level failures in a row (no greeting, 421, no reply, a reset; no message
# accepted between them) after which the server is taken to have gone away: retrying every
# member against it would hammer a busy server and, at a timeout each, look like a hang.
TROUBLE_LIMIT = 3
MAX_RETRY_DELAY = 120.0  # seconds; longer waits only make the end of a run drag on
_POLL = 0.05  # seconds; how often waiting threads look at the stop flag


def retry_delay(attempt: int, base: float, rng: Callable[[], float]) -> float:
    """Exponential backoff with jitter before retry number ``attempt`` (0-based)."""
    # Jitter spreads retries of many members refused at the same moment (greylisting).
    return min(MAX_RETRY_DELAY, base * 2**attempt * (0.5 + rng()))


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    msg: OutgoingMessage = field(compare=False)
    attempts: int = field(default=0, compare=False)  # SMTP attempts made in this run
    last_reply: str = field(default="", compare=False)


class _Pacer:
    """Shared send schedule: ``rate`` per minute over all connections, plus batch pauses.

    Each transaction gets the next time slot ``interval`` after the previous one (or now, if
    that is later), so any window of t seconds holds at most t/interval + 1 starts: no burst
    after an idle period, no drift.
    """

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self._interval = 60.0 / settings.rate if settings.rate > 0 else 0.0
        self._batch_size = settings.batch_size
        self._batch_pause = settings.batch_pause
        self._clock = clock
        self._next: float | None = None
        self._started = 0
        self.paced = bool(self._interval or (self._batch_size and self._batch_pause))
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """The (clock) time at which the caller may start its next transaction."""
        with self._lock:
            now = self._clock()
            at = now if self._next is None else max(now, self._next)
            if self._batch_size and self._started and self._started % self._batch_size == 0:
                # Counted from when the batch's last message was started; with several
                # connections a few may still be finishing (milliseconds vs. the pause).
                at = max(at, now + self._batch_pause)
            self._started += 1
            self._next = at + self._interval
            return at


class _Run:
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
    ) -> None:
        self.slug = slug
        self.sender = sender
        self.journal = journal
        self.transport_factory = transport_factory
        self.settings = settings
        self.resend_unknown = resend_unknown
        self.clock = clock
        self.sleep = sleep
        self.rng = rng
        self.pacer = _Pacer(settings, clock)
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
        self._retries: list[_Job] = []  # heap by due time
        self._seq = itertools.count()
        self._source_lock = threading.Lock()

        self._lock = threading.Lock()  # guards everything below
        self._claimed: set[str] = set()  # keys taken in this run: duplicates are skipped
        self._in_flight: dict[str, str] = {}  # key -> address, between claim and outcome
        # Members the breaker put back to pending: a FAILED event for one of them that
        # another thread emits late (after the breaker tripped) must not count it failed.
        self._returned: set[str] = set()
        self.result = DeliveryResult()

    # -- the message source ---------------------------------------------------------------

    def next_job(self) -> _Job | None:
        """A due retry, else a fresh message; None when everything is done or stopped."""
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
                        return _Job(now, next(self._seq), msg)
                if not self._retries:
                    return None
                wait = self._retries[0].due - now
            self.sleep(min(max(wait, 0.0), _POLL))
        return None

    def schedule_retry(self, job: _Job, delay: float) -> None:
        with self._source_lock:
            job.due = self.clock() + delay
            job.seq = next(self._seq)
            heapq.heappush(self._retries, job)

    def pending_retries(self) -> list[_Job]:
        with self._source_lock:
            return list(self._retries)

    def wait_until(self, deadline: float) -> bool:
        """Sleep until ``deadline`` (clock time); False if the run was stopped meanwhile."""
        while not self.stop.is_set():
            remaining = deadline - self.clock()
            if remaining <= 0:
                return True
            self.sleep(min(remaining, _POLL))
        return False

    # -- bookkeeping ----------------------------------------------------------------------

    def emit(self, outcome: Outcome, job: _Job, reply: str = "") -> None:
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
        with self._lock:
            return list(self._in_flight.values())

    # -- the worker thread ----------------------------------------------------------------

    def work(self) -> None:
        transport: Transport | None = None
        try:
            transport = self.transport_factory()
            while (job := self.next_job()) is not None:
                self.handle(transport, job)
        except BaseException as error:  # re-raised by the main thread
            if not self.abandoned:
                self.fail(error)
        finally:
            if transport is not None:
                try:
                    transport.close()
                except Exception:  # closing is best effort; the outcome is recorded
                    pass
            self.events.put(None)

    def handle(self, transport: Transport, job: _Job) -> None:
        msg, slug = job.msg, self.slug
        key = address_key(msg.to)
        if job.attempts == 0:
            with self._lock:
                duplicate = key in self._claimed
                self._claimed.add(key)
            if duplicate:
                self.emit(Outcome.SKIPPED, job, "duplicate address")
                return
            # The claim below checks again; looking first only spares a paced time slot.
            status = self.journal.status_of(slug, msg.to) if self.pacer.paced else None
            if status == "sent" or (status == "sending" and not self.resend_unknown):
                self.emit(Outcome.SKIPPED, job, f"already {status} in the journal")
                return
        # Wait for the slot *before* claiming: if the run stops meanwhile, nothing is left
        # half-done in the journal.
        if not self.wait_until(self.pacer.reserve()):
            return
        allow_unknown = self.resend_unknown and job.attempts == 0
        if not self.journal.mark_sending(slug, msg, allow_unknown=allow_unknown):
            self.emit(Outcome.SKIPPED, job, "already sent (or unknown) in the journal")
            return
        with self._lock:
            self._in_flight[key] = msg.to
        job.attempts += 1
        try:
            reply = transport.send(msg, self.sender)
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

    def _connection_trouble(self, failure: SendFailure, job: _Job | None = None) -> bool:
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

    def _refused(self, job: _Job, key: str, reply: str) -> None:
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


def deliver(
    messages: Iterable[OutgoingMessage],
    *,
    slug: str,
    sender: str,
    journal: Journal,
    transport_factory: Callable[[], Transport],
    settings: Settings,
    on_event: EventHandler | None = None,
    on_stopping: Callable[[str], None] | None = None,
    resend_unknown: bool = False,
    grace: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
) -> DeliveryResult:
    """Send ``messages`` (consumed lazily) for issue ``slug`` and record every outcome.

    ``transport_factory`` makes one transport per connection (``settings.connections``).
    Members ``sent`` in the journal are skipped, and ``sending`` (unknown) ones too unless
    ``resend_unknown``. On Ctrl-C, no new transaction starts; those in flight get ``grace``
    seconds (default: ``settings.smtp_timeout``; a second Ctrl-C abandons them, leaving
    them ``sending``; ``on_stopping`` is told so, in words for the user, when any are in
    flight), then the result is returned with ``interrupted=True``.

    A refusal of the *sender* (a provider's quota or block, see :mod:`newsletter.mail.refusals`)
    or a server that stops answering after messages went out ends the run at once: the
    members refused that way go back to pending (``deferred``), and the result says why in
    ``stopped``; so does any DeliveryError (sign-in, TLS) once messages went out in this run.
    Raises DeliveryError (after all outcomes so far are recorded) if the server cannot be
    used before any message went out, and re-raises any error from ``messages`` or ``on_event``.
    """
    started = clock()
    run = _Run(
        messages, slug=slug, sender=sender, journal=journal,
        transport_factory=transport_factory, settings=settings,
        resend_unknown=resend_unknown, clock=clock, sleep=sleep, rng=rng,
    )  # fmt: skip
    grace = settings.smtp_timeout if grace is None else grace
    workers = [
        threading.Thread(target=run.work, name=f"smtp-{i + 1}", daemon=True)
        for i in range(settings.connections)
    ]
    alive = 0

    def relay(deadline: float | None, call: bool = True) -> None:
        # Pass worker events on until every worker has ended (or the deadline passed).
        # get() with a timeout keeps the main thread responsive to KeyboardInterrupt.
        nonlocal alive
        while alive:
            timeout = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if timeout <= 0:
                return
            try:
                event = run.events.get(timeout=timeout)
            except queue.Empty:
                continue
            if event is None:
                alive -= 1
            elif call and on_event is not None:
                on_event(event)

    try:
        for worker in workers:
            worker.start()
            alive += 1
        relay(None)
    except KeyboardInterrupt:
        run.result.interrupted = True
        run.stop.set()
        try:
            in_flight = len(run.unknown())
            if on_stopping is not None and in_flight:
                # The wait can be as long as the SMTP timeout: say why nothing happens.
                on_stopping(
                    f"Stopping: waiting up to {grace:g} s for the {in_flight} message(s) in "
                    "flight; press Ctrl-C again to stop at once (they are then left unknown)"
                )
            relay(time.monotonic() + grace)
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: do not wait for transactions in flight
    except BaseException as error:  # on_event failed: stop cleanly, then re-raise
        run.fail(error)
        relay(time.monotonic() + grace, call=False)
    run.abandoned = alive > 0  # those threads are daemons; their members stay "sending"

    result = run.result
    for job in run.pending_retries():  # stopped before a scheduled retry: already deferred
        result.deferred += 1
        result.deferrals.append((job.msg.to, job.last_reply))
    result.unknown = run.unknown()
    if result.stopped is not None:
        # With several connections, others may still have finished a message after the one
        # that saw the stop: the reason counts what the whole run sent.
        result.stopped = dataclasses.replace(result.stopped, sent=result.sent)
    if not run.abandoned:  # else a worker may still write; its members stay "unknown"
        journal.flush()  # the last outcomes were committed without an fsync of their own
    result.elapsed = clock() - started
    if run.error is not None and not result.interrupted:
        raise run.error
    return result
