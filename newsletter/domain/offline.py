"""The two checks that need no network: ``settings`` (everything a send needs is set and is
not a placeholder) and ``smtp-auth`` (how the mailbox signs in, and whether the provider
still takes that: Microsoft 365 refuses passwords from the end of December 2026)."""

from __future__ import annotations

import datetime as dt
from email.utils import parseaddr
from pathlib import Path

from ..common.config import LOCAL_HOSTS, Settings
from ..common.passwords import KeyringUnavailable, read_password
from ..mail.imap import derived_host
from ..mail.providers import (
    BASIC_AUTH_CUTOFF,
    BASIC_AUTH_CUTOFF_TEXT,
    POSTMARK_STREAM_CREDENTIALS,
    PROVIDERS,
    SIGN_IN_GUIDANCE,
    BasicAuth,
    MessageStream,
    Provider,
    basic_auth_state,
    message_stream,
    provider_from_imap_host,
    provider_from_smtp_host,
)
from .findings import CheckId, Finding, Problem, Status, failed, passed, skipped, warned

PLACEHOLDER_DOMAINS = ("example.org", "example.com", "example.net")
SECRET_MIN = 16
SETUP = "run newsletter setup, or set it in .env"


def placeholder(value: str) -> bool:
    """An address, URL or host on example.org/.com/.net (the .env.example values)."""
    host = value.rpartition("@")[2] if "@" in value else value.split("://")[-1]
    host = host.split("/")[0].split("?")[0].strip(" >").lower()
    return any(host == d or host.endswith("." + d) for d in PLACEHOLDER_DOMAINS)


def sender_address(settings: Settings, organisation_email: str = "") -> str:
    """The From address: NEWSLETTER_FROM's, else the organisation's email."""
    return parseaddr(settings.from_)[1] if settings.from_ else organisation_email


def check_settings(
    settings: Settings,
    *,
    organisation_email: str = "",
    keyring_read=read_password,  # noqa: ANN001 - (host, username) -> password
) -> list[Finding]:
    """One finding per missing or placeholder setting; one pass when all is set."""
    found: list[Finding] = []

    def missing(setting: str, what: str, fix: str = SETUP) -> None:
        found.append(
            failed(CheckId.SETTINGS, Problem.MISSING_SETTING, f"{what} is not set", fix, setting)
        )

    def example(setting: str, value: str) -> None:
        found.append(
            failed(
                CheckId.SETTINGS,
                Problem.PLACEHOLDER_SETTING,
                f"{value!r} is a placeholder (example.org/.com/.net)",
                "set your organisation's own value: newsletter setup",
                setting,
            )
        )

    if not settings.smtp_host:
        missing("NEWSLETTER_SMTP_HOST", "the SMTP server")
    elif placeholder(settings.smtp_host):
        example("NEWSLETTER_SMTP_HOST", settings.smtp_host)
    address = sender_address(settings, organisation_email)
    if not address:
        missing("NEWSLETTER_FROM", "the From address")
    elif placeholder(address):
        example("NEWSLETTER_FROM", address)
    if not settings.test_to:
        missing("NEWSLETTER_TEST_TO", "the address test copies go to")
    elif placeholder(settings.test_to):
        example("NEWSLETTER_TEST_TO", settings.test_to)
    if not (settings.unsubscribe_url or settings.unsubscribe_mailto):
        missing(
            "NEWSLETTER_UNSUBSCRIBE_MAILTO",
            "an unsubscribe address or page (NEWSLETTER_UNSUBSCRIBE_MAILTO or _URL)",
        )
    for name, value in (
        ("NEWSLETTER_UNSUBSCRIBE_URL", settings.unsubscribe_url),
        ("NEWSLETTER_UNSUBSCRIBE_MAILTO", settings.unsubscribe_mailto),
    ):
        if value and placeholder(value):
            example(name, value)
    secret = settings.secret
    if settings.unsubscribe_url and (
        len(secret) < SECRET_MIN or secret.lower().startswith(("change-me", "changeme"))
    ):
        found.append(
            failed(
                CheckId.SETTINGS,
                Problem.WEAK_SECRET,
                "NEWSLETTER_SECRET is missing, short or a placeholder: unsubscribe links "
                "could be forged",
                "newsletter setup writes a fresh random one",
                "NEWSLETTER_SECRET",
            )
        )
    if not Path(settings.recipients).is_file():
        found.append(
            failed(
                CheckId.SETTINGS,
                Problem.NO_MEMBERS_LIST,
                f"the members list {settings.recipients} is not there",
                "export the members' list as CSV and set NEWSLETTER_RECIPIENTS to it "
                "(newsletter setup asks)",
                "NEWSLETTER_RECIPIENTS",
            )
        )
    found.extend(_sign_in_settings(settings, keyring_read))
    return found or [passed(CheckId.SETTINGS, "everything a send needs is set")]


