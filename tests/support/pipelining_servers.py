"""Test servers for SMTP PIPELINING (RFC 2920), all on 127.0.0.1.

* :func:`start_pipelining_server`: aiosmtpd that advertises PIPELINING (aiosmtpd 1.4.6 does
  not, but reads commands from a buffer, so it serves a pipelining client correctly),
  records every chunk of bytes as it arrives (``server.chunks``: one entry per read, so
  commands written together arrive together), and answers the transaction number
  ``script.transaction`` as the :class:`Script` says, at any stage: a reply, a dropped
  connection or silence. Every other transaction is accepted.
* :class:`RecordingRelay`: a TCP relay that records what the client wrote, chunk by chunk,
  in front of any server (Postfix's ``smtp-sink`` in the tests).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from support.smtp_servers import (
    HANG_GUARD,
    HOST,
    RecordingHandler,
    Server,
    _CountingController,
    free_port,
)

DROP = "drop"  # close the connection without a reply
HANG = "hang"  # never answer (the client times out)
STAGES = ("MAIL", "RCPT", "DATA", "END")  # END: the reply after the message


@dataclass
class Script:
    """What the server answers at each stage of transaction number ``transaction``
    (1-based, counted over all connections); stages not named are accepted.
    ``data_despite_refusal``: answer DATA with 354 even when no recipient was accepted
    (allowed by RFC 2920, 3.1: the client must then send a lone ".", not the message)."""

    transaction: int = 0
    replies: dict[str, str] = field(default_factory=dict)
    data_despite_refusal: bool = False


class ScriptedHandler(RecordingHandler):
    def __init__(self, script: Script) -> None:
        super().__init__()
        self.script = script
        self.transactions = 0
        self.current = 0  # the transaction the connection is in (set at MAIL)
        self.hung = threading.Event()

    def scripted(self, stage: str) -> str | None:
        if self.current != self.script.transaction:
            return None
        return self.script.replies.get(stage)

    async def act(self, server: SMTP, reply: str) -> str:
        if reply == DROP:
            assert server.transport is not None
            server.transport.close()
            await asyncio.sleep(30)  # cancelled by connection_lost: no reply is ever sent
        if reply == HANG:
            self.hung.set()
            await asyncio.sleep(30)  # the client gives up first
        return reply

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(self, server, session, envelope, address, options) -> str:  # type: ignore[no-untyped-def]
        self.transactions += 1
        self.current = self.transactions
        reply = self.scripted("MAIL")
        if reply is not None:
            return await self.act(server, reply)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, options) -> str:  # type: ignore[no-untyped-def]
        reply = self.scripted("RCPT")
        if reply is not None:
            return await self.act(server, reply)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self.scripted("END")
        if reply is not None:
            return await self.act(server, reply)
        self.record(server, envelope)
        return "250 2.0.0 Ok: queued"


class _PipeliningSMTP(SMTP):
    """aiosmtpd's SMTP that records each read and lets the script answer DATA itself."""

    chunks: list[bytes]
    scripted: ScriptedHandler
    closed: Any  # the controller's Open: told when this connection is gone

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self.closed.leave()

    def data_received(self, data: bytes) -> None:
        self.chunks.append(bytes(data))
        super().data_received(data)

    async def smtp_DATA(self, arg: str) -> None:
        handler = self.scripted
        reply = handler.scripted("DATA")
        if reply is not None:
            await self.push(await handler.act(self, reply))
            return
        if handler.script.data_despite_refusal and handler.current == handler.script.transaction:
            assert self.envelope is not None
            if not self.envelope.rcpt_tos:
                # Accept DATA anyway; what follows is recorded as the message to nobody.
                self.envelope.rcpt_tos.append("")
        await super().smtp_DATA(arg)


class Open:
    """How many connections are open; waited on until none is (a killed sender's last
    bytes read and handled: what the server has is then all it will ever get from it)."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = threading.Condition()

    def enter(self) -> None:
        with self._changed:
            self.count += 1

    def leave(self) -> None:
        with self._changed:
            self.count -= 1
            self._changed.notify_all()

    def wait_until_none(self) -> None:
        """Woken by each close, never by a clock; AssertionError after HANG_GUARD s."""
        with self._changed:
            assert self._changed.wait_for(lambda: self.count <= 0, HANG_GUARD), self.count


class _PipeliningController(_CountingController):
    def __init__(self, handler: ScriptedHandler, chunks: list[bytes], **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.chunks = chunks
        self.open = Open()

    def factory(self) -> SMTP:
        self.connections = next(self._numbers)
        self.open.enter()
        server = _PipeliningSMTP(self.handler, **self.SMTP_kwargs)
        server.closed = self.open
        server.chunks = self.chunks
        server.scripted = self.handler
        server.connection_number = self.connections  # type: ignore[attr-defined]
        return server


@dataclass
class PipeliningServer(Server):
    chunks: list[bytes] = field(default_factory=list)

    def wait_until_idle(self) -> None:
        """Until every connection made so far has closed (see :class:`Open`)."""
        self.controller.open.wait_until_none()  # type: ignore[attr-defined]

    def written_with(self, command: bytes) -> bytes:
        """The chunk in which the first ``command`` (e.g. b"MAIL FROM") arrived."""
        for chunk in self.chunks:
            if command.lower() in chunk.lower():
                return chunk
        raise AssertionError(f"{command!r} never arrived")


def start_pipelining_server(
    script: Script | None = None, handler: ScriptedHandler | None = None
) -> PipeliningServer:
    """A plain-SMTP aiosmtpd on a free port that advertises PIPELINING (see the module);
    ``handler``: a ScriptedHandler subclass's instance instead of the plain one."""
    handler = handler or ScriptedHandler(script or Script())
    chunks: list[bytes] = []
    port = free_port()
    controller = _PipeliningController(handler, chunks, hostname=HOST, port=port)
    controller.start()
    chunks.clear()  # start() made a probe connection of its own
    return PipeliningServer(controller, handler, HOST, port, None, chunks)


class RecordingRelay:
    """Relays 127.0.0.1:``port`` to ``upstream`` and records the client's bytes as they
    were read (``chunks``): commands a client writes together arrive in one read."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.chunks: list[bytes] = []
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def __enter__(self) -> RecordingRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(5)
        self._listener.close()

    def written_with(self, command: bytes) -> bytes:
        for chunk in self.chunks:
            if command.lower() in chunk.lower():
                return chunk
        raise AssertionError(f"{command!r} never arrived")

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            server = socket.create_connection((HOST, self.upstream))
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(0.1)
            for source, target, record in ((client, server, True), (server, client, False)):
                thread = threading.Thread(
                    target=self._pump, args=(source, target, record), daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def _pump(self, source: socket.socket, target: socket.socket, record: bool) -> None:
        try:
            while not self._stop.is_set():
                try:
                    data = source.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                if record:
                    self.chunks.append(data)
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
