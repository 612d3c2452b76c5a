"""Checks of the settings: values still as .env.example ships them, a guessable secret, a
From address the sending account cannot use, a missing sign-in, and the set-up findings
``doctor`` makes too (the SMTP sign-in; with ``check --dns``, the From domain's DNS)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from ...common.docs import DocPage
from ...domain.findings import Finding as SetupFinding
from ...domain.findings import Problem, Status
from ..campaign import Campaign
from .findings import Check, Report, Severity

PLACEHOLDER_HOSTS = ("example.com", "example.org", "example.net")


# The values .env.example ships with (a test keeps this in step with the file).
ENV_EXAMPLE_PLACEHOLDERS = {
    "from_": "Cluster News <news@example.org>",
    "test_to": "chair@example.org",
    "unsubscribe_url": "https://example.org/unsubscribe?token={token}",
    "unsubscribe_mailto": "unsubscribe@example.org",
    "secret": "change-me-to-a-long-random-string",
    "smtp_host": "smtp.example.org",
}
SECRET_MIN = 16
_DOTTED_PLACEHOLDERS = tuple("." + host for host in PLACEHOLDER_HOSTS)
_DOMAIN_SETTINGS = ("from_", "reply_to", "unsubscribe_url", "unsubscribe_mailto")


def _setting_domain(value: str) -> str:
    if "://" in value:
        return (urlsplit(value).hostname or "").lower()
    address = value.rpartition("<")[2].rstrip(">").strip() if "<" in value else value
    return address.rpartition("@")[2].lower().strip()


def on_placeholder_domain(domain: str) -> bool:
    """``domain`` (lower case) is example.org/.com/.net or a host under one."""
    return domain in PLACEHOLDER_HOSTS or domain.endswith(_DOTTED_PLACEHOLDERS)


def placeholder_domain(value: str) -> str:
    """The placeholder domain (example.org/.com/.net, or a host under one) an address, URL
    or host name is on; "" when it is a real one. The rule ``check`` applies to settings."""
    domain = _setting_domain(value if "@" in value or "://" in value else f"@{value}")
    return domain if on_placeholder_domain(domain) else ""


def check_settings(campaign: Campaign, report: Report) -> None:
    """A setting left as the example ships it would send from, or unsubscribe members to,
    someone else's domain: an error, never READY."""
    from ...common.config import env_name

    settings = campaign.settings
    flagged: set[str] = set()
    for name, placeholder in ENV_EXAMPLE_PLACEHOLDERS.items():
        value = str(getattr(settings, name, "") or "")
        if value and value == placeholder:
            flagged.add(name)
            shown = "the secret" if name == "secret" else repr(value)
            report.add(
                Check.WEAK_SECRET if name == "secret" else Check.PLACEHOLDER_SETTING,
                Severity.ERROR,
                env_name(name),
                f"{shown} is still the placeholder from .env.example",
                "set your own value in .env",
            )
    for name in _DOMAIN_SETTINGS:
        value = str(getattr(settings, name, "") or "")
        domain = _setting_domain(value)
        if name in flagged or not domain:
            continue
        if on_placeholder_domain(domain):
            report.add(
                Check.PLACEHOLDER_SETTING,
                Severity.ERROR,
                env_name(name),
                f"{value!r} is on {domain}, a placeholder domain",
                "use your organisation's real address or web page",
            )
    secret = settings.secret
    if secret and "secret" not in flagged:
        if secret.lower().startswith(("change-me", "changeme")) or len(secret) < SECRET_MIN:
            problem = (
                "is a placeholder"
                if secret.lower().startswith(("change-me", "changeme"))
                else f"is only {len(secret)} characters (at least {SECRET_MIN} needed)"
            )
            report.add(
                Check.WEAK_SECRET,
                Severity.ERROR,
                "NEWSLETTER_SECRET",
                f"the secret {problem}: unsubscribe links could be forged",
                'generate one: python -c "import secrets; print(secrets.token_urlsafe(32))"',
            )


def check_sender(campaign: Campaign, report: Report, smtp_username: str) -> None:
    """A From address the account sending it may not use lands in spam or is refused."""
    from_domain = campaign.sender.domain
    if smtp_username and "@" in smtp_username:
        account_domain = smtp_username.rpartition("@")[2].lower()
        if account_domain != from_domain:
            report.add(
                Check.SENDER_DOMAIN,
                Severity.WARNING,
                "NEWSLETTER_FROM",
                f"From is on {from_domain} but the SMTP account is on {account_domain}",
                "SPF/DKIM alignment may fail (spam folder): send from the account's domain "
                "or authorise the server for yours",
            )
        elif (
            smtp_username.casefold() != campaign.sender.address.casefold()
            and campaign.settings.oauth_provider_name
        ):
            # Same domain, another mailbox: Microsoft 365 refuses every message without
            # Send As rights (554 5.2.252 SendAsDenied); Gmail replaces the From with the
            # account's own address unless it is a verified "Send mail as" alias.
            report.add(
                Check.SEND_AS,
                Severity.WARNING,
                "NEWSLETTER_FROM",
                f"From is {campaign.sender.address} but the mail goes out as "
                f"{smtp_username} (the signed-in or SMTP account)",
                "Microsoft 365 needs Send As rights on the From mailbox "
                f"(see {DocPage.MICROSOFT_365}, Send As) and Gmail a verified 'Send mail as' "
                "address, else it is refused or members see the account's address: send a "
                "--test copy first",
            )


def check_send_settings(campaign: Campaign, report: Report) -> None:
    """READY means a real send would start: every setting it needs to reach the server is
    there and usable (an SMTP host; a password for a username; a way to sign in; never
    credentials over an unencrypted connection). Each gap is an error naming the setting,
    as the send would stop on it (Settings.require_smtp, the send's own rule)."""
    from ...common.errors import ConfigError

    settings = campaign.settings
    if not settings.smtp_host:
        report.add(
            Check.SETTINGS_MISSING,
            Severity.ERROR,
            "NEWSLETTER_SMTP_HOST",
            "no SMTP server is set: a real send would stop at once",
            "set your organisation's sending server in .env, e.g. smtp.office365.com or "
            "smtp.gmail.com (see .env.example)",
        )
        return
    try:
        settings.require_smtp()
    except ConfigError as error:
        report.add(
            Check.SETTINGS_MISSING,
            Severity.ERROR,
            error.setting or "settings",
            f"{error.message}: a real send would stop at once",
            error.hint or "",
        )


def setup_id(problem: Problem) -> Check:
    """The id a set-up problem (newsletter.domain) has in this report: the problem's own
    words, so a script can key on either, but for a missing setting, which is this report's
    own settings-missing. (ValueError for the round trip's problems: doctor's only.)"""
    if problem is Problem.MISSING_SETTING:
        return Check.SETTINGS_MISSING
    return Check(problem.value)


def check_setup(report: Report, findings: Sequence[SetupFinding]) -> None:
    """The set-up findings (:mod:`newsletter.domain`, as ``doctor`` makes them) in this
    report: a failure is an error, a warning a warning, each under its problem's id."""
    for finding in findings:
        if finding.status in (Status.FAIL, Status.WARN):
            report.add(
                setup_id(finding.problem),
                Severity.ERROR if finding.status is Status.FAIL else Severity.WARNING,
                finding.where or str(finding.check),
                finding.message,
                finding.fix,
            )
