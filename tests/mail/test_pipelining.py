"""Pipelined transactions (RFC 2920): MAIL, RCPT and DATA in one write when the server
offers PIPELINING, their replies read in order; every reply combination ends exactly as the
classic one-command-at-a-time dialogue ends it (NEWSLETTER_SMTP_PIPELINING=off)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.helpers import FakeClock
from support.pipelining_servers import DROP, HANG, PipeliningServer, Script, start_pipelining_server
from support.smtp_servers import make_message, start_server

from newsletter.common.config import Settings, load_settings
from newsletter.common.errors import ConfigError
from newsletter.mail.failures import (
    PermanentFailure,
    SenderRefused,
    SendFailure,
    TemporaryFailure,
    UnknownOutcome,
)
from newsletter.mail.smtp import SmtpTransport, transport_factory
from newsletter.records.journal import Journal
from newsletter.sending.engine import deliver

SENDER = "news@example.org"
MODES = ("auto", "off")


def settings_for(server: PipeliningServer, mode: str, **changes: object) -> Settings:
    values: dict[str, object] = {
        "smtp_host": server.host,
        "smtp_port": server.port,
        "smtp_security": "none",
        "smtp_timeout": 1.0,
        "smtp_pipelining": mode,
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


MakeServer = Callable[[Script], PipeliningServer]


@pytest.fixture
def make_server() -> Iterator[MakeServer]:
    started: list[PipeliningServer] = []

    def start(script: Script) -> PipeliningServer:
        server = start_pipelining_server(script)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@dataclass(frozen=True)
class Ended:
    """How one message ended, in the typed fields the send decides from."""

    kind: str  # "accepted" or the failure's class name
    code: int | None = None
    connection: bool | None = None  # TemporaryFailure.connection
    timed_out: bool = False


def ended(outcome: str | BaseException) -> Ended:
    if isinstance(outcome, str):
        return Ended("accepted", int(outcome[:3]))
    if isinstance(outcome, TemporaryFailure):
        return Ended("TemporaryFailure", outcome.code, outcome.connection, outcome.timed_out)
    if isinstance(outcome, SendFailure):
        return Ended(type(outcome).__name__, outcome.code, None, outcome.timed_out)
    return Ended(type(outcome).__name__)


def attempt(transport: SmtpTransport, to: str, row: int) -> str | BaseException:
    try:
        return transport.send(make_message(to, row), SENDER)
    except (SendFailure, SenderRefused) as error:
        return error


@dataclass(frozen=True)
class Run:
    first: Ended  # the scripted message
    then: Ended  # the next message, on whatever connection the transport has
    connections: int  # opened by the transport for both
    delivered: tuple[tuple[str, ...], ...]  # the recipients of each message the server kept
    whole: tuple[bool, ...]  # each message kept arrived whole (dot-stuffing undone)


def run(
    make_server: MakeServer, mode: str, script: Script, *, warm: bool = False
) -> tuple[Run, PipeliningServer]:
    """Send (after one warm-up message when ``warm``: the scripted transaction is then on a
    reused connection) the scripted message, then one more."""
    server = make_server(script)
    transport = SmtpTransport(settings_for(server, mode))
    try:
        if warm:
            assert isinstance(attempt(transport, "warm@example.org", 1), str)
        first = ended(attempt(transport, "first@example.org", 2))
        then = ended(attempt(transport, "then@example.org", 3))
    finally:
        transport.close()
    messages = server.handler.messages
    result = Run(
        first,
        then,
        transport.connections_opened,
        tuple(m.rcpts for m in messages),
        tuple(
            m.data.endswith(b"\r\n.a line starting with a dot must survive\r\n") for m in messages
        ),
    )
    return result, server


def refusal(code: int) -> str:
    return f"{code} {code // 100}.0.0 scripted reply"


# (id, script for the transaction, warm, how the scripted message must end)
CASES = [
    ("accepted", {}, False, Ended("accepted", 250)),
    ("sender-refused-5xx", {"MAIL": refusal(550)}, False, Ended("SenderRefused")),
    ("sender-deferred-4xx", {"MAIL": refusal(451)}, False, Ended("TemporaryFailure", 451, False)),
    ("421-at-mail-fresh", {"MAIL": refusal(421)}, False, Ended("TemporaryFailure", None, True)),
    ("421-at-mail-reused", {"MAIL": refusal(421)}, True, Ended("accepted", 250)),
    ("recipient-refused", {"RCPT": refusal(550)}, False, Ended("PermanentFailure", 550)),
    ("recipient-deferred", {"RCPT": refusal(451)}, False, Ended("TemporaryFailure", 451, False)),
    ("421-at-rcpt", {"RCPT": refusal(421)}, True, Ended("TemporaryFailure", 421, True)),
    ("data-refused", {"DATA": refusal(554)}, False, Ended("PermanentFailure", 554)),
    ("data-deferred", {"DATA": refusal(451)}, False, Ended("TemporaryFailure", 451, False)),
    ("421-at-data", {"DATA": refusal(421)}, True, Ended("TemporaryFailure", 421, True)),
    ("2xx-to-data", {"DATA": "250 2.0.0 ok?"}, False, Ended("TemporaryFailure", None, True)),
    ("message-refused", {"END": refusal(550)}, False, Ended("PermanentFailure", 550)),
    ("message-deferred", {"END": refusal(452)}, False, Ended("TemporaryFailure", 452, False)),
    ("421-after-message", {"END": refusal(421)}, True, Ended("TemporaryFailure", 421, True)),
    ("dropped-at-mail-fresh", {"MAIL": DROP}, False, Ended("TemporaryFailure", None, True)),
    ("dropped-at-mail-reused", {"MAIL": DROP}, True, Ended("accepted", 250)),
    ("dropped-at-rcpt", {"RCPT": DROP}, False, Ended("TemporaryFailure", None, True)),
    ("dropped-at-data", {"DATA": DROP}, True, Ended("TemporaryFailure", None, True)),
    ("dropped-after-message", {"END": DROP}, False, Ended("TemporaryFailure", None, True)),
    ("silent-at-rcpt", {"RCPT": HANG}, False, Ended("TemporaryFailure", None, True, True)),
    ("silent-after-message", {"END": HANG}, False, Ended("UnknownOutcome", None, None, True)),
]


@pytest.mark.parametrize(
    ("replies", "warm", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_every_reply_combination_ends_as_in_the_classic_dialogue(
    make_server: MakeServer, replies: dict[str, str], warm: bool, expected: Ended
) -> None:
    runs = {}
    for mode in MODES:
        script = Script(transaction=2 if warm else 1, replies=replies)
        runs[mode], server = run(make_server, mode, script, warm=warm)
        if mode == "auto":
            # The three commands arrived in one read: they were written together.
            chunk = server.written_with(b"MAIL FROM")
            assert b"RCPT TO" in chunk.upper() and b"\r\nDATA\r\n" in chunk.upper(), chunk
        else:
            assert b"RCPT TO" not in server.written_with(b"MAIL FROM").upper()
    pipelined, classic = runs["auto"], runs["off"]
    assert pipelined.first == expected
    # The same outcome, the same next message, connections and messages kept: the send
    # decides records, retries and stops from these alone.
    assert pipelined == classic
    assert pipelined.then == Ended("accepted", 250)  # the connection stayed in step


def test_a_refused_transaction_resets_and_the_connection_carries_the_next(
    make_server: MakeServer,
) -> None:
    server = make_server(Script(transaction=1, replies={"RCPT": refusal(550)}))
    transport = SmtpTransport(settings_for(server, "auto"))
    try:
        assert isinstance(attempt(transport, "gone@example.org", 1), PermanentFailure)
        for row in range(2, 6):
            assert ended(attempt(transport, f"m{row}@example.org", row)).kind == "accepted"
    finally:
        transport.close()
    assert transport.connections_opened == 1
    assert [m.rcpts for m in server.handler.messages] == [
        (f"m{row}@example.org",) for row in range(2, 6)
    ]
    # One write of MAIL+RCPT+DATA per transaction, then the message: nothing else but the
    # RSET after the refusal.
    groups = [c for c in server.chunks if c.upper().startswith(b"MAIL FROM")]
    assert len(groups) == 5
    assert all(g.upper().endswith(b"\r\nDATA\r\n") for g in groups)


def test_data_accepted_after_a_refused_recipient_gets_a_lone_dot_not_the_message(
    make_server: MakeServer,
) -> None:
    # RFC 2920, 3.1: a server may answer DATA with 354 although it refused every recipient;
    # the client must then send an empty message, never the member's.
    script = Script(transaction=1, replies={"RCPT": refusal(550)}, data_despite_refusal=True)
    server = make_server(script)
    transport = SmtpTransport(settings_for(server, "auto"))
    try:
        outcome = attempt(transport, "gone@example.org", 1)
        assert isinstance(outcome, PermanentFailure) and outcome.code == 550
        assert isinstance(attempt(transport, "next@example.org", 2), str)
    finally:
        transport.close()
    kept = server.handler.messages
    assert [m.data for m in kept[:1]] == [b""]  # the lone "." and nothing of the message
    assert all(b"gone@example.org" not in m.data for m in kept)
    assert kept[1].rcpts == ("next@example.org",)
    assert transport.connections_opened == 1


def test_a_server_that_does_not_offer_pipelining_gets_one_command_at_a_time() -> None:
    with start_server() as server:  # aiosmtpd as it is: no PIPELINING in its EHLO reply
        transport = SmtpTransport(
            Settings(smtp_host=server.host, smtp_port=server.port, smtp_security="none")
        )
        try:
            assert isinstance(attempt(transport, "a@example.org", 1), str)
            assert transport.pipelining is False
        finally:
            transport.close()
        assert server.handler.count() == 1


def test_non_ascii_addresses_pipeline_with_smtputf8(make_server: MakeServer) -> None:
    server = make_server(Script())
    server.controller.SMTP_kwargs["enable_SMTPUTF8"] = True
    transport = SmtpTransport(settings_for(server, "auto"))
    try:
        assert isinstance(attempt(transport, "zoë@exämple.org", 1), str)
    finally:
        transport.close()
    chunk = server.written_with(b"MAIL FROM")
    assert b"SMTPUTF8" in chunk and "zoë@exämple.org".encode() in chunk
    assert server.handler.messages[0].rcpts == ("zoë@exämple.org",)


@pytest.mark.parametrize("raw", ["off", "OFF", "auto", "Auto"])
def test_the_setting_reads_auto_or_off_in_any_case(raw: str) -> None:
    settings = load_settings({"NEWSLETTER_SMTP_PIPELINING": raw}, dotenv_path=None)
    assert settings.smtp_pipelining == raw.lower()


def test_the_setting_refuses_anything_else() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"NEWSLETTER_SMTP_PIPELINING": "on"}, dotenv_path=None)
    assert caught.value.setting == "NEWSLETTER_SMTP_PIPELINING"


def test_unknown_outcome_after_a_pipelined_message_is_never_retried(
    make_server: MakeServer,
) -> None:
    server = make_server(Script(transaction=1, replies={"END": HANG}))
    transport = SmtpTransport(settings_for(server, "auto", smtp_timeout=0.5))
    try:
        outcome = attempt(transport, "slow@example.org", 1)
    finally:
        transport.close()
    assert isinstance(outcome, UnknownOutcome)
    assert server.handler.hung.is_set()


# -- through deliver(): the same records, retries and stops ---------------------------------


def deliver_six(
    make_server: MakeServer, mode: str, script: Script, tmp_path: Path
) -> tuple[object, ...]:
    server = make_server(script)
    settings = settings_for(server, mode, retry_base_delay=0.01, max_attempts=3)
    clock = FakeClock()
    to = [f"member{n}@example.org" for n in range(6)]
    with Journal.for_state_dir(tmp_path / mode) as journal:
        result = deliver(
            (make_message(address, row) for row, address in enumerate(to, start=2)),
            slug="pipelining",
            sender=SENDER,
            journal=journal,
            transport_factory=transport_factory(settings),
            settings=settings,
            clock=clock,
            sleep=clock.sleep,
        )
        rows = tuple(
            (r.address, r.status, r.attempts, r.reply.replace(str(server.port), "PORT"))
            for r in journal.rows("pipelining")
        )
    stopped = None if result.stopped is None else result.stopped.reason
    return (
        result.sent, result.failed, result.deferred, tuple(result.unknown), stopped, rows,
        server.handler.copies(),
    )  # fmt: skip


@pytest.mark.parametrize(
    "replies",
    [
        {"MAIL": refusal(550)},
        {"MAIL": refusal(421)},
        {"RCPT": refusal(550)},
        {"RCPT": refusal(451)},
        {"RCPT": refusal(421)},
        {"DATA": refusal(554)},
        {"DATA": DROP},
        {"END": refusal(550)},
        {"END": HANG},
    ],
    ids=lambda replies: "-".join(f"{k}:{v.split()[0]}" for k, v in replies.items()),
)
def test_deliver_records_retries_and_stops_alike_in_both_modes(
    make_server: MakeServer, tmp_path: Path, replies: dict[str, str]
) -> None:
    # The third transaction of the run meets the scripted reply (a reused connection).
    script = {mode: Script(transaction=3, replies=replies) for mode in MODES}
    pipelined = deliver_six(make_server, "auto", script["auto"], tmp_path)
    classic = deliver_six(make_server, "off", script["off"], tmp_path)
    assert pipelined == classic
    sent, failed, deferred, unknown, stopped, rows, copies = pipelined
    assert all(n == 1 for n in copies.values())  # nobody got a second copy
    assert sent == sum(1 for row in rows if row[1] == "sent") == len(copies)


# -- across messages: the next message's commands ride with this one's data ------------------


def send_chain(
    make_server: MakeServer, script: Script, *, ahead: bool, mode: str = "auto"
) -> tuple[list[Ended], Run, PipeliningServer]:
    """Send three messages, each (when ``ahead``) announcing the next as ``following``."""
    server = make_server(script)
    transport = SmtpTransport(settings_for(server, mode))
    msgs = [make_message(f"m{n}@example.org", n) for n in range(1, 4)]
    results = []
    try:
        for n, msg in enumerate(msgs):
            following = msgs[n + 1] if ahead and n + 1 < len(msgs) else None
            try:
                outcome: str | BaseException = transport.send(msg, SENDER, following)
            except (SendFailure, SenderRefused) as error:
                outcome = error
            results.append(ended(outcome))
    finally:
        transport.close()
    kept = server.handler.messages
    run_ = Run(
        results[0],
        results[-1],
        transport.connections_opened,
        tuple(m.rcpts for m in kept),
        tuple(m.data.endswith(b"\r\n.a line starting with a dot must survive\r\n") for m in kept),
    )
    return results, run_, server


@pytest.mark.parametrize(
    ("replies", "transaction"),
    [
        *[(case[1], 2) for case in CASES],  # the message whose commands went out ahead
        ({"END": refusal(550)}, 1),  # the message whose data carried the next commands
        ({"END": refusal(451)}, 1),
        ({"END": refusal(421)}, 1),
        ({"END": DROP}, 1),
        ({"END": HANG}, 1),
    ],
    ids=[
        *(f"ahead-{case[0]}" for case in CASES),
        *(f"carrier-{name}" for name in ("550", "451", "421", "dropped", "silent")),
    ],
)
def test_pipelining_across_messages_ends_every_message_as_one_at_a_time(
    make_server: MakeServer, replies: dict[str, str], transaction: int
) -> None:
    ahead, run_ahead, server = send_chain(make_server, Script(transaction, replies), ahead=True)
    alone, run_alone, _ = send_chain(make_server, Script(transaction, replies), ahead=False)
    classic, run_classic, _ = send_chain(
        make_server, Script(transaction, replies), ahead=True, mode="off"
    )
    assert ahead == alone == classic
    assert run_ahead.delivered == run_alone.delivered == run_classic.delivered
    assert all(run_ahead.whole)
    assert len(set(run_ahead.delivered)) == len(run_ahead.delivered)  # no second copy


def test_in_steady_state_each_write_carries_a_message_and_the_next_ones_commands(
    make_server: MakeServer,
) -> None:
    results, run_, server = send_chain(make_server, Script(), ahead=True)
    assert [r.kind for r in results] == ["accepted"] * 3
    assert run_.connections == 1
    carriers = [c for c in server.chunks if b"\r\n.\r\nMAIL FROM:" in c.upper()]
    assert len(carriers) == 2  # m1's data with m2's commands, m2's data with m3's
    assert all(c.upper().endswith(b"\r\nDATA\r\n") for c in carriers)


@pytest.mark.parametrize("how", ["another message next", "closed"])
def test_a_message_announced_but_not_sent_is_never_delivered(
    make_server: MakeServer, how: str
) -> None:
    server = make_server(Script())
    transport = SmtpTransport(settings_for(server, "auto"))
    first, announced, other = (make_message(f"m{n}@example.org", n) for n in (1, 2, 3))
    try:
        assert transport.send(first, SENDER, announced).startswith("250")
        if how == "another message next":
            # The caller changed its mind (the run stopped): the announced transaction is
            # abandoned by hanging up, never by a lone "." that would deliver it empty.
            assert transport.send(other, SENDER).startswith("250")
    finally:
        transport.close()
    kept = [m.rcpts for m in server.handler.messages]
    assert ("m2@example.org",) not in kept
    assert kept == [("m1@example.org",)] + ([("m3@example.org",)] if "another" in how else [])


def test_the_last_message_of_a_connection_does_not_carry_the_next(
    make_server: MakeServer,
) -> None:
    server = make_server(Script())
    transport = SmtpTransport(settings_for(server, "auto", smtp_max_per_connection=2))
    msgs = [make_message(f"m{n}@example.org", n) for n in range(1, 5)]
    try:
        for n, msg in enumerate(msgs):
            following = msgs[n + 1] if n + 1 < len(msgs) else None
            assert transport.send(msg, SENDER, following).startswith("250")
    finally:
        transport.close()
    assert transport.connections_opened == 2
    assert [m.rcpts for m in server.handler.messages] == [(m.to,) for m in msgs]
    assert [m.connection for m in server.handler.messages] == [1, 1, 2, 2]
