"""`newsletter send` against misbehaving SMTP servers, as the chair runs it from the CLI.

Every result is checked at the server (what it received), not only in the CLI's words.
The servers are scripted sockets on 127.0.0.1 (tests/support/raw_smtp.py): aiosmtpd cannot greet
with 421, stay silent, or answer in Latin-1.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.helpers import cli_env, run_cli, write_members
from support.raw_smtp import DROP, HANG, Behaviour, Conn, RawServer
from support.smtp_servers import server_tls_context, test_ca

from newsletter.records.journal import Journal

MEMBERS = 8
SLUG = "december-2023"


def env_for(server: RawServer, **extra: str) -> dict[str, str]:
    """Plain SMTP to the scripted ``server``, a 1 s timeout and quick retries."""
    quick = {
        "NEWSLETTER_SMTP_SECURITY": "none",
        "NEWSLETTER_SMTP_TIMEOUT": "1",
        "NEWSLETTER_RETRY_BASE_DELAY": "0.05",
    }
    return cli_env(server, **{**quick, **extra})


def send(env: dict[str, str], *args: str):
    return run_cli(["send", SLUG, *args], env)


class AfterN(Behaviour):
    """Well-behaved for the first ``n`` accepted messages, then ``broken`` (a hook name)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.accepted_so_far = 0
        self.lock = threading.Lock()

    def accepted(self, conn: Conn, data: bytes) -> object:
        with self.lock:
            self.accepted_so_far += 1
        return None

    @property
    def broken(self) -> bool:
        with self.lock:
            return self.accepted_so_far >= self.n


class BusyAfter(AfterN):
    """421 at the greeting (and to MAIL) once ``n`` messages went out: a server shutting down."""

    def greeting(self, conn: Conn) -> object:
        return "421 4.3.2 Service shutting down" if self.broken else super().greeting(conn)

    def mail(self, conn: Conn, address: str) -> object:
        return "421 4.3.2 Service shutting down, closing channel" if self.broken else "250 Ok"


class SilentAtMailAfter(AfterN):
    """Never answers MAIL FROM once ``n`` messages went out."""

    def mail(self, conn: Conn, address: str) -> object:
        return HANG if self.broken else "250 Ok"


@pytest.mark.parametrize("behaviour", [BusyAfter, SilentAtMailAfter])
def test_a_server_that_stops_answering_stops_the_run_then_resume_sends_each_once(
    project: Path, behaviour: type[AfterN]
) -> None:
    # Before: every pending member was tried NEWSLETTER_MAX_ATTEMPTS times, one connection
    # (or one timeout) each: 5 x 1000 connections to a server that said "shutting down",
    # or hours of silence that looked like a hang.
    addresses = write_members(project, MEMBERS)
    with RawServer(behaviour(3)) as broken:
        stopped = send(env_for(broken), "--yes")
        connections = broken.connections
        got = broken.copies()
    assert stopped.returncode == 1, stopped.stderr
    assert "Stopped:   the server stopped taking messages after 3 message(s)" in stopped.stdout
    assert "3 connection failures in a row" in stopped.stdout
    assert f"newsletter send {SLUG}" in stopped.stdout  # how to resume
    assert got == {a: 1 for a in addresses[:3]}
    assert connections <= 4  # 1 that worked, then at most 3 failures; not 5 per member
    assert "Pending: 5" in stopped.stdout

    with RawServer(Behaviour()) as healthy:
        resumed = send(env_for(healthy), "--yes")
        assert resumed.returncode == 0, resumed.stderr
        assert "Resuming:  3 of 8 already sent" in resumed.stdout
        assert healthy.copies() == {a: 1 for a in addresses[3:]}


class SilentAfterData(Behaviour):
    """Takes every message, then never says whether it was accepted."""

    def end_of_data(self, conn: Conn, data: bytes) -> object:
        return HANG


