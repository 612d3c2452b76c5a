"""Setting up one SMTP connection: connect, TLS (implicit or STARTTLS), sign-in.

:class:`Connector` opens a verified, authenticated connection from the settings, or raises
:class:`~.failures.ConnectionFailed` saying which step failed (a 4xx at connect or sign-in
is a :class:`~.failures.TemporaryFailure`: retried like any other). The transaction that
carries messages over the connection is :mod:`.smtp`.

The password and the sign-in token never appear in an exception message, a log line or a
``repr``.
"""

from __future__ import annotations

import base64
import functools
import json
import smtplib
import socket
import ssl
from enum import Enum

from ..common.config import Settings
from ..common.errors import DeliveryError, SignInError
from ..signin.oauth import REFRESH_MARGIN, TokenSource, xoauth2
from .failures import ConnectionFailed, ConnectProblem, TemporaryFailure
from .replies import (
    ADDRESS_HINT,
    CERT_HINTS,
    CREDENTIALS_HINT,
    SECURITY_HINT,
    TLS_HINTS,
    cert_failure,
    decode,
    reply_text,
    sign_in_hint,
    tls_failure,
)


class _Step(Enum):
    """Where the set-up is, for what an smtplib error there means."""

    GREETING = "greeting"
    EHLO = "ehlo"
    STARTTLS = "starttls"
    SIGN_IN = "sign-in"


@functools.cache
def _local_hostname() -> str:
    # smtplib calls socket.getfqdn() for EHLO on every new connection, and that can be a slow
    # DNS look-up on a badly configured machine: do it once per process.
    return socket.getfqdn()


def tls_context(settings: Settings) -> ssl.SSLContext:
    """A client context that always verifies the certificate and the host name; a
    configured CA file is trusted *in addition to* the system's CAs."""
    context = ssl.create_default_context()
    if settings.smtp_cafile:
        context.load_verify_locations(cafile=settings.smtp_cafile)
    return context


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _without_token(reply: str, username: str, token: str) -> str:
    """A server reply to AUTH XOAUTH2 as it may be shown and journalled: a server that
    echoes the AUTH argument must not put the bearer token on screen or in the journal."""
    for secret in (_b64(xoauth2(username, token)), token):
        if secret:
            reply = reply.replace(secret, "***")
    return reply


