"""The SMTP transport: one verified, authenticated connection that carries many messages.

Every failure is sorted into one of three kinds, because each calls for a different action:

* :class:`TemporaryFailure` (4xx reply, dropped connection, timeout, reset mid-send): this
  message was not accepted, try it again later.
* :class:`PermanentFailure` (5xx reply to RCPT or DATA): this recipient will not get it;
  record the server's reply and go on with the others.
* :class:`~newsletter.common.errors.DeliveryError` (server unreachable, TLS or certificate failure,
  AUTH refused, STARTTLS not offered, sender refused): no message can be sent, stop the run.

The password never appears in an exception message, a log line or a ``repr``.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from typing import Protocol

from ..common.config import Settings
from ..common.errors import DeliveryError, SignInError
from ..signin.oauth import REFRESH_MARGIN, TokenSource, xoauth2
from .envelope import Envelope

QUIT_WAIT = 2.0  # seconds to wait for the reply to QUIT
CREDENTIALS_HINT = "check NEWSLETTER_SMTP_USERNAME and NEWSLETTER_SMTP_PASSWORD"
ADDRESS_HINT = "check NEWSLETTER_SMTP_HOST and NEWSLETTER_SMTP_PORT"
SECURITY_HINT = (
    "check NEWSLETTER_SMTP_SECURITY and NEWSLETTER_SMTP_PORT "
    "(ssl is implicit TLS, usually port 465; starttls usually port 587)"
)
BASIC_AUTH_HINT = (
    "this server no longer accepts passwords: set NEWSLETTER_SMTP_AUTH=oauth2 and "
    "NEWSLETTER_OAUTH_CLIENT_ID (README: 'Signing in with Microsoft 365 or Google'), "
    "then run newsletter login"
)
# Microsoft 365's "Basic authentication is disabled" replies; Google's "app password needed".
_BASIC_AUTH_OFF = re.compile(r"\b5\.7\.(?:139|30|9)\b")
# Microsoft 365 answers 5.7.3 both to a wrong password and where passwords are switched off.
_BASIC_AUTH_MAYBE_OFF = re.compile(r"\b5\.7\.3\b")
# The words of a refused sign-in say more than its code: Microsoft's 5.7.139 covers a wrong
# password, SMTP AUTH switched off (which OAuth needs too) and security defaults; Google's
# 5.7.9 wants an app password, which works as well as OAuth. First match wins.
SMTP_AUTH_OFF_HINT = (
    "SMTP AUTH is switched off for this mailbox or tenant, for passwords and OAuth alike: "
    "ask your Microsoft 365 administrator to enable Authenticated SMTP for the mailbox "
    "(README: 'For the IT person', step 5), then sign in with OAuth 2.0: "
    "set NEWSLETTER_SMTP_AUTH=oauth2 and run newsletter login"
)
APP_PASSWORD_HINT = (
    "Google wants an app password, not the account's password: create one (Google Account, "
    "Security, App passwords; needs 2-Step Verification) and set it as "
    "NEWSLETTER_SMTP_PASSWORD, or sign in with OAuth 2.0: set NEWSLETTER_SMTP_AUTH=oauth2 "
    "and run newsletter login"
)
_AUTH_WORDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"SmtpClientAuthentication is disabled|smtp_auth_disabled", re.I),
     SMTP_AUTH_OFF_HINT),
    (re.compile(r"credentials were incorrect|password (?:and|or) username|"
                r"username and password not accepted|invalid credentials", re.I),
     CREDENTIALS_HINT),
    (re.compile(r"application-specific password|InvalidSecondFactor", re.I), APP_PASSWORD_HINT),
    (re.compile(r"security defaults|conditional access", re.I),
     "your organisation's Entra ID policy blocks password sign-in for SMTP: "
     "ask your Microsoft 365 administrator, or sign in with OAuth 2.0: set "
     "NEWSLETTER_SMTP_AUTH=oauth2 and run newsletter login"),
)  # fmt: skip
# Microsoft 365 with SMTP AUTH switched off for the mailbox or the whole tenant: neither a
# password nor a sign-in token is accepted until IT ticks "Authenticated SMTP".
_SMTP_AUTH_OFF = re.compile(r"SmtpClientAuthentication is disabled|smtp_auth_disabled", re.I)
SMTP_AUTH_OFF_OAUTH_HINT = (
    "SMTP AUTH is switched off for this mailbox or tenant, for passwords and OAuth alike "
    "(signing in again will not help): ask your Microsoft 365 administrator to enable "
    "Authenticated SMTP for the mailbox (README: 'For the IT person', step 5)"
)
OAUTH_HINT = (
    "the mailbox refused the sign-in token: check that SMTP AUTH is enabled for the mailbox "
    "and that it is the signed-in account (NEWSLETTER_SMTP_USERNAME), or sign in again: "
    "newsletter login"
)
CERT_HINT = (
    "the server's certificate is not signed by an authority this computer trusts; "
    "set NEWSLETTER_SMTP_CAFILE if it uses a private CA (or a company proxy inspects TLS)"
)
# OpenSSL's verify codes (X509_V_ERR_*) whose fix is not a CA file.
_CERT_EXPIRED = {9, 10}  # not yet valid, expired
_CERT_OTHER_NAME = {62, 64}  # host name mismatch, IP address mismatch


def _tls_hint(reason: str, security: str) -> str:
    if "PROTOCOL_VERSION" in reason or "UNSUPPORTED_PROTOCOL" in reason:
        # Not a setting of ours: TLS 1.0/1.1 are refused by this computer, rightly.
        return (
            "the server offers only an outdated TLS version (1.0 or 1.1) that this computer "
            "refuses: ask its administrator to enable TLS 1.2 or later"
        )
    plain = "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER" in reason.upper().replace(" ", "_")
    if plain and security == "starttls":
        # It agreed to STARTTLS and went on in plain text: never go on without TLS.
        return (
            "the server agreed to STARTTLS but did not start TLS (a broken server, or "
            "something on the way that strips encryption): tell its administrator; "
            "nothing was sent unencrypted"
        )
    if plain:
        # The usual sign of implicit TLS spoken to a port that starts in plain text.
        return (
            "the server answered in plain text: for port 587 or 25 set "
            "NEWSLETTER_SMTP_SECURITY=starttls (ssl is for port 465)"
        )
    return SECURITY_HINT


def _cert_hint(code: int | None) -> str:
    if code in _CERT_EXPIRED:
        return (
            "check this computer's date and time; if they are right, the server's "
            "certificate is out of date: tell its administrator (no setting here can fix it)"
        )
    if code in _CERT_OTHER_NAME:
        return (
            "the certificate is for another name: set NEWSLETTER_SMTP_HOST to the server "
            "name your provider gives (e.g. smtp.office365.com), not an IP address or an "
            "alias; a CA file cannot fix this"
        )
    return CERT_HINT


def _oauth_hint(reply: str) -> str:
    """What to do about a refused XOAUTH2 sign-in (signing in again does not enable SMTP
    AUTH)."""
    return SMTP_AUTH_OFF_OAUTH_HINT if _SMTP_AUTH_OFF.search(reply) else OAUTH_HINT


class SendFailure(Exception):
    """One message was not accepted; ``reply`` is the server's answer as one line."""

    def __init__(self, reply: str, *, code: int | None = None) -> None:
        super().__init__(reply)
        self.reply = reply
        self.code = code