def test_a_server_silent_after_every_message_leaves_few_members_unknown(project: Path) -> None:
    # Before: every member went out and became "unknown" (maybe delivered), one timeout
    # each, so the whole list needed --resend-unknown: a second copy for anyone the server
    # had in fact kept.
    write_members(project, MEMBERS)
    with RawServer(SilentAfterData()) as server:
        result = send(env_for(server), "--yes")
        connections = server.connections
    assert result.returncode == 1
    assert "Unknown: 3" in result.stdout and "Pending: 5" in result.stdout
    assert "raise NEWSLETTER_SMTP_TIMEOUT, now 1 s" in result.stdout
    assert connections == 3  # one per unknown member: the run stopped there
    journal = Journal.for_state_dir(project / ".newsletter")
    with journal:
        assert journal.counts(SLUG)["sending"] == 3


def test_421_at_the_greeting_before_anything_went_out(project: Path) -> None:
    write_members(project, MEMBERS)

    class Busy(Behaviour):
        def greeting(self, conn: Conn) -> object:
            return "421 4.7.0 Try again later, closing connection."

    with RawServer(Busy()) as server:
        result = send(env_for(server), "--yes")
        test = send(env_for(server), "--test")
        connections = server.connections
    assert result.returncode == 1, result.stderr
    assert "Sent:      0" in result.stdout and "Pending: 8" in result.stdout
    assert "Stopped:   the server took no message (3 connection failures in a row" in result.stdout
    assert "421 4.7.0 Try again later" in result.stdout
    # Before: a test copy to a busy server was "internal error: TemporaryFailure" (exit 70).
    assert test.returncode == 1
    assert test.stderr.startswith(f"error: 127.0.0.1:{server.port}: the server is busy")
    assert "Traceback" not in test.stderr and "internal error" not in test.stderr
    assert connections == 3 + 1


def test_a_silent_greeting_is_no_answer_not_closed_and_names_implicit_tls(project: Path) -> None:
    # A port-465 server spoken to with STARTTLS waits for the TLS handshake and says
    # nothing; the error said "server closed the connection", which it had not.
    write_members(project, MEMBERS)
    with RawServer(Behaviour(), implicit_tls=server_tls_context()) as tls_port:
        result = send(env_for(tls_port, NEWSLETTER_SMTP_SECURITY="starttls"), "--yes")
        assert tls_port.received == []
    assert result.returncode == 2
    line = result.stderr.strip()
    assert line.count("\n") == 0
    assert line.startswith(f"error: 127.0.0.1:{tls_port.port}: no answer within 1s")
    assert "closed" not in line and "NEWSLETTER_SMTP_SECURITY=ssl" in line


def test_a_server_that_is_not_smtp(project: Path) -> None:
    write_members(project, MEMBERS)

    class Http(Behaviour):
        def greeting(self, conn: Conn) -> object:
            return b"HTTP/1.1 400 Bad Request\r\n\r\n"

    with RawServer(Http()) as server:
        result = send(env_for(server), "--yes")
    assert result.returncode == 2
    assert "not an SMTP server" in result.stderr and "-1" not in result.stderr
    assert "NEWSLETTER_SMTP_PORT" in result.stderr


def _auth_server(reply: str | list[str]) -> RawServer:
    class Refusing(Behaviour):
        starttls_context = server_tls_context()
        auth = ("PLAIN", "LOGIN")

        def auth_command(self, conn: Conn, arg: str) -> object:
            return reply

    return RawServer(Refusing())


