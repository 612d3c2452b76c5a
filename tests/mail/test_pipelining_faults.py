"""Pipelined transactions against servers that misbehave: replies missing, extra, late, split
byte by byte, a 421 or a hang-up inside a group, refusals inside a group, a reply to the
message that never comes or that no SMTP server should give, a server that stops reading.

Each run sends four messages on one transport, each announcing the next (as a delivery run
does: its MAIL, RCPT and DATA ride with the previous message's data); the second meets the
fault. Whatever happens, the promise holds: a message the transport calls accepted is at
the server exactly once, one it calls failed or to retry is not there at all (a retry can
never be a second copy), and only an unknown outcome may be either.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
from typing import Any

import pytest
from support.raw_smtp import DROP, HANG, SILENT, Behaviour, Conn, Late, RawServer, Scripted
from support.smtp_servers import make_message, server_tls_context, test_ca

from newsletter.common.config import Settings
from newsletter.common.errors import DeliveryError
from newsletter.mail.envelope import Envelope
from newsletter.mail.failures import SendFailure, TemporaryFailure, UnknownOutcome
from newsletter.mail.smtp import SmtpTransport
from newsletter.mail.writes import WriteCut, send_counted

SENDER = "news@example.org"
TIMEOUT = 0.5  # seconds: the faults that wait cost this much, never the 30 s default


@dataclasses.dataclass(frozen=True)
class Ended:
    """How one message ended, in the typed fields a delivery run decides from."""

    kind: str  # "accepted" or the failure's class name
    code: int | None = None
    connection: bool | None = None  # TemporaryFailure.connection
    timed_out: bool = False


ACCEPTED = Ended("accepted", 250)
# Replies out of step with the commands: the connection is dropped at once, the message
# was not sent (nothing of its data went out), and a fresh connection takes the next one.
OUT_OF_STEP = Ended("TemporaryFailure", None, True)
SILENCE = Ended("TemporaryFailure", None, True, True)  # no reply within the timeout
UNKNOWN_REPLY = Ended("UnknownOutcome", None, None, False)


def ended(outcome: str | BaseException) -> Ended:
    if isinstance(outcome, str):
        return Ended("accepted", int(outcome[:3]))
    if isinstance(outcome, TemporaryFailure):
        return Ended("TemporaryFailure", outcome.code, outcome.connection, outcome.timed_out)
    if isinstance(outcome, SendFailure):
        return Ended(type(outcome).__name__, outcome.code, None, outcome.timed_out)
    return Ended(type(outcome).__name__)


@dataclasses.dataclass
class Chain:
    outcomes: list[str | BaseException]
    copies: dict[str, int]  # recipient -> copies the server kept
    connections: int  # opened by the transport
    chunks: list[bytes]  # the client's writes as the server read them

    @property
    def ended(self) -> list[Ended]:
        return [ended(outcome) for outcome in self.outcomes]


def send_chain(
    behaviour: Behaviour,
    mode: str = "auto",
    msgs: list[Envelope] | None = None,
    tls: ssl.SSLContext | None = None,
) -> Chain:
    """Send ``msgs`` (four small ones by default); ``tls``: implicit TLS with the test CA."""
    msgs = msgs or [make_message(f"m{n}@example.org", n) for n in range(1, 5)]
    outcomes: list[str | BaseException] = []
    with RawServer(behaviour, implicit_tls=tls) as server:
        settings = Settings(
            smtp_host=server.host,
            smtp_port=server.port,
            smtp_security="ssl" if tls else "none",
            smtp_timeout=TIMEOUT,
            smtp_pipelining=mode,
        )
        client_tls = ssl.create_default_context()
        test_ca().configure_trust(client_tls)
        transport = SmtpTransport(settings, ssl_context=client_tls if tls else None)
        try:
            for n, msg in enumerate(msgs):
                following = msgs[n + 1] if n + 1 < len(msgs) else None
                try:
                    outcomes.append(transport.send(msg, SENDER, following))
                except (SendFailure, DeliveryError) as error:
                    outcomes.append(error)
        finally:
            transport.close()
    # After stop(): every server thread has ended, so what it kept is all there.
    chain = Chain(outcomes, server.copies(), transport.connections_opened, server.chunks)
    assert_promise(msgs, chain)
    return chain


def assert_promise(msgs: list[Envelope], chain: Chain) -> None:
    for msg, outcome in zip(msgs, chain.outcomes, strict=True):
        kept = chain.copies.get(msg.to.casefold(), 0)
        assert kept <= 1, f"{msg.to}: {kept} copies"
        if isinstance(outcome, str):
            assert kept == 1, f"{msg.to} called accepted, but the server does not have it"
        elif not isinstance(outcome, UnknownOutcome):
            assert kept == 0, f"{msg.to} would be retried, but the server has it: {outcome!r}"


MAIL_OK, RCPT_OK, DATA_GO, QUEUED = (
    "250 2.1.0 Ok",
    "250 2.1.5 Ok",
    "354 End data with <CR><LF>.<CR><LF>",
    "250 2.0.0 Ok: queued",
)
WELL = {"MAIL": MAIL_OK, "RCPT": RCPT_OK, "DATA": DATA_GO, "END": QUEUED}
MULTI_LINE = {("*", stage): [well.replace(" ", "-", 1), well] for stage, well in WELL.items()}

# (id, what the server does at transaction 2, how messages 2 and 3 end)
CASES: list[tuple[str, dict[tuple[Any, str], Any], Ended, Ended]] = [
    ("no-reply-to-MAIL", {(2, "MAIL"): SILENT}, OUT_OF_STEP, ACCEPTED),
    ("no-reply-to-RCPT", {(2, "RCPT"): SILENT}, OUT_OF_STEP, ACCEPTED),
    ("no-reply-to-DATA", {(2, "DATA"): SILENT}, SILENCE, ACCEPTED),
    # The next message's MAIL reply is read as this one's (which the server has kept); the
    # next one then finds its replies out of step.
    ("no-reply-to-message", {(2, "END"): SILENT}, ACCEPTED, OUT_OF_STEP),
    ("extra-reply-to-MAIL", {(2, "MAIL"): [MAIL_OK, MAIL_OK]}, OUT_OF_STEP, ACCEPTED),
    ("extra-reply-to-RCPT", {(2, "RCPT"): [RCPT_OK, RCPT_OK]}, OUT_OF_STEP, ACCEPTED),
    ("extra-reply-to-message", {(2, "END"): [QUEUED, QUEUED]}, ACCEPTED, OUT_OF_STEP),
    ("late-reply-to-MAIL", {(2, "MAIL"): Late(MAIL_OK)}, SILENCE, ACCEPTED),
    ("late-reply-to-RCPT", {(2, "RCPT"): Late(RCPT_OK)}, SILENCE, ACCEPTED),
    ("hang-up-before-DATA-reply", {(2, "DATA"): DROP}, OUT_OF_STEP, ACCEPTED),
    (
        "421-inside-the-group",
        {(2, "RCPT"): ("421 4.3.2 Service shutting down", DROP)},
        Ended("TemporaryFailure", 421, True),
        ACCEPTED,
    ),
    # Nothing of the message went out: a fresh connection takes it at once.
    ("421-to-MAIL", {(2, "MAIL"): ("421 4.7.0 Too many messages", DROP)}, ACCEPTED, ACCEPTED),
    ("RCPT-550", {(2, "RCPT"): "550 5.1.1 No such user"}, Ended("PermanentFailure", 550), ACCEPTED),
    (
        "RCPT-450",
        {(2, "RCPT"): "450 4.2.1 Mailbox busy"},
        Ended("TemporaryFailure", 450, False),
        ACCEPTED,
    ),
    (
        "RCPT-452-too-many-recipients",
        {(2, "RCPT"): "452 4.5.3 Too many recipients"},
        Ended("TemporaryFailure", 452, False),
        ACCEPTED,
    ),
    (
        "DATA-554-after-RCPT-accepted",
        {(2, "DATA"): "554 5.5.1 No valid recipients"},
        Ended("PermanentFailure", 554),
        ACCEPTED,
    ),
    ("multi-line-replies", MULTI_LINE, ACCEPTED, ACCEPTED),
    ("no-reply-to-message-ever", {(2, "END"): HANG}, Ended("UnknownOutcome", None, None, True),
     ACCEPTED),
    ("late-reply-to-message", {(2, "END"): Late(QUEUED)}, Ended("UnknownOutcome", None, None, True),
     ACCEPTED),
    # The next message's commands went out with this one's data: it still goes, once.
    (
        "5xx-to-message-next-announced",
        {(2, "END"): "550 5.7.1 Message rejected as spam"},
        Ended("PermanentFailure", 550),
        ACCEPTED,
    ),
    (
        "5xx-to-message-then-hang-up",
        {(2, "END"): ("554 5.7.1 Rejected", DROP)},
        Ended("PermanentFailure", 554),
        ACCEPTED,
    ),
    # Any 2xx is a positive completion (RFC 5321, 4.2.1): the server has it. Read as a
    # failure, the retry would be a second copy.
    ("2xx-other-than-250-to-message", {(2, "END"): "200 2.0.0 Ok"}, Ended("accepted", 200),
     ACCEPTED),
    # Kept, then a reply no server gives to a message (a garbled line, a stray 354): what
    # it meant cannot be known, so the member is unknown, never retried.
    ("not-SMTP-reply-to-message", {(2, "END"): (SILENT, b"Ok thanks\r\n")}, UNKNOWN_REPLY,
     ACCEPTED),
    ("354-to-message", {(2, "END"): (SILENT, "354 Go ahead")}, UNKNOWN_REPLY, ACCEPTED),
]  # fmt: skip


@pytest.mark.parametrize(
    ("plan", "second", "third"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_a_misbehaving_server_never_costs_a_second_copy(
    plan: dict[tuple[Any, str], Any], second: Ended, third: Ended
) -> None:
    chain = send_chain(Scripted(plan))
    assert chain.ended[0] == ACCEPTED
    assert chain.ended[1:3] == [second, third]
    assert chain.ended[3] == ACCEPTED  # the transport is back in step by the last message
    # The first message's data carried the second's commands: the fault met them there.
    assert any(b"\r\n.\r\nMAIL FROM:" in chunk.upper() for chunk in chain.chunks)


def test_replies_split_byte_by_byte_are_read_whole() -> None:
    behaviour = Scripted(MULTI_LINE)
    behaviour.trickle = True
    chain = send_chain(behaviour)
    assert chain.ended == [ACCEPTED] * 4
    assert chain.connections == 1


def test_without_pipelining_in_the_ehlo_reply_commands_go_one_at_a_time() -> None:
    chain = send_chain(Scripted({}, pipelining=False))
    assert chain.ended == [ACCEPTED] * 4
    mail = [chunk.upper() for chunk in chain.chunks if chunk.upper().startswith(b"MAIL FROM")]
    assert len(mail) == 4 and all(b"RCPT TO" not in chunk for chunk in mail)
    assert not any(b".\r\nMAIL FROM" in chunk.upper() for chunk in chain.chunks)


class StopsReading(Scripted):
    """Stops reading transaction 2's message after a few lines (and never answers)."""

    def data_line(self, conn: Conn, count: int) -> object:
        return HANG if conn.transaction == 2 and count == 20 else None


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_a_server_that_stops_reading_a_large_message_times_out_without_it(tls: bool) -> None:
    # 24 MB: more than the socket buffers of both ends can take, so the write itself
    # stalls (a smaller message would sit in the buffers, its reply then awaited: unknown).
    msgs = [make_message(f"m{n}@example.org", n) for n in range(1, 4)]
    line = b"\r\n" + b"y" * 78
    msgs[1] = dataclasses.replace(msgs[1], data=msgs[1].data + line * 300_000)
    chain = send_chain(StopsReading({}), msgs=msgs, tls=server_tls_context() if tls else None)
    assert chain.ended == [ACCEPTED, SILENCE, ACCEPTED]
    failure = chain.outcomes[1]
    assert isinstance(failure, TemporaryFailure)
    assert (
        failure.reply == f"the server stopped reading the message (nothing taken for {TIMEOUT:g}s)"
    )
    assert chain.connections == 2


