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
