"""Pipelining against a real Postfix: ``smtp-sink`` (Debian ``postfix``), which advertises
PIPELINING and reads pipelined commands as Postfix's smtpd does. A relay in front records
how the commands arrive. Skipped where smtp-sink is not installed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.pipelining_servers import RecordingRelay
from support.smtp_servers import HOST, free_port, make_message

from newsletter.common.config import Settings
from newsletter.mail.failures import SendFailure, TemporaryFailure
from newsletter.mail.smtp import SmtpTransport

SMTP_SINK = shutil.which("smtp-sink") or next(
    (p for p in ("/usr/sbin/smtp-sink", "/usr/bin/smtp-sink") if Path(p).exists()), None
)
pytestmark = pytest.mark.skipif(SMTP_SINK is None, reason="Postfix's smtp-sink not installed")


@contextmanager
def smtp_sink(*options: str) -> Iterator[int]:
    """smtp-sink on a free port of 127.0.0.1 (as root it must drop to ``nobody``)."""
    assert SMTP_SINK is not None
    port = free_port()
    user = ["-u", "nobody"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    proc = subprocess.Popen(
        [SMTP_SINK, *user, *options, f"{HOST}:{port}", "100"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(500):  # until it listens (a hang guard, not a deadline)
            if proc.poll() is not None:
                raise AssertionError(f"smtp-sink did not start: {proc.stderr.read()!r}")  # type: ignore[union-attr]
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.02)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        assert proc.stderr is not None
        proc.stderr.close()


def transport(port: int, mode: str = "auto") -> SmtpTransport:
    return SmtpTransport(
        Settings(
            smtp_host=HOST,
            smtp_port=port,
            smtp_security="none",
            smtp_timeout=10.0,
            smtp_pipelining=mode,
            smtp_max_per_connection=100,
        )
    )


def test_postfix_takes_pipelined_transactions_written_in_one_go() -> None:
    with smtp_sink() as port, RecordingRelay(port) as relay:
        client = transport(relay.port)
        try:
            replies = [
                client.send(make_message(f"m{n}@example.org", n, size=20_000), "news@example.org")
                for n in range(1, 21)
            ]
        finally:
            client.close()
        assert client.pipelining
    assert all(reply.startswith("250") for reply in replies)
    assert client.connections_opened == 1
    # Every transaction's MAIL, RCPT and DATA arrived in one read.
    groups = [c for c in relay.chunks if c.upper().startswith(b"MAIL FROM")]
    assert len(groups) == 20
    for n, group in enumerate(groups, start=1):
        assert (
            group.upper()
            == (
                f"MAIL FROM:<news@example.org>\r\nRCPT TO:<m{n}@example.org>\r\nDATA\r\n".upper()
            ).encode()
        )


def failures_with_and_without_pipelining(*sink_options: str) -> dict[str, SendFailure]:
    """One message sent to a fresh smtp-sink started with ``sink_options``, pipelining
    "auto" and "off": the failure each mode ended in (absent: it did not fail)."""
    outcomes: dict[str, SendFailure] = {}
    for mode in ("auto", "off"):
        with smtp_sink(*sink_options) as port:
            client = transport(port, mode)
            try:
                client.send(make_message("a@example.org", 1), "news@example.org")
            except SendFailure as error:
                outcomes[mode] = error
            finally:
                client.close()
    return outcomes


def test_postfix_421_mid_pipeline_is_a_connection_failure_as_before() -> None:
    # smtp-sink -Q RCPT: "421" and a hang-up after RCPT; the DATA written with it is unread.
    outcomes = failures_with_and_without_pipelining("-Q", "RCPT")
    for error in outcomes.values():
        assert isinstance(error, TemporaryFailure)
        assert error.code == 421 and error.connection
    assert outcomes["auto"].reply == outcomes["off"].reply


def test_postfix_hanging_up_at_data_is_a_connection_failure_as_before() -> None:
    outcomes = failures_with_and_without_pipelining("-q", "DATA")
    for error in outcomes.values():
        assert isinstance(error, TemporaryFailure)
        assert error.connection and not error.timed_out
    assert (
        outcomes["auto"].reply
        == outcomes["off"].reply
        == ("connection closed by server during DATA")
    )


def test_postfix_sink_answering_out_of_order_costs_one_message_not_one_in_two(
    tmp_path: Path,
) -> None:
    # smtp-sink -W .:1 holds its reply to each message for a second but answers the next
    # message's MAIL, RCPT and DATA, written behind the data, at once: replies out of
    # order. The first message reads the next one's MAIL reply as its own (it was kept);
    # the next one finds a 354 for its RCPT: replies out of step, dropped, not sent.
    # Before: the same every other message (a '354' deferral each). Now the transport
    # stops writing commands behind the data, and the rest go in order.
    dump = Path(tempfile.mkdtemp())  # smtp-sink runs as nobody: a folder it can reach
    os.chmod(dump, 0o777)
    try:
        with smtp_sink("-W", ".:1", "-D", f"{dump}/%M") as port, RecordingRelay(port) as relay:
            client = transport(relay.port)
            msgs = [make_message(f"m{n}@example.org", n) for n in range(1, 6)]
            outcomes: list[str | SendFailure] = []
            try:
                for n, msg in enumerate(msgs):
                    following = msgs[n + 1] if n + 1 < len(msgs) else None
                    try:
                        outcomes.append(client.send(msg, "news@example.org", following))
                    except SendFailure as error:
                        outcomes.append(error)
            finally:
                client.close()
        kept = sorted(
            line.split(b"<")[1].split(b">")[0].decode()
            for path in dump.iterdir()
            for line in path.read_bytes().splitlines()
            if line.startswith(b"X-Rcpt-Args:")
        )
    finally:
        shutil.rmtree(dump, ignore_errors=True)
    assert isinstance(outcomes[0], str)
    second = outcomes[1]
    assert isinstance(second, TemporaryFailure) and second.connection
    assert second.reply.startswith("unexpected reply to RCPT: 354")
    assert all(isinstance(outcome, str) for outcome in outcomes[2:])
    assert kept == [f"m{n}@example.org" for n in (1, 3, 4, 5)]  # each once; m2 to retry
    assert client.connections_opened == 2
    assert sum(b"\r\n.\r\nMAIL FROM:" in c.upper() for c in relay.chunks) == 1