@pytest.mark.parametrize(
    ("reply", "says", "never"),
    [
        (
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled "
            "for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.",
            ["enable Authenticated SMTP", "newsletter login"],
            "no longer accepts passwords",
        ),
        (
            "535 5.7.139 Authentication unsuccessful, the user credentials were incorrect.",
            ["check NEWSLETTER_SMTP_USERNAME and NEWSLETTER_SMTP_PASSWORD"],
            "no longer accepts passwords",
        ),
        (
            [
                "534-5.7.9 Application-specific password required. For more information, go to",
                "534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor",
            ],
            ["app password", "NEWSLETTER_SMTP_PASSWORD", "newsletter login"],
            "no longer accepts passwords",
        ),
        (
            "454 4.7.0 Temporary authentication failure",
            ["wait a few minutes"],
            "check NEWSLETTER_SMTP_USERNAME",
        ),
    ],
)
def test_sign_in_refusals_say_what_to_do(
    project: Path, tmp_path: Path, reply: str | list[str], says: list[str], never: str
) -> None:
    write_members(project, MEMBERS)
    cafile = tmp_path / "ca.pem"
    test_ca().cert_pem.write_to_path(str(cafile))
    with _auth_server(reply) as server:
        env = env_for(
            server,
            NEWSLETTER_SMTP_SECURITY="starttls",
            NEWSLETTER_SMTP_CAFILE=str(cafile),
            NEWSLETTER_SMTP_USERNAME="news@wmhtc.co.uk",
            NEWSLETTER_SMTP_PASSWORD="not-this-one-9",
        )
        result = send(env, "--yes")
        assert server.received == []
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "\n" not in line and "not-this-one-9" not in line
    for words in says:
        assert words in line
    assert never not in line


class QuotaAfter(AfterN):
    """Microsoft 365 once the day's submissions are spent, said with 5.2.2 ("mailbox")."""

    def end_of_data(self, conn: Conn, data: bytes) -> object:
        return "550 5.2.2 Submission quota exceeded. [AM6PR10MB1234]" if self.broken else "250 Ok"


def test_submission_quota_said_as_5_2_2_leaves_members_pending(project: Path) -> None:
    # Before: 5.2.2 is "mailbox full", a recipient code, so every remaining member was
    # recorded failed and a re-run said there was nothing to send.
    addresses = write_members(project, MEMBERS)
    with RawServer(QuotaAfter(4)) as server:
        result = send(env_for(server), "--yes")
        assert server.copies() == {a: 1 for a in addresses[:4]}
    assert result.returncode == 1
    assert "Microsoft 365's daily recipient limit" in result.stdout
    assert "Failed: 0" in result.stdout and "Pending: 4" in result.stdout
    with RawServer(Behaviour()) as tomorrow:
        again = send(env_for(tomorrow), "--yes")
        assert again.returncode == 0
        assert tomorrow.copies() == {a: 1 for a in addresses[4:]}


def test_a_refusal_in_latin_1_is_shown_in_its_own_words(project: Path) -> None:
    addresses = write_members(project, 3)

    class German(Behaviour):
        def rcpt(self, conn: Conn, address: str) -> object:
            if address == addresses[1]:
                return "550 5.1.1 Empf\xe4nger unbekannt".encode("latin-1") + b"\r\n"
            return "250 Ok"

    with RawServer(German()) as server:
        result = send(env_for(server), "--yes")
        assert set(server.copies()) == {addresses[0], addresses[2]}
    assert result.returncode == 1
    assert "550 5.1.1 Empfänger unbekannt" in result.stdout
    assert "\ufffd" not in result.stdout


class DropAfterAccepting(Behaviour):
    """Hangs up right after each 250: every connection carries one message."""

    def accepted(self, conn: Conn, data: bytes) -> object:
        return DROP


def test_a_250_then_a_hang_up_counts_as_sent_once(project: Path) -> None:
    addresses = write_members(project, MEMBERS)
    with RawServer(DropAfterAccepting()) as server:
        result = send(env_for(server), "--yes")
        assert result.returncode == 0, result.stdout
        assert server.copies() == {a: 1 for a in addresses}
        again = send(env_for(server), "--yes")
        assert again.returncode == 0 and server.copies() == {a: 1 for a in addresses}


