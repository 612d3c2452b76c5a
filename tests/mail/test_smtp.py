"""The SMTP transport against real aiosmtpd servers on 127.0.0.1 (TLS with a trustme CA)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.helpers import settings_for, tls_settings
from support.smtp_servers import (
    PASSWORD,
    MisbehavingHandler,
    Server,
    make_message,
    start_server,
)

from newsletter.common.errors import DeliveryError
from newsletter.mail.smtp import (
    PermanentFailure,
    SmtpTransport,
    TemporaryFailure,
    transport_factory,
)
from newsletter.sending.message import OutgoingMessage

SENDER = "news@example.org"


def assert_clean(error: DeliveryError, server_port: int) -> None:
    text = str(error)
    assert f"127.0.0.1:{server_port}" in text
    assert "\n" not in text
    for shown in (text, repr(error), repr(error.args)):
        assert PASSWORD not in shown


def test_starttls_with_auth_delivers(smtp_server: Server) -> None:
    transport = SmtpTransport(tls_settings(smtp_server))
    msg = make_message("Ada@example.org", 1)
    try:
        reply = transport.send(msg, SENDER)
    finally:
        transport.close()
    assert reply == "250 2.0.0 Ok: queued"
    [received] = smtp_server.handler.messages
    assert received.rcpts == ("Ada@example.org",)
    assert received.mail_from == SENDER
    assert received.data == msg.data  # dot-stuffing undone, CRLF kept
    assert PASSWORD not in repr(transport)


def test_bad_password_fails_fast_without_showing_it(smtp_server: Server) -> None:
    transport = SmtpTransport(tls_settings(smtp_server, smtp_password="wrong-" + PASSWORD))
    with pytest.raises(DeliveryError) as caught:
        transport.send(make_message("ada@example.org"), SENDER)
    assert "535" in str(caught.value)  # the server's refusal, not a hang until the timeout
    assert "NEWSLETTER_SMTP_PASSWORD" in str(caught.value)
    assert "wrong-" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert_clean(caught.value, smtp_server.port)
    assert smtp_server.handler.messages == []


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_untrusted_certificate_is_fatal(security: str, tmp_path: Path) -> None:
    with start_server(tls=security, cafile_dir=tmp_path) as server:
        transport = SmtpTransport(tls_settings(server, smtp_security=security, smtp_cafile=""))
        with pytest.raises(DeliveryError, match="certificate") as caught:
            transport.send(make_message("ada@example.org"), SENDER)
        assert_clean(caught.value, server.port)
        assert server.handler.messages == []


def test_certificate_for_another_host_is_fatal(tmp_path: Path) -> None:
    with start_server(tls="starttls", cafile_dir=tmp_path, cert_names=("mail.example.net",)) as s:
        transport = SmtpTransport(tls_settings(s, smtp_username="", smtp_password=""))
        with pytest.raises(DeliveryError, match="certificate"):
            transport.connect()


def test_implicit_tls_delivers(tmp_path: Path) -> None:
    with start_server(tls="ssl", auth=True, cafile_dir=tmp_path) as server:
        transport = SmtpTransport(tls_settings(server, smtp_security="ssl"))
        reply = transport.send(make_message("ada@example.org"), SENDER)
        transport.close()
        assert reply.startswith("250")
        assert len(server.handler.messages) == 1


def test_ssl_mode_against_a_plain_server_is_fatal(plain_smtp_server: Server) -> None:
    transport = SmtpTransport(settings_for(plain_smtp_server, smtp_security="ssl"))
    with pytest.raises(DeliveryError, match="TLS") as caught:
        transport.connect()
    assert "NEWSLETTER_SMTP_SECURITY" in str(caught.value)


def test_plain_localhost_delivers(plain_smtp_server: Server) -> None:
    transport = SmtpTransport(settings_for(plain_smtp_server))
    for row in range(3):
        transport.send(make_message(f"m{row}@example.org", row), SENDER)
    transport.close()
    assert [m.rcpts for m in plain_smtp_server.handler.messages] == [
        ("m0@example.org",),
        ("m1@example.org",),
        ("m2@example.org",),
    ]
    assert plain_smtp_server.connections == 1  # one connection carries many messages


def test_starttls_not_offered_is_fatal_not_a_downgrade(plain_smtp_server: Server) -> None:
    transport = SmtpTransport(settings_for(plain_smtp_server, smtp_security="starttls"))
    with pytest.raises(DeliveryError, match="does not offer STARTTLS") as caught:
        transport.send(make_message("ada@example.org"), SENDER)
    assert_clean(caught.value, plain_smtp_server.port)
    assert plain_smtp_server.handler.messages == []


def test_connection_refused_is_fatal() -> None:
    settings = settings_for(None)
    with pytest.raises(DeliveryError, match="connection refused") as caught:
        SmtpTransport(settings).send(make_message("ada@example.org"), SENDER)
    assert_clean(caught.value, settings.port)
    assert "NEWSLETTER_SMTP_HOST" in str(caught.value)


def test_replies_are_classified() -> None:
    handler = MisbehavingHandler(
        greylist={"grey@example.org"}, unknown={"nobody@example.org"}, drop_every=3
    )
    with start_server(handler) as server:
        transport = SmtpTransport(settings_for(server))
        with pytest.raises(PermanentFailure) as refused:
            transport.send(make_message("nobody@example.org"), SENDER)
        assert refused.value.reply == "550 5.1.1 <nobody@example.org>: user unknown"
        assert refused.value.code == 550
        with pytest.raises(TemporaryFailure, match="^451 4.7.1 greylisted"):
            transport.send(make_message("grey@example.org"), SENDER)
        # The same connection goes on after a refusal (RSET), and greylisting passes.
        assert transport.send(make_message("grey@example.org"), SENDER).startswith("250")
        assert transport.send(make_message("a@example.org"), SENDER).startswith("250")
        with pytest.raises(TemporaryFailure, match="closed by server during DATA"):
            transport.send(make_message("b@example.org"), SENDER)  # 3rd DATA: dropped
        assert transport.send(make_message("b@example.org"), SENDER).startswith("250")
        transport.close()
        assert server.connections == 2
        assert [m.rcpts[0] for m in handler.messages] == [
            "grey@example.org",
            "a@example.org",
            "b@example.org",
        ]


def test_reconnects_after_max_per_connection(plain_smtp_server: Server) -> None:
    transport = SmtpTransport(settings_for(plain_smtp_server, smtp_max_per_connection=3))
    for row in range(7):
        transport.send(make_message(f"m{row}@example.org", row), SENDER)
    transport.close()
    assert plain_smtp_server.connections == 3
    assert [m.connection for m in plain_smtp_server.handler.messages] == [1, 1, 1, 2, 2, 2, 3]


def test_idle_connection_closed_by_server_is_reopened() -> None:
    with start_server(timeout=0.5) as server:  # aiosmtpd closes idle connections after 0.5s
        transport = SmtpTransport(settings_for(server))
        transport.send(make_message("a@example.org"), SENDER)
        # Wait for the server's hang-up itself rather than for a guessed time (a busy
        # machine may close late): read its 421 off the socket until EOF.
        sock = transport._conn.sock  # type: ignore[union-attr]
        sock.settimeout(10)
        while sock.recv(4096):
            pass
        assert transport.send(make_message("b@example.org"), SENDER).startswith("250")
        transport.close()
        assert server.connections == 2
        assert len(server.handler.messages) == 2


def test_factory_loads_the_ca_file_once_for_all_connections(
    smtp_server: Server, tmp_path: Path
) -> None:
    cafile = tmp_path / "ca-copy.pem"
    cafile.write_bytes(Path(smtp_server.cafile or "").read_bytes())
    make = transport_factory(tls_settings(smtp_server, smtp_cafile=str(cafile)))
    cafile.unlink()  # later connections must not need the file again: one shared context
    first, second = make(), make()
    assert first is not second
    for transport in (first, second):
        assert transport.send(make_message("a@example.org"), SENDER).startswith("250")
        transport.close()
    assert smtp_server.connections == 2


def test_missing_ca_file_is_fatal(plain_smtp_server: Server, tmp_path: Path) -> None:
    settings = settings_for(
        plain_smtp_server, smtp_security="starttls", smtp_cafile=str(tmp_path / "no.pem")
    )
    with pytest.raises(DeliveryError, match="CA file"):
        transport_factory(settings)


def test_leading_dots_survive_the_transaction(plain_smtp_server: Server) -> None:
    body = b"Subject: dots\r\n\r\n.starts with a dot\r\n..two dots\r\nplain\r\n."
    transport = SmtpTransport(settings_for(plain_smtp_server))
    message = make_message("dots@example.org")
    transport.send(OutgoingMessage(message.to, 1, message.message_id, body), SENDER)
    transport.close()
    received = plain_smtp_server.handler.messages[0].data
    assert received.replace(b"\r\n", b"\n").endswith(b".starts with a dot\n..two dots\nplain\n.\n")


def test_a_message_marked_dot_safe_goes_out_unscanned_and_unmarked_ones_are_stuffed(
    plain_smtp_server: Server,
) -> None:
    # dot_safe is the maker's promise (the message builder's): the transport trusts it and
    # skips the scan; without it, leading dots are stuffed as before.
    from newsletter.mail.smtp import _dot_stuffed

    body = b"Subject: dots\r\n\r\n.x\r\n"
    assert _dot_stuffed(body) == b"Subject: dots\r\n\r\n..x\r\n.\r\n"
    assert _dot_stuffed(body, dot_safe=True) == body + b".\r\n"
    safe = b"Subject: no dots\r\n\r\nplain\r\n=2Eencoded\r\n"
    transport = SmtpTransport(settings_for(plain_smtp_server))
    message = make_message("safe@example.org")
    transport.send(OutgoingMessage(message.to, 1, message.message_id, safe, dot_safe=True), SENDER)
    transport.close()
    received = plain_smtp_server.handler.messages[0].data
    assert received.replace(b"\r\n", b"\n").endswith(b"\nplain\n=2Eencoded\n")
