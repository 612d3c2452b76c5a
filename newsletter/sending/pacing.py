"""When a delivery run may start its next transaction: a shared rate limit with batch pauses,
and the back-off before a retry. Pure scheduling on a clock the caller passes in."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..common.config import Settings

MAX_RETRY_DELAY = 120.0  # seconds; longer waits only make the end of a run drag on


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
