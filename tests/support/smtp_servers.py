"""Real aiosmtpd servers on 127.0.0.1 for tests and benchmarks (real SMTP, never stand-ins).

``start_server(...)`` returns a running :class:`Server` (also a context manager) whose
``handler.messages`` records what arrived, with receive times and the connection number it
came on. Options: STARTTLS or implicit TLS with a trustme CA, AUTH with one good password,
and a misbehaving handler (451 once, 550, dropped connections).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from newsletter.sending.message import OutgoingMessage

HOST = "127.0.0.1"
USERNAME = "bulletin"
PASSWORD = "s3cret-Pa55word"
HANG_GUARD = 300.0  # seconds: only a hung sender ever waits this long
_SLICE = 0.05  # seconds between two looks at whether the sender still runs


@dataclass(frozen=True)
class Received:
    rcpts: tuple[str, ...]
    data: bytes
    time: float  # time.monotonic() when the server accepted it
    connection: int  # 1-based number of the connection it arrived on
    mail_from: str


class RecordingHandler:
    """Accepts everything and remembers it."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self._arrival = threading.Condition(self.lock)  # woken by every message stored

    def record(self, server: SMTP, envelope: Envelope) -> None:
        data = envelope.original_content or b""
        item = Received(
            tuple(envelope.rcpt_tos),
            bytes(data),
            time.monotonic(),
            getattr(server, "connection_number", 0),
            envelope.mail_from or "",
        )
        with self._arrival:
            self.messages.append(item)
            self._arrival.notify_all()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.record(server, envelope)
        return "250 2.0.0 Ok: queued"

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def wait_for(self, count: int, *, alive: Callable[[], bool] = lambda: True) -> bool:
        """Block until ``count`` messages have arrived: True; False if ``alive()`` (asked
        between short slices: "is the sender still running?") turns False first.

        Woken by each arrival, never by reading a clock. A sender that neither progresses
        nor ends raises AssertionError after HANG_GUARD seconds of slices: a failure
        instead of a hung suite, far beyond any busy machine's pace."""
        with self._arrival:
            for _ in range(int(HANG_GUARD / _SLICE)):
                if self._arrival.wait_for(lambda: len(self.messages) >= count, _SLICE):
                    return True
                if not alive():
                    return False
        raise AssertionError(f"no progress: {self.count()} of {count} message(s) arrived")

    def copies(self) -> dict[str, int]:
        """Copies received per recipient (casefolded)."""
        result: dict[str, int] = {}
        with self.lock:
            for item in self.messages:
                for rcpt in item.rcpts:
                    result[rcpt.casefold()] = result.get(rcpt.casefold(), 0) + 1
        return result


