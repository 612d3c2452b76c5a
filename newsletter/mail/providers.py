"""What we know about the mail providers a chair sends through: which one a domain uses
(from its MX records or the SMTP host), how to connect and sign in, which SPF include and
DKIM selectors prove the mail is theirs, and Microsoft's end of passwords for SMTP.

Facts, not checks: ``newsletter setup`` fills settings from them, the pre-flight checks and
``newsletter doctor`` compare DNS and settings against them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from ..common.docs import DocPage


class Provider(StrEnum):
    MICROSOFT365 = "microsoft365"
    GOOGLE = "google"
    AMAZON_SES = "ses"
    POSTMARK = "postmark"
    MAILGUN = "mailgun"
    OTHER = "other"


@dataclass(frozen=True)
class ProviderInfo:
    provider: Provider
    label: str
    smtp_host: str  # "" for OTHER: the chair's relay
    smtp_port: int
    smtp_security: str
    auth: str  # "oauth2" or "password"
    oauth_provider: str  # NEWSLETTER_OAUTH_PROVIDER for OAuth providers
    imap_host: str  # the mailbox's IMAP server, "" when the provider has no mailbox
    # The SPF include that authorises the provider's servers ("" : unknown, the relay's own).
    spf_include: str
    # DKIM selectors the provider signs with under the chair's domain (empty: chosen per
    # account, e.g. Amazon SES's tokens: ask with --dkim-selector).
    dkim_selectors: tuple[str, ...]
    # The envelope sender (MAIL FROM, what SPF checks) is the chair's own address, so SPF
    # can align with From; relays use a bounce domain of theirs unless set up otherwise.
    spf_aligns: bool
    # Where the provider's page says how to switch DKIM on for the domain.
    dkim_how: str


PROVIDERS: dict[Provider, ProviderInfo] = {
    Provider.MICROSOFT365: ProviderInfo(
        Provider.MICROSOFT365, "Microsoft 365", "smtp.office365.com", 587, "starttls",
        "oauth2", "microsoft", "outlook.office365.com", "spf.protection.outlook.com",
        ("selector1", "selector2"), True,
        "Microsoft Defender portal, Email authentication settings, DKIM: publish the two "
        "CNAME records it shows, then enable signing",
    ),
    Provider.GOOGLE: ProviderInfo(
        Provider.GOOGLE, "Google Workspace", "smtp.gmail.com", 587, "starttls", "oauth2",
        "google", "imap.gmail.com", "_spf.google.com", ("google",), True,
        "Google Admin console, Apps, Gmail, Authenticate email: generate the key, publish "
        "it, then start authentication",
    ),
    Provider.AMAZON_SES: ProviderInfo(
        Provider.AMAZON_SES, "Amazon SES", "email-smtp.eu-west-1.amazonaws.com", 587,
        "starttls", "password", "", "", "amazonses.com", (), False,
        "Amazon SES console, Identities, your domain: Easy DKIM publishes three CNAME "
        "records",
    ),
    Provider.POSTMARK: ProviderInfo(
        # The Broadcast message stream's host: a bulletin is a broadcast (the transactional
        # host, POSTMARK_TRANSACTIONAL_HOST, is for one-to-one mail only).
        Provider.POSTMARK, "Postmark", "smtp-broadcasts.postmarkapp.com", 587, "starttls",
        "password",
        "", "", "spf.mtasv.net", (), False,
        "Postmark, Sender Signatures, your domain: publish the DKIM TXT record it shows",
    ),
    Provider.MAILGUN: ProviderInfo(
        Provider.MAILGUN, "Mailgun", "smtp.mailgun.org", 587, "starttls", "password", "", "",
        "mailgun.org", ("smtp", "mx", "k1", "pic", "krs"), False,
        "Mailgun, Sending, Domains, DNS records: publish the DKIM TXT record it shows",
    ),
    Provider.OTHER: ProviderInfo(
        Provider.OTHER, "your mail server", "", 587, "starttls", "password", "", "", "", (),
        True, "ask whoever runs your mail server for the DKIM record to publish",
    ),
}  # fmt: skip

# The relays `setup` offers when the domain's own mail is neither Microsoft 365 nor Google.
RELAYS = (Provider.AMAZON_SES, Provider.POSTMARK, Provider.MAILGUN, Provider.OTHER)

# MX host suffixes: Microsoft 365's classic and DNSSEC-signed mail exchangers; Google's.
_MX = (
    ("mail.protection.outlook.com", Provider.MICROSOFT365),
    ("mx.microsoft", Provider.MICROSOFT365),
    ("aspmx.l.google.com", Provider.GOOGLE),
    ("googlemail.com", Provider.GOOGLE),
    ("smtp.google.com", Provider.GOOGLE),
    ("google.com", Provider.GOOGLE),
)
# SMTP host suffixes of each provider's submission servers.
_SMTP = (
    ("office365.com", Provider.MICROSOFT365),
    ("outlook.com", Provider.MICROSOFT365),
    ("gmail.com", Provider.GOOGLE),
    ("googlemail.com", Provider.GOOGLE),
    ("amazonaws.com", Provider.AMAZON_SES),
    ("postmarkapp.com", Provider.POSTMARK),
    ("mailgun.org", Provider.MAILGUN),
)


def _under(host: str, suffix: str) -> bool:
    host = host.lower().rstrip(".")
    return host == suffix or host.endswith("." + suffix)


def provider_from_mx(hosts: list[str] | tuple[str, ...]) -> Provider:
    """Who receives the domain's mail, from its MX host names (most preferred first)."""
    for host in hosts:
        for suffix, provider in _MX:
            if _under(host, suffix):
                return provider
    return Provider.OTHER


