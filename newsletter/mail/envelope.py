"""The envelope: one finished message as the transport and the journal see it.

It lives in its own module, below everything, so that the journal and the SMTP
transport need not import the message builder (and with it the renderer, the CSV
reader and email-validator) just to name the type they are handed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Envelope:
    """A finished message, ready for SMTP DATA."""

    to: str  # envelope recipient (the member's address)
    row: int  # CSV row it came from (0 for test sends)
    message_id: str  # "<...@domain>", as in the Message-ID header
    data: bytes  # the whole message, CRLF line endings
    # True only where the maker guarantees that no line of ``data`` starts with "." (the
    # message builder writes "=2E" instead): SMTP then skips the dot-stuffing scan, a
    # ~100 µs pass over 80 KB per message. A wrong True could end a message early at a
    # line holding a lone ".", so the default is to scan.
    dot_safe: bool = False
