"""What an SMTP server's words and a TLS library's errors mean, read in one place.

Parsing what a *remote* side said (reply codes and texts, OpenSSL's reasons and verify
codes) is input classification: it happens here, and what it found is returned as a typed
value. The sentences that tell the user what to do are made from that value
(``*_HINTS`` tables), so rewording one changes what is printed, never what is done.
Refusals of the *sender* during a send (quota, blocked account) are in :mod:`.refusals`.
"""

from __future__ import annotations

import re
from enum import Enum

from ..common.docs import DocPage

CREDENTIALS_HINT = "check NEWSLETTER_SMTP_USERNAME and NEWSLETTER_SMTP_PASSWORD"
ADDRESS_HINT = "check NEWSLETTER_SMTP_HOST and NEWSLETTER_SMTP_PORT"
SECURITY_HINT = (
    "check NEWSLETTER_SMTP_SECURITY and NEWSLETTER_SMTP_PORT "
    "(ssl is implicit TLS, usually port 465; starttls usually port 587)"
)
BASIC_AUTH_HINT = (
    "this server no longer accepts passwords: set NEWSLETTER_SMTP_AUTH=oauth2 and "
    f"NEWSLETTER_OAUTH_CLIENT_ID (see {DocPage.MICROSOFT_365} or {DocPage.GOOGLE}), "
    "then run newsletter login"
)
SMTP_AUTH_OFF_HINT = (
    "SMTP AUTH is switched off for this mailbox or tenant, for passwords and OAuth alike: "
    "ask your Microsoft 365 administrator to enable Authenticated SMTP for the mailbox "
    f"(see {DocPage.MICROSOFT_365}, Authenticated SMTP), then sign in with OAuth 2.0: "
    "set NEWSLETTER_SMTP_AUTH=oauth2 and run newsletter login"
)
APP_PASSWORD_HINT = (
    "Google wants an app password, not the account's password: create one (Google Account, "
    "Security, App passwords; needs 2-Step Verification) and set it as "
    "NEWSLETTER_SMTP_PASSWORD, or sign in with OAuth 2.0: set NEWSLETTER_SMTP_AUTH=oauth2 "
    "and run newsletter login"
)
SMTP_AUTH_OFF_OAUTH_HINT = (
    "SMTP AUTH is switched off for this mailbox or tenant, for passwords and OAuth alike "
    "(signing in again will not help): ask your Microsoft 365 administrator to enable "
    f"Authenticated SMTP for the mailbox (see {DocPage.MICROSOFT_365}, Authenticated SMTP)"
)
OAUTH_HINT = (
    "the mailbox refused the sign-in token: check that SMTP AUTH is enabled for the mailbox "
    "and that it is the signed-in account (NEWSLETTER_SMTP_USERNAME), or sign in again: "
    "newsletter login"
)
CERT_HINT = (
    "the server's certificate is not signed by an authority this computer trusts; "
    "set NEWSLETTER_SMTP_CAFILE if it uses a private CA (or a company proxy inspects TLS)"
)


# -- reply lines ----------------------------------------------------------------------------


def decode(raw: bytes | str) -> str:
    """A reply as text."""
    if isinstance(raw, str):
        return raw
    # Replies should be ASCII, but some servers answer in their own language and code page
    # ("Empfänger unbekannt" in Latin-1): show those words, not replacement characters.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def reply_text(code: int, resp: bytes | str) -> str:
    """A server reply as one printable line, its code first (``"550 5.1.1 unknown"``)."""
    text = decode(resp)
    if code == -1:
        # smtplib's code for a reply line that does not start with a number.
        return f"a reply that is not SMTP ({' '.join(text.split())[:80]!r})"
    # Multi-line replies come joined with newlines; journal and CLI want one line, without
    # control characters (an escape sequence in a reply would reach the terminal).
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(f"{code} {text}".split())


# -- a refused sign-in -------------------------------------------------------------------------


class AuthRefusal(Enum):
    """What the words of a refused sign-in (AUTH, 5xx) say is wrong."""

    SMTP_AUTH_OFF = "smtp-auth-off"  # Microsoft 365: SMTP AUTH off for the mailbox/tenant
    BAD_CREDENTIALS = "bad-credentials"
    APP_PASSWORD = "app-password"  # Google wants an app password
    POLICY = "policy"  # Entra ID security defaults or conditional access
    BASIC_AUTH_OFF = "basic-auth-off"  # passwords are switched off (by code)
    MAYBE_BASIC_AUTH_OFF = "maybe-basic-auth-off"  # Microsoft's 5.7.3: wrong, or switched off
    UNEXPLAINED = "unexplained"


# The words of a refused sign-in say more than its code: Microsoft's 5.7.139 covers a wrong
# password, SMTP AUTH switched off (which OAuth needs too) and security defaults; Google's
# 5.7.9 wants an app password, which works as well as OAuth. First match wins.
_AUTH_WORDS: tuple[tuple[re.Pattern[str], AuthRefusal], ...] = (
    (re.compile(r"SmtpClientAuthentication is disabled|smtp_auth_disabled", re.I),
     AuthRefusal.SMTP_AUTH_OFF),
    (re.compile(r"credentials were incorrect|password (?:and|or) username|"
                r"username and password not accepted|invalid credentials", re.I),
     AuthRefusal.BAD_CREDENTIALS),
    (re.compile(r"application-specific password|InvalidSecondFactor", re.I),
     AuthRefusal.APP_PASSWORD),
    (re.compile(r"security defaults|conditional access", re.I), AuthRefusal.POLICY),
    # Microsoft 365's "Basic authentication is disabled" replies; Google's "app password needed".
    (re.compile(r"\b5\.7\.(?:139|30|9)\b"), AuthRefusal.BASIC_AUTH_OFF),
    # Microsoft 365 answers 5.7.3 both to a wrong password and where passwords are switched off.
    (re.compile(r"\b5\.7\.3\b"), AuthRefusal.MAYBE_BASIC_AUTH_OFF),
)  # fmt: skip

