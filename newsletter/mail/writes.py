"""Writing a message to the server so that a write cut short still tells what went out.

With pipelining across messages (:mod:`.smtp`), the next message's MAIL, RCPT and DATA are
written behind a message's final ".": a write that fails (a server that stops reading)
may fail after the "." went out, and then the server may keep the message. smtplib's
``sendall`` cannot tell; :func:`send_counted` can.
"""

from __future__ import annotations

import smtplib
import socket
import ssl


class WriteCut(Exception):
    """A write that failed (``error``) once ``written`` of its bytes were surely out."""

    def __init__(self, written: int, error: OSError) -> None:
        super().__init__(f"{error} after {written} bytes")
        self.written = written
        self.error = error


def send_counted(sock: socket.socket | None, data: bytes, after: bytes = b"") -> None:
    """Write ``data`` then ``after`` (in one write where the socket allows), as smtplib's
    ``send`` does, but on failure raise :class:`WriteCut` saying how much surely went out:
    with the next message's commands (``after``) behind a message's final ".", the "."
    may be out when the write fails.

    ``written`` is exact on a plain socket. TLS writes whole records, so a write cut
    short leaves its last record incomplete (unreadable by the server) but earlier ones
    out: there ``data`` and ``after`` are writes of their own, and ``written`` is exact
    at the end of ``data``, a lower bound within either.

    Each ``send`` waits up to the socket's timeout for room (RFC 5321, 4.5.3.2, times
    each block of data): a server that stops reading times out; a slow link that keeps
    taking the message does not, however long the message."""
    if sock is None:
        raise smtplib.SMTPServerDisconnected("please run connect() first")
    if not after:
        parts: tuple[bytes, ...] = (data,)
    elif isinstance(sock, ssl.SSLSocket):
        parts = (data, after)
    else:
        parts = (data + after,)
    written = done = 0
    try:
        for part in parts:
            view, done = memoryview(part), 0
            while done < len(view):
                done += sock.send(view[done:])
            written, done = written + done, 0
    except OSError as error:
        raise WriteCut(written + done, error) from None
