"""The provider's daily cap, known before sending, and how long a send will take.

Hosted mailboxes count recipients per rolling 24 hours per account, across everything the
account sends. The journal knows when each message went out (every issue, test copies
too), so the send can stop at what is left today instead of running into the provider's
refusal, and say when the rest can go.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..mail.refusals import DAY
from ..records.journal import Journal


@dataclass(frozen=True)
class DailyBudget:
    """How much of ``limit`` the last 24 hours used; ``times``: when, oldest first."""

    limit: int
    times: tuple[datetime, ...]

    @property
    def used(self) -> int:
        return len(self.times)

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)

    def free_again(self, wanted: int = 1, now: datetime | None = None) -> datetime | None:
        """When ``wanted`` more messages fit the window again (None: they fit now).

        The window frees one slot as each of the oldest sends turns 24 hours old; when
        more are wanted than the window holds, the sends still to come count from ``now``
        (the earliest they can happen)."""
        over = self.used + wanted - self.limit
        if over <= 0:
            return None
        if over <= self.used:
            return self.times[over - 1] + DAY
        latest = max(self.times[-1:] + ((now,) if now else ()), default=None)
        return latest + DAY if latest else None


def daily_budget(journal: Journal, limit: int) -> DailyBudget | None:
    """The journal's last 24 hours against ``limit`` (None when there is no cap)."""
    if limit <= 0:
        return None
    return DailyBudget(limit, tuple(journal.sent_since(DAY)))


def duration(messages: int, rate: float, batch_size: int = 0, batch_pause: float = 0.0) -> str:
    """A human estimate, e.g. "about 33 minutes at 30 a minute" ("" when unpaced)."""
    if messages <= 0 or rate <= 0:
        return ""
    seconds = messages * 60.0 / rate
    if batch_size and batch_pause:
        seconds += (messages - 1) // batch_size * batch_pause
    return f"{_span(seconds)} at {rate:g} a minute"


def _span(seconds: float) -> str:
    if seconds < 45:
        return "under a minute"  # 58 messages at 1200 a minute are 3 s, not "a minute"
    minutes = max(1, round(seconds / 60))
    if minutes <= 1:
        return "about a minute"
    if minutes < 120:
        return f"about {minutes} minutes"
    hours, rest = divmod(minutes, 60)
    return f"about {hours} hours" + (f" {rest} minutes" if rest else "")


def when(moment: datetime, now: datetime) -> str:
    """A resume time the chair can act on, in local time: "after 14:05 on Tue 3 Dec"."""
    local = moment.astimezone()
    day = f"{local:%a} {local.day} {local:%b}"
    same_day = local.date() == now.astimezone().date()
    return f"after {local:%H:%M}" + ("" if same_day else f" on {day}")
