"""A password with a non-ASCII character ("Grüße-2026"): RFC 4616 AUTH PLAIN carries UTF-8,
but smtplib encodes credentials as ASCII. Before the fix such a password crashed the send
with "internal error: UnicodeEncodeError: 'ascii' codec can't encode character 'ü' in
position 9", which also told anyone reading the terminal one character of the password and
where it is. Real aiosmtpd server with STARTTLS.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from support.helpers import tls_settings
from support.smtp_servers import make_message, start_server

from newsletter.common.errors import DeliveryError
from newsletter.mail.smtp import SmtpTransport

USER = "chair@wmhtc.co.uk"
SECRET = "Grüße-2026"
SENDER = "news@example.org"


def utf8_authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == SECRET.encode("utf-8")
    )
    if ok:
        return AuthResult(success=True)
    return AuthResult(success=False, handled=False, message="535 5.7.8 Authentication failed")


@pytest.fixture
def utf8_password_server(tmp_path: Path):
    with start_server(
        tls="starttls",
        cafile_dir=tmp_path,
        authenticator=utf8_authenticator,
        auth_required=True,
    ) as running:
        yield running


def test_a_utf8_password_signs_in_and_sends(utf8_password_server) -> None:
    transport = SmtpTransport(
        tls_settings(utf8_password_server, smtp_username=USER, smtp_password=SECRET)
    )
    try:
        reply = transport.send(make_message("ada@example.org"), SENDER)
    finally:
        transport.close()
    assert reply.startswith("250")
    assert [m.rcpts for m in utf8_password_server.handler.messages] == [("ada@example.org",)]


def test_a_wrong_utf8_password_is_one_line_that_shows_none_of_it(utf8_password_server) -> None:
    wrong = "Grüße-2025"
    transport = SmtpTransport(
        tls_settings(utf8_password_server, smtp_username=USER, smtp_password=wrong)
    )
    with pytest.raises(DeliveryError) as caught:
        transport.send(make_message("ada@example.org"), SENDER)
    text = str(caught.value)
    assert "535" in text and "NEWSLETTER_SMTP_PASSWORD" in text and "\n" not in text
    assert "ü" not in text and "ß" not in text and "position" not in text
    assert utf8_password_server.handler.messages == []
