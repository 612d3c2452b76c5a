"""Checks of the rendered message: its size against Gmail's clip, and what the law asks of
every bulletin (an unsubscribe link in both parts, the sender's name and postal address)."""

from __future__ import annotations

import re

from ...common.limits import GMAIL_CLIP_BYTES, GMAIL_CLIP_KB, HTML_WARN_BYTES
from ..campaign import Campaign
from .findings import Check, Report, Severity


def check_size(campaign: Campaign, report: Report) -> None:
    size = campaign.rendered.html_bytes
    where = str(campaign.issue.path)
    if size > GMAIL_CLIP_BYTES:
        report.add(
            Check.HTML_SIZE,
            Severity.ERROR,
            where,
            f"the HTML is {size / 1024:.0f} KB; Gmail clips messages above {GMAIL_CLIP_KB} KB",
            "shorten the issue or move long pieces to the website",
        )
    elif size > HTML_WARN_BYTES:
        report.add(
            Check.HTML_SIZE,
            Severity.WARNING,
            where,
            f"the HTML is {size / 1024:.0f} KB, close to Gmail's {GMAIL_CLIP_KB} KB clip",
            "consider shortening the issue",
        )


def check_compliance(campaign: Campaign, report: Report) -> None:
    rendered, org = campaign.rendered, campaign.org
    if not campaign.sender.has_unsubscribe:
        report.add(
            Check.NO_UNSUBSCRIBE,
            Severity.ERROR,
            "NEWSLETTER_UNSUBSCRIBE_URL",
            "no unsubscribe link is configured",
            "set NEWSLETTER_UNSUBSCRIBE_URL (and NEWSLETTER_SECRET) "
            "or NEWSLETTER_UNSUBSCRIBE_MAILTO",
        )
    else:
        if "{email}" in campaign.sender.unsubscribe_url:
            report.add(
                Check.UNSUBSCRIBE_ADDRESS,
                Severity.WARNING,
                "NEWSLETTER_UNSUBSCRIBE_URL",
                "the unsubscribe URL carries the address in clear ({email}): spam filters "
                "score that and it lands in web-server logs",
                "use {token} alone (it carries the address and its HMAC); the page checks it "
                "with newsletter.members.unsubscribe.verify(token, secret)",
            )
        probe = "probe@example.invalid"
        target, header = campaign.sender.unsubscribe_target(probe)
        _, html, text = rendered.personalise({"email": probe, "unsubscribe_url": target})
        if target.replace("&", "&amp;") not in html or target not in text or not header:
            report.add(
                Check.UNSUBSCRIBE_NOT_SHOWN,
                Severity.ERROR,
                str(campaign.settings.templates_dir),
                "the unsubscribe link is missing from the footer of the HTML or text part",
                "keep {{ unsubscribe_url }} in partials/footer.mjml.j2 and email.txt.j2",
            )
    _, html, text = rendered.sample()
    # However the footer wraps or breaks them: compare with whitespace normalised.
    html_words, text_words = _words(_html_to_text(html)), _words(text)
    for label, value in (("organisation name", org.name), ("postal address", org.address)):
        parts = [_words(line.strip(" ,")) for line in value.splitlines() if line.strip(" ,")]
        if not all(part in text_words and part in html_words for part in parts):
            report.add(
                Check.IDENTITY,
                Severity.ERROR,
                str(campaign.settings.templates_dir / "organisation.toml"),
                f"the {label} is missing from the footer",
                "UK PECR / GDPR expect the sender's identity and address in every bulletin",
            )


def _words(value: str) -> str:
    return " ".join(value.split())


def _html_to_text(document: str) -> str:
    import html

    return html.unescape(re.sub(r"<[^>]+>", " ", document))