def provider_from_smtp_host(host: str) -> Provider:
    """Who carries the mail, from NEWSLETTER_SMTP_HOST (OTHER: a relay we do not know)."""
    for suffix, provider in _SMTP:
        if _under(host, suffix):
            return provider
    return Provider.OTHER


# IMAP host suffixes of the mailbox providers (the relays have no mailbox to read).
_IMAP = (
    ("office365.com", Provider.MICROSOFT365),
    ("outlook.com", Provider.MICROSOFT365),
    ("gmail.com", Provider.GOOGLE),
    ("googlemail.com", Provider.GOOGLE),
)


def provider_from_imap_host(host: str) -> Provider:
    """Whose mailbox NEWSLETTER_IMAP_HOST is (OTHER: one we do not know)."""
    for suffix, provider in _IMAP:
        if _under(host, suffix):
            return provider
    return Provider.OTHER


def info(provider: Provider) -> ProviderInfo:
    return PROVIDERS[provider]


# Postmark keeps transactional and broadcast mail on separate streams and infrastructure; its
# terms put newsletters and other bulk mail on a Broadcast stream, whose SMTP host is
# PROVIDERS[POSTMARK].smtp_host. This one carries the Transactional stream only.
POSTMARK_TRANSACTIONAL_HOST = "smtp.postmarkapp.com"
POSTMARK_STREAM_CREDENTIALS = (
    "the SMTP username and password are the Broadcast stream's SMTP token (Postmark: your "
    "server, the Broadcast stream, Settings: the Access Key is the username, the Secret Key "
    "the password), not the Server API token"
)


class MessageStream(StrEnum):
    """Which of a relay's streams an SMTP host carries, where the relay has several."""

    NOT_APPLICABLE = "not-applicable"  # not a relay with separate streams
    BROADCAST = "broadcast"
    TRANSACTIONAL = "transactional"  # bulk mail there breaks the relay's terms


def message_stream(smtp_host: str) -> MessageStream:
    """The Postmark stream NEWSLETTER_SMTP_HOST sends on (by its host name)."""
    if provider_from_smtp_host(smtp_host) != Provider.POSTMARK:
        return MessageStream.NOT_APPLICABLE
    if _under(smtp_host, POSTMARK_TRANSACTIONAL_HOST):
        return MessageStream.TRANSACTIONAL
    return MessageStream.BROADCAST


# Microsoft turns Basic authentication (passwords) for SMTP AUTH off by default for existing
# tenants at the end of December 2026 (message center MC786329, update of 27 January 2026);
# refused clients get 535 5.7.139 or 550 5.7.30. New tenants never have it.
BASIC_AUTH_CUTOFF = dt.date(2027, 1, 1)  # the first day passwords are refused
BASIC_AUTH_CUTOFF_TEXT = "the end of December 2026"
IT_PAGE = f"see {DocPage.MICROSOFT_365}"


class BasicAuth(StrEnum):
    """Where a Microsoft 365 password sign-in stands on a given day."""

    NOT_AFFECTED = "not-affected"  # not Microsoft 365, or not a password
    ENDING = "ending"  # still accepted, refused from BASIC_AUTH_CUTOFF on
    ENDED = "ended"


def basic_auth_state(smtp_host: str, auth_mode: str, today: dt.date) -> BasicAuth:
    """Microsoft 365 with a password: ENDING before the cut-off, ENDED on and after it."""
    if auth_mode != "password" or provider_from_smtp_host(smtp_host) != Provider.MICROSOFT365:
        return BasicAuth.NOT_AFFECTED
    return BasicAuth.ENDED if today >= BASIC_AUTH_CUTOFF else BasicAuth.ENDING


SIGN_IN_GUIDANCE = (
    "ask your IT person to register the app (" + IT_PAGE + "), set NEWSLETTER_SMTP_AUTH=oauth2 "
    "and NEWSLETTER_OAUTH_CLIENT_ID (newsletter setup asks for them), then run newsletter login"
)
