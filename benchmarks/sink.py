"""A fast loopback SMTP sink for the delivery benchmarks: accepts everything, keeps nothing.

    python benchmarks/sink.py [--port 0] [--tls-dir DIR] [--auth USER:PASSWORD]
                              [--reply-delay-ms 0] [--pipelining]

Prints ``ready <port>`` once listening on 127.0.0.1 (never any other address), then serves
until its standard input is closed (or Ctrl-C), and prints what it received to stderr.
``--reply-delay-ms N`` delays every reply (and the TLS handshake's start) by N ms, in order:
a stand-in for a network round trip, which loopback does not have.

Just enough SMTP for smtplib and :mod:`newsletter.mail.smtp`: greeting, EHLO/HELO, MAIL, RCPT,
DATA, RSET, NOOP, QUIT, STARTTLS and AUTH PLAIN/LOGIN, plus ``XCOUNT`` (reply ``250
<messages> <bytes>``: what was accepted so far, over all connections). ``--pipelining``
advertises PIPELINING (RFC 2920) and, as Postfix does, answers the commands of one read
with one write; without it, the sink still reads pipelined commands but does not offer it.

Why not aiosmtpd: it processes the DATA body line by line in Python, about 1,000 lines per
newsletter, which caps it near 500 messages/s on loopback and hides what the client does.
Here the body is accumulated as it arrives and searched for the end marker with
``bytearray.find`` from where the previous search stopped: a few C calls per 64 KB read.

``--tls-dir DIR``: offer STARTTLS with a certificate for 127.0.0.1 from a trustme test CA;
the CA certificate is written to ``DIR/ca.pem`` (and the server's key and chain to
``DIR/server.pem``, reused if present) for clients to trust. With ``--auth``, AUTH is
offered only after STARTTLS and required before MAIL, as a submission server does.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import signal
import ssl
import sys
import threading
from collections import deque
from pathlib import Path

HOST = "127.0.0.1"
END = b"\r\n.\r\n"
MAX_LINE = 4096  # longer command lines are refused (RFC 5321 asks for at least 512)


def make_certs(folder: str | Path) -> tuple[Path, Path]:
    """``(server.pem, ca.pem)`` in ``folder``: a trustme CA and a cert for 127.0.0.1."""
    folder = Path(folder)
    server, ca_file = folder / "server.pem", folder / "ca.pem"
    if not (server.exists() and ca_file.exists()):
        import trustme

        ca = trustme.CA()
        ca.issue_cert(HOST).private_key_and_cert_chain_pem.write_to_path(str(server))
        ca.cert_pem.write_to_path(str(ca_file))
    return server, ca_file


class Totals:
    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0
        self.connections = 0


class SinkProtocol(asyncio.Protocol):
    """One SMTP session. Commands are parsed from a buffer; DATA bodies are only scanned."""

    def __init__(
        self,
        totals: Totals,
        tls: ssl.SSLContext | None,
        auth: tuple[str, str] | None,
        delay: float = 0.0,
        pipelining: bool = False,
    ) -> None:
        self.totals = totals
        self.delay = delay
        self.pipelining = pipelining
        self.out: list[bytes] | None = None  # replies held for one write (pipelining)
        self.delayed: deque[tuple[str, bool]] = deque()
        self.tls_context = tls
        self.credentials = auth
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()  # command bytes not yet parsed
        self.body: bytearray | None = None  # during DATA: the body so far, after a CRLF
        self.scanned = 0  # END cannot start before this offset of body
        self.secure = False
        self.authenticated = False
        self.greeted = False
        self.sender = False
        self.recipients = 0
        self.upgrading = False  # STARTTLS handshake in progress: hold incoming bytes
        self.continuation: str | None = None  # AUTH step waiting for a client line

    # -- plumbing ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.totals.connections += 1
        self.reply("220 127.0.0.1 ESMTP benchmark sink")

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def reply(self, text: str, *, close: bool = False) -> None:
        if self.delay:
            # Each reply leaves ``delay`` seconds late, in order: a network round trip.
            self.delayed.append((text, close))
            asyncio.get_running_loop().call_later(self.delay, self.send_delayed)
        else:
            self.write(text, close)

    def send_delayed(self) -> None:
        self.write(*self.delayed.popleft())

    def write(self, text: str, close: bool) -> None:
        if self.out is not None and not close:
            self.out.append(text.encode("ascii") + b"\r\n")
            return
        self.flush()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(text.encode("ascii") + b"\r\n")
            if close:
                self.transport.close()

    def flush(self) -> None:
        out, self.out = self.out, ([] if self.out is not None else None)
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(out))

    def data_received(self, data: bytes) -> None:
        if self.pipelining and not self.delay:
            self.out = []  # the replies to everything this read holds leave together
        if self.body is not None:
            self.receive_body(data)
        else:
            self.buf += data
        self.run_commands()
        self.flush()
        self.out = None

    def receive_body(self, data: bytes | bytearray) -> None:
        body = self.body
        assert body is not None
        body += data
        end = body.find(END, self.scanned)
        if end < 0:
            self.scanned = max(len(body) - len(END) + 1, 0)
            return
        # body = CRLF (so that an empty message ends too) + message + ".CRLF": the message,
        # with its own final CRLF, is body[2 : end + 2].
        size = end
        self.buf += body[end + len(END) :]  # a client that pipelines anyway
        self.body = None
        self.totals.messages += 1
        self.totals.bytes += size
        self.sender, self.recipients = False, 0
        self.reply(f"250 2.0.0 OK: queued as {self.totals.messages}")

    def run_commands(self) -> None:
        while self.body is None and not self.upgrading and self.transport is not None:
            eol = self.buf.find(b"\r\n")
            if eol < 0:
                if len(self.buf) > MAX_LINE:
                    self.buf.clear()
                    self.reply("500 5.5.6 line too long")
                return
            line = bytes(self.buf[:eol])
            del self.buf[: eol + 2]
            self.command(line.decode("utf-8", "replace"))
        if self.body is not None and self.buf:
            rest = bytes(self.buf)
            self.buf.clear()
            self.receive_body(rest)
            self.run_commands()

    # -- SMTP -------------------------------------------------------------------------------

    def command(self, line: str) -> None:
        if self.continuation is not None:
            self.auth_continue(line)
            return
        verb, _, arg = line.partition(" ")
        verb = verb.upper()
        handler = getattr(self, f"smtp_{verb}", None) if verb.isalpha() else None
        if handler is None:
            self.reply("500 5.5.2 command not recognised")
        else:
            handler(arg.strip())

    def smtp_EHLO(self, arg: str) -> None:
        self.greeted, self.sender, self.recipients = True, False, 0
        lines = ["127.0.0.1", "SIZE 104857600", "8BITMIME"]
        if self.pipelining:
            lines.append("PIPELINING")
        if self.tls_context is not None and not self.secure:
            lines.append("STARTTLS")
        if self.credentials is not None and (self.secure or self.tls_context is None):
            lines.append("AUTH PLAIN LOGIN")
        *first, last = lines
        self.reply("".join(f"250-{text}\r\n" for text in first) + f"250 {last}")

    def smtp_HELO(self, arg: str) -> None:
        self.greeted, self.sender, self.recipients = True, False, 0
        self.reply("250 127.0.0.1")

    def smtp_STARTTLS(self, arg: str) -> None:
        if self.tls_context is None or self.secure:
            self.reply("503 5.5.1 TLS not available")
            return
        self.reply("220 2.0.0 ready to start TLS")
        self.flush()
        self.upgrading = True
        self.buf.clear()  # nothing sent before the handshake counts (RFC 3207)
        asyncio.get_running_loop().create_task(self.start_tls())

    async def start_tls(self) -> None:
        loop = asyncio.get_running_loop()
        while self.delayed:  # the 220 above must go out before the handshake starts
            await asyncio.sleep(self.delay / 10)
        assert self.transport is not None and self.tls_context is not None
        try:
            transport = await loop.start_tls(
                self.transport, self, self.tls_context, server_side=True
            )
        except (OSError, ssl.SSLError, ConnectionError):
            if self.transport is not None:
                self.transport.close()
            return
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.secure, self.greeted, self.authenticated = True, False, False
        self.sender, self.recipients, self.upgrading = False, 0, False
        self.run_commands()  # the EHLO may have arrived while the handshake task resumed

    def smtp_AUTH(self, arg: str) -> None:
        if self.credentials is None:
            self.reply("502 5.5.1 AUTH not available")
        elif self.tls_context is not None and not self.secure:
            self.reply("538 5.7.11 encryption required for AUTH")
        elif self.authenticated:
            self.reply("503 5.5.1 already authenticated")
        else:
            mechanism, _, initial = arg.partition(" ")
            mechanism = mechanism.upper()
            if mechanism == "PLAIN":
                if initial:
                    self.auth_plain(initial)
                else:
                    self.continuation = "plain"
                    self.reply("334 ")
            elif mechanism == "LOGIN":
                if initial:
                    self.continuation = "login-password:" + self.b64(initial)
                    self.reply("334 UGFzc3dvcmQ6")
                else:
                    self.continuation = "login-username"
                    self.reply("334 VXNlcm5hbWU6")
            else:
                self.reply("504 5.5.4 mechanism not supported")

    @staticmethod
    def b64(text: str) -> str:
        try:
            return base64.b64decode(text, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return "\0invalid\0"

    def auth_continue(self, line: str) -> None:
        step, self.continuation = self.continuation, None
        if line == "*":
            self.reply("501 5.7.0 AUTH cancelled")
        elif step == "plain":
            self.auth_plain(line)
        elif step == "login-username":
            self.continuation = "login-password:" + self.b64(line)
            self.reply("334 UGFzc3dvcmQ6")
        else:
            assert step is not None
            self.auth_check(step.partition(":")[2], self.b64(line))

    def auth_plain(self, response: str) -> None:
        _, _, rest = self.b64(response).partition("\0")
        username, _, password = rest.partition("\0")
        self.auth_check(username, password)

    def auth_check(self, username: str, password: str) -> None:
        if (username, password) == self.credentials:
            self.authenticated = True
            self.reply("235 2.7.0 authentication successful")
        else:
            self.reply("535 5.7.8 authentication credentials invalid")

    def smtp_MAIL(self, arg: str) -> None:
        if not self.greeted:
            self.reply("503 5.5.1 say EHLO first")
        elif self.credentials is not None and not self.authenticated:
            self.reply("530 5.7.0 authentication required")
        elif self.sender:
            self.reply("503 5.5.1 nested MAIL command")
        elif not arg.upper().startswith("FROM:"):
            self.reply("501 5.5.4 syntax: MAIL FROM:<address>")
        else:
            self.sender = True
            self.reply("250 2.1.0 OK")

    def smtp_RCPT(self, arg: str) -> None:
        if not self.sender:
            self.reply("503 5.5.1 need MAIL first")
        elif not arg.upper().startswith("TO:"):
            self.reply("501 5.5.4 syntax: RCPT TO:<address>")
        else:
            self.recipients += 1
            self.reply("250 2.1.5 OK")

    def smtp_DATA(self, arg: str) -> None:
        if not self.recipients:
            self.reply("503 5.5.1 need RCPT first")
            return
        self.body = bytearray(b"\r\n")
        self.scanned = 0
        self.reply("354 end data with <CR><LF>.<CR><LF>")

    def smtp_RSET(self, arg: str) -> None:
        self.sender, self.recipients = False, 0
        self.reply("250 2.0.0 OK")

    def smtp_NOOP(self, arg: str) -> None:
        self.reply("250 2.0.0 OK")

    def smtp_XCOUNT(self, arg: str) -> None:
        self.reply(f"250 {self.totals.messages} {self.totals.bytes}")

    def smtp_QUIT(self, arg: str) -> None:
        self.reply("221 2.0.0 bye", close=True)


async def serve(
    port: int,
    tls_dir: str | None,
    auth: tuple[str, str] | None,
    delay: float,
    totals: Totals,
    pipelining: bool = False,
) -> None:
    loop = asyncio.get_running_loop()
    context = None
    if tls_dir:
        server_pem, _ = make_certs(tls_dir)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(server_pem))
    server = await loop.create_server(
        lambda: SinkProtocol(totals, context, auth, delay, pipelining), HOST, port, backlog=512
    )
    stop = asyncio.Event()

    def watch_stdin() -> None:
        sys.stdin.buffer.read()  # returns at EOF: the parent closed our stdin
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--tls-dir", help="offer STARTTLS; writes ca.pem (trustme CA) here")
    parser.add_argument("--auth", metavar="USER:PASSWORD", help="require AUTH PLAIN/LOGIN")
    parser.add_argument(
        "--reply-delay-ms", type=float, default=0.0,
        help="send every reply this late, to stand in for a network round trip",
    )  # fmt: skip
    parser.add_argument("--pipelining", action="store_true", help="advertise PIPELINING")
    args = parser.parse_args()
    auth = None
    if args.auth:
        username, _, password = args.auth.partition(":")
        auth = (username, password)
    totals = Totals()
    asyncio.run(
        serve(args.port, args.tls_dir, auth, args.reply_delay_ms / 1000, totals, args.pipelining)
    )
    print(
        f"sink: {totals.messages} messages, {totals.bytes} bytes, {totals.connections} connections",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
