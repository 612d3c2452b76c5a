"""What a delivery run reports: each message's outcome as it happens, and the run's tally.

Typed values only (no I/O): :func:`newsletter.sending.engine.deliver` produces them, the
send policy and the terminal read them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from .stops import Stop


class Outcome(StrEnum):
    SENT = "sent"  # accepted by the server
    FAILED = "failed"  # refused for good (5xx): reply says why
    DEFERRED = "deferred"  # not accepted after max_attempts (or run stopped): try again later
    RETRY = "retry"  # temporary failure, will be retried in this run
    SKIPPED = "skipped"  # already sent or unknown in the journal, or a duplicate address
    UNKNOWN = "unknown"  # sent, but no reply in time: stays "sending", never retried
    PENDING = "pending"  # refused because of the sender (quota, block): back to pending


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """One message's outcome, with the run's totals so far (for a progress bar)."""

    outcome: Outcome
    address: str
    row: int
    reply: str  # server reply (or reason) for this message; "" for skipped
    attempt: int  # 1-based SMTP attempt in this run (0 for skipped)
    sent: int
    failed: int
    deferred: int
    skipped: int


@dataclass
class DeliveryResult:
    """What a run did. ``unknown``: left ``sending`` (interrupted mid-transaction)."""

    sent: int = 0
    failed: int = 0
    deferred: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (address, server reply)
    deferrals: list[tuple[str, str]] = field(default_factory=list)  # (address, last reply)
    unknown: list[str] = field(default_factory=list)
    interrupted: bool = False
    elapsed: float = 0.0  # seconds
    # Why the run stopped early: the provider refused the sender (quota, blocked account)
    # or the server stopped answering. ``returned``: members put back to pending for it.
    stopped: Stop | None = None
    returned: list[str] = field(default_factory=list)
    # The server said the run sent too fast (e.g. Amazon SES's maximum send rate): the
    # rate, messages a minute, the run slowed down to (0.0: it was not slowed).
    slowed_to: float = 0.0


EventHandler = Callable[[DeliveryEvent], None]