def _sign_in_settings(settings: Settings, keyring_read) -> list[Finding]:  # noqa: ANN001
    if not settings.smtp_host or settings.smtp_oauth_token_command:
        return []
    mode = settings.auth_mode
    if mode == "oauth2" and not settings.oauth_client_id:
        return [
            failed(
                CheckId.SETTINGS,
                Problem.MISSING_SETTING,
                "the app registration for signing in (OAuth 2.0) is not set",
                "ask your IT person for the application (client) ID; newsletter setup records it",
                "NEWSLETTER_OAUTH_CLIENT_ID",
            )
        ]
    if mode != "password" or not settings.smtp_username or settings.smtp_password:
        return []
    if settings.password_in_keyring:
        try:
            stored = keyring_read(settings.smtp_host, settings.smtp_username)
            why = "" if stored else "no password is stored there"
        except KeyringUnavailable as error:
            why = f"the keyring cannot be read ({error})"
        if why:
            return [
                failed(
                    CheckId.SETTINGS,
                    Problem.MISSING_SETTING,
                    f"the SMTP password is to come from the keyring, but {why}",
                    "unlock the keyring, or store the password again: newsletter setup",
                    "NEWSLETTER_PASSWORD_STORE",
                )
            ]
        return []
    return [
        failed(
            CheckId.SETTINGS,
            Problem.MISSING_SETTING,
            f"the password of {settings.smtp_username} is not set",
            "newsletter setup stores it in the keyring (or set NEWSLETTER_SMTP_PASSWORD)",
            "NEWSLETTER_SMTP_PASSWORD",
        )
    ]


def check_smtp_auth(settings: Settings, today: dt.date) -> Finding:
    """How the send signs in, and whether the provider takes it on ``today``."""
    if not settings.smtp_host:
        return skipped(CheckId.SMTP_AUTH, "no SMTP server set", Problem.MISSING_SETTING)
    mode = settings.auth_mode
    state = basic_auth_state(settings.smtp_host, mode, today)
    if state == BasicAuth.ENDED:
        return failed(
            CheckId.SMTP_AUTH,
            Problem.BASIC_AUTH_ENDED,
            f"Microsoft 365 refuses passwords for SMTP since {BASIC_AUTH_CUTOFF_TEXT} "
            "(535 5.7.139): this set-up cannot send",
            f"sign in with OAuth 2.0 instead: {SIGN_IN_GUIDANCE}",
            "NEWSLETTER_SMTP_AUTH",
        )
    if state == BasicAuth.ENDING:
        days = (BASIC_AUTH_CUTOFF - today).days
        return warned(
            CheckId.SMTP_AUTH,
            Problem.BASIC_AUTH_ENDING,
            f"Microsoft 365 stops taking passwords for SMTP at {BASIC_AUTH_CUTOFF_TEXT} "
            f"({days} day{'s' * (days != 1)} from now; message center MC786329): from then "
            "on every send is refused",
            f"switch to OAuth 2.0 now (registering the app takes your IT person days): "
            f"{SIGN_IN_GUIDANCE}",
            "NEWSLETTER_SMTP_AUTH",
        )
    provider = provider_from_smtp_host(settings.smtp_host)
    if mode == "password" and provider == Provider.GOOGLE:
        password = settings.smtp_password.replace(" ", "")
        if not (len(password) == 16 and password.isalpha() and password.islower()):
            return warned(
                CheckId.SMTP_AUTH,
                Problem.APP_PASSWORD,
                "Google takes only an app password for SMTP (16 letters), not the account's "
                "own password",
                "create one (Google Account, Security, App passwords; needs 2-Step "
                "Verification) and store it with newsletter setup, or sign in with OAuth "
                "2.0: NEWSLETTER_SMTP_AUTH=oauth2, then newsletter login",
                "NEWSLETTER_SMTP_PASSWORD",
            )
        return passed(CheckId.SMTP_AUTH, "signs in to Google with an app password")
    if mode == "oauth2":
        how = "a token command" if settings.smtp_oauth_token_command else "newsletter login"
        return passed(CheckId.SMTP_AUTH, f"signs in with OAuth 2.0 ({how})")
    if mode == "none" or not settings.smtp_username:
        local = settings.smtp_host in LOCAL_HOSTS
        return Finding(
            CheckId.SMTP_AUTH,
            Status.PASS if local else Status.WARN,
            f"sends to {settings.smtp_host} without signing in",
            ""
            if local
            else "most providers refuse mail from a client that does not sign in: "
            "set NEWSLETTER_SMTP_USERNAME (newsletter setup asks)",
            Problem.NONE if local else Problem.MISSING_SETTING,
            "NEWSLETTER_SMTP_USERNAME",
        )
    return passed(
        CheckId.SMTP_AUTH,
        f"signs in with a password over {settings.smtp_security} as {settings.smtp_username}",
    )