def test_a_message_too_large_for_the_server_stops_at_the_first_refusal(project: Path) -> None:
    # Before: five members were refused (recorded failed, then returned by the circuit
    # breaker) and the advice was "check the account with your provider".
    write_members(project, MEMBERS)

    class Small(Behaviour):
        def end_of_data(self, conn: Conn, data: bytes) -> object:
            return "552 5.3.4 Message size exceeds fixed maximum message size"

    with RawServer(Small()) as server:
        result = send(env_for(server), "--yes")
        transactions = server.connections
        assert server.received == []
    assert result.returncode == 1
    assert "Stopped:   the server refuses messages this large." in result.stdout
    assert "make the issue smaller" in result.stdout
    assert "Failed: 0" in result.stdout and f"Pending: {MEMBERS}" in result.stdout
    assert transactions == 1


class ExtraReplyLine(Behaviour):
    """Answers one RCPT with two lines, so its replies run one step behind our commands:
    the DATA command then reads that stale ``250`` instead of ``354``."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.done = False

    def rcpt(self, conn: Conn, address: str) -> object:
        if address == self.target and not self.done:
            self.done = True
            return ["250 2.1.5 Ok", "250 2.1.5 Ok"]
        return "250 2.1.5 Ok"


class DataAnswered250(Behaviour):
    def data(self, conn: Conn) -> object:
        return "250 2.0.0 Ok"


def test_a_2xx_to_the_data_command_is_not_an_accepted_message(project: Path) -> None:
    # Before: a 250 to DATA itself (not to the message) counted as accepted: the member was
    # recorded sent while the server never received the message.
    addresses = write_members(project, MEMBERS)
    with RawServer(ExtraReplyLine(addresses[2])) as server:
        result = send(env_for(server), "--yes")
        assert result.returncode == 0, result.stdout
        assert server.copies() == {a: 1 for a in addresses}
    with RawServer(DataAnswered250()) as never:
        (project / ".newsletter" / "journal.sqlite3").unlink()
        result = send(env_for(never), "--yes")
        assert never.received == []
    assert result.returncode == 1
    assert "Sent:      0" in result.stdout and "unexpected reply to DATA" in result.stdout


class HoldsTheThirdReply(Behaviour):
    """Takes the third message and says nothing until ``release``; counts what arrived."""

    def __init__(self) -> None:
        self.arrived = 0
        self.release = threading.Event()
        self.lock = threading.Lock()

    def end_of_data(self, conn: Conn, data: bytes) -> object:
        with self.lock:
            self.arrived += 1
            third = self.arrived == 3
        if third:
            self.release.wait(30)
        return "250 2.0.0 Ok"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX")
def test_ctrl_c_while_a_reply_is_awaited_says_why_it_waits(project: Path) -> None:
    # Before: after Ctrl-C the terminal stayed silent for up to NEWSLETTER_SMTP_TIMEOUT
    # (30 s by default) while the message in flight finished: it looked hung.
    addresses = write_members(project, MEMBERS)
    behaviour = HoldsTheThirdReply()
    with RawServer(behaviour) as server:
        env = env_for(server, NEWSLETTER_SMTP_TIMEOUT="30")
        proc = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "send", SLUG, "--yes"],
            cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            for _ in range(1500):  # a hang guard, not a timing assertion
                if behaviour.arrived >= 3 or proc.poll() is not None:
                    break
                time.sleep(0.02)
            assert behaviour.arrived == 3
            proc.send_signal(signal.SIGINT)
            # The notice comes before the wait ends: read it while the reply is still held.
            assert proc.stderr is not None
            line = proc.stderr.readline()
            assert "Stopping: waiting up to 30 s for the 1 message(s) in flight" in line
            assert "Ctrl-C again" in line
        finally:
            behaviour.release.set()
            out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130
        assert server.copies() == {a: 1 for a in addresses[:3]}  # the third one finished
        rerun = send(env_for(server), "--yes")
        assert rerun.returncode == 0
        assert server.copies() == {a: 1 for a in addresses}


class FivePerConnection(Behaviour):
    """Takes five messages per connection, then answers MAIL with 421 and hangs up."""

    def mail(self, conn: Conn, address: str) -> object:
        if conn.accepted >= 5:
            return "421 4.7.0 Too many messages on this connection, closing"
        return "250 2.1.0 Ok"


def test_421_for_too_many_messages_on_a_connection_reconnects_at_once(project: Path) -> None:
    # A server's per-connection limit below NEWSLETTER_SMTP_MAX_PER_CONNECTION: nothing of
    # the message was sent, so a fresh connection takes it at once (not a retry later, nor a
    # connection failure counted towards stopping the run).
    addresses = write_members(project, 12)
    with RawServer(FivePerConnection()) as server:
        result = send(env_for(server, NEWSLETTER_MAX_ATTEMPTS="1"), "--yes")
        assert result.returncode == 0, result.stdout
        assert server.copies() == {a: 1 for a in addresses}
        assert server.connections == 3


class EchoesTheAuthArgument(Behaviour):
    """Refuses AUTH quoting what the client sent: the base64 of '\\0user\\0password'."""

    starttls_context = server_tls_context()
    auth = ("PLAIN",)

    def auth_command(self, conn: Conn, arg: str) -> object:
        return f"535 5.7.8 Authentication failed for {arg}"


def test_a_refusal_quoting_the_base64_credentials_never_shows_them(
    project: Path, tmp_path: Path
) -> None:
    import base64
    import sqlite3

    write_members(project, MEMBERS)
    cafile = tmp_path / "ca.pem"
    test_ca().cert_pem.write_to_path(str(cafile))
    password = "pw-Secret-12345"
    encoded = base64.b64encode(f"\0news@wmhtc.co.uk\0{password}".encode()).decode()
    with RawServer(EchoesTheAuthArgument()) as server:
        env = env_for(
            server,
            NEWSLETTER_SMTP_SECURITY="starttls",
            NEWSLETTER_SMTP_CAFILE=str(cafile),
            NEWSLETTER_SMTP_USERNAME="news@wmhtc.co.uk",
            NEWSLETTER_SMTP_PASSWORD=password,
        )
        result = send(env, "--yes")
    assert result.returncode == 2 and "authentication refused: 535 5.7.8" in result.stderr
    with sqlite3.connect(project / ".newsletter" / "journal.sqlite3") as db:
        journal = repr(list(db.execute("SELECT * FROM deliveries")))
    for text in (result.stdout, result.stderr, journal):
        assert password not in text and encoded not in text
        assert "cHctU2VjcmV0" not in text  # base64 of the password's first bytes


def test_no_auth_offered_points_at_the_port_not_the_password(project: Path, tmp_path: Path) -> None:
    # Before: "server offers no AUTH after TLS (check NEWSLETTER_SMTP_USERNAME and
    # NEWSLETTER_SMTP_PASSWORD)": a right password would not help.
    write_members(project, MEMBERS)
    cafile = tmp_path / "ca.pem"
    test_ca().cert_pem.write_to_path(str(cafile))

    class NoAuth(Behaviour):
        starttls_context = server_tls_context()

    with RawServer(NoAuth()) as server:
        env = env_for(
            server,
            NEWSLETTER_SMTP_SECURITY="starttls",
            NEWSLETTER_SMTP_CAFILE=str(cafile),
            NEWSLETTER_SMTP_USERNAME="news@wmhtc.co.uk",
            NEWSLETTER_SMTP_PASSWORD="pw-Secret-12345",
        )
        result = send(env, "--yes")
        assert server.received == []
    assert result.returncode == 2
    assert "offers no sign-in (AUTH)" in result.stderr
    assert "NEWSLETTER_SMTP_PORT" in result.stderr and "587" in result.stderr


def _expired_context() -> object:
    import datetime
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    test_ca().issue_cert(
        "127.0.0.1",
        not_before=datetime.datetime(2020, 1, 1),
        not_after=datetime.datetime(2021, 1, 1),
    ).configure_cert(context)
    return context


@pytest.mark.parametrize(
    ("context", "says", "never"),
    [
        (lambda: server_tls_context(("mail.other.test",)), "NEWSLETTER_SMTP_HOST", "CAFILE if"),
        (_expired_context, "date and time", "CAFILE if"),
    ],
)
def test_a_certificate_a_ca_file_cannot_fix_says_what_can(
    project: Path, tmp_path: Path, context, says: str, never: str
) -> None:
    # Before: an expired certificate or one for another name both said "set
    # NEWSLETTER_SMTP_CAFILE if it uses a private CA", which cannot help (and was set).
    write_members(project, MEMBERS)
    cafile = tmp_path / "ca.pem"
    test_ca().cert_pem.write_to_path(str(cafile))

    class Tls(Behaviour):
        starttls_context = context()

    with RawServer(Tls()) as server:
        env = env_for(
            server, NEWSLETTER_SMTP_SECURITY="starttls", NEWSLETTER_SMTP_CAFILE=str(cafile)
        )
        result = send(env, "--yes")
        assert server.received == []
    assert result.returncode == 2 and "TLS certificate rejected" in result.stderr
    assert says in result.stderr and never not in result.stderr


class OneConnectionAtATime(Behaviour):
    """Microsoft 365's concurrency limit, at one: other connections are greeted with 421."""

    def __init__(self) -> None:
        self.active = 0
        self.lock = threading.Lock()
        self.mine: set[int] = set()
        self.refused = 0
        self.three_refused = threading.Event()

    def end_of_data(self, conn: Conn, data: bytes) -> object:
        # The first message is answered only once the other three connections were
        # refused: the first round's refusals all come before any success.
        self.three_refused.wait(10)
        return "250 2.0.0 Ok"

    def greeting(self, conn: Conn) -> object:
        with self.lock:
            if self.active >= 1:
                self.refused += 1
                if self.refused >= 3:
                    self.three_refused.set()
                return (
                    "421 4.3.2 The maximum number of concurrent server connections has "
                    "exceeded a per user limit"
                )
            self.active += 1
            self.mine.add(conn.number)
        return "220 raw.test ESMTP"

    def closed(self, conn: Conn) -> None:
        with self.lock:
            if conn.number in self.mine:
                self.active -= 1