def test_a_cut_write_says_exactly_how_much_went_out() -> None:
    # Whether a message's final "." went out, when the next message's commands behind it
    # did not, is decided from this count: it must be what the other end can read.
    ours, theirs = socket.socketpair()
    data = bytes(range(256)) * 65_536  # 16 MB: more than the buffers hold
    try:
        ours.settimeout(0.2)
        with pytest.raises(WriteCut) as cut:
            send_counted(ours, data)
        assert isinstance(cut.value.error, TimeoutError)
        assert 0 < cut.value.written < len(data)
        ours.shutdown(socket.SHUT_WR)
        got = bytearray()
        theirs.settimeout(5)
        while chunk := theirs.recv(1 << 20):
            got += chunk
    finally:
        ours.close()
        theirs.close()
    assert bytes(got) == data[: cut.value.written]


def test_a_server_that_loses_commands_behind_the_data_costs_one_timeout_not_one_in_two() -> None:
    # Against RFC 2920 (3.2), it drops what followed a message's final "." in the same
    # read: the next message's commands. Before: a timeout every other message.
    behaviour = Scripted({})
    behaviour.discards = "after-data"
    msgs = [make_message(f"m{n}@example.org", n) for n in range(1, 7)]
    chain = send_chain(behaviour, msgs=msgs)
    assert chain.ended == [ACCEPTED, SILENCE, *[ACCEPTED] * 4]
    assert chain.connections == 2
    carriers = [c for c in chain.chunks if b"\r\n.\r\nMAIL FROM:" in c.upper()]
    assert len(carriers) == 1  # only the first: the transport wrote no more behind the data


def test_a_server_that_loses_commands_written_together_costs_one_timeout() -> None:
    # It answers MAIL and loses the RCPT and DATA written with it. Before: every message
    # timed out, and the run stopped advising a longer timeout, which cannot help.
    behaviour = Scripted({})
    behaviour.discards = "after-command"
    msgs = [make_message(f"m{n}@example.org", n) for n in range(1, 7)]
    chain = send_chain(behaviour, msgs=msgs)
    assert chain.ended == [SILENCE, *[ACCEPTED] * 5]
    assert chain.connections == 2
    mail = [c.upper() for c in chain.chunks if c.upper().startswith(b"MAIL FROM")]
    assert len(mail) == 6 and all(b"RCPT TO" not in c for c in mail[1:])  # one at a time
