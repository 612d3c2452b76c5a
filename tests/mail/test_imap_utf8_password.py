"""An IMAP password with a non-ASCII character ("Grüße-2026"). imaplib sends LOGIN in ASCII:
before the fix `feedback` crashed with "internal error: UnicodeEncodeError: 'ascii' codec
can't encode character 'ü' in position …", which also named a character of the password.
AUTHENTICATE PLAIN (RFC 4616) carries UTF-8. Real Dovecot over implicit TLS.
"""

from __future__ import annotations

import pytest
from support import dovecot

from newsletter.common.errors import MailboxError
from newsletter.mail.imap import ImapParams, connect, password_login

USER, SECRET = dovecot.UTF8_USER, dovecot.UTF8_PASSWORD  # an account of the session's Dovecot


def _params(server) -> ImapParams:
    return ImapParams(
        host="127.0.0.1",
        port=server.tls_port,
        security="ssl",
        username=USER,
        folder="INBOX",
        cafile=str(server.cafile),
        timeout=10.0,
    )


def test_a_utf8_password_signs_in(imap_server) -> None:
    box = connect(_params(imap_server), password_login(USER, SECRET))
    try:
        box.open_folder("INBOX", readonly=True)
        assert box.uids() == []
    finally:
        box.close()


def test_a_wrong_utf8_password_is_one_line_that_shows_none_of_it(imap_server) -> None:
    with pytest.raises(MailboxError) as caught:
        connect(_params(imap_server), password_login(USER, "Grüße-2025"))
    text = str(caught.value)
    assert "sign-in refused" in text and "\n" not in text
    assert "ü" not in text and "ß" not in text and "position" not in text
