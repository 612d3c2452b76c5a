"""Security review of the day's changes: each test is a hostile input that got through.

Every server here is a real one on 127.0.0.1 (aiosmtpd, a small IMAP server speaking raw
socket lines); nothing is mocked.
"""

from __future__ import annotations

import base64
import shlex
import sys
from dataclasses import replace

import pytest
from aiosmtpd.smtp import AuthResult
from smtp_servers import XOAuth2Handler, start_server

from newsletter import oauth
from newsletter.config import Settings
from newsletter.smtp import SmtpTransport, TemporaryFailure

TOKEN = "ya29.secret-access-token-0123456789"
SENDER = "news@wmhtc.co.uk"


class EchoingBusyXOAuth2(XOAuth2Handler):
    """A server that defers XOAUTH2 with 454 and quotes the client's AUTH argument back
    (as some relays quote the command they refuse)."""

    def __init__(self) -> None:
        super().__init__(lambda token: None)

    async def auth_XOAUTH2(self, server, args):  # noqa: N802
        self.attempts += 1
        quoted = args[1] if len(args) > 1 else ""
        return AuthResult(
            success=False,
            handled=False,
            message=f"454 4.7.0 Temporary failure for AUTH XOAUTH2 {quoted}",
        )


def _token_command_settings(tmp_path, smtp) -> Settings:
    command = f"{shlex.quote(sys.executable)} -c \"print('{TOKEN}')\""
    return Settings(
        state_dir=tmp_path / "state",
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_cafile=smtp.cafile,
        smtp_security="starttls",
        smtp_auth="oauth2",
        smtp_username=SENDER,
        smtp_oauth_token_command=command,
    )


def test_a_deferred_xoauth2_sign_in_never_quotes_the_token(tmp_path):
    # The new "sign-in deferred" path (454 to AUTH XOAUTH2) put the server's words in the
    # TemporaryFailure unscrubbed: a server echoing its AUTH argument put the bearer token
    # (base64 of "user=…\x01auth=Bearer TOKEN") in the journal and on the terminal.
    handler = EchoingBusyXOAuth2()
    with start_server(handler, tls="starttls", cafile_dir=tmp_path) as smtp:
        settings = _token_command_settings(tmp_path, smtp)
        transport = SmtpTransport(settings, token_source=oauth.token_source(settings))
        with pytest.raises(TemporaryFailure) as caught:
            transport.connect()
    text = str(caught.value) + caught.value.reply
    assert handler.attempts == 1 and "454" in text
    raw = base64.b64encode(f"user={SENDER}\x01auth=Bearer {TOKEN}\x01\x01".encode()).decode()
    assert raw not in text and TOKEN not in text
