"""When a delivery run may start its next transaction: a shared rate limit with batch pauses,
the back-off before a retry, and slowing down when the server says the run is too fast
(:class:`ThrottleWatch`). Scheduling on a clock the caller passes in."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from ..common.config import Settings
from ..mail.envelope import Envelope
from ..mail.failures import TemporaryFailure
from ..mail.refusals import throttle
from ..mail.smtp import Transport

MAX_RETRY_DELAY = 120.0  # seconds; longer waits only make the end of a run drag on
# Messages a minute below which a throttled run is not slowed further: one a second, the
# lowest maximum send rate Amazon SES gives an account (its sandbox).
SLOWEST_RATE = 60.0
# Seconds after slowing down during which further "too fast" replies do not slow the run
# again: they answer transactions started at the old rate (SES counts per second).
THROTTLE_WINDOW = 1.0


def retry_delay(attempt: int, base: float, rng: Callable[[], float]) -> float:
    """Exponential backoff with jitter before retry number ``attempt`` (0-based)."""
    # Jitter spreads retries of many members refused at the same moment (greylisting).
    return min(MAX_RETRY_DELAY, base * 2**attempt * (0.5 + rng()))


class Pacer:
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
        self._slowed_at: float | None = None

    @property
    def rate(self) -> float:
        """Messages a minute now (0: not limited)."""
        with self._lock:
            return 60.0 / self._interval if self._interval else 0.0

    def slow_down(self, observed: float) -> bool:
        """The server said the run sends too fast: halve the rate (``observed``, messages
        a minute sent lately, stands for it in a run that had none), never below
        SLOWEST_RATE, at most once per THROTTLE_WINDOW. True if it slowed down."""
        with self._lock:
            now = self._clock()
            if self._slowed_at is not None and now - self._slowed_at < THROTTLE_WINDOW:
                return False
            current = 60.0 / self._interval if self._interval else observed
            rate = max(SLOWEST_RATE, current / 2) if current > 0 else SLOWEST_RATE
            if self._interval and rate >= current:
                return False  # already as slow as it goes
            self._slowed_at = now
            self._interval = 60.0 / rate
            self.paced = True  # from now on each claim waits for its slot
            return True

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


class ThrottleWatch:
    """Watches every connection's replies for "too fast" (a :class:`~newsletter.mail.
    refusals.Throttle`, e.g. Amazon SES's "454 Throttling failure: Maximum sending rate
    exceeded") and slows the run's :class:`Pacer` at once, in the worker thread that got
    it, before that worker schedules the message's retry. :meth:`transport` wraps each
    connection; one watch is shared by all of a run's connections."""

    def __init__(self, pacer: Pacer, clock: Callable[[], float]) -> None:
        self._pacer = pacer
        self._clock = clock
        self._accepted: deque[float] = deque()  # clock times of the last second's messages
        self._lock = threading.Lock()
        self.slowed = 0  # times the run was slowed down

    def transport(self, inner: Transport) -> Transport:
        return _Watched(inner, self)

    def accepted(self) -> None:
        with self._lock:
            now = self._clock()
            self._accepted.append(now)
            while self._accepted and now - self._accepted[0] > THROTTLE_WINDOW:
                self._accepted.popleft()

    def refused(self, failure: TemporaryFailure) -> None:
        if throttle(failure.reply) is None:
            return
        with self._lock:
            now = self._clock()
            recent = sum(1 for t in self._accepted if now - t <= THROTTLE_WINDOW)
        if self._pacer.slow_down(recent * 60.0 / THROTTLE_WINDOW):
            with self._lock:
                self.slowed += 1


class _Watched:
    """One connection, its replies shown to a :class:`ThrottleWatch` on the way out."""

    def __init__(self, inner: Transport, watch: ThrottleWatch) -> None:
        self._inner = inner
        self._watch = watch

    def connect(self) -> None:
        self._inner.connect()

    def send(self, msg: Envelope, sender: str, following: Envelope | None = None) -> str:
        try:
            reply = self._inner.send(msg, sender, following)
        except TemporaryFailure as failure:
            self._watch.refused(failure)
            raise
        self._watch.accepted()
        return reply

    def close(self) -> None:
        self._inner.close()