def test_more_connections_than_the_server_allows_still_sends_everyone_once(
    project: Path,
) -> None:
    # The connection-failure stop must not mistake the first round of refused extra
    # connections (3 of 4 at once) for a server that went away.
    addresses = write_members(project, 20)
    with RawServer(OneConnectionAtATime()) as server:
        result = send(env_for(server), "--yes", "--connections", "4")
        assert result.returncode == 0, result.stdout
        assert server.copies() == {a: 1 for a in addresses}


def test_a_test_copy_without_a_reply_is_not_called_refused(project: Path) -> None:
    # Before: "the test copy to … was not accepted: no reply … it may have been delivered".
    write_members(project, MEMBERS)
    with RawServer(SilentAfterData()) as server:
        result = send(env_for(server), "--test")
        assert len(server.received) == 0  # the server holds it, unanswered
    assert result.returncode == 1
    assert "may or may not have arrived" in result.stderr
    assert "not accepted" not in result.stderr


def test_a_zero_smtp_timeout_is_refused_not_a_wait_for_ever(project: Path) -> None:
    # Before: 0 was accepted and meant no timeout at all: a silent server hung the send.
    write_members(project, MEMBERS)

    class Silent(Behaviour):
        def greeting(self, conn: Conn) -> object:
            time.sleep(2)  # bounded: without the fix the test fails, it does not hang
            return DROP

    with RawServer(Silent()) as server:
        result = send(env_for(server, NEWSLETTER_SMTP_TIMEOUT="0"), "--yes")
        assert server.connections == 0
    assert result.returncode == 2
    assert result.stderr.startswith("error: NEWSLETTER_SMTP_TIMEOUT: must be more than 0")