class Connector:
    """Opens SMTP connections as the settings say: one per :meth:`open` call."""

    def __init__(
        self,
        settings: Settings,
        *,
        ssl_context: ssl.SSLContext | None = None,
        token_source: TokenSource | None = None,
    ) -> None:
        settings.require_smtp()
        self._settings = settings
        self.host = settings.smtp_host
        self.port = settings.port
        # Built lazily: reading the CA file is only needed once a TLS connection is made.
        self._ssl_context = ssl_context
        # OAuth 2.0 (XOAUTH2): fresh tokens on demand; the one in use is never kept here.
        self._token_source = token_source
        if token_source is None and settings.auth_mode == "oauth2":
            from ..signin.oauth import token_source as make_token_source

            self._token_source = make_token_source(settings)
        self._token_valid_until = float("inf")
        self._step = _Step.GREETING

    def __repr__(self) -> str:
        return f"Connector({self.host}:{self.port}, {self._settings.smtp_security})"

    def _fatal(
        self, message: str, problem: ConnectProblem, hint: str | None = None
    ) -> ConnectionFailed:
        return ConnectionFailed(
            self.scrub(message), problem=problem, host=self.host, port=self.port, hint=hint
        )

    def scrub(self, text: str) -> str:
        """``text`` without the password, however a server echoed it."""
        # Belt and braces: no server reply or library message should contain the password,
        # but if one ever echoes it, it must not reach the terminal or the journal.
        password = self._settings.smtp_password
        if not password:
            return text
        # Some servers echo the AUTH argument back in their refusal: the base64 of the
        # password (AUTH LOGIN) or of "\0user\0password" (AUTH PLAIN) is the password too.
        user = self._settings.smtp_username
        for secret in (  # the longest first: one may end with another
            _b64(f"\0{user}\0{password}"),
            _b64(f"{user}\0{password}"),
            _b64(password),
            password,
        ):
            text = text.replace(secret, "***")
        return text

    def context(self) -> ssl.SSLContext:
        """The TLS context (loading the CA file once); ConnectionFailed if it cannot be read."""
        if self._ssl_context is None:
            try:
                self._ssl_context = tls_context(self._settings)
            except (OSError, ssl.SSLError) as error:
                raise self._fatal(
                    f"cannot load CA file {self._settings.smtp_cafile}: {error}",
                    ConnectProblem.OTHER,
                    "set NEWSLETTER_SMTP_CAFILE to a PEM file",
                ) from None
        return self._ssl_context

    def token_expiring(self) -> bool:
        """Whether the token the last connection signed in with is about to expire."""
        source = self._token_source
        return source is not None and source.clock() >= self._token_valid_until - REFRESH_MARGIN

    def open(self) -> smtplib.SMTP:
        """A new connection, secured and signed in.

        Raises ConnectionFailed (or SignInRequired) if none can be made, TemporaryFailure
        for a 4xx at connect or sign-in."""
        timeout = self._settings.smtp_timeout
        try:
            return self._open()
        except DeliveryError:
            raise
        except ssl.SSLCertVerificationError as error:
            reason = error.verify_message or error.reason or "verification failed"
            hint = CERT_HINTS[cert_failure(error.verify_code)]
            raise self._fatal(
                f"TLS certificate rejected: {reason}", ConnectProblem.TLS, hint
            ) from None
        except ssl.SSLError as error:
            reason = error.reason or str(error)
            hint = TLS_HINTS[tls_failure(reason, self._settings.smtp_security)]
            raise self._fatal(f"TLS handshake failed: {reason}", ConnectProblem.TLS, hint) from None
        except smtplib.SMTPAuthenticationError as error:
            # "from None": the context holds smtplib frames whose locals include the password.
            raise self._refused(error) from None
        except smtplib.SMTPConnectError as error:
            reply = reply_text(error.smtp_code, error.smtp_error)
            if 400 <= error.smtp_code < 500:
                # "421 too many connections", "try again later": retried like any 4xx.
                raise TemporaryFailure(
                    f"server busy at connect: {reply}", code=error.smtp_code, connection=True
                ) from None
            if error.smtp_code == -1:
                first = " ".join(decode(error.smtp_error).split())[:80]
                raise self._fatal(
                    f"not an SMTP server: its first line is not an SMTP greeting ({first!r})",
                    ConnectProblem.OTHER,
                    ADDRESS_HINT,
                ) from None
            raise self._fatal(
                f"server refused the connection: {reply}", ConnectProblem.UNREACHABLE, ADDRESS_HINT
            ) from None
        except smtplib.SMTPServerDisconnected as error:
            if isinstance(error.__context__, TimeoutError):
                # smtplib reports a silent server as "closed": it was not. A server that
                # never greets is usually an implicit-TLS port spoken to in plain text.
                greeting = self._step is _Step.GREETING
                raise self._fatal(
                    f"no answer within {timeout:g}s "
                    f"({'no SMTP greeting' if greeting else 'during setup'})",
                    ConnectProblem.UNREACHABLE,
                    self._silence_hint(greeting),
                ) from None
            raise self._fatal(
                "server closed the connection during setup", ConnectProblem.UNREACHABLE,
                SECURITY_HINT,
            ) from None  # fmt: skip
        except smtplib.SMTPResponseException as error:
            reply = reply_text(error.smtp_code, error.smtp_error)
            raise self._fatal(
                f"connection setup refused: {reply}", self._step_problem(), SECURITY_HINT
            ) from None
        except smtplib.SMTPException as error:
            raise self._fatal(
                f"connection setup failed: {error}", self._step_problem(), SECURITY_HINT
            ) from None
        except ConnectionRefusedError:
            raise self._fatal(
                "connection refused", ConnectProblem.UNREACHABLE, ADDRESS_HINT
            ) from None
        except socket.gaierror as error:
            raise self._fatal(
                f"unknown host ({error.strerror})", ConnectProblem.UNREACHABLE, ADDRESS_HINT
            ) from None
        except TimeoutError:
            raise self._fatal(
                f"no answer within {timeout:g}s",
                ConnectProblem.UNREACHABLE,
                f"{ADDRESS_HINT}; {SECURITY_HINT}",
            ) from None
        except OSError as error:
            raise self._fatal(
                f"cannot connect: {error.strerror or error}",
                ConnectProblem.UNREACHABLE,
                ADDRESS_HINT,
            ) from None

    def _step_problem(self) -> ConnectProblem:
        """What an SMTP error at the current set-up step means."""
        if self._step is _Step.STARTTLS:
            return ConnectProblem.TLS
        if self._step is _Step.SIGN_IN:
            return ConnectProblem.SIGN_IN
        return ConnectProblem.OTHER

    def _refused(self, error: smtplib.SMTPAuthenticationError) -> ConnectionFailed:
        reply = reply_text(error.smtp_code, error.smtp_error)
        if self._settings.auth_mode == "oauth2":
            return self._fatal(
                f"XOAUTH2 sign-in refused: {reply}",
                ConnectProblem.SIGN_IN,
                sign_in_hint(reply, oauth=True),
            )
        if 400 <= error.smtp_code < 500:
            # "454 4.7.0 Temporary authentication failure": the password may be fine.
            return self._fatal(
                f"sign-in not possible right now: {reply}",
                ConnectProblem.SIGN_IN,
                "the server could not check the sign-in just now: wait a few minutes "
                "and send again",
            )
        return self._fatal(
            f"authentication refused: {reply}",
            ConnectProblem.SIGN_IN,
            sign_in_hint(reply, oauth=False),
        )

    def _silence_hint(self, greeting: bool) -> str:
        if self._settings.smtp_security == "ssl" or not greeting:
            return f"{ADDRESS_HINT}; {SECURITY_HINT}"
        return (
            f"if port {self.port} expects TLS from the start (usually 465), set "
            f"NEWSLETTER_SMTP_SECURITY=ssl; otherwise {ADDRESS_HINT}"
        )

    def _open(self) -> smtplib.SMTP:
        s = self._settings
        timeout = s.smtp_timeout or None  # 0 would make the socket non-blocking
        self._step = _Step.GREETING
        if s.smtp_security == "ssl":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=_local_hostname(),
                timeout=timeout,
                context=self.context(),
            )
        else:
            conn = smtplib.SMTP(
                self.host, self.port, local_hostname=_local_hostname(), timeout=timeout
            )
        self._step = _Step.EHLO
        try:
            # Without TCP_NODELAY, the last partial TLS record of each message waits for
            # the server's delayed ACK (~40 ms): 20 instead of 450 messages/s on loopback.
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._setup(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _setup(self, conn: smtplib.SMTP) -> None:
        s = self._settings
        conn.ehlo_or_helo_if_needed()
        if s.smtp_security == "starttls":
            if not conn.has_extn("starttls"):
                # Never fall back to plain text: that would expose the password and the mail.
                raise self._fatal(
                    "server does not offer STARTTLS", ConnectProblem.TLS, SECURITY_HINT
                )
            self._step = _Step.STARTTLS
            conn.starttls(context=self.context())
            self._step = _Step.EHLO
            conn.ehlo()
        self._step = _Step.SIGN_IN
        if s.auth_mode == "oauth2":
            self._xoauth2(conn)
        elif s.auth_mode == "password" and s.smtp_username:
            if s.smtp_security == "none":
                raise self._fatal(
                    "AUTH is never sent over an unencrypted connection",
                    ConnectProblem.OTHER,
                    SECURITY_HINT,
                )
            if not conn.has_extn("auth"):
                raise self._fatal(
                    "server offers no sign-in (AUTH) after TLS",
                    ConnectProblem.SIGN_IN,
                    f"port {self.port} may be for server-to-server mail (25): mail "
                    "submission with a password is usually port 587 (starttls) or 465 (ssl), "
                    "check NEWSLETTER_SMTP_PORT; a relay that needs no sign-in: leave "
                    "NEWSLETTER_SMTP_USERNAME empty",
                )
            if f"{s.smtp_username}{s.smtp_password}".isascii():
                conn.login(s.smtp_username, s.smtp_password)
            else:
                self._plain_utf8(conn)
            # smtplib keeps the credentials on the object; they are not needed any more.
            conn.user = conn.password = ""  # type: ignore[attr-defined]

    def _plain_utf8(self, conn: smtplib.SMTP) -> None:
        """AUTH PLAIN with UTF-8 credentials (RFC 4616): smtplib's ``login`` encodes them as
        ASCII and fails with a UnicodeEncodeError naming a character of the password."""
        s = self._settings
        if "PLAIN" not in (conn.esmtp_features.get("auth") or "").upper().split():
            raise self._fatal(
                "the username or password has a character outside ASCII, which only AUTH "
                "PLAIN carries, and the server does not offer AUTH PLAIN",
                ConnectProblem.OTHER,
                CREDENTIALS_HINT,
            )
        answer = f"\0{s.smtp_username}\0{s.smtp_password}".encode()
        code, resp = conn.docmd("AUTH", "PLAIN " + base64.b64encode(answer).decode("ascii"))
        if code != 235:
            raise smtplib.SMTPAuthenticationError(code, resp)

    def _xoauth2(self, conn: smtplib.SMTP) -> None:
        """AUTH XOAUTH2 with a fresh token; one retry with a refreshed token if refused
        (the server may have revoked it, or clocks disagree on its expiry)."""
        if self._settings.smtp_security == "none":  # require_smtp refuses it too
            raise self._fatal(
                "tokens are never sent over an unencrypted connection",
                ConnectProblem.OTHER,
                SECURITY_HINT,
            )
        mechanisms = (conn.esmtp_features.get("auth") or "").upper().split()
        if "XOAUTH2" not in mechanisms:
            raise self._fatal(
                "server offers no AUTH XOAUTH2 after TLS",
                ConnectProblem.SIGN_IN,
                "check NEWSLETTER_SMTP_HOST, or set NEWSLETTER_SMTP_AUTH=password",
            )
        source = self._token_source
        assert source is not None
        for attempt in (1, 2):
            try:
                token = source()
            except SignInError as error:
                # The sign-in service unreachable, the token command failing: no message can
                # go out, so stop the run (and leave nobody "unknown": nothing was sent).
                raise ConnectionFailed(
                    error.message, problem=ConnectProblem.NO_TOKEN, hint=error.hint
                ) from None
            answer = _XOAuth2Answer(source.username, token)
            try:
                conn.auth("XOAUTH2", answer, initial_response_ok=True)
            except smtplib.SMTPAuthenticationError as error:
                reply = _without_token(
                    reply_text(error.smtp_code, error.smtp_error), source.username, token
                )
                if 400 <= error.smtp_code < 500:
                    # "454 4.7.0 Too many login attempts, please try again later" (Gmail),
                    # "Temporary authentication failure": the token is fine; retried later
                    # like any 4xx, never "sign in again".
                    raise TemporaryFailure(
                        f"sign-in deferred: {reply}", code=error.smtp_code
                    ) from None
                if attempt == 2:
                    status = f" (status {answer.status})" if answer.status else ""
                    raise self._fatal(
                        f"XOAUTH2 sign-in refused: {reply}{status}",
                        ConnectProblem.SIGN_IN,
                        sign_in_hint(reply, oauth=True),
                    ) from None
                source.invalidate()
                continue
            self._token_valid_until = source.valid_until
            return


class _XOAuth2Answer:
    """smtplib's AUTH callback: the XOAUTH2 string first; an empty line after a ``334``
    challenge (the provider's base64 JSON error), after which the server answers 535."""

    def __init__(self, username: str, token: str) -> None:
        self._initial = xoauth2(username, token)
        self.status = ""

    def __repr__(self) -> str:
        return "_XOAuth2Answer()"

    def __call__(self, challenge: bytes | None = None) -> str:
        if challenge is None:
            return self._initial
        self._initial = ""
        try:
            self.status = str(json.loads(challenge).get("status", ""))[:20]
        except (ValueError, AttributeError):
            self.status = ""
        return ""
