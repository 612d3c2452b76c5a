"""Limits the mail world imposes, defined once for every module that checks or shows them."""

from __future__ import annotations

# Gmail clips an HTML part larger than this ("[Message clipped] View entire message"),
# hiding the rest of the issue and the unsubscribe link.
GMAIL_CLIP_BYTES = 102 * 1024
GMAIL_CLIP_KB = GMAIL_CLIP_BYTES // 1024  # for messages: "102 KB"
# Above this, `check` warns that the issue is getting close to the clip.
HTML_WARN_BYTES = 80 * 1024
# Inboxes show about this many characters of a subject line before cutting it.
SUBJECT_MAX = 60
# Above this many bytes of embedded pictures per message (base64 included), `check` warns:
# every member downloads them, and some servers refuse large messages.
EMBED_WARN_BYTES = 1024 * 1024


# Safe default pacing (messages per minute) for hosted mailboxes with per-minute limits;
# relays and ESPs default to unlimited. NEWSLETTER_RATE always wins.
PROVIDER_RATES = {
    "office365.com": 30.0,  # Microsoft 365: 30 messages a minute per mailbox
    "outlook.com": 30.0,
    "gmail.com": 20.0,  # Gmail / Workspace: daily caps; spread the load
    "googlemail.com": 20.0,
}


# Recipients a day per account (rolling 24 hours); NEWSLETTER_DAILY_LIMIT always wins.
PROVIDER_DAILY_LIMITS = {
    "office365.com": 10_000,  # Microsoft 365: 10,000 recipients a day
    "outlook.com": 10_000,
    "gmail.com": 2_000,  # Google Workspace: 2,000 a day (consumer Gmail: 500)
    "googlemail.com": 2_000,
}


def provider_rate(host: str) -> float:
    host = host.lower().rstrip(".")
    for domain, rate in PROVIDER_RATES.items():
        if host == domain or host.endswith("." + domain):
            return rate
    return 0.0


def provider_daily_limit(host: str) -> int:
    host = host.lower().rstrip(".")
    for domain, limit in PROVIDER_DAILY_LIMITS.items():
        if host == domain or host.endswith("." + domain):
            return limit
    return 0
