"""A real send through Microsoft 365 with a password: `check` warns before the end of
December 2026, and from 1 January 2027 the send refuses (even with --force) with the
sign-in guidance, before any connection."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from newsletter.common.config import Settings
from newsletter.common.errors import CheckFailed
from newsletter.sending import policy as send_run
from newsletter.sending.checks.findings import Check

WARNED = dt.date(2026, 12, 7)
REFUSED = dt.date(2027, 1, 4)


@pytest.fixture
def microsoft_password(ready: Settings) -> Settings:
    return replace(
        ready,
        smtp_host="smtp.office365.com",
        smtp_username="news@wmhtc.co.uk",
        smtp_password="pw-of-the-mailbox",
        smtp_auth="password",
        test_to="chair@wmhtc.co.uk",
    )


class RecordingUI:
    def __init__(self) -> None:
        self.findings: list[str] = []

    def notice(self, text: str) -> None:
        pass

    def finding(self, line: str) -> None:
        self.findings.append(line)

    def plan(self, plan, checks: str) -> None:
        raise AssertionError("refused before any plan")

    def confirm(self, question: str, no_terminal_hint: str) -> bool:
        raise AssertionError("refused before any question")

    def deliver(self, total, run):
        raise AssertionError("nothing is delivered")


def test_check_warns_before_the_cut_off(microsoft_password: Settings) -> None:
    report = send_run.check(microsoft_password, "december-2023", today=WARNED).report
    (warning,) = [f for f in report.warnings if f.where == "NEWSLETTER_SMTP_AUTH"]
    assert "the end of December 2026" in warning.message
    assert "newsletter login" in warning.fix
    assert not [f for f in report.errors if f.where == "NEWSLETTER_SMTP_AUTH"]


@pytest.mark.parametrize("force", [False, True])
def test_a_real_send_refuses_after_the_cut_off(microsoft_password: Settings, force: bool) -> None:
    ui = RecordingUI()

    def no_connection():
        raise AssertionError("no connection may be made")

    with pytest.raises(CheckFailed) as refused:
        send_run.send_to_members(
            microsoft_password,
            "december-2023",
            send_run.SendOptions(yes=True, force=force),
            ui,
            transport_factory=no_connection,
            today=REFUSED,
        )
    assert "newsletter login" in (refused.value.hint or "")
    assert any("NEWSLETTER_SMTP_AUTH" in line and "535 5.7.139" in line for line in ui.findings)
    report = send_run.check(microsoft_password, "december-2023", today=REFUSED).report
    assert [f.check for f in report.errors] == [Check.BASIC_AUTH_ENDED]
