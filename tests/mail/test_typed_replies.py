"""What servers' words mean is read in one place (mail.replies, mail.refusals) and returned
as typed values; a connection that cannot be set up says which step failed as a
ConnectProblem, whatever its message's words."""

from __future__ import annotations

import socket
import ssl

import pytest
from support.raw_smtp import Behaviour, Conn, RawServer

from newsletter.common.config import Settings
from newsletter.mail.failures import ConnectionFailed, ConnectProblem
from newsletter.mail.refusals import is_permanent, is_unknown_address
from newsletter.mail.replies import (
    AUTH_HINTS,
    CERT_HINTS,
    OAUTH_HINT,
    SMTP_AUTH_OFF_OAUTH_HINT,
    TLS_HINTS,
    AuthRefusal,
    CertFailure,
    TlsFailure,
    auth_refusal,
    cert_failure,
    sign_in_hint,
    tls_failure,
)
from newsletter.mail.smtp import SmtpTransport


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for "
         "the Tenant", AuthRefusal.SMTP_AUTH_OFF),
        ("535 5.7.3 Authentication unsuccessful, the user credentials were incorrect",
         AuthRefusal.BAD_CREDENTIALS),
        ("534 5.7.9 Application-specific password required", AuthRefusal.APP_PASSWORD),
        ("535 5.7.139 Authentication unsuccessful, user is locked by your organization's "
         "security defaults policy", AuthRefusal.POLICY),
        ("535 5.7.139 Authentication unsuccessful, basic authentication is disabled",
         AuthRefusal.BASIC_AUTH_OFF),
        ("535 5.7.3 Authentication unsuccessful", AuthRefusal.MAYBE_BASIC_AUTH_OFF),
        ("535 5.7.8 Error: authentication failed", AuthRefusal.UNEXPLAINED),
    ],
)  # fmt: skip
def test_a_refused_sign_in_is_classified_once_and_its_hint_follows(
    reply: str, why: AuthRefusal
) -> None:
    assert auth_refusal(reply) is why
    assert sign_in_hint(reply, oauth=False) == AUTH_HINTS[why]
    # With a token, only "SMTP AUTH is off" changes the advice: signing in again won't help.
    expected = SMTP_AUTH_OFF_OAUTH_HINT if why is AuthRefusal.SMTP_AUTH_OFF else OAUTH_HINT
    assert sign_in_hint(reply, oauth=True) == expected


def test_every_refusal_kind_has_a_hint() -> None:
    assert set(AUTH_HINTS) == set(AuthRefusal)
    assert set(TLS_HINTS) == set(TlsFailure)
    assert set(CERT_HINTS) == set(CertFailure)


@pytest.mark.parametrize(
    ("reason", "security", "why"),
    [
        ("UNSUPPORTED_PROTOCOL", "ssl", TlsFailure.OUTDATED_VERSION),
        ("TLSV1_ALERT_PROTOCOL_VERSION", "starttls", TlsFailure.OUTDATED_VERSION),
        ("WRONG_VERSION_NUMBER", "ssl", TlsFailure.PLAIN_TEXT_PORT),
        ("WRONG_VERSION_NUMBER", "starttls", TlsFailure.STARTTLS_NOT_STARTED),
        ("record layer failure", "ssl", TlsFailure.PLAIN_TEXT_PORT),
        ("SSLV3_ALERT_HANDSHAKE_FAILURE", "ssl", TlsFailure.OTHER),
    ],
)
def test_openssl_reasons_are_classified(reason: str, security: str, why: TlsFailure) -> None:
    assert tls_failure(reason, security) is why


def test_certificate_verify_codes_are_classified() -> None:
    assert cert_failure(10) is CertFailure.OUT_OF_DATE  # expired
    assert cert_failure(62) is CertFailure.OTHER_NAME  # host name mismatch
    assert cert_failure(20) is CertFailure.UNTRUSTED  # unable to get local issuer
    assert cert_failure(None) is CertFailure.UNTRUSTED


def test_a_permanent_refusal_is_read_from_the_reply_code_only() -> None:
    assert is_permanent("550 5.1.1 <a@b.example>: user unknown")
    assert is_permanent("554-5.7.1 rejected")
    assert not is_permanent("451 4.7.1 greylisted")
    # Our own words in the journal, for a server at an IP address that starts with 5: once
    # read as a 5xx refusal by their first character.
    assert not is_permanent("52.96.0.1:587: connection refused")
    assert not is_permanent("555.example:25: cannot connect")


def test_an_unknown_address_is_a_5xx_with_a_5_1_code_about_the_recipient() -> None:
    assert is_unknown_address("550 5.1.1 <a@b.example>: Recipient address rejected")
    assert is_unknown_address("550 5.1.10 null MX")
    assert not is_unknown_address("550 5.1.8 bad outbound sender")  # the sender's address
    assert not is_unknown_address("552 5.2.2 mailbox full")
    assert not is_unknown_address("450 4.1.1 try later")


# -- a failed set-up says which step failed -------------------------------------------------------


def _settings(port: int, **changes: object) -> Settings:
    values: dict[str, object] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        "smtp_timeout": 5.0,
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


def _connect(settings: Settings) -> ConnectionFailed:
    with pytest.raises(ConnectionFailed) as caught:
        SmtpTransport(settings).connect()
    return caught.value


def test_nobody_listening_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the connection is tried
    error = _connect(_settings(port))
    assert error.problem is ConnectProblem.UNREACHABLE
    assert error.message == "connection refused"


def test_implicit_tls_to_a_plain_text_port_is_a_tls_problem() -> None:
    with RawServer(Behaviour()) as server:
        error = _connect(_settings(server.port, smtp_security="ssl"))
    assert error.problem is ConnectProblem.TLS
    assert error.hint == TLS_HINTS[TlsFailure.PLAIN_TEXT_PORT]


class _StartTlsRefused(Behaviour):
    starttls_context = ssl.create_default_context()  # only to offer STARTTLS

    def starttls(self, conn: Conn) -> str:
        return "454 4.3.0 not now"  # no word of TLS in it


def test_a_refused_starttls_is_a_tls_problem_by_its_step_not_its_words() -> None:
    with RawServer(_StartTlsRefused()) as server:
        error = _connect(_settings(server.port, smtp_security="starttls"))
    assert error.problem is ConnectProblem.TLS
    assert error.message == "connection setup refused: 454 4.3.0 not now"
