"""Every question `newsletter setup` can ask has an option that answers it: with them all
given (and --yes), a terminal is asked nothing, whichever sign-in the provider takes."""

from __future__ import annotations

from pathlib import Path

import pytest
from dotenv import dotenv_values

from newsletter.setup.configure import SetupOptions, run_setup


class NoQuestions:
    """A terminal (interactive) that fails the test at any question."""

    interactive = True

    def ask(self, question: str, default: str, *, secret: bool = False) -> str:
        raise AssertionError(f"asked {question!r}: no option answers it")

    def choose(self, question: str, choices: list[str], default: str) -> str:
        raise AssertionError(f"asked {question!r}: no option answers it")

    def confirm(self, question: str, default: bool) -> bool:
        raise AssertionError(f"asked {question!r}: no option answers it")

    def say(self, text: str) -> None:
        pass


COMMON = dict(
    name="Network News", test_to="chair@example.org", unsubscribe_mailto="leave@example.org",
    recipients="members.csv", yes=True,
)  # fmt: skip

CASES = {
    "google": SetupOptions(
        from_address="news@google-good-zone.uk", oauth_client_id="cid.apps",
        oauth_client_secret="GOCSPX-x", imap_host="imap.gmail.com", **COMMON,
    ),
    "microsoft365": SetupOptions(
        from_address="news@good-zone.uk", oauth_client_id="app-1", oauth_tenant="tenant-1",
        imap_host="outlook.office365.com", **COMMON,
    ),
    "relay, google mailbox": SetupOptions(
        from_address="news@google-good-zone.uk", provider="ses",
        smtp_host="email-smtp.eu-west-1.amazonaws.com", smtp_port=587,
        smtp_security="starttls", username="AKIAEXAMPLE", password="pw", password_store="env",
        imap_host="imap.gmail.com", imap_username="news@google-good-zone.uk", **COMMON,
    ),
    "own server": SetupOptions(
        from_address="news@other-zone.uk", provider="other", smtp_host="mail.other-zone.uk",
        smtp_port=465,
        smtp_security="ssl", username="news", password="pw", password_store="env",
        imap_host="mail.other-zone.uk", **COMMON,
    ),
    "look-up failed": SetupOptions(
        from_address="news@servfail-zone.uk", provider="google", oauth_client_id="cid.apps",
        oauth_client_secret="GOCSPX-x", imap_host="imap.gmail.com", **COMMON,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_every_answer_can_be_given_as_an_option(tmp_path: Path, dns_server, case: str) -> None:
    result = run_setup(
        CASES[case],
        NoQuestions(),
        env_path=tmp_path / ".env",
        environ_dns_server=dns_server.address,
    )
    assert result.written
    env = dotenv_values(tmp_path / ".env")
    assert env["NEWSLETTER_TEST_TO"] == "chair@example.org"
    assert env["NEWSLETTER_RECIPIENTS"] == "members.csv"
