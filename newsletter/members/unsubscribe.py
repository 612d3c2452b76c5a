"""Self-contained unsubscribe tokens: ``{token}`` alone identifies and authenticates a member.

A token is ``<address, urlsafe base64>.<HMAC-SHA256 of it under NEWSLETTER_SECRET, 128 bits,
urlsafe base64>``: no padding, only ``A-Z a-z 0-9 - _ .``, so it can sit in a URL path or
query unescaped. The address is encoded, not encrypted (the link is the member's own); what
matters is that nobody can forge a token for another address, and that the URL no longer
carries ``?email=`` in clear (spam filters score that, and it lands in web-server logs).

The web endpoint needs only this module (standard library) and the secret::

    from newsletter.members.unsubscribe import verify
    address = verify(request.args["token"], SECRET)   # None if forged or mangled
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

__all__ = ["make_token", "verify"]

_MAC_BYTES = 16  # 128 bits: forgery needs 2**128 guesses
_CONTEXT = b"newsletter-unsubscribe-v1\x00"  # a token can never be mistaken for another HMAC


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(payload: bytes, secret: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), _CONTEXT + payload, hashlib.sha256).digest()[
        :_MAC_BYTES
    ]


def make_token(address: str, secret: str) -> str:
    """The token for ``address`` (trimmed; case kept, so the page can show it as given)."""
    if not secret:
        raise ValueError("a secret is needed for unsubscribe tokens")
    payload = address.strip().encode("utf-8")
    return f"{_b64(payload)}.{_b64(_mac(payload, secret))}"


def verify(token: str, secret: str) -> str | None:
    """The address a genuine token was made for, or None (forged, truncated, wrong secret).

    Constant-time comparison; never raises on bad input, so a web handler can pass the raw
    query value straight in.
    """
    if not secret or not isinstance(token, str):
        return None
    encoded, dot, mac = token.strip().partition(".")
    if not dot or not encoded or not mac:
        return None
    try:
        payload = _unb64(encoded)
        given = _unb64(mac)
        address = payload.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    if not hmac.compare_digest(given, _mac(payload, secret)):
        return None
    return address if "@" in address else None