def check_stream(settings: Settings) -> list[Finding]:
    """A warning when the SMTP host carries only a relay's transactional mail (Postmark's
    smtp.postmarkapp.com): a bulletin to every member there breaks the relay's terms."""
    if message_stream(settings.smtp_host) is not MessageStream.TRANSACTIONAL:
        return []
    broadcast = PROVIDERS[Provider.POSTMARK].smtp_host
    return [
        warned(
            CheckId.SETTINGS,
            Problem.TRANSACTIONAL_STREAM,
            f"{settings.smtp_host} is Postmark's transactional stream: a bulletin to every "
            "member is bulk mail, which Postmark's terms put on a Broadcast stream",
            f"set NEWSLETTER_SMTP_HOST={broadcast} and use the Broadcast stream's SMTP "
            f"token: {POSTMARK_STREAM_CREDENTIALS} (newsletter setup --provider postmark)",
            "NEWSLETTER_SMTP_HOST",
        )
    ]


_RELAYS = (Provider.AMAZON_SES, Provider.POSTMARK, Provider.MAILGUN)
_IMAP_WITH_RELAY = (
    "OAuth 2.0 sign-in to IMAP comes only with the SMTP sign-in (NEWSLETTER_SMTP_AUTH=oauth2 "
    "and newsletter login, sending through the mailbox's provider itself)"
)


def _app_password(password: str) -> bool:
    """Looks like a Google app password: 16 lower-case letters (shown in groups of four)."""
    password = password.replace(" ", "")
    return len(password) == 16 and password.isalpha() and password.islower()


