"""The offline checks (`settings`, `smtp-auth`), the password read from the keyring, and the
Microsoft 365 password cut-off: warned before the end of December 2026, refused after."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from newsletter.common.config import Settings, load_settings
from newsletter.common.errors import ConfigError
from newsletter.common.passwords import store_password
from newsletter.domain.findings import CheckId, Problem, Status
from newsletter.domain.offline import check_settings, check_smtp_auth, for_check, offline_checks

TODAY = dt.date(2026, 12, 7)
M365 = dict(smtp_host="smtp.office365.com", smtp_username="news@wmhtc.co.uk", smtp_auth="password")


def test_microsoft_password_warns_before_the_cut_off_naming_the_date_and_the_way_out() -> None:
    finding = check_smtp_auth(Settings(**M365, smtp_password="pw"), TODAY)
    assert (finding.check, finding.status) == (CheckId.SMTP_AUTH, Status.WARN)
    assert finding.problem == Problem.BASIC_AUTH_ENDING
    assert "end of December 2026" in finding.message and "25 days" in finding.message
    assert "newsletter login" in finding.fix and "docs/it/microsoft-365.md" in finding.fix


@pytest.mark.parametrize("day", [dt.date(2027, 1, 1), dt.date(2027, 6, 30)])
def test_microsoft_password_fails_on_and_after_the_cut_off(day: dt.date) -> None:
    finding = check_smtp_auth(Settings(**M365, smtp_password="pw"), day)
    assert finding.status == Status.FAIL and finding.problem == Problem.BASIC_AUTH_ENDED
    assert "newsletter login" in finding.fix


def test_the_last_day_of_december_still_warns() -> None:
    finding = check_smtp_auth(Settings(**M365, smtp_password="pw"), dt.date(2026, 12, 31))
    assert finding.status == Status.WARN and "1 day from now" in finding.message


def test_oauth_and_other_providers_pass() -> None:
    oauth = Settings(smtp_host="smtp.office365.com", oauth_client_id="id")
    assert check_smtp_auth(oauth, dt.date(2027, 3, 1)).status == Status.PASS
    relay = Settings(smtp_host="smtp.postmarkapp.com", smtp_username="tok", smtp_password="tok")
    assert check_smtp_auth(relay, dt.date(2027, 3, 1)).status == Status.PASS


def test_google_with_an_account_password_asks_for_an_app_password() -> None:
    google = Settings(smtp_host="smtp.gmail.com", smtp_username="a@b.org", smtp_auth="password")
    own = check_smtp_auth(replace(google, smtp_password="Hunter2!"), TODAY)
    assert own.status == Status.WARN and own.problem == Problem.APP_PASSWORD
    assert "app password" in own.fix.lower()
    app = check_smtp_auth(replace(google, smtp_password="abcd efgh ijkl mnop"), TODAY)
    assert app.status == Status.PASS


def test_settings_names_each_missing_or_placeholder_setting(tmp_path: Path) -> None:
    settings = Settings(
        smtp_host="smtp.example.org",
        from_="News <news@example.org>",
        unsubscribe_url="https://wmhtc.co.uk/u?t={token}",
        secret="short",
        recipients=tmp_path / "none.csv",
    )
    findings = check_settings(settings)
    where = {f.where: f.problem for f in findings}
    assert where == {
        "NEWSLETTER_SMTP_HOST": Problem.PLACEHOLDER_SETTING,
        "NEWSLETTER_FROM": Problem.PLACEHOLDER_SETTING,
        "NEWSLETTER_TEST_TO": Problem.MISSING_SETTING,
        "NEWSLETTER_SECRET": Problem.WEAK_SECRET,
        "NEWSLETTER_RECIPIENTS": Problem.NO_MEMBERS_LIST,
    }
    assert all(f.status == Status.FAIL and f.fix for f in findings)


def test_settings_pass_when_all_is_set(tmp_path: Path) -> None:
    members = tmp_path / "members.csv"
    members.write_text("email\na@b.org\n")
    settings = Settings(
        smtp_host="smtp.office365.com",
        oauth_client_id="client",
        from_="News <news@wmhtc.co.uk>",
        test_to="chair@wmhtc.co.uk",
        unsubscribe_mailto="news@wmhtc.co.uk",
        recipients=members,
    )
    (finding,) = check_settings(settings)
    assert finding.status == Status.PASS


def test_the_password_is_read_from_the_keyring_when_the_settings_say_so(memory_keyring) -> None:
    store_password("smtp.postmarkapp.com", "token-user", "kept-in-the-keyring")
    env = {
        "NEWSLETTER_SMTP_HOST": "smtp.postmarkapp.com",
        "NEWSLETTER_SMTP_USERNAME": "token-user",
        "NEWSLETTER_PASSWORD_STORE": "keyring",
    }
    settings = load_settings(env, None)
    assert settings.smtp_password == "kept-in-the-keyring"
    assert "kept-in-the-keyring" not in repr(settings)
    # Without the setting the keyring is not asked.
    plain = load_settings({k: v for k, v in env.items() if "STORE" not in k}, None)
    assert plain.smtp_password == ""


def test_a_locked_keyring_stops_only_what_needs_the_password(memory_keyring) -> None:
    memory_keyring.locked = True
    env = {
        "NEWSLETTER_SMTP_HOST": "smtp.office365.com",
        "NEWSLETTER_SMTP_USERNAME": "news@wmhtc.co.uk",
        "NEWSLETTER_PASSWORD_STORE": "keyring",
    }
    settings = load_settings(env, None)  # a preview or a dry run still loads
    # With the password in the keyring, a Microsoft host is still a password set-up.
    assert settings.auth_mode == "password"
    with pytest.raises(ConfigError) as refused:
        settings.require_smtp()
    assert refused.value.setting == "NEWSLETTER_PASSWORD_STORE"
    (finding,) = [f for f in check_settings(settings) if f.where == "NEWSLETTER_PASSWORD_STORE"]
    assert finding.status == Status.FAIL and "cannot be read" in finding.message


def test_check_adds_only_what_a_send_would_stop_on() -> None:
    assert for_check(Settings(), TODAY) == []  # no SMTP server yet: the issue alone
    findings = for_check(Settings(**M365, smtp_password="pw"), TODAY)
    assert [(f.check, f.status) for f in findings] == [(CheckId.SMTP_AUTH, Status.WARN)]


def test_check_leaves_to_doctor_what_check_says_itself_or_a_send_does_not_stop_on() -> None:
    # A relay taking mail without a sign-in: doctor warns, check stays READY.
    relay = Settings(smtp_host="relay.wmhtc.co.uk")
    doctor = check_smtp_auth(relay, TODAY)
    assert (doctor.status, doctor.where) == (Status.WARN, "NEWSLETTER_SMTP_USERNAME")
    assert for_check(relay, TODAY) == []
    # A username without its password: check says it as the send's own settings-missing.
    no_password = Settings(smtp_host="relay.wmhtc.co.uk", smtp_username="news")
    assert any(f.where == "NEWSLETTER_SMTP_PASSWORD" for f in check_settings(no_password))
    assert for_check(no_password, TODAY) == []


POSTMARK = dict(smtp_username="tok", smtp_password="tok", smtp_auth="password")


def test_postmark_transactional_host_warns_that_bulk_mail_breaks_the_terms() -> None:
    settings = Settings(smtp_host="smtp.postmarkapp.com", **POSTMARK)
    stream = [
        f for f in offline_checks(settings, TODAY) if f.problem == Problem.TRANSACTIONAL_STREAM
    ]
    assert len(stream) == 1
    finding = stream[0]
    assert (finding.check, finding.status) == (CheckId.SETTINGS, Status.WARN)
    assert finding.where == "NEWSLETTER_SMTP_HOST"
    assert "smtp-broadcasts.postmarkapp.com" in finding.fix and "SMTP token" in finding.fix
    # `check` shows it too (a setting it does not judge in words of its own).
    assert Problem.TRANSACTIONAL_STREAM in [f.problem for f in for_check(settings, TODAY)]


@pytest.mark.parametrize(
    "host", ["smtp-broadcasts.postmarkapp.com", "email-smtp.eu-west-1.amazonaws.com", "localhost"]
)
def test_broadcast_stream_and_other_hosts_do_not_warn_about_the_stream(host: str) -> None:
    settings = Settings(smtp_host=host, **POSTMARK)
    assert Problem.TRANSACTIONAL_STREAM not in [f.problem for f in offline_checks(settings, TODAY)]


# -- how `feedback` would sign in to the mailbox ---------------------------------------------

SES = dict(
    smtp_host="email-smtp.eu-west-1.amazonaws.com",
    smtp_username="AKIAEXAMPLEACCESSKEY",
    smtp_password="ses-smtp-secret",
    smtp_auth="password",
)


def _feedback(settings: Settings) -> list[Problem]:
    return [
        f.problem for f in offline_checks(settings, TODAY) if f.where.startswith("NEWSLETTER_IMAP")
    ]


def test_a_microsoft_365_mailbox_behind_a_relay_cannot_be_read_and_doctor_says_so() -> None:
    settings = Settings(**SES, imap_host="outlook.office365.com", imap_username="news@x.org")
    [finding] = [f for f in offline_checks(settings, TODAY) if f.where == "NEWSLETTER_IMAP_HOST"]
    assert finding.status == Status.WARN  # feedback, not the send: doctor can still say READY
    assert finding.problem == Problem.FEEDBACK_PASSWORD_REFUSED
    assert "refuses" in finding.message and "NEWSLETTER_IMAP_HOST=" in finding.fix
    # With an IMAP password of its own it is still a password: still refused.
    assert _feedback(replace(settings, imap_password="pw")) == [Problem.FEEDBACK_PASSWORD_REFUSED]
    # `check` is about the send: it leaves the mailbox's sign-in to doctor.
    assert not [f for f in for_check(settings, TODAY) if f.where.startswith("NEWSLETTER_IMAP")]


def test_microsoft_365_over_oauth_reads_the_mailbox_with_the_smtp_sign_in() -> None:
    settings = Settings(smtp_host="smtp.office365.com", oauth_client_id="id")
    assert _feedback(settings) == []  # the derived outlook.office365.com, XOAUTH2


def test_the_relays_smtp_login_is_not_the_mailboxs() -> None:
    settings = Settings(**SES, imap_host="imap.gmail.com")
    assert _feedback(settings) == [Problem.FEEDBACK_RELAY_ACCOUNT]
    named = replace(settings, imap_username="news@x.org")
    [finding] = [f for f in offline_checks(named, TODAY) if f.where.startswith("NEWSLETTER_IMAP")]
    assert finding.where == "NEWSLETTER_IMAP_PASSWORD"  # the relay's password would be used
    own = replace(named, imap_password="abcd efgh ijkl mnop")
    assert _feedback(own) == []


def test_a_google_mailbox_takes_only_an_app_password() -> None:
    settings = Settings(**SES, imap_host="imap.gmail.com", imap_username="news@x.org")
    assert _feedback(replace(settings, imap_password="Hunter2!")) == [Problem.FEEDBACK_APP_PASSWORD]


def test_no_mailbox_or_an_own_server_says_nothing() -> None:
    assert _feedback(Settings(**SES)) == []  # no IMAP host: feedback reads no mailbox
    own = Settings(smtp_host="mail.x.org", smtp_username="news", smtp_password="pw")
    assert _feedback(replace(own, imap_host="mail.x.org")) == []