AUTH_HINTS: dict[AuthRefusal, str] = {
    AuthRefusal.SMTP_AUTH_OFF: SMTP_AUTH_OFF_HINT,
    AuthRefusal.BAD_CREDENTIALS: CREDENTIALS_HINT,
    AuthRefusal.APP_PASSWORD: APP_PASSWORD_HINT,
    AuthRefusal.POLICY: (
        "your organisation's Entra ID policy blocks password sign-in for SMTP: "
        "ask your Microsoft 365 administrator, or sign in with OAuth 2.0: set "
        "NEWSLETTER_SMTP_AUTH=oauth2 and run newsletter login"
    ),
    AuthRefusal.BASIC_AUTH_OFF: BASIC_AUTH_HINT,
    AuthRefusal.MAYBE_BASIC_AUTH_OFF: f"{CREDENTIALS_HINT}; if they are right, {BASIC_AUTH_HINT}",
    AuthRefusal.UNEXPLAINED: CREDENTIALS_HINT,
}
# Signing in again does not enable SMTP AUTH: a refused token says so when the words do.
OAUTH_HINTS: dict[AuthRefusal, str] = {AuthRefusal.SMTP_AUTH_OFF: SMTP_AUTH_OFF_OAUTH_HINT}


def auth_refusal(reply: str) -> AuthRefusal:
    """What a refused sign-in's reply says is wrong."""
    return next((why for words, why in _AUTH_WORDS if words.search(reply)), AuthRefusal.UNEXPLAINED)


def sign_in_hint(reply: str, *, oauth: bool) -> str:
    """What to do about a refused password (``oauth=False``) or XOAUTH2 sign-in."""
    why = auth_refusal(reply)
    return OAUTH_HINTS.get(why, OAUTH_HINT) if oauth else AUTH_HINTS[why]


# -- a failed TLS handshake ---------------------------------------------------------------------


class TlsFailure(Enum):
    """What OpenSSL's reason for a failed handshake means here."""

    OUTDATED_VERSION = "outdated-version"  # the server offers only TLS 1.0/1.1
    STARTTLS_NOT_STARTED = "starttls-not-started"  # agreed to STARTTLS, went on in plain text
    PLAIN_TEXT_PORT = "plain-text-port"  # implicit TLS spoken to a plain-text port
    OTHER = "other"


TLS_HINTS: dict[TlsFailure, str] = {
    # Not a setting of ours: TLS 1.0/1.1 are refused by this computer, rightly.
    TlsFailure.OUTDATED_VERSION: (
        "the server offers only an outdated TLS version (1.0 or 1.1) that this computer "
        "refuses: ask its administrator to enable TLS 1.2 or later"
    ),
    # Never go on without TLS.
    TlsFailure.STARTTLS_NOT_STARTED: (
        "the server agreed to STARTTLS but did not start TLS (a broken server, or "
        "something on the way that strips encryption): tell its administrator; "
        "nothing was sent unencrypted"
    ),
    TlsFailure.PLAIN_TEXT_PORT: (
        "the server answered in plain text: for port 587 or 25 set "
        "NEWSLETTER_SMTP_SECURITY=starttls (ssl is for port 465)"
    ),
    TlsFailure.OTHER: SECURITY_HINT,
}


def tls_failure(reason: str, security: str) -> TlsFailure:
    """Classify OpenSSL's ``reason`` for a failed handshake under ``security``."""
    if "PROTOCOL_VERSION" in reason or "UNSUPPORTED_PROTOCOL" in reason:
        return TlsFailure.OUTDATED_VERSION
    plain = "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER" in reason.upper().replace(" ", "_")
    if plain:
        # Plain text where TLS records were expected: after STARTTLS, a server that did not
        # start TLS; else the usual sign of implicit TLS spoken to a plain-text port.
        return (
            TlsFailure.STARTTLS_NOT_STARTED
            if security == "starttls"
            else TlsFailure.PLAIN_TEXT_PORT
        )
    return TlsFailure.OTHER


class CertFailure(Enum):
    """Why the server's certificate was not accepted (by OpenSSL's verify code)."""

    OUT_OF_DATE = "out-of-date"  # not yet valid or expired: the clock, or the server
    OTHER_NAME = "other-name"  # issued for another host name or IP address
    UNTRUSTED = "untrusted"  # not signed by an authority this computer trusts


# OpenSSL's verify codes (X509_V_ERR_*) whose fix is not a CA file.
_CERT_CODES = {
    9: CertFailure.OUT_OF_DATE, 10: CertFailure.OUT_OF_DATE,  # not yet valid, expired
    62: CertFailure.OTHER_NAME, 64: CertFailure.OTHER_NAME,  # host name, IP address mismatch
}  # fmt: skip

CERT_HINTS: dict[CertFailure, str] = {
    CertFailure.OUT_OF_DATE: (
        "check this computer's date and time; if they are right, the server's "
        "certificate is out of date: tell its administrator (no setting here can fix it)"
    ),
    CertFailure.OTHER_NAME: (
        "the certificate is for another name: set NEWSLETTER_SMTP_HOST to the server "
        "name your provider gives (e.g. smtp.office365.com), not an IP address or an "
        "alias; a CA file cannot fix this"
    ),
    CertFailure.UNTRUSTED: CERT_HINT,
}


def cert_failure(verify_code: int | None) -> CertFailure:
    """Classify OpenSSL's verify code for a rejected certificate."""
    return _CERT_CODES.get(verify_code or 0, CertFailure.UNTRUSTED)
