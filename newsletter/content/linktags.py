"""Optional UTM tags on every http(s) link, so the website's analytics can see the bulletin.

Never on mailto: or other schemes, and never on a link that already carries utm_ parameters
(the author chose those on purpose).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from ..common.config import Settings


@dataclass(frozen=True)
class LinkTagger:
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def off(cls) -> LinkTagger:
        return cls()

    @classmethod
    def for_issue(cls, slug: str, *, source: str, medium: str, campaign: str) -> LinkTagger:
        pairs = (
            ("utm_source", source),
            ("utm_medium", medium),
            ("utm_campaign", campaign.replace("{slug}", slug)),
        )
        return cls(tuple((k, v) for k, v in pairs if v))

    def tag(self, href: str) -> str:
        if not self.params or not href.lower().startswith(("http://", "https://")):
            return href
        parts = urlsplit(href)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if any(key.lower().startswith("utm_") for key, _ in query):
            return href
        extra = urlencode(self.params)
        new_query = f"{parts.query}&{extra}" if parts.query else extra
        return urlunsplit(parts._replace(query=new_query))


# Here rather than in campaign.py: ``render``/``preview`` need them, and importing the campaign
# would load the message builder, the CSV reader and email-validator into every fresh render.
def view_online_url(settings: Settings, slug: str) -> str:
    # The slug is the file name, which may hold spaces ("Jan News 2024"): percent-encoded,
    # or the text part's link stopped at the first space.
    if not settings.archive_url:
        return ""
    return f"{settings.archive_url.rstrip('/')}/{quote(slug)}.html"


def link_tagger(settings: Settings, slug: str) -> LinkTagger:
    if not settings.utm:
        return LinkTagger.off()
    return LinkTagger.for_issue(
        slug,
        source=settings.utm_source,
        medium=settings.utm_medium,
        campaign=settings.utm_campaign,
    )