class OrganisationPolicy(Behaviour):
    """One organisation's policy refuses its people (5.7.1, not an address code)."""

    def rcpt(self, conn: Conn, address: str) -> object:
        if address.endswith("@trust.nhs.uk"):
            return f"550 5.7.1 <{address}>: Recipient address rejected: Access denied"
        return "250 2.1.5 Ok"


def test_colleagues_refused_by_their_organisation_do_not_block_the_rest_for_ever(
    project: Path,
) -> None:
    # Before: five colleagues refused in a row tripped the circuit breaker and went back to
    # pending; every re-run tried them first, tripped it again, and the members after them
    # in the list never got the issue.
    first = [f"member{n}@members.wmhtc.co.uk" for n in range(3)]
    trust = [f"staff{n}@trust.nhs.uk" for n in range(6)]
    later = [f"late{n}@members.wmhtc.co.uk" for n in range(3)]
    rows = "".join(f"{a},Name,Surname\n" for a in first + trust + later)
    (project / "recipients.csv").write_text("email,first_name,last_name\n" + rows, "utf-8")
    with RawServer(OrganisationPolicy()) as server:
        stopped = send(env_for(server), "--yes")
        assert stopped.returncode == 1
        assert "all 5 are at trust.nhs.uk" in stopped.stdout
        assert set(server.copies()) == set(first)
        again = send(env_for(server), "--yes")
        assert again.returncode == 1
        assert server.copies() == {a: 1 for a in first + later}
        # Refused again with the same words while the others got through: it is their
        # organisation's policy, so they are failed (with its reply), not pending for ever.
        status = run_cli(["status", SLUG, "--json"], env=env_for(server))
        report = json.loads(status.stdout)
        assert report["counts"]["failed"] == 6 and report["pending"] == 0
        assert {f["address"] for f in report["failures"]} == set(trust)
        third = send(env_for(server), "--yes")
        assert "Nothing to send." in third.stdout and "Pending: 0" in third.stdout
        assert "Deferred members are retried" not in third.stdout  # there are none
        assert server.copies() == {a: 1 for a in first + later}


