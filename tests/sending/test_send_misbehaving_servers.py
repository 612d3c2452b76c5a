"""`newsletter send` as the chair runs it, through a server that offers PIPELINING and then
misbehaves inside the pipelined groups; then `status`, then the same command again against
a healthy server. The promise, checked at the servers: everyone gets exactly one copy
(nobody twice), except members refused for good (none) and members left unknown (at most
one); every outcome is one clear line, never a traceback, and `status` tells the truth.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from support.helpers import cli_env, run_cli, write_members
from support.raw_smtp import DROP, SILENT, Behaviour, Conn, Late, RawServer, Scripted
from support.smtp_servers import server_tls_context, test_ca

from newsletter.records.journal import Journal

SLUG = "december-2023"
MEMBERS = 40
AT = 5  # the transaction that meets the fault (its commands rode with the 4th message)


def env_for(server: RawServer, **extra: str) -> dict[str, str]:
    quick = {
        "NEWSLETTER_SMTP_SECURITY": "none",
        "NEWSLETTER_SMTP_TIMEOUT": "1",
        "NEWSLETTER_RETRY_BASE_DELAY": "0.05",
    }
    return cli_env(server, **{**quick, **extra})


def send(env: dict[str, str]) -> Any:
    result = run_cli(["send", SLUG, "--yes"], env)
    assert "Traceback" not in result.stdout + result.stderr
    assert "internal error" not in result.stdout + result.stderr
    return result


def status(env: dict[str, str]) -> dict[str, Any]:
    result = run_cli(["status", SLUG, "--json"], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def add(total: dict[str, int], copies: dict[str, int]) -> None:
    for address, count in copies.items():
        total[address] = total.get(address, 0) + count


# (id, the fault at transaction AT, members it leaves failed, unknown, and the words said)
FAULTS = [
    ("no-reply-to-RCPT", {(AT, "RCPT"): SILENT}, 0, 0, ""),
    ("extra-reply-to-message", {(AT, "END"): ["250 2.0.0 Ok", "250 2.0.0 Ok"]}, 0, 0, ""),
    ("421-inside-the-group", {(AT, "RCPT"): ("421 4.3.2 Shutting down", DROP)}, 0, 0, ""),
    ("too-many-recipients", {(AT, "RCPT"): "452 4.5.3 Too many recipients"}, 0, 0, ""),
    ("DATA-refused", {(AT, "DATA"): "554 5.5.1 No valid recipients"}, 1,  0,
     "554 5.5.1 No valid recipients"),
    ("message-refused-next-announced", {(AT, "END"): "550 5.7.1 Rejected as spam"}, 1, 0,
     "550 5.7.1 Rejected as spam"),
    ("2xx-to-message", {(AT, "END"): "200 2.0.0 Ok"}, 0, 0, ""),
    ("garbled-reply-to-message", {(AT, "END"): (SILENT, b"Ok thanks\r\n")}, 0, 1,
     "unexpected reply after the message was sent"),
    ("late-reply-to-message", {(AT, "END"): Late("250 2.0.0 Ok")}, 0, 1,
     "no reply within 1s after the message was sent"),
    ("hang-up-before-DATA-reply", {(AT, "DATA"): DROP}, 0, 0, ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("plan", "failed", "unknown", "said"),
    [fault[1:] for fault in FAULTS],
    ids=[fault[0] for fault in FAULTS],
)
def test_a_fault_inside_a_pipelined_group_then_a_rerun_leaves_everyone_with_one_copy(
    project: Path, plan: dict[tuple[Any, str], Any], failed: int, unknown: int, said: str
) -> None:
    addresses = write_members(project, MEMBERS)
    total: dict[str, int] = {}
    with RawServer(Scripted(plan)) as server:
        first = send(env_for(server))
        add(total, server.copies())
        pipelined = any(b"\r\n.\r\nMAIL FROM:" in c.upper() for c in server.chunks)
    assert pipelined  # the fault met commands written with the previous message's data
    assert first.returncode == (0 if not failed and not unknown else 1), first.stdout
    assert f"Failed: {failed}" in first.stdout and f"Unknown: {unknown}" in first.stdout

    state = status(env_for(server))
    counts = state["counts"]
    assert (counts["failed"], counts["sending"]) == (failed, unknown)
    assert counts["sent"] + counts["failed"] + counts["sending"] + state["pending"] == MEMBERS
    # What the server said, where the chair reads it: the send's summary lists refusals,
    # `status` says why each unknown member is unknown.
    assert said in first.stdout + "".join(m["reply"] for m in state["unknown"])
    # The record tells the truth: whoever it calls sent is at the server, whoever it will
    # send to (pending) or never again (failed) is not.
    with Journal.for_state_dir(project / ".newsletter") as journal:
        rows = journal.rows(SLUG)
    for row in rows:
        kept = total.get(row.address.casefold(), 0)
        assert kept == (1 if row.status == "sent" else kept if row.status == "sending" else 0)

    with RawServer(Behaviour()) as healthy:
        again = send(env_for(healthy))
        add(total, healthy.copies())
    assert again.returncode == (0 if not failed and not unknown else 1), again.stdout
    assert "Pending: 0" in again.stdout
    assert all(n == 1 for n in total.values()), {a: n for a, n in total.items() if n > 1}
    missing = [a for a in addresses if a.casefold() not in total]
    assert len(missing) == failed  # refused for good: nobody else is left without it


class PipeliningAfterTls(Scripted):
    starttls_context = server_tls_context()


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_pipelining_offered_only_after_starttls_is_used_as_the_setting_says(
    project: Path, tmp_path: Path, mode: str
) -> None:
    addresses = write_members(project, 12)
    cafile = tmp_path / "ca.pem"
    test_ca().cert_pem.write_to_path(str(cafile))
    with RawServer(PipeliningAfterTls({}, pipelining="after-tls")) as server:
        env = env_for(
            server,
            NEWSLETTER_SMTP_SECURITY="starttls",
            NEWSLETTER_SMTP_CAFILE=str(cafile),
            NEWSLETTER_SMTP_PIPELINING=mode,
        )
        result = send(env)
        copies = server.copies()
        chunks = [c.upper() for c in server.chunks]
    assert result.returncode == 0, result.stdout + result.stderr
    assert copies == {a: 1 for a in addresses}
    groups = [c for c in chunks if b"MAIL FROM" in c and b"RCPT TO" in c and b"\r\nDATA\r\n" in c]
    assert bool(groups) is (mode == "auto")


class HoldsOneReply(Scripted):
    """Keeps transaction ``at`` and holds its reply until ``release``."""

    def __init__(self, at: int) -> None:
        super().__init__({})
        self.at = at
        self.arrived = threading.Event()
        self.release = threading.Event()

    def end_of_data(self, conn: Conn, data: bytes) -> object:
        if conn.transaction == self.at:
            self.arrived.set()
            self.release.wait(30)
        return "250 2.0.0 Ok"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX")
def test_ctrl_c_twice_mid_pipeline_leaves_only_the_message_in_flight_unknown(
    project: Path,
) -> None:
    # The held message's data carried the next member's MAIL, RCPT and DATA: that member
    # was announced to the server but never sent, so it must come back pending, not unknown.
    addresses = write_members(project, MEMBERS)
    behaviour = HoldsOneReply(AT)
    total: dict[str, int] = {}
    with RawServer(behaviour) as server:
        env = env_for(server, NEWSLETTER_SMTP_TIMEOUT="30")
        proc = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "send", SLUG, "--yes"],
            cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert behaviour.arrived.wait(60), "the sender never reached the held message"
            proc.send_signal(signal.SIGINT)
            assert proc.stderr is not None
            assert "Stopping: waiting up to 30 s" in proc.stderr.readline()
            proc.send_signal(signal.SIGINT)  # do not wait: leave the held one unknown
            out, err = proc.communicate(timeout=60)
        finally:
            behaviour.release.set()
            if proc.poll() is None:
                proc.kill()
        # Messages went out with the next one's commands behind their data (the held one's
        # too, though the server, holding, may not have read them yet).
        assert any(b"\r\n.\r\nMAIL FROM:" in c.upper() for c in server.chunks)
    add(total, server.copies())
    assert proc.returncode == 130, out + err
    assert "Traceback" not in out + err
    assert f"Unknown:   1 cut off mid-send: {addresses[AT - 1]}" in out

    state = status(env_for(server))
    assert state["counts"]["sent"] == AT - 1 and state["counts"]["sending"] == 1
    assert [m["address"] for m in state["unknown"]] == [addresses[AT - 1]]
    assert addresses[AT] not in total  # announced, never sent
    assert state["pending"] == MEMBERS - AT

    with RawServer(Behaviour()) as healthy:
        again = send(env_for(healthy))
        add(total, healthy.copies())
    assert again.returncode == 1  # the unknown one is left for the chair to decide
    assert "Pending: 0" in again.stdout and "Unknown: 1" in again.stdout
    assert all(n == 1 for n in total.values())
    assert sorted(total) == sorted(a.casefold() for a in addresses)


@pytest.mark.parametrize("discards", ["after-command", "after-data"])
def test_a_server_that_loses_pipelined_commands_still_gets_everyone_once(
    project: Path, discards: str
) -> None:
    # It offers PIPELINING and then loses commands written together (the RCPT and DATA
    # behind a MAIL, or the next message's commands behind the data). Before: the first
    # stopped the run after three timeouts, advising a longer timeout; the second cost a
    # timeout every other message and left members deferred.
    addresses = write_members(project, MEMBERS)
    behaviour = Scripted({})
    behaviour.discards = discards
    with RawServer(behaviour) as server:
        result = send(env_for(server))
        copies = server.copies()
    assert result.returncode == 0, result.stdout
    assert copies == {a: 1 for a in addresses}
    assert "Pending: 0" in result.stdout and "Unknown: 0" in result.stdout
