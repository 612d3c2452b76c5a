"""Security review of the day's changes: each test is a hostile input that got through.

Every server here is a real one on 127.0.0.1 (aiosmtpd, a small IMAP server speaking raw
socket lines); nothing is mocked.
"""

from __future__ import annotations

import base64
import shlex
import sys

import pytest
from aiosmtpd.smtp import AuthResult
from smtp_servers import XOAuth2Handler, start_server

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


# -- feedback: a bounce for one address taken for another ---------------------------------

NDR_FOR_JOANN = b"""From: Mail Delivery System <MAILER-DAEMON@mx.hospital.de>
To: news@wmhtc.co.uk
Subject: Undeliverable: Board meeting
Date: Mon, 30 Nov 2026 09:31:07 +0100
Message-ID: <ndr-1@mx.hospital.de>
X-MS-Exchange-Message-Is-Ndr:
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

Delivery has failed to these recipients or groups:

joann@hospital.de
The email address you entered couldn't be found. 550 5.1.1 User unknown

--b
Content-Type: message/rfc822

From: news@wmhtc.co.uk
To: ann@hospital.de, joann@hospital.de
Subject: Board meeting
Message-ID: <board-1@wmhtc.co.uk>

See you on Monday.
--b--
"""


@pytest.fixture(scope="module")
def imap_server():
    import dovecot

    if not dovecot.available():
        pytest.skip("dovecot-imapd not installed")
    server = dovecot.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_bounce_for_joann_does_not_suppress_ann(project, imap_server, tmp_path):
    # A bounce read from the returned original (new: failures_from_returned) took every
    # To/Cc address whose text appeared *inside* the bounce's words: "joann@hospital.de"
    # named "ann@hospital.de" too, and Ann, who never bounced, was suppressed.
    import dovecot
    from test_send_cli import env_for, newsletter

    members = ["ann@hospital.de", "joann@hospital.de"]
    (project / "recipients.csv").write_text(
        "email,first_name\n" + "".join(f"{a},M{n}\n" for n, a in enumerate(members)),
        encoding="utf-8",
    )
    imap_server.clear()
    with start_server(tls="starttls", auth=True, cafile_dir=tmp_path) as smtp:
        env = env_for(
            smtp,
            NEWSLETTER_IMAP_HOST="127.0.0.1",
            NEWSLETTER_IMAP_PORT=str(imap_server.tls_port),
            NEWSLETTER_IMAP_SECURITY="ssl",
            NEWSLETTER_IMAP_CAFILE=str(imap_server.cafile),
            NEWSLETTER_IMAP_USERNAME=dovecot.USERNAME,
            NEWSLETTER_IMAP_PASSWORD=dovecot.PASSWORD,
        )
        sent = newsletter(project, env, "send", "december-2023", "--yes")
        assert sent.returncode == 0, sent.stdout + sent.stderr
    imap_server.append(NDR_FOR_JOANN)
    try:
        run = newsletter(project, env, "feedback", "--since", "2020-01-01")
    finally:
        imap_server.clear()
    assert run.returncode == 0, run.stdout + run.stderr
    suppressed = (project / "suppressed.csv").read_text(encoding="utf-8")
    assert "joann@hospital.de" in suppressed
    assert "\nann@hospital.de" not in suppressed, suppressed


# -- the terminal: escape sequences in a server's words -------------------------------------

ESCAPES = "\x1b]8;;https://evil.example/\x1b\\click here\x1b]8;;\x1b\\ \x1b[2J\x9b31m"


def test_escape_sequences_in_a_servers_refusal_never_reach_the_terminal(project, tmp_path):
    # Error lines quote what servers say (SMTP and IMAP replies, OAuth error bodies, the
    # loopback redirect's ?error=, which any web page the browser opens can set). Printed
    # as they came, an OSC 8 sequence drew a link of the sender's choosing and CSI 2J
    # cleared the screen. `feedback` cleaned its table; the one-line errors did not.
    from smtp_servers import PasswordOffHandler
    from test_send_cli import env_for, newsletter

    handler = PasswordOffHandler(reply=f"535 5.7.8 refused {ESCAPES}")
    with start_server(handler, tls="starttls", cafile_dir=tmp_path) as smtp:
        result = newsletter(project, env_for(smtp), "send", "december-2023", "--test")
    assert result.returncode != 0 and "535 5.7.8 refused" in result.stderr, result.stderr
    assert "click here" in result.stderr  # the words stay; the sequences go
    assert "\x1b" not in result.stderr and "\x9b" not in result.stderr, repr(result.stderr)


# -- the member list: "Name <address>" whose name is another address -------------------------


def test_a_cell_showing_one_address_and_holding_another_is_not_unwrapped(project):
    # The new unwrapping mailed "priya.shah@member.org <someone@else.org>" to someone@else,
    # with Priya's greeting and her personal unsubscribe link: the chair reads Priya's
    # address in the spreadsheet, the mail went elsewhere. Which is meant cannot be told.
    import email
    import email.policy

    from helpers import run_cli

    env = {
        "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
        "NEWSLETTER_UNSUBSCRIBE_URL": "https://wmhtc.co.uk/u?t={token}",
        "NEWSLETTER_SECRET": "a-long-random-test-secret",
    }
    (project / "members.csv").write_text(
        "email,first_name\n"
        "priya.shah@member.org <someone@else.org>,Priya\n"
        "Jane Doe <jane@hospital.de>,Jane\n"
        "ann@hospital.de <mailto:ANN@hospital.de>,Ann\n",
        encoding="utf-8",
    )
    check = run_cli(["check", "december-2023", "-r", "members.csv"], env=env)
    assert "it shows priya.shah@member.org but holds another address" in check.stdout
    done = run_cli(["send", "december-2023", "--dry-run", "-r", "members.csv"], env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    written = sorted((project / "outbox" / "december-2023").glob("*.eml"))
    to = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["To"]
        .addresses[0]
        .addr_spec
        for p in written
    ]
    assert to == ["jane@hospital.de", "ANN@hospital.de"], to
