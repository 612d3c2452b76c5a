"""Servers that quote the sign-in back (an SMTP relay deferring XOAUTH2, an IMAP server
refusing or hanging up) never get a password or a token onto the terminal or into the
journal. Real servers on 127.0.0.1: aiosmtpd, and a raw-socket IMAP server."""

from __future__ import annotations

import base64
import shlex
import sys

import pytest
from aiosmtpd.smtp import AuthResult
from support.smtp_servers import XOAuth2Handler, start_server

from newsletter.common.config import Settings
from newsletter.mail.smtp import SmtpTransport, TemporaryFailure
from newsletter.signin import oauth

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


# -- IMAP: a server that quotes the sign-in back ------------------------------------------

PASSWORD = "Hunter2-imap-secret"


class EchoingImap:
    """A raw IMAP server on 127.0.0.1 that answers the sign-in by quoting it: ``bye`` says
    ``* BYE`` with the client's line (connection lost), else ``NO`` with it (refused). For
    AUTHENTICATE it first asks for the SASL answer with ``+``."""

    def __init__(self, *, bye: bool) -> None:
        import socket
        import threading

        self.bye = bye
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn, conn.makefile("rwb", buffering=0) as stream:
            stream.write(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2] ready\r\n")
            for line in stream:
                tag, _, rest = line.strip().partition(b" ")
                command = rest.split(b" ", 1)[0].upper()
                if command == b"CAPABILITY":
                    stream.write(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2\r\n")
                    stream.write(tag + b" OK done\r\n")
                    continue
                quoted = rest
                if command == b"AUTHENTICATE":
                    stream.write(b"+ \r\n")
                    quoted = rest + b" " + stream.readline().strip()
                if self.bye:
                    stream.write(b"* BYE cannot handle " + quoted + b"\r\n")
                    stream.write(tag + b" NO bye\r\n")
                    return
                stream.write(tag + b" NO refused " + quoted + b"\r\n")
                return

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5)


@pytest.mark.parametrize("bye", [True, False], ids=["bye", "no"])
@pytest.mark.parametrize(
    "password",
    [PASSWORD, "Hünter2-imap-secret", "it's-a\\secret\"9"],
    ids=["login", "plain", "quotes"],
)
def test_an_imap_server_quoting_the_password_back_does_not_show_it(bye, password):
    # "connection lost while signing in: …" (new) and "sign-in refused: …" quote the
    # server's words; a server quoting the LOGIN line (or the AUTH PLAIN answer) put the
    # password on the terminal.
    from newsletter.common.errors import MailboxError
    from newsletter.mail.imap import ImapParams, connect, password_login

    server = EchoingImap(bye=bye)
    params = ImapParams("127.0.0.1", server.port, "none", SENDER, "INBOX", "", 10)
    try:
        with pytest.raises(MailboxError) as caught:
            connect(params, password_login(SENDER, password))
    finally:
        server.close()
    text = str(caught.value)
    assert ("connection lost" if bye else "sign-in refused") in text
    plain = base64.b64encode(f"\0{SENDER}\0{password}".encode()).decode()
    assert password not in text and plain not in text, text


def test_an_imap_server_quoting_the_xoauth2_answer_back_does_not_show_the_token():
    from newsletter.common.errors import MailboxError
    from newsletter.mail.imap import ImapParams, connect, xoauth2_login

    server = EchoingImap(bye=True)
    params = ImapParams("127.0.0.1", server.port, "none", SENDER, "INBOX", "", 10)
    try:
        with pytest.raises(MailboxError) as caught:
            connect(params, xoauth2_login(lambda: (SENDER, TOKEN)))
    finally:
        server.close()
    text = str(caught.value)
    raw = base64.b64encode(f"user={SENDER}\x01auth=Bearer {TOKEN}\x01\x01".encode()).decode()
    assert "connection lost" in text and raw not in text and TOKEN not in text, text
