"""The documentation pages messages send the reader to, by their path in the checkout.

One member per page, so a message names a page that exists: tests/docs/test_doc_links.py
checks that every ``docs/….md`` path in the code is a page of docs/, and that no message
sends the reader to the read-me file (an introduction now, not the reference).
"""

from __future__ import annotations

from enum import StrEnum


class DocPage(StrEnum):
    IT = "docs/it/index.md"  # for the IT person: app registrations, relays, DNS
    MICROSOFT_365 = "docs/it/microsoft-365.md"  # Entra ID app registration, SMTP AUTH, Send As
    GOOGLE = "docs/it/google.md"  # Google Cloud OAuth client, Workspace app access
    DNS = "docs/it/dns.md"  # SPF, DKIM, DMARC records of the sending domain
    SETTINGS = "docs/reference/settings.md"  # every NEWSLETTER_* setting
    CHECKS = "docs/reference/checks.md"  # every check id and what to do about it
    TROUBLESHOOTING = "docs/troubleshooting.md"

    @classmethod
    def for_provider(cls, provider: str) -> DocPage:
        """The IT page of a sign-in provider ("microsoft", "google"), else the IT index."""
        return {"microsoft": cls.MICROSOFT_365, "google": cls.GOOGLE}.get(provider, cls.IT)