def test_implicit_tls_against_a_plain_port_says_to_use_starttls(project: Path) -> None:
    write_members(project, MEMBERS)
    with RawServer(Behaviour()) as plain:
        result = send(env_for(plain, NEWSLETTER_SMTP_SECURITY="ssl"), "--yes")
        assert plain.received == []
    assert result.returncode == 2
    assert "TLS handshake failed" in result.stderr
    assert "answered in plain text" in result.stderr
    assert "NEWSLETTER_SMTP_SECURITY=starttls" in result.stderr


def test_a_member_who_unsubscribes_during_the_send_gets_nothing(project: Path) -> None:
    # Before: the suppression list was read once when the run started; a paced send of a
    # long list takes hours, and a member unsubscribing meanwhile still got it.
    import datetime

    from newsletter.members.suppression import add_suppressed

    addresses = write_members(project, MEMBERS)
    leaver = addresses[5]

    class UnsubscribesDuringTheSecond(Behaviour):
        def __init__(self) -> None:
            self.seen = 0

        def end_of_data(self, conn: Conn, data: bytes) -> object:
            self.seen += 1
            if self.seen == 2:  # before the reply: the run cannot have moved on yet
                add_suppressed(
                    project / "suppressed.csv",
                    [leaver],
                    reason="unsubscribed",
                    today=datetime.date(2026, 11, 29),
                )
            return "250 2.0.0 Ok"

    with RawServer(UnsubscribesDuringTheSecond()) as server:
        result = send(env_for(server), "--yes")
        assert result.returncode == 0, result.stdout
        assert server.copies() == {a: 1 for a in addresses if a != leaver}
        again = send(env_for(server), "--yes")
        assert again.returncode == 0
        assert leaver not in server.copies()