class TemporaryFailure(SendFailure):
    """Not accepted this time (4xx, dropped connection, timeout): retry later.

    ``connection``: the connection itself failed (no greeting, 421, a timeout, a reset),
    as opposed to a 4xx answer about this message from a server that is still talking
    (greylisting, "too many recipients"). Several in a row mean the server went away."""

    def __init__(self, reply: str, *, code: int | None = None, connection: bool = False) -> None:
        super().__init__(reply, code=code)
        self.connection = connection or code == 421


class PermanentFailure(SendFailure):
    """Refused for this recipient (5xx on RCPT or DATA): do not retry."""


class UnknownOutcome(SendFailure):
    """The whole message went out and the server's reply did not come in time: it may be
    accepted (a slow server usually is). Never retried automatically, because a retry
    could be a second copy; the member stays ``sending`` (unknown) in the journal."""


class Transport(Protocol):
    """What :func:`newsletter.sending.engine.deliver` needs of a transport, per connection."""

    def connect(self) -> None: ...

    def send(self, msg: Envelope, sender: str) -> str: ...

    def close(self) -> None: ...


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


def _decode(raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw
    # Replies should be ASCII, but some servers answer in their own language and code page
    # ("Empfänger unbekannt" in Latin-1): show those words, not replacement characters.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def _without_token(reply: str, username: str, token: str) -> str:
    """A server reply to AUTH XOAUTH2 as it may be shown and journalled: a server that
    echoes the AUTH argument must not put the bearer token on screen or in the journal."""
    for secret in (_b64(xoauth2(username, token)), token):
        if secret:
            reply = reply.replace(secret, "***")
    return reply


def _reply_text(code: int, resp: bytes | str) -> str:
    text = _decode(resp)
    if code == -1:
        # smtplib's code for a reply line that does not start with a number.
        return f"a reply that is not SMTP ({' '.join(text.split())[:80]!r})"
    # Multi-line replies come joined with newlines; journal and CLI want one line, without
    # control characters (an escape sequence in a reply would reach the terminal).
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(f"{code} {text}".split())


class SmtpTransport:
    """One SMTP connection built from :class:`Settings`, reused for many messages.

    ``send`` connects lazily, reconnects after ``smtp_max_per_connection`` transactions and
    after the server dropped the connection. Not thread-safe: use one per worker thread.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        ssl_context: ssl.SSLContext | None = None,
        token_source: TokenSource | None = None,
    ) -> None:
        settings.require_smtp()
        self._settings = settings
        self._host = settings.smtp_host
        self._port = settings.port
        # Built lazily: reading the CA file is only needed once a TLS connection is made.
        self._ssl_context = ssl_context
        self._conn: smtplib.SMTP | None = None
        self._transactions = 0  # on the current connection
        self.connections_opened = 0
        # OAuth 2.0 (XOAUTH2): fresh tokens on demand; the one in use is never kept here.
        self._token_source = token_source
        if token_source is None and settings.auth_mode == "oauth2":
            from ..signin.oauth import token_source as make_token_source

            self._token_source = make_token_source(settings)
        self._token_valid_until = float("inf")
        self._greeting_pending = False  # while waiting for the server's first line

    def __repr__(self) -> str:
        return f"SmtpTransport({self._host}:{self._port}, {self._settings.smtp_security})"

    # -- connection -----------------------------------------------------------------------

    def _fatal(self, message: str, hint: str | None = None) -> DeliveryError:
        return DeliveryError(self._scrub(message), host=self._host, port=self._port, hint=hint)

    def _scrub(self, text: str) -> str:
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

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            try:
                self._ssl_context = tls_context(self._settings)
            except (OSError, ssl.SSLError) as error:
                raise self._fatal(
                    f"cannot load CA file {self._settings.smtp_cafile}: {error}",
                    "set NEWSLETTER_SMTP_CAFILE to a PEM file",
                ) from None
        return self._ssl_context

    def connect(self) -> None:
        """Open, secure and authenticate a connection; raise DeliveryError if impossible."""
        self.close()
        try:
            self._conn = self._open()
        except DeliveryError:
            raise
        except ssl.SSLCertVerificationError as error:
            reason = error.verify_message or error.reason or "verification failed"
            raise self._fatal(
                f"TLS certificate rejected: {reason}", _cert_hint(error.verify_code)
            ) from None
        except ssl.SSLError as error:
            reason = error.reason or str(error)
            hint = _tls_hint(reason, self._settings.smtp_security)
            raise self._fatal(f"TLS handshake failed: {reason}", hint) from None
        except smtplib.SMTPAuthenticationError as error:
            reply = _reply_text(error.smtp_code, error.smtp_error)
            # "from None": the context holds smtplib frames whose locals include the password.
            if self._settings.auth_mode == "oauth2":
                raise self._fatal(f"XOAUTH2 sign-in refused: {reply}", _oauth_hint(reply)) from None
            if 400 <= error.smtp_code < 500:
                # "454 4.7.0 Temporary authentication failure": the password may be fine.
                raise self._fatal(
                    f"sign-in not possible right now: {reply}",
                    "the server could not check the sign-in just now: wait a few minutes "
                    "and send again",
                ) from None
            hint = next((h for words, h in _AUTH_WORDS if words.search(reply)), None)
            if hint is not None:
                pass
            elif _BASIC_AUTH_OFF.search(reply):
                hint = BASIC_AUTH_HINT
            elif _BASIC_AUTH_MAYBE_OFF.search(reply):
                hint = f"{CREDENTIALS_HINT}; if they are right, {BASIC_AUTH_HINT}"
            else:
                hint = CREDENTIALS_HINT
            raise self._fatal(f"authentication refused: {reply}", hint) from None
        except smtplib.SMTPConnectError as error:
            reply = _reply_text(error.smtp_code, error.smtp_error)
            if 400 <= error.smtp_code < 500:
                # "421 too many connections", "try again later": retried like any 4xx.
                raise TemporaryFailure(
                    f"server busy at connect: {reply}", code=error.smtp_code, connection=True
                ) from None
            if error.smtp_code == -1:
                first = " ".join(_decode(error.smtp_error).split())[:80]
                raise self._fatal(
                    f"not an SMTP server: its first line is not an SMTP greeting ({first!r})",
                    ADDRESS_HINT,
                ) from None
            raise self._fatal(f"server refused the connection: {reply}", ADDRESS_HINT) from None
        except smtplib.SMTPServerDisconnected as error:
            if isinstance(error.__context__, TimeoutError):
                # smtplib reports a silent server as "closed": it was not. A server that
                # never greets is usually an implicit-TLS port spoken to in plain text.
                raise self._fatal(
                    f"no answer within {self._settings.smtp_timeout:g}s "
                    f"({'no SMTP greeting' if self._greeting_pending else 'during setup'})",
                    self._silence_hint(),
                ) from None
            raise self._fatal("server closed the connection during setup", SECURITY_HINT) from None
        except smtplib.SMTPResponseException as error:
            reply = _reply_text(error.smtp_code, error.smtp_error)
            raise self._fatal(f"connection setup refused: {reply}", SECURITY_HINT) from None
        except smtplib.SMTPException as error:
            raise self._fatal(f"connection setup failed: {error}", SECURITY_HINT) from None
        except ConnectionRefusedError:
            raise self._fatal("connection refused", ADDRESS_HINT) from None
        except socket.gaierror as error:
            raise self._fatal(f"unknown host ({error.strerror})", ADDRESS_HINT) from None
        except TimeoutError:
            raise self._fatal(
                f"no answer within {self._settings.smtp_timeout:g}s",
                f"{ADDRESS_HINT}; {SECURITY_HINT}",
            ) from None
        except OSError as error:
            raise self._fatal(f"cannot connect: {error.strerror or error}", ADDRESS_HINT) from None
        self._transactions = 0
        self.connections_opened += 1

    def _silence_hint(self) -> str:
        if self._settings.smtp_security == "ssl" or not self._greeting_pending:
            return f"{ADDRESS_HINT}; {SECURITY_HINT}"
        return (
            f"if port {self._port} expects TLS from the start (usually 465), set "
            f"NEWSLETTER_SMTP_SECURITY=ssl; otherwise {ADDRESS_HINT}"
        )

    def _open(self) -> smtplib.SMTP:
        s = self._settings
        timeout = s.smtp_timeout or None  # 0 would make the socket non-blocking
        self._greeting_pending = True
        if s.smtp_security == "ssl":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                self._host,
                self._port,
                local_hostname=_local_hostname(),
                timeout=timeout,
                context=self._context(),
            )
        else:
            conn = smtplib.SMTP(
                self._host, self._port, local_hostname=_local_hostname(), timeout=timeout
            )
        self._greeting_pending = False
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
                raise self._fatal("server does not offer STARTTLS", SECURITY_HINT)
            conn.starttls(context=self._context())
            conn.ehlo()
        if s.auth_mode == "oauth2":
            self._xoauth2(conn)
        elif s.auth_mode == "password" and s.smtp_username:
            if s.smtp_security == "none":
                raise self._fatal(
                    "AUTH is never sent over an unencrypted connection", SECURITY_HINT
                )
            if not conn.has_extn("auth"):
                raise self._fatal(
                    "server offers no sign-in (AUTH) after TLS",
                    f"port {self._port} may be for server-to-server mail (25): mail "
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
            raise self._fatal("tokens are never sent over an unencrypted connection", SECURITY_HINT)
        mechanisms = (conn.esmtp_features.get("auth") or "").upper().split()
        if "XOAUTH2" not in mechanisms:
            raise self._fatal(
                "server offers no AUTH XOAUTH2 after TLS",
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
                raise DeliveryError(error.message, hint=error.hint) from None
            answer = _XOAuth2Answer(source.username, token)
            try:
                conn.auth("XOAUTH2", answer, initial_response_ok=True)
            except smtplib.SMTPAuthenticationError as error:
                if 400 <= error.smtp_code < 500:
                    # "454 4.7.0 Too many login attempts, please try again later" (Gmail),
                    # "Temporary authentication failure": the token is fine; retried later
                    # like any 4xx, never "sign in again".
                    reply = _without_token(
                        _reply_text(error.smtp_code, error.smtp_error), source.username, token
                    )
                    raise TemporaryFailure(
                        f"sign-in deferred: {reply}", code=error.smtp_code
                    ) from None
                if attempt == 2:
                    status = f" (status {answer.status})" if answer.status else ""
                    reply = _without_token(
                        _reply_text(error.smtp_code, error.smtp_error), source.username, token
                    )
                    raise self._fatal(
                        f"XOAUTH2 sign-in refused: {reply}{status}", _oauth_hint(reply)
                    ) from None
                source.invalidate()
                continue
            self._token_valid_until = source.valid_until
            return

    def _token_expiring(self) -> bool:
        source = self._token_source
        return source is not None and source.clock() >= self._token_valid_until - REFRESH_MARGIN

    def close(self) -> None:
        """Say QUIT (politely, but never fail) and drop the connection."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.sock is not None:
                # Every message is settled before QUIT: its reply tells nothing, so a
                # server that never answers it must not cost a whole timeout per
                # reconnection (100 reconnections x 30 s in a 10,000-member send).
                conn.sock.settimeout(min(self._settings.smtp_timeout or QUIT_WAIT, QUIT_WAIT))
            conn.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            conn.close()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # -- sending --------------------------------------------------------------------------

    def send(self, msg: Envelope, sender: str) -> str:
        """Deliver one message to ``msg.to``; return the server's final reply.

        Raises TemporaryFailure, PermanentFailure or DeliveryError (see the module docs).
        """
        if self._conn is not None and (
            self._transactions >= self._settings.smtp_max_per_connection or self._token_expiring()
        ):
            # A long paced send outlives an access token: reconnect with a fresh one
            # before it expires rather than find out from a refused command.
            self.close()
        reused = self._conn is not None
        if not reused:
            self.connect()
        try:
            return self._transaction(msg, sender)
        except _StaleConnection as error:
            if not reused:
                raise TemporaryFailure(error.reply, connection=True) from None
        # The server had closed the idle connection (its timeout, a batch pause) before we
        # said anything about this message: nothing was sent, so reconnect at once.
        self.connect()
        try:
            return self._transaction(msg, sender)
        except _StaleConnection as error:
            raise TemporaryFailure(error.reply, connection=True) from None

    def _transaction(self, msg: Envelope, sender: str) -> str:
        conn = self._conn
        assert conn is not None
        self._transactions += 1
        stage = "MAIL"
        message_out = False
        try:
            code, resp = conn.mail(sender, self._mail_options(conn, msg, sender))
            if code != 250:
                self._after_refusal(code)
                if 500 <= code < 600:
                    # The sender is the same for every message: no point going on.
                    reply = self._scrub(_reply_text(code, resp))
                    raise SenderRefused(
                        f"server refused sender {sender}: {reply}",
                        reply=reply,
                        host=self._host,
                        port=self._port,
                        hint="check NEWSLETTER_FROM and that the account may send as it",
                    )
                if code == 421:
                    # "Too many messages on this connection" (or a server about to close
                    # it): nothing of this message was sent; on a reused connection a
                    # fresh one may take it at once (send() tries one).
                    raise _StaleConnection(_reply_text(code, resp))
                raise TemporaryFailure(_reply_text(code, resp), code=code)
            stage = "RCPT"
            code, resp = conn.rcpt(msg.to)
            if code not in (250, 251):
                self._after_refusal(code)
                raise _classify(code, resp)
            stage = "DATA"
            code, resp = conn.docmd("data")
            if code == 354:
                conn.send(_dot_stuffed(msg.data))
                message_out = True  # the whole message is out: the server may now have it
                code, resp = conn.getreply()
            elif code < 400:
                # A 2xx to DATA itself (not to the message): the server is confused, or its
                # replies are out of step with our commands (an extra line earlier). The
                # message was never sent, so it must not count as accepted.
                self._drop()
                raise TemporaryFailure(
                    f"unexpected reply to DATA: {_reply_text(code, resp)}", connection=True
                )
            if code != 250:
                self._after_refusal(code)
                raise _classify(code, resp)
            return _reply_text(code, resp)
        except smtplib.SMTPServerDisconnected as error:
            self._drop()
            if message_out and isinstance(error.__context__, TimeoutError):
                # A slow server, not a dead one: it most likely accepts the message.
                raise UnknownOutcome(
                    f"no reply within {self._settings.smtp_timeout:g}s after the message "
                    "was sent; it may have been delivered"
                ) from None
            if isinstance(error.__context__, TimeoutError):
                # Silent, not closed (smtplib words both alike); not stale either: retrying
                # at once would only wait as long again.
                raise TemporaryFailure(
                    f"no reply within {self._settings.smtp_timeout:g}s during {stage}",
                    connection=True,
                ) from None
            if stage == "MAIL":
                raise _StaleConnection(f"connection closed by server ({error})") from None
            raise TemporaryFailure(
                f"connection closed by server during {stage}", connection=True
            ) from None
        except OSError as error:  # timeout, reset, broken pipe, TLS record error
            self._drop()
            if stage == "MAIL" and not isinstance(error, TimeoutError):
                raise _StaleConnection(f"connection lost ({error})") from None
            if isinstance(error, TimeoutError):
                reply = f"no reply within {self._settings.smtp_timeout:g}s during {stage}"
            else:
                reply = f"connection lost during {stage}: {error}"
            raise TemporaryFailure(reply, connection=True) from None
        except smtplib.SMTPException as error:
            self._drop()
            raise TemporaryFailure(f"SMTP error during {stage}: {error}") from None

    def _mail_options(self, conn: smtplib.SMTP, msg: Envelope, sender: str) -> list[str]:
        options: list[str] = []
        if not (sender.isascii() and msg.to.isascii()):
            if not conn.has_extn("smtputf8"):
                raise PermanentFailure(
                    "server does not support SMTPUTF8 (needed for a non-ASCII address)"
                )
            options.append("SMTPUTF8")
        if not msg.data.isascii() and conn.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        return options

    def _after_refusal(self, code: int) -> None:
        # 421: the server is closing the connection; otherwise reset the transaction so the
        # connection can carry the next message.
        if code == 421:
            self._drop()
            return
        try:
            assert self._conn is not None
            self._conn.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()


class SenderRefused(DeliveryError):
    """The server refused the sender at MAIL FROM (5xx): no message can go out now.
    ``reply`` is the server's answer as one line (quota, blocked account, not allowed)."""

    def __init__(self, message: str, *, reply: str, host: str, port: int, hint: str) -> None:
        super().__init__(message, host=host, port=port, hint=hint)
        self.reply = reply


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


class _StaleConnection(Exception):
    """Connection found dead at MAIL FROM: safe to reconnect and retry at once."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


_LEADING_DOT = re.compile(rb"(?m)^\.")


def _dot_stuffed(data: bytes) -> bytes:
    """The DATA payload as smtplib's ``data()`` sends it, without its regex pass when there
    is nothing to stuff: smtplib runs one over every message (~250 µs for 80 KB), while a
    ``find`` tells in ~10 µs whether any line starts with "." (ours never do)."""
    if data.startswith(b".") or b"\n." in data:
        data = _LEADING_DOT.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _classify(code: int, resp: bytes | str) -> SendFailure:
    reply = _reply_text(code, resp)
    if 500 <= code < 600:
        return PermanentFailure(reply, code=code)
    return TemporaryFailure(reply, code=code)


def transport_factory(
    settings: Settings,
    *,
    ssl_context: ssl.SSLContext | None = None,
    token_source: TokenSource | None = None,
) -> Callable[[], SmtpTransport]:
    """A factory for :func:`newsletter.sending.engine.deliver`: one new transport per call."""
    settings.require_smtp()  # fail before any thread starts
    context = ssl_context
    if context is None and settings.smtp_security != "none":
        # Load the CA file once for all connections; errors surface as DeliveryError.
        context = SmtpTransport(settings)._context()
    if token_source is None and settings.auth_mode == "oauth2":
        # One source for all connections: one refresh serves every worker thread.
        from ..signin.oauth import token_source as make_token_source

        token_source = make_token_source(settings)
    return functools.partial(
        SmtpTransport, settings, ssl_context=context, token_source=token_source
    )
