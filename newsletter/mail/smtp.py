"""The SMTP transport: one verified, authenticated connection that carries many messages.

Set-up (connect, TLS, sign-in) is :mod:`.connect`; what the server's words mean is
:mod:`.replies`; the failures it raises, typed, are :mod:`.failures`:

* :class:`TemporaryFailure` (4xx reply, dropped connection, timeout, reset mid-send): this
  message was not accepted, try it again later.
* :class:`PermanentFailure` (5xx reply to RCPT or DATA): this recipient will not get it;
  record the server's reply and go on with the others.
* :class:`~newsletter.common.errors.DeliveryError` (:class:`ConnectionFailed`: server
  unreachable, TLS or certificate failure, AUTH refused, STARTTLS not offered;
  :class:`SenderRefused`): no message can be sent, stop the run.

When the server offers PIPELINING (RFC 2920) and ``smtp_pipelining`` is ``auto``, MAIL, RCPT
and DATA go out in one write and their replies are read in order, each decided exactly as
in the one-command-at-a-time dialogue (a refusal reads the replies still due, answers a
354 with a lone "." and resets): two round trips a message instead of four. A server that
loses commands written together (no reply, or replies out of step, before the data went
out) costs one timeout: the transport then stops writing what it loses, for the run.

The password never appears in an exception message, a log line or a ``repr``.
"""

from __future__ import annotations

import functools
import re
import smtplib
import ssl
from collections.abc import Callable
from typing import Protocol

from ..common.config import Settings
from ..signin.oauth import TokenSource
from .connect import Connector
from .envelope import Envelope
from .failures import (
    ConnectionFailed,
    PermanentFailure,
    SenderRefused,
    SendFailure,
    TemporaryFailure,
    UnknownOutcome,
)
from .replies import reply_text
from .writes import WriteCut, send_counted

__all__ = [
    "ConnectionFailed",
    "PermanentFailure",
    "SendFailure",
    "SenderRefused",
    "SmtpTransport",
    "TemporaryFailure",
    "Transport",
    "UnknownOutcome",
    "transport_factory",
]

QUIT_WAIT = 2.0  # seconds to wait for the reply to QUIT