def check_feedback_sign_in(settings: Settings) -> list[Finding]:
    """How ``newsletter feedback`` would sign in to the mailbox, where it cannot work: a
    password to Microsoft 365 (which takes none over IMAP), a Google account's own password
    (it takes only an app password), a relay's SMTP login used for the mailbox. Nothing
    when no mailbox is set or the sign-in is OAuth 2.0."""
    host = settings.imap_host or derived_host(settings.smtp_host)
    if not host or (settings.auth_mode == "oauth2" and not settings.imap_password):
        return []  # no mailbox to read, or XOAUTH2 with the SMTP sign-in's tokens
    mailbox = provider_from_imap_host(host)
    where = "NEWSLETTER_IMAP_HOST"
    if mailbox is Provider.MICROSOFT365:
        return [
            warned(
                CheckId.SETTINGS,
                Problem.FEEDBACK_PASSWORD_REFUSED,
                f"newsletter feedback would sign in to the Microsoft 365 mailbox ({host}) with "
                "a password, which Microsoft 365 refuses for IMAP: it cannot read bounces, "
                "complaints or unsubscribe requests there",
                f"{_IMAP_WITH_RELAY}; this program cannot sign in to IMAP alone with OAuth. "
                "With a relay, set NEWSLETTER_IMAP_HOST= (empty): feedback then still acts on "
                "the addresses refused during the send, and the rest is read in the mailbox "
                "or the relay's console by hand",
                where,
            )
        ]
    relay = provider_from_smtp_host(settings.smtp_host) in _RELAYS
    if relay and not (settings.imap_username and settings.imap_password):
        # Each defaults to the SMTP one, which for a relay is its own login, no mailbox's.
        unset = "NEWSLETTER_IMAP_USERNAME" if not settings.imap_username else ""
        return [
            warned(
                CheckId.SETTINGS,
                Problem.FEEDBACK_RELAY_ACCOUNT,
                f"newsletter feedback would sign in to the mailbox at {host} with the relay's "
                f"SMTP {'username' if unset else 'password'}, which is not the mailbox's",
                "set NEWSLETTER_IMAP_USERNAME to the mailbox's address and "
                "NEWSLETTER_IMAP_PASSWORD to its password (newsletter setup asks for the "
                "username)",
                unset or "NEWSLETTER_IMAP_PASSWORD",
            )
        ]
    password = settings.imap_password or settings.smtp_password
    if mailbox is Provider.GOOGLE and password and not _app_password(password):
        return [
            warned(
                CheckId.SETTINGS,
                Problem.FEEDBACK_APP_PASSWORD,
                f"newsletter feedback would sign in to the Google mailbox ({host}) with a "
                "password that is not an app password, which Google refuses for IMAP",
                "create an app password for the mailbox (Google Account, Security, App "
                "passwords; needs 2-Step Verification) and set it as NEWSLETTER_IMAP_PASSWORD",
                "NEWSLETTER_IMAP_PASSWORD",
            )
        ]
    return []


def offline_checks(
    settings: Settings, today: dt.date, *, organisation_email: str = ""
) -> list[Finding]:
    """``settings`` (and the relay's stream), then ``smtp-auth``, as ``doctor`` shows them."""
    return [
        *check_settings(settings, organisation_email=organisation_email),
        *check_stream(settings),
        *check_feedback_sign_in(settings),
        check_smtp_auth(settings, today),
    ]


# Findings `check` already makes in its own words (placeholders, the secret, the members
# list, the unsubscribe link, the sign-in, the password a send needs: the send's own
# Settings.require_smtp) or that do not concern a send to the members (a relay taking mail
# without a sign-in may be the organisation's own: doctor's warning, not check's).
_CHECK_HAS_ITS_OWN = {
    "NEWSLETTER_SMTP_PASSWORD",
    "NEWSLETTER_PASSWORD_STORE",
    "NEWSLETTER_SMTP_USERNAME",
    "NEWSLETTER_FROM",
    "NEWSLETTER_TEST_TO",
    "NEWSLETTER_UNSUBSCRIBE_URL",
    "NEWSLETTER_UNSUBSCRIBE_MAILTO",
    "NEWSLETTER_SECRET",
    "NEWSLETTER_RECIPIENTS",
    "NEWSLETTER_OAUTH_CLIENT_ID",
    # How `feedback` signs in to the mailbox: not needed for a send.
    "NEWSLETTER_IMAP_HOST",
    "NEWSLETTER_IMAP_USERNAME",
    "NEWSLETTER_IMAP_PASSWORD",
}


def for_check(settings: Settings, today: dt.date) -> list[Finding]:
    """What ``check`` adds to its report: the sign-in and SMTP findings a send would stop
    on. Nothing before an SMTP server is set (``check`` then judges the issue alone)."""
    if not settings.smtp_host:
        return []
    return [
        f
        for f in offline_checks(settings, today)
        if f.status in (Status.FAIL, Status.WARN) and f.where not in _CHECK_HAS_ITS_OWN
    ]