class FakeStartTls(Behaviour):
    """Offers STARTTLS, says 220, then goes on talking plain text."""

    def ehlo(self, conn: Conn, arg: str) -> object:
        return ["250-raw.test", "250 STARTTLS"]

    def unknown(self, conn: Conn, line: str) -> object:
        if line.upper().startswith("STARTTLS"):
            return ["220 2.0.0 Go ahead", "250 still plain"]
        return "502 5.5.2 Command not recognised"


def test_a_starttls_that_never_starts_is_refused_and_not_blamed_on_the_settings(
    project: Path, tmp_path: Path
) -> None:
    write_members(project, MEMBERS)
    cafile = tmp_path / "ca.pem"
    test_ca().cert_pem.write_to_path(str(cafile))
    with RawServer(FakeStartTls()) as server:
        env = env_for(
            server, NEWSLETTER_SMTP_SECURITY="starttls", NEWSLETTER_SMTP_CAFILE=str(cafile)
        )
        result = send(env, "--yes")
        assert server.received == []
    assert result.returncode == 2 and "TLS handshake failed" in result.stderr
    assert "did not start TLS" in result.stderr
    assert "SECURITY=starttls" not in result.stderr  # it is set already


class NeverAnswersQuit(Behaviour):
    def quit(self, conn: Conn) -> object:
        return HANG


def test_a_server_that_never_answers_quit_does_not_cost_a_timeout_per_connection(
    project: Path,
) -> None:
    # Before: close() waited NEWSLETTER_SMTP_TIMEOUT for the reply to QUIT, at every
    # reconnection (NEWSLETTER_SMTP_MAX_PER_CONNECTION) and at the end: here 4 x 600 s.
    addresses = write_members(project, 6)
    outcome: list[object] = []
    with RawServer(NeverAnswersQuit()) as server:
        env = env_for(server, NEWSLETTER_SMTP_TIMEOUT="600", NEWSLETTER_SMTP_MAX_PER_CONNECTION="2")
        worker = threading.Thread(target=lambda: outcome.append(send(env, "--yes")))
        worker.start()
        worker.join(120)  # a hang guard, far above the few seconds it takes
        assert not worker.is_alive(), "the send waited for the replies to QUIT"
        assert server.copies() == {a: 1 for a in addresses}
        assert server.connections == 3
    assert outcome[0].returncode == 0  # type: ignore[attr-defined]


class InboundOnly(Behaviour):
    """A server that only receives mail for its own domain, set as the SMTP host by mistake:
    every outside address is 'unknown' (as some MX hosts answer instead of 'relay denied')."""

    def __init__(self) -> None:
        self.receives = False

    def rcpt(self, conn: Conn, address: str) -> object:
        if self.receives:
            return "250 2.1.5 Ok"
        return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown in local table"


def test_a_server_that_refuses_every_member_as_unknown_stops_with_everyone_pending(
    project: Path,
) -> None:
    # Before: all members were recorded failed (1,000 "user unknown"), and the next
    # `feedback` would have suppressed the whole list.
    domains = ["nhs.net", "bham.ac.uk", "medtech.co.uk", "wmhtc.co.uk"]
    members = [f"member{n}@{domains[n % 4]}" for n in range(14)]
    rows = "".join(f"{a},Name,Surname\n" for a in members)
    (project / "recipients.csv").write_text("email,first_name,last_name\n" + rows, "utf-8")
    behaviour = InboundOnly()
    with RawServer(behaviour) as server:
        stopped = send(env_for(server), "--yes")
        assert stopped.returncode == 1, stopped.stdout + stopped.stderr
        assert "NEWSLETTER_SMTP_HOST" in stopped.stdout
        assert server.copies() == {}
        status = run_cli(["status", "december-2023", "--json"], env=env_for(server))
        report = json.loads(status.stdout)
        assert report["counts"]["failed"] == 0 and report["counts"]["deferred"] == 10
        assert report["pending"] == 14  # nobody failed: every member is still to send
        behaviour.receives = True  # the chair put the right server in
        again = send(env_for(server), "--yes")
        assert again.returncode == 0, again.stdout + again.stderr
        assert server.copies() == {a: 1 for a in members}
