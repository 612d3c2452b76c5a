"""The daily cap measured on the journal with a clock we control, duration estimates, and
one read of the members CSV per real send (in process, against a real SMTP server)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.helpers import write_members
from support.smtp_servers import make_message, start_server

from newsletter.common.config import Settings
from newsletter.mail.smtp import transport_factory
from newsletter.records.journal import Journal
from newsletter.sending import policy as send_run
from newsletter.sending.daily import DailyBudget, daily_budget, duration

T0 = datetime(2024, 1, 10, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def send_one(journal: Journal, slug: str, address: str) -> None:
    msg = make_message(address)
    assert journal.mark_sending(slug, msg)
    journal.mark_sent(slug, address, "250 ok")


def test_last_24_hours_over_every_issue_and_test_copies(tmp_path: Path) -> None:
    clock = Clock(T0)
    with Journal.for_state_dir(tmp_path, clock=clock) as journal:
        send_one(journal, "december", "a@example.org")
        clock.now = T0 + timedelta(hours=2)
        send_one(journal, "january", "b@example.org")
        journal.record_test_send("january", "chair@example.org", "<id@x>")
        msg = make_message("c@example.org")
        journal.mark_sending("january", msg)
        journal.mark_failed("january", "c@example.org", "550 5.1.1")  # refused: not counted
        clock.now = T0 + timedelta(hours=23)
        budget = daily_budget(journal, 5)
        assert budget is not None and budget.used == 3 and budget.left == 2
        assert budget.free_again(2) is None
        assert budget.free_again(3) == T0 + timedelta(hours=24)  # the oldest turns 24 h
        assert budget.free_again(4) == T0 + timedelta(hours=26)
        # More than the window holds: the sends still to come count from now.
        assert budget.free_again(9, clock.now) == clock.now + timedelta(hours=24)
        assert DailyBudget(3, ()).free_again(5, T0) == T0 + timedelta(hours=24)
        assert DailyBudget(3, ()).free_again(5) is None
        clock.now = T0 + timedelta(hours=24, minutes=1)
        assert daily_budget(journal, 5).used == 2  # the first send left the window
        assert daily_budget(journal, 0) is None  # no cap


def test_budget_never_negative() -> None:
    budget = DailyBudget(2, (T0, T0, T0))
    assert budget.left == 0 and budget.free_again() == T0 + timedelta(hours=24)


@pytest.mark.parametrize(
    ("messages", "rate", "batch", "expected"),
    [
        (1000, 30, (0, 0), "about 33 minutes at 30 a minute"),
        (10, 30, (0, 0), "under a minute at 30 a minute"),
        (58, 1200, (0, 0), "under a minute at 1200 a minute"),
        (25, 30, (0, 0), "about a minute at 30 a minute"),
        (10_000, 30, (0, 0), "about 5 hours 33 minutes at 30 a minute"),
        (120, 60, (0, 0), "about 2 minutes at 60 a minute"),
        (100, 60, (10, 60), "about 11 minutes at 60 a minute"),
        (100, 0, (0, 0), ""),
        (0, 30, (0, 0), ""),
    ],
)
def test_duration(messages: int, rate: float, batch: tuple[int, int], expected: str) -> None:
    assert duration(messages, rate, *batch) == expected


class EditingUI:
    """Answers yes, but first rewrites the CSV, as a chair might while the question waits."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.plans = 0

    def notice(self, text: str) -> None:
        pass

    def finding(self, line: str) -> None:
        raise AssertionError(line)

    def plan(self, plan, checks: str) -> None:
        self.plans += 1

    def confirm(self, question: str, no_terminal_hint: str) -> bool:
        self.path.write_text("email,first_name,last_name\nintruder@example.org,I,X\n")
        return True

    def deliver(self, total, run):
        return run(None)


def test_a_real_send_reads_the_list_once(project: Path, settings: Settings) -> None:
    addresses = write_members(project, 4)
    with start_server() as server:
        configured = replace(
            settings,
            smtp_host=server.host,
            smtp_port=server.port,
            smtp_security="none",
            # Not .env.example's placeholders: a real send refuses those.
            unsubscribe_mailto="unsubscribe@wmhtc.co.uk",
            from_="Cluster News <news@wmhtc.co.uk>",
        )
        ui = EditingUI(project / "recipients.csv")
        outcome = send_run.send_to_members(
            configured,
            "december-2023",
            send_run.SendOptions(yes=False),
            ui,
            transport_factory=transport_factory(configured),
        )
        assert outcome.end is send_run.SendEnd.DONE and outcome.totals.sent == 4
        assert server.handler.copies() == {a: 1 for a in addresses}
