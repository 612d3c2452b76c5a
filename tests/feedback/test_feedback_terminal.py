"""What anyone can write into the sending mailbox reaches the chair's terminal as text only.

`newsletter feedback` prints subjects, senders and bounce details taken from mail that
strangers write. Before the fix a subject with rich markup ("Re: [/] agenda") crashed the
command (rich's MarkupError, an internal error after the run had acted), "[link=…]" drew a
clickable link of the sender's choosing, and escape sequences (an OSC 8 hyperlink, a screen
clear) went to the terminal as they were. Real Dovecot, the CLI in-process.
"""

from __future__ import annotations

import os
from pathlib import Path

from support import dovecot
from support.helpers import newsletter

# RFC 2047 lets a sender put any byte in a subject: ESC (=1B) included.
HOSTILE_SUBJECT = (
    "=?utf-8?q?Re:_[/]_agenda_[link=3Dhttps://evil.example]minutes[/link]_"
    "=1B]8;;https://evil.example/=1B\\click=1B]8;;=1B\\_=1B[2Jdone?="
)


def test_a_hostile_subject_is_shown_as_text(project: Path, mailbox) -> None:
    mailbox.append(
        (
            "From: Someone <someone@example.com>\r\n"
            "To: news@wmhtc.co.uk\r\n"
            f"Subject: {HOSTILE_SUBJECT}\r\n"
            "Date: Fri, 15 Dec 2023 11:05:42 +0000\r\n"
            "Message-ID: <hostile-1@example.com>\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            "Hello\r\n"
        ).encode("ascii")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        NEWSLETTER_FROM="Cluster News <news@wmhtc.co.uk>",
        NEWSLETTER_SMTP_HOST="mail.example.org",
        **dovecot.imap_env(mailbox),
        COLUMNS="200",
    )
    result = newsletter(project, env, "feedback", "--dry-run", "--since", "2023-01-01")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "\x1b" not in result.stdout + result.stderr
    # The subject as the sender wrote it, markup and all, minus the control characters.
    assert "[/] agenda [link=https://evil.example]minutes[/link]" in result.stdout
    assert "[2Jdone" in result.stdout