class SinkHandler:
    """The cheapest handler: answers 250 and keeps nothing (for benchmarks)."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 OK"


class MisbehavingHandler(RecordingHandler):
    """451 on the first RCPT for each of ``greylist``, 550 for ``unknown``, and every
    ``drop_every``-th DATA closes the connection without a reply (nothing stored)."""

    def __init__(
        self,
        *,
        greylist: Iterable[str] = (),
        unknown: Iterable[str] = (),
        drop_every: int = 0,
    ) -> None:
        super().__init__()
        self.greylist = {a.casefold() for a in greylist}
        self.unknown = {a.casefold() for a in unknown}
        self.drop_every = drop_every
        self.data_count = 0
        self.drops = 0
        self.rcpt_seen: set[str] = set()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        key = address.casefold()
        if key in self.unknown:
            return f"550 5.1.1 <{address}>: user unknown"
        if key in self.greylist and key not in self.rcpt_seen:
            self.rcpt_seen.add(key)
            return "451 4.7.1 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.data_count += 1
        if self.drop_every and self.data_count % self.drop_every == 0:
            assert server.transport is not None
            self.drops += 1
            server.transport.close()
            await asyncio.sleep(10)  # cancelled by connection_lost: no reply is ever sent
        self.record(server, envelope)
        return "250 2.0.0 Ok: queued"


GMAIL_DAILY_LIMIT = (
    "550 5.4.5 Daily user sending limit exceeded. For more information on Gmail sending "
    "limits go to https://support.google.com/a/answer/166852"
)
MICROSOFT_QUOTA = (
    "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to "
    "process message due to a permanent exception with message"
)


# Amazon SES's SMTP replies for its two sending limits (its documented words).
SES_RATE_EXCEEDED = "454 Throttling failure: Maximum sending rate exceeded."
SES_QUOTA_EXCEEDED = "454 Throttling failure: Daily message quota exceeded."


class ThrottlingHandler(RecordingHandler):
    """Accepts ``accept`` messages, then answers the next ``throttled`` transactions at
    DATA with ``reply`` (a "too fast" refusal, as Amazon SES sends over its maximum send
    rate), then accepts again. ``refused`` lists the members refused so."""

    def __init__(self, accept: int, throttled: int, reply: str = SES_RATE_EXCEEDED) -> None:
        super().__init__()
        self.accept = accept
        self.throttled = throttled
        self.reply = reply
        self.refused: list[str] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            over = self.count_unlocked() >= self.accept and len(self.refused) < self.throttled
            if over:
                self.refused.extend(envelope.rcpt_tos)
        if over:
            return self.reply
        self.record(server, envelope)
        return "250 2.0.0 Ok: queued"

    def count_unlocked(self) -> int:
        return len(self.messages)


class QuotaHandler(RecordingHandler):
    """Accepts ``accept`` messages, then answers every transaction with ``reply`` at
    ``stage`` ("MAIL", "RCPT" or "DATA"), as a provider does once the account's daily quota
    is spent, until :meth:`recover` (the next day). ``refused`` counts those replies."""

    def __init__(
        self, accept: int, reply: str, stage: str = "RCPT", unknown: Iterable[str] = ()
    ) -> None:
        super().__init__()
        self.left = accept
        self.reply = reply
        self.stage = stage
        self.refused = 0
        self.unknown = {a.casefold() for a in unknown}  # refused 550 5.1.1 at RCPT

    def recover(self, accept: int = 10**9) -> None:
        self.left = accept

    def _over(self, stage: str) -> bool:
        if stage == self.stage and self.left <= 0:
            self.refused += 1
            return True
        return False

    async def handle_MAIL(self, server, session, envelope, address, options) -> str:
        if self._over("MAIL"):
            return self.reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options) -> str:
        if address.casefold() in self.unknown:
            return f"550 5.1.1 <{address}>: user unknown"
        if self._over("RCPT"):
            return self.reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._over("DATA"):
            return self.reply
        self.left -= 1
        self.record(server, envelope)
        return "250 2.0.0 Ok: queued"


class SameRefusalHandler(RecordingHandler):
    """Accepts ``accept`` messages, then refuses every recipient with one reply that is not
    a known quota text and not a recipient code (a generic block of the sender)."""

    def __init__(self, accept: int, reply: str = "554 5.7.1 Message rejected: policy") -> None:
        super().__init__()
        self.left = accept
        self.reply = reply
        self.unknown: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, options) -> str:
        if address.casefold() in self.unknown:
            return f"550 5.1.1 <{address}>: user unknown"
        if self.left <= 0:
            return self.reply.replace("policy", f"policy <{address}>")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.left -= 1
        self.record(server, envelope)
        return "250 2.0.0 Ok: queued"


class XOAuth2Handler(RecordingHandler):
    """Records mail and offers AUTH XOAUTH2 only (aiosmtpd offers AUTH after TLS only),
    accepting a bearer token when ``validate(token)`` names the user it was issued to, as
    Microsoft 365 and Gmail do: a bad token gets ``334 <base64 JSON error>``, the client's
    empty line, then 535. ``attempts`` counts AUTH tries, ``accepted`` the good ones."""

    def __init__(self, validate: Any) -> None:
        super().__init__()
        self.validate = validate
        self.attempts = 0
        self.accepted = 0

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802
        self.attempts += 1
        if len(args) > 1:
            raw = base64.b64decode(args[1])
        else:
            answer = await server.challenge_auth("")
            raw = answer if isinstance(answer, bytes) else b""
        fields = dict(
            part.split("=", 1) for part in raw.decode("utf-8", "replace").split("\x01") if part
        )
        user = fields.get("user", "")
        token = fields.get("auth", "").removeprefix("Bearer ")
        if token and self.validate(token) == user:
            self.accepted += 1
            return AuthResult(success=True, auth_data=user)
        error = {"status": "401", "schemes": "bearer", "scope": "https://mail.example/"}
        await server.challenge_auth(json.dumps(error))  # the client answers with an empty line
        return AuthResult(
            success=False, handled=False, message="535 5.7.3 Authentication unsuccessful"
        )


class PasswordOffHandler(RecordingHandler):
    """Microsoft 365 after the switch-off: AUTH LOGIN/PLAIN always answer ``reply``."""

    def __init__(
        self,
        reply: str = "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.",
    ) -> None:
        super().__init__()
        self.reply = reply


def password_off_authenticator(reply: str) -> Any:
    def authenticate(*args: Any) -> AuthResult:
        return AuthResult(success=False, handled=False, message=reply)

    return authenticate


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USERNAME.encode()
        and auth_data.password == PASSWORD.encode()
    )
    # handled=False on failure: aiosmtpd then answers 535; with handled=True it answers
    # nothing and the client hangs until its timeout.
    return AuthResult(success=ok, handled=False)


class _CountingController(Controller):
    """Numbers each connection, so tests can see how many the client opened."""

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.connections = 0
        self._numbers = itertools.count(1)

    def start(self) -> None:
        super().start()
        # start() made one probe connection of its own: count the client's from 1.
        self.connections = 0
        self._numbers = itertools.count(1)

    def factory(self) -> SMTP:
        server = super().factory()
        self.connections = next(self._numbers)
        server.connection_number = self.connections  # type: ignore[attr-defined]
        return server


@dataclass
class Server:
    controller: _CountingController
    handler: Any
    host: str
    port: int
    cafile: str | None  # the test CA's certificate, for NEWSLETTER_SMTP_CAFILE

    @property
    def connections(self) -> int:
        """Connections the clients made so far."""
        return self.controller.connections

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


_CA: trustme.CA | None = None
_CA_LOCK = threading.Lock()


def test_ca() -> trustme.CA:
    """One CA per process (issuing is slow-ish), with a cert for 127.0.0.1 and localhost."""
    global _CA
    with _CA_LOCK:
        if _CA is None:
            _CA = trustme.CA()
        return _CA


test_ca.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def server_tls_context(names: tuple[str, ...] = (HOST, "localhost")) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    test_ca().issue_cert(*names).configure_cert(context)
    return context


def start_server(
    handler: Any = None,
    *,
    tls: str = "none",
    auth: bool = False,
    cafile_dir: Path | None = None,
    cert_names: tuple[str, ...] = (HOST, "localhost"),
    **smtp_kwargs: Any,
) -> Server:
    """Start a server on a free port of 127.0.0.1.

    ``tls``: "none" (plain), "starttls" (offered and required), "ssl" (implicit TLS).
    ``auth``: require AUTH LOGIN/PLAIN with USERNAME/PASSWORD (after TLS).
    ``cafile_dir``: where to write the CA certificate the client should trust.
    ``cert_names``: the names in the server's certificate.
    ``smtp_kwargs``: passed on to aiosmtpd's SMTP (e.g. ``timeout=`` idle seconds).
    """
    handler = handler if handler is not None else RecordingHandler()
    kwargs: dict[str, Any] = {"hostname": HOST, "port": free_port(), **smtp_kwargs}
    if tls == "starttls":
        kwargs.update(tls_context=server_tls_context(cert_names), require_starttls=True)
    elif tls == "ssl":
        kwargs.update(ssl_context=server_tls_context(cert_names))
    elif tls != "none":
        raise ValueError(tls)
    if isinstance(handler, XOAuth2Handler):
        # XOAUTH2 only: the built-in LOGIN and PLAIN are switched off.
        kwargs.update(auth_exclude_mechanism=["LOGIN", "PLAIN"], auth_required=True)
        if tls == "ssl":
            kwargs.update(auth_require_tls=False, auth_required=False)
    if isinstance(handler, PasswordOffHandler):
        auth = False
        kwargs.update(authenticator=password_off_authenticator(handler.reply), auth_required=True)
        if tls == "ssl":
            kwargs.update(auth_require_tls=False, auth_required=False)
    if auth:
        kwargs.update(authenticator=authenticator, auth_required=True)
        if tls == "ssl":
            # aiosmtpd 1.4.6 only counts STARTTLS as "TLS": on an implicit-TLS listener it
            # would never offer AUTH unless told that the (already encrypted) link is fine;
            # and it warns if AUTH is then also required, so it is only offered there.
            kwargs.update(auth_require_tls=False, auth_required=False)
    cafile = None
    if tls != "none":
        directory = cafile_dir or Path(_tmpdir())
        cafile = str(directory / "test-ca.pem")
        test_ca().cert_pem.write_to_path(cafile)
    controller = _CountingController(handler, **kwargs)
    controller.start()
    return Server(controller, handler, HOST, kwargs["port"], cafile)


def _tmpdir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="smtp-ca-")


def make_message(to: str, row: int = 1, size: int = 0) -> OutgoingMessage:
    """A small valid message (CRLF line endings) with a unique Message-ID."""
    message_id = f"<{row}.{uuid.uuid4().hex}@news.example.org>"
    lines = [
        "From: Cluster News <news@example.org>",
        f"To: {to}",
        "Subject: Cluster news",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "",
        f"Hello {to}, this is row {row}.",
        ".a line starting with a dot must survive",
    ]
    lines += ["x" * 70] * (size // 72)
    return OutgoingMessage(to, row, message_id, ("\r\n".join(lines) + "\r\n").encode())


def addresses(count: int, domain: str = "example.org") -> list[str]:
    return [f"member{i:05d}@{domain}" for i in range(count)]


def copies_of(server: Server, wanted: Iterable[str]) -> dict[str, int]:
    got = server.handler.copies()
    return {a: got.get(a.casefold(), 0) for a in wanted}
