"""``newsletter doctor``: one report on whether a send will work and be trusted — the
set-up (settings, smtp-auth), the From domain's DNS (mx, spf, dkim, dmarc, alignment) and,
unless ``--no-send``, a real round trip (roundtrip.py). One verdict: fails or not."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from ..common.config import Settings
from ..domain.dns import Lookup
from ..domain.dnschecks import DNS_CHECKS, domain_checks
from ..domain.findings import CheckId, Finding, Status, skipped
from ..domain.offline import offline_checks, sender_address
from ..mail.providers import provider_from_smtp_host

ROUND_TRIP_CHECKS = (
    CheckId.ROUND_TRIP,
    CheckId.RECEIVED_SPF,
    CheckId.RECEIVED_DKIM,
    CheckId.RECEIVED_DMARC,
    CheckId.SIZE,
    CheckId.LIST_UNSUBSCRIBE,
)


@dataclass
class DoctorReport:
    findings: list[Finding] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(f.status == status for f in self.findings)

    @property
    def failed(self) -> bool:
        return self.count(Status.FAIL) > 0

    def verdict(self) -> str:
        fails, warns = self.count(Status.FAIL), self.count(Status.WARN)
        counts = f"{fails} failed, {warns} warning{'s' * (warns != 1)}"
        if fails:
            return f"NOT READY: {counts}. Fix what failed (each says how), then run doctor again."
        return f"READY: {counts}." + (" Read the warnings before the first send." if warns else "")


def organisation_email(settings: Settings) -> str:
    """organisation.toml's email, the From address when NEWSLETTER_FROM is not set."""
    from ..common.errors import NewsletterError
    from ..content.organisation import load_organisation

    try:
        return load_organisation(settings.templates_dir).email
    except NewsletterError:
        return ""


def envelope_domain(settings: Settings, from_address: str) -> str:
    """The domain of the mailbox the provider sends as (SPF's), default the From one."""
    account = settings.smtp_username if "@" in settings.smtp_username else ""
    if not account and settings.auth_mode == "oauth2":
        from ..signin.oauth import sending_account

        account = sending_account(settings)
    return (account or from_address).rpartition("@")[2].lower()


def run_doctor(
    settings: Settings,
    *,
    today: dt.date,
    lookup: Lookup | None = None,
    dkim_selectors: tuple[str, ...] = (),
    round_trip: Callable[[], list[Finding]] | None = None,
) -> DoctorReport:
    """Every check; ``round_trip`` (None: ``--no-send``) returns the round trip's findings."""
    org_email = organisation_email(settings)
    report = DoctorReport(offline_checks(settings, today, organisation_email=org_email))
    address = sender_address(settings, org_email)
    if "@" in address:
        domain = address.rpartition("@")[2].lower()
        report.findings += domain_checks(
            settings.dns_server,
            domain,
            provider_from_smtp_host(settings.smtp_host),
            envelope_domain=envelope_domain(settings, address),
            dkim_selectors=dkim_selectors or settings.dkim_selectors,
            lookup=lookup,
        )
    else:
        report.findings += [skipped(c, "no From address to check") for c in DNS_CHECKS]
    if round_trip is None:
        report.findings += [skipped(c, "not sent (--no-send)") for c in ROUND_TRIP_CHECKS]
    else:
        report.findings += round_trip()
    return report