class Transport(Protocol):
    """What :func:`newsletter.sending.engine.deliver` needs of a transport, per connection."""

    def connect(self) -> None: ...

    def send(self, msg: Envelope, sender: str, following: Envelope | None = None) -> str: ...

    def close(self) -> None: ...


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
        self._settings = settings
        self._connector = Connector(settings, ssl_context=ssl_context, token_source=token_source)
        self._host = self._connector.host
        self._port = self._connector.port
        self._conn: smtplib.SMTP | None = None
        self._transactions = 0  # on the current connection
        self._pipelining = False  # the current connection pipelines (RFC 2920)
        # The next message, whose MAIL, RCPT and DATA went out with this one's data and
        # whose replies are not read yet (pipelining across messages).
        self._ahead: Envelope | None = None
        # Cleared for good when a pipelined group's replies never came (or came out of step)
        # before its data went out: a server, or something on the way, that loses commands
        # written together. Nothing of that message was sent; the rest of the run goes
        # without what the server cannot take, instead of a timeout every other message.
        self._across = True  # the next message's commands may ride behind this one's data
        self._grouped = True  # MAIL, RCPT and DATA may go in one write
        self.connections_opened = 0

    def __repr__(self) -> str:
        return f"SmtpTransport({self._host}:{self._port}, {self._settings.smtp_security})"

    @property
    def pipelining(self) -> bool:
        """Whether the current connection sends MAIL, RCPT and DATA in one write."""
        return self._pipelining

    # -- connection -----------------------------------------------------------------------

    def connect(self) -> None:
        """Open, secure and authenticate a connection; raise DeliveryError if impossible."""
        self.close()
        self._conn = self._connector.open()
        self._transactions = 0
        self._ahead = None
        # Asked of the server's last EHLO (after STARTTLS: the one that counts).
        self._pipelining = (
            self._grouped
            and self._settings.smtp_pipelining == "auto"
            and bool(self._conn.has_extn("pipelining"))
        )
        self.connections_opened += 1

    def close(self) -> None:
        """Say QUIT (politely, but never fail) and drop the connection."""
        if self._ahead is not None:
            # The server may be waiting for a message it was told is coming (354): a
            # hang-up, not QUIT, ends that transaction without delivering anything.
            self._drop()
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
        self._ahead = None
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # -- sending --------------------------------------------------------------------------

    def send(self, msg: Envelope, sender: str, following: Envelope | None = None) -> str:
        """Deliver one message to ``msg.to``; return the server's final reply.

        ``following``: the message the caller sends next on this transport, already claimed
        in the journal. When the connection pipelines, its MAIL, RCPT and DATA go out in the
        same write as this message's data (RFC 2920 allows it; nothing of it is delivered
        until its own data follows), so that in steady state a message costs one round
        trip. Passing another message to the next call, or closing, abandons it unsent.

        Raises TemporaryFailure, PermanentFailure or DeliveryError (see the module docs).
        """
        if self._ahead is not None and self._ahead is not msg:
            self._drop()  # see close(): never a lone "." where a member's data was due
        if (
            self._ahead is None
            and self._conn is not None
            and (
                self._transactions >= self._settings.smtp_max_per_connection
                or self._connector.token_expiring()
            )
        ):
            # A long paced send outlives an access token: reconnect with a fresh one
            # before it expires rather than find out from a refused command.
            self.close()
        reused = self._conn is not None
        if not reused:
            self.connect()
        try:
            return self._transaction(msg, sender, following)
        except _StaleConnection as error:
            if not reused:
                raise TemporaryFailure(error.reply, connection=True) from None
        # The server had closed the idle connection (its timeout, a batch pause) before we
        # said anything about this message: nothing was sent, so reconnect at once.
        self.connect()
        try:
            return self._transaction(msg, sender, following)
        except _StaleConnection as error:
            raise TemporaryFailure(error.reply, connection=True) from None

    def _transaction(self, msg: Envelope, sender: str, following: Envelope | None) -> str:
        conn = self._conn
        assert conn is not None
        self._transactions += 1
        stage = "MAIL"
        message_out = False
        # Replies to commands already written but not read yet (pipelining): a refusal
        # reads them before RSET, so that the next transaction's replies stay in step.
        unread = 0
        # Whose replies are read: commands written behind the previous message's data
        # ("ahead"), or in one write just now ("grouped"); None once the 354 came.
        group = "ahead" if self._ahead is msg else "grouped" if self._pipelining else None
        try:
            if self._ahead is msg:
                # Written with the previous message's data (its options asked then: a scan
                # of the whole message, not repeated): only the replies are due.
                self._ahead = None
                unread = 3
                code, resp = conn.getreply()
                unread = 2
            elif self._pipelining:
                # RFC 2920: MAIL, RCPT and DATA in one write, their replies read in order
                # below, each decided exactly as the classic dialogue decides it: two round
                # trips a message (this write, then the message) instead of four.
                options = self._mail_options(conn, msg, sender)
                conn.send(_pipelined_commands(conn, sender, options, msg.to))
                unread = 3
                code, resp = conn.getreply()
                unread = 2
            else:
                # smtplib's mail(), with the address quoted as quoteaddr() would, cheaply.
                options = self._mail_options(conn, msg, sender)
                _use_encoding(conn, options)
                conn.putcmd("mail", _mail_argument(sender, options))
                code, resp = conn.getreply()
            self._in_step("MAIL", code, resp)
            if code != 250:
                self._after_refusal(code, unread)
                if 500 <= code < 600:
                    # The sender is the same for every message: no point going on.
                    reply = self._connector.scrub(reply_text(code, resp))
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
                    raise _StaleConnection(reply_text(code, resp))
                raise TemporaryFailure(reply_text(code, resp), code=code)
            stage = "RCPT"
            if unread:
                code, resp = conn.getreply()
                unread = 1
            else:
                conn.putcmd("rcpt", f"TO:{_quoted(msg.to)}")  # smtplib's rcpt(), no options
                code, resp = conn.getreply()
            self._in_step("RCPT", code, resp)
            if code not in (250, 251):
                self._after_refusal(code, unread)
                raise _classify(code, resp)
            stage = "DATA"
            if unread:
                code, resp = conn.getreply()
                unread = 0
            else:
                code, resp = conn.docmd("data")
            if code == 354:
                group = None
                payload = _dot_stuffed(msg.data, dot_safe=msg.dot_safe)
                ahead = self._next_commands(conn, sender, following)
                try:
                    send_counted(conn.sock, payload, ahead)
                except WriteCut as cut:
                    raise self._write_cut(cut, len(payload)) from None
                message_out = True  # the whole message is out: the server may now have it
                if ahead:
                    self._ahead = following
                code, resp = conn.getreply()
                if not (200 <= code < 300 or 400 <= code < 600):
                    # No reply a server gives to a message (a line that is not SMTP, a
                    # stray 354): what it said of the message, which went out whole,
                    # cannot be known. Unknown, as when no reply comes: never retried.
                    self._drop()
                    raise UnknownOutcome(
                        f"unexpected reply after the message was sent ({reply_text(code, resp)})"
                        "; it may have been delivered",
                        timed_out=False,
                    )
            elif code < 400:
                # A 2xx to DATA itself (not to the message): the server is confused, or its
                # replies are out of step with our commands (an extra line earlier). The
                # message was never sent, so it must not count as accepted.
                self._drop()
                raise TemporaryFailure(
                    f"unexpected reply to DATA: {reply_text(code, resp)}", connection=True
                )
            # Any 2xx is a positive completion (RFC 5321, 4.2.1), if not the usual 250: the
            # server has the message, and taken for a failure its retry is a second copy.
            if not 200 <= code < 300:
                if self._ahead is None:
                    self._after_refusal(code)
                elif code == 421:
                    self._drop()
                # else: the reply to the data ended this transaction; the next one's
                # commands, already written, must not be reset.
                raise _classify(code, resp)
            return reply_text(code, resp)
        except TemporaryFailure as failure:
            if failure.code is None:  # replies out of step, not a refusal
                self._lost_commands(group, stage)
            raise
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
                self._lost_commands(group, stage)
                raise TemporaryFailure(
                    f"no reply within {self._settings.smtp_timeout:g}s during {stage}",
                    connection=True,
                    timed_out=True,
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
                self._lost_commands(group, stage)
                raise TemporaryFailure(
                    f"no reply within {self._settings.smtp_timeout:g}s during {stage}",
                    connection=True,
                    timed_out=True,
                ) from None
            raise TemporaryFailure(
                f"connection lost during {stage}: {error}", connection=True
            ) from None
        except smtplib.SMTPException as error:
            self._drop()
            raise TemporaryFailure(f"SMTP error during {stage}: {error}") from None

    def _next_commands(self, conn: smtplib.SMTP, sender: str, following: Envelope | None) -> bytes:
        """The next message's MAIL, RCPT and DATA to write with this one's data, if this
        connection pipelines and will carry it (empty otherwise)."""
        if following is None or not self._pipelining or not self._across:
            return b""
        if self._transactions >= self._settings.smtp_max_per_connection:
            return b""  # it goes on the next connection
        try:
            options = self._mail_options(conn, following, sender)
        except PermanentFailure:
            return b""  # said when it is sent on its own
        return _pipelined_commands(conn, sender, options, following.to)

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

    def _lost_commands(self, group: str | None, stage: str) -> None:
        """No reply (or one out of step) while reading a pipelined group's replies: stop
        writing what this server loses. Commands behind a message's data: their MAIL reply
        is the first one missing. A group of its own: past MAIL (which any server reading
        line by line answers), where a silent MAIL is just a silent server."""
        if group == "ahead":
            self._across = False
        elif group == "grouped" and stage != "MAIL":
            self._grouped = False

    def _write_cut(self, cut: WriteCut, message: int) -> SendFailure:
        """What a write of the message (``message`` bytes up to its final ".", then perhaps
        the next message's commands) that failed midway means, the connection dropped."""
        self._drop()
        timeout = self._settings.smtp_timeout
        if not isinstance(cut.error, TimeoutError):
            return TemporaryFailure(f"connection lost during DATA: {cut.error}", connection=True)
        if cut.written >= message:
            # Only the next message's commands were left: the server may read the "." and
            # keep the message. Unknown, as when no reply comes, never retried.
            return UnknownOutcome(
                f"the server stopped reading right after the message (nothing taken for "
                f"{timeout:g}s); it may have been delivered"
            )
        return TemporaryFailure(
            f"the server stopped reading the message (nothing taken for {timeout:g}s)",
            connection=True,
            timed_out=True,
        )

    def _in_step(self, stage: str, code: int, resp: bytes) -> None:
        """Raise (and hang up) if ``code`` cannot answer MAIL or RCPT (a 354, a 1xx, a line
        that is not SMTP): the replies are out of step with the commands (a server that left
        one out, or sent one more), so no later reply on this connection can be trusted to
        be about the command it is read for. Nothing of the message was sent."""
        if 200 <= code < 300 or 400 <= code < 600:
            return
        self._drop()
        raise TemporaryFailure(
            f"unexpected reply to {stage}: {reply_text(code, resp)}", connection=True
        )

    def _after_refusal(self, code: int, unread: int = 0) -> None:
        # 421: the server is closing the connection; otherwise reset the transaction so the
        # connection can carry the next message. Whatever happens here, the refusal already
        # decided this message's outcome: a failure only costs the connection.
        if code == 421:
            self._drop()
            return
        conn = self._conn
        assert conn is not None
        try:
            if not _drain(conn, unread):
                self._drop()
                return
            conn.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()


class _StaleConnection(Exception):
    """Connection found dead at MAIL FROM: safe to reconnect and retry at once."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


_LEADING_DOT = re.compile(rb"(?m)^\.")


def _dot_stuffed(data: bytes, *, dot_safe: bool = False) -> bytes:
    """The DATA payload as smtplib's ``data()`` sends it, without its regex pass when there
    is nothing to stuff: smtplib runs one over every message (~250 µs for 80 KB). Looking
    for a line starting with "." still costs ~100 µs for 80 KB (a two-byte ``in``), so a
    message whose maker guarantees there is none (``Envelope.dot_safe``) is not scanned."""
    if not dot_safe and (data.startswith(b".") or b"\n." in data):
        data = _LEADING_DOT.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _pipelined_commands(
    conn: smtplib.SMTP, sender: str, options: list[str], recipient: str
) -> bytes:
    """MAIL, RCPT and DATA as one write, worded and encoded as smtplib's ``mail()``,
    ``rcpt()`` and ``docmd("data")`` send them one at a time."""
    _use_encoding(conn, options)
    lines = [f"mail {_mail_argument(sender, options)}", f"rcpt TO:{_quoted(recipient)}", "data"]
    for line in lines:
        if "\r" in line or "\n" in line:  # smtplib's putcmd refuses them the same way
            raise ValueError(f"command contains a line break: {line!r}")
    return "".join(f"{line}\r\n" for line in lines).encode(conn.command_encoding)


# An address smtplib.quoteaddr() (through email.utils.parseaddr, ~10 µs) returns as it is,
# in angle brackets: dot-separated words of letters, digits, "_", "+" and "-" (a subset of
# RFC 5322's dot-atom; tests/mail/test_smtp_commands.py checks it against quoteaddr).
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)


def _quoted(address: str) -> str:
    """``smtplib.quoteaddr(address)``, without its parser for a plain address."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return _quoteaddr(address)


# The sender is the same in every message: an unusual one is parsed once, not per message.
_quoteaddr = functools.lru_cache(maxsize=16)(smtplib.quoteaddr)


def _mail_argument(sender: str, options: list[str]) -> str:
    """MAIL's argument as smtplib's ``mail()`` words it (options only with ESMTP, which
    _mail_options's has_extn checks imply)."""
    return f"FROM:{_quoted(sender)}{''.join(f' {option}' for option in options)}"


def _use_encoding(conn: smtplib.SMTP, options: list[str]) -> None:
    if "SMTPUTF8" in options:
        conn.command_encoding = "utf-8"  # as smtplib's mail() does (checked by _mail_options)


def _drain(conn: smtplib.SMTP, unread: int) -> bool:
    """Read the replies to ``unread`` pipelined commands after a refusal; False if the
    connection cannot carry another message (the server said 421)."""
    for _ in range(unread):
        code, _resp = conn.getreply()
        if code == 421:
            return False
        if code == 354:
            # RFC 2920, 3.1: a server may accept DATA although it refused the sender or
            # every recipient; the client then sends a lone "." (an empty message to
            # nobody) rather than the message, and resets.
            conn.send(b".\r\n")
            code, _resp = conn.getreply()
            if code == 421:
                return False
    return True


def _classify(code: int, resp: bytes | str) -> SendFailure:
    reply = reply_text(code, resp)
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
        context = Connector(settings).context()
    if token_source is None and settings.auth_mode == "oauth2":
        # One source for all connections: one refresh serves every worker thread.
        from ..signin.oauth import token_source as make_token_source

        token_source = make_token_source(settings)
    return functools.partial(
        SmtpTransport, settings, ssl_context=context, token_source=token_source
    )
