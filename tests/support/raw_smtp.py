"""A scriptable SMTP server on 127.0.0.1 for servers aiosmtpd cannot imitate: a garbage or
silent greeting, a 250 then a hang-up, replies in Latin-1, a reset in the middle of DATA.

Plain sockets and one thread per connection. A behaviour is a subclass of
:class:`Behaviour` overriding the hooks it needs; each hook returns the reply line(s) to
send, or one of the actions :data:`DROP` (close the connection at once), :data:`HANG`
(say nothing, read nothing, until the server stops: from ``data_line``, a server that
stops reading mid-message), :data:`RESET` (close with a TCP RST), :data:`SILENT` (take the
command as accepted, say nothing, read on: a reply missing from a pipelined group) and
:class:`Late` (hold the reply until the client has hung up: a pause longer than any
timeout, without racing one). A tuple is said part by part: ``("421 4.3.2 Bye", DROP)``
answers, then hangs up. :class:`Scripted` misbehaves at one stage of one transaction.
``server.received`` lists what was accepted (``250`` after DATA), as :class:`Got`;
``server.chunks`` what the client's writes brought, one entry per read.
``Behaviour.trickle``: every reply goes out one byte per TCP segment.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"
DROP = object()
HANG = object()
RESET = object()
SILENT = object()


@dataclass(frozen=True)
class Late:
    """Say ``reply`` only after the client has hung up (it waited longer than its timeout);
    a positive ``reply`` still counts: a server that took the message, then was slow."""

    reply: Any


@dataclass
class Got:
    rcpts: tuple[str, ...]
    data: bytes
    connection: int


@dataclass
class Conn:
    number: int
    sock: Any
    mail_from: str = ""
    rcpts: list[str] = field(default_factory=list)
    accepted: int = 0  # messages accepted on this connection
    tls: bool = False
    transaction: int = 0  # its MAIL command's number, counted over all connections


class Behaviour:
    """A well-behaved ESMTP server; override hooks to misbehave."""

    starttls_context: ssl.SSLContext | None = None  # offer STARTTLS with this context
    auth: tuple[str, ...] = ()  # AUTH mechanisms to advertise
    trickle = False  # send replies one byte at a time
    # Loses what the client wrote together (against RFC 2920, 3.2, as broken servers and
    # middleboxes do): "after-command", the rest of a read after MAIL or RCPT;
    # "after-data", whatever followed the end of a message in the same read.
    discards = ""

    def greeting(self, conn: Conn) -> Any:
        return "220 raw.test ESMTP ready"

    def ehlo(self, conn: Conn, arg: str) -> Any:
        lines = ["raw.test", "8BITMIME", "PIPELINING"]
        if self.starttls_context is not None and not conn.tls:
            lines.append("STARTTLS")
        if self.auth:
            lines.append("AUTH " + " ".join(self.auth))
        return [f"250-{line}" for line in lines[:-1]] + [f"250 {lines[-1]}"]

    def helo(self, conn: Conn, arg: str) -> Any:
        return "250 raw.test"

    def starttls(self, conn: Conn) -> Any:
        return "220 2.0.0 Ready to start TLS"

    def auth_command(self, conn: Conn, arg: str) -> Any:
        return "535 5.7.8 Authentication credentials invalid"

    def mail(self, conn: Conn, address: str) -> Any:
        return "250 2.1.0 Ok"

    def rcpt(self, conn: Conn, address: str) -> Any:
        return "250 2.1.5 Ok"

    def data(self, conn: Conn) -> Any:
        return "354 End data with <CR><LF>.<CR><LF>"

    def data_line(self, conn: Conn, count: int) -> Any:
        """Called for each line of the message as it arrives; None goes on."""
        return None

    def end_of_data(self, conn: Conn, data: bytes) -> Any:
        return "250 2.0.0 Ok: queued"

    def accepted(self, conn: Conn, data: bytes) -> Any:
        """After a 2xx answer to the end of data: e.g. DROP, to hang up right after it."""
        return None

    def unknown(self, conn: Conn, line: str) -> Any:
        return "502 5.5.2 Command not recognised"

    def quit(self, conn: Conn) -> Any:
        return "221 2.0.0 Bye"

    def closed(self, conn: Conn) -> None:
        """The connection ended (either side)."""


STAGES = ("MAIL", "RCPT", "DATA", "END")  # END: the reply to the message


class Scripted(Behaviour):
    """Answers ``plan[(n, stage)]`` at ``stage`` of transaction ``n`` (1-based, counted at
    MAIL over all connections; ``"*"`` for every transaction), and everything else as a
    well-behaved server. ``pipelining=False``: PIPELINING is not in the EHLO reply;
    ``"after-tls"``: only in the one after STARTTLS."""

    def __init__(self, plan: dict[tuple[int | str, str], Any], pipelining: bool | str = True):
        self.plan = plan
        self.pipelining = pipelining
        self.transactions = 0
        self.lock = threading.Lock()

    def ehlo(self, conn: Conn, arg: str) -> Any:
        lines = [line[4:] for line in super().ehlo(conn, arg)]
        if not self.pipelining or (self.pipelining == "after-tls" and not conn.tls):
            lines.remove("PIPELINING")
        return [f"250-{line}" for line in lines[:-1]] + [f"250 {lines[-1]}"]

    def scripted(self, conn: Conn, stage: str, well: Any) -> Any:
        reply = self.plan.get((conn.transaction, stage), self.plan.get(("*", stage)))
        return well if reply is None else reply

    def mail(self, conn: Conn, address: str) -> Any:
        with self.lock:
            self.transactions += 1
            conn.transaction = self.transactions
        return self.scripted(conn, "MAIL", super().mail(conn, address))

    def rcpt(self, conn: Conn, address: str) -> Any:
        return self.scripted(conn, "RCPT", super().rcpt(conn, address))

    def data(self, conn: Conn) -> Any:
        return self.scripted(conn, "DATA", super().data(conn))

    def end_of_data(self, conn: Conn, data: bytes) -> Any:
        return self.scripted(conn, "END", super().end_of_data(conn, data))


class RawServer:
    """``RawServer(behaviour)`` listens on a free port of 127.0.0.1; use as a context manager."""

    def __init__(self, behaviour: Behaviour, *, implicit_tls: ssl.SSLContext | None = None):
        self.behaviour = behaviour
        self.implicit_tls = implicit_tls
        self.received: list[Got] = []
        self.chunks: list[bytes] = []  # the client's bytes, as each read brought them
        self.connections = 0
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self.host = HOST
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def copies(self) -> dict[str, int]:
        with self.lock:
            result: dict[str, int] = {}
            for got in self.received:
                for rcpt in got.rcpts:
                    result[rcpt.casefold()] = result.get(rcpt.casefold(), 0) + 1
            return result

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._accepting.join(5)
        self._listener.close()
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            with self.lock:
                self.connections += 1
                number = self.connections
            thread = threading.Thread(target=self._serve, args=(sock, number), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket, number: int) -> None:
        conn = Conn(number, sock)
        # Each reply leaves at once, as from asyncio servers (aiosmtpd) and servers that batch
        # pipelined replies: with Nagle, a second small reply would wait for the client's
        # delayed ACK (~40 ms) whenever the client pipelines and so sends nothing between.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if self.implicit_tls is not None:
                conn.sock = self.implicit_tls.wrap_socket(sock, server_side=True)
                conn.tls = True
            conn.sock.settimeout(0.2)
            self._dialogue(conn)
        except (OSError, ssl.SSLError, _Closed):
            pass
        finally:
            self.behaviour.closed(conn)
            try:
                conn.sock.close()
            except OSError:
                pass

    # -- i/o ------------------------------------------------------------------------------

    def _say(self, conn: Conn, reply: Any) -> None:
        """Send ``reply`` or perform an action; raise _Closed when the dialogue ends."""
        if reply is None or reply is SILENT:
            return
        if isinstance(reply, tuple):
            for part in reply:
                self._say(conn, part)
            return
        if isinstance(reply, Late):
            self._until_hung_up(conn)
            try:
                self._say(conn, reply.reply)
            except OSError:
                pass
            raise _Closed
        if reply is DROP:
            raise _Closed
        if reply is RESET:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raise _Closed
        if reply is HANG:
            while not self._stop.is_set():
                self._stop.wait(0.1)
            raise _Closed
        if isinstance(reply, bytes):
            data = reply
        else:
            lines = [reply] if isinstance(reply, str) else list(reply)
            data = b"".join(line.encode("utf-8") + b"\r\n" for line in lines)
        if not self.behaviour.trickle:
            conn.sock.sendall(data)
            return
        for index in range(len(data)):  # TCP_NODELAY: one segment each
            conn.sock.sendall(data[index : index + 1])

    def _discard(self, conn: Conn, buffer: bytearray) -> None:
        """Lose what was read but not handled yet, and whatever else is already waiting."""
        buffer.clear()
        conn.sock.setblocking(False)
        try:
            while conn.sock.recv(65536):
                pass
        except (BlockingIOError, ssl.SSLWantReadError):
            pass
        finally:
            conn.sock.settimeout(0.2)

    def _until_hung_up(self, conn: Conn) -> None:
        """Wait, ignoring anything more the client writes, until it closes the connection."""
        while not self._stop.is_set():
            try:
                if not conn.sock.recv(65536):
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def _readline(self, conn: Conn, buffer: bytearray) -> bytes:
        while True:
            index = buffer.find(b"\n")
            if index >= 0:
                line = bytes(buffer[: index + 1])
                del buffer[: index + 1]
                return line
            if self._stop.is_set():
                raise _Closed
            try:
                chunk = conn.sock.recv(65536)
            except TimeoutError:
                continue
            except ssl.SSLWantReadError:
                continue
            if not chunk:
                raise _Closed
            with self.lock:
                self.chunks.append(chunk)
            buffer += chunk

    def _dialogue(self, conn: Conn) -> None:
        b = self.behaviour
        self._say(conn, b.greeting(conn))
        buffer = bytearray()
        while True:
            raw = self._readline(conn, buffer)
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self._say(conn, b.ehlo(conn, arg))
            elif verb == "HELO":
                self._say(conn, b.helo(conn, arg))
            elif verb == "STARTTLS" and b.starttls_context is not None and not conn.tls:
                reply = b.starttls(conn)
                self._say(conn, reply)
                if not (isinstance(reply, str) and reply.startswith("220")):
                    continue
                conn.sock.settimeout(5)
                conn.sock = b.starttls_context.wrap_socket(conn.sock, server_side=True)
                conn.sock.settimeout(0.2)
                conn.tls = True
                buffer.clear()
            elif verb == "AUTH":
                self._say(conn, b.auth_command(conn, arg))
            elif verb == "MAIL":
                conn.mail_from = _address(arg)
                conn.rcpts = []
                reply = b.mail(conn, conn.mail_from)
                if b.discards == "after-command":
                    self._discard(conn, buffer)  # before the reply: nothing else can be lost
                self._say(conn, reply)
            elif verb == "RCPT":
                address = _address(arg)
                reply = b.rcpt(conn, address)
                if _positive(reply):
                    conn.rcpts.append(address)
                if b.discards == "after-command":
                    self._discard(conn, buffer)
                self._say(conn, reply)
            elif verb == "DATA":
                reply = b.data(conn)
                self._say(conn, reply)
                if not (reply is SILENT or _last_line(reply).startswith("354")):
                    continue
                lines: list[bytes] = []
                while True:
                    chunk = self._readline(conn, buffer)
                    if chunk in (b".\r\n", b".\n"):
                        break
                    lines.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                    self._say(conn, b.data_line(conn, len(lines)))
                data = b"".join(lines)
                if b.discards == "after-data":
                    self._discard(conn, buffer)
                reply = b.end_of_data(conn, data)
                ok = _positive(reply)
                if ok:
                    with self.lock:
                        self.received.append(Got(tuple(conn.rcpts), data, conn.number))
                    conn.accepted += 1
                self._say(conn, reply)
                if ok:
                    self._say(conn, b.accepted(conn, data))
            elif verb == "RSET":
                conn.rcpts = []
                self._say(conn, "250 2.0.0 Ok")
            elif verb == "NOOP":
                self._say(conn, "250 2.0.0 Ok")
            elif verb == "QUIT":
                self._say(conn, b.quit(conn))
                raise _Closed
            else:
                self._say(conn, b.unknown(conn, line))


class _Closed(Exception):
    pass


def _positive(reply: Any) -> bool:
    """A 2xx reply (one line, several lines or raw bytes)."""
    if isinstance(reply, tuple) and reply:
        reply = reply[0]
    if reply is SILENT:
        return True
    if isinstance(reply, Late):
        reply = reply.reply
    if isinstance(reply, list) and reply:
        reply = reply[-1]
    if isinstance(reply, bytes):
        return reply.startswith(b"2")
    return isinstance(reply, str) and reply.startswith("2")


def _last_line(reply: Any) -> str:
    """The line of a reply (one line or several) that carries its final code."""
    if isinstance(reply, list) and reply:
        reply = reply[-1]
    return reply if isinstance(reply, str) else ""


def _address(arg: str) -> str:
    start, end = arg.find("<"), arg.find(">")
    return arg[start + 1 : end] if 0 <= start < end else arg.split(":", 1)[-1].strip()
