"""`newsletter feedback` against a real Dovecot (the session's, support/dovecot.py) holding
what comes back after a bulletin to 1,000 members (support/feedback_mail.py) among years of
ordinary mail: through a connection that drops mid-run or while moving, in folders with
non-ASCII names, on a server without MOVE, with a message the server fails on."""

from __future__ import annotations

import datetime as dt
import imaplib
import socket
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from support import dovecot
from support.feedback_mail import (
    MAILTO,
    OOO_SUBJECTS,
    OWN,
    SLUG,
    arf,
    dmarc_failure_report,
    exchange_delayed,
    exchange_ndr_html,
    exchange_ndr_text,
    exim_delay_warning,
    gmail_address_not_found,
    gmail_reply,
    mailto_unsubscribe,
    member,
    mid,
    ordinary,
    out_of_office,
    outlook_html_reply,
    read_receipt,
    sendmail_headers_only,
)
from support.smtp_servers import make_message

from newsletter.common.config import Settings
from newsletter.common.errors import MailboxError
from newsletter.feedback.run import run_feedback
from newsletter.members.suppression import load_suppressed
from newsletter.records.journal import Journal

# --- the mailbox: Dovecot -----------------------------------------------------------------

needs_dovecot = pytest.mark.skipif(not dovecot.available(), reason="dovecot-imapd not installed")


def fill(server, messages: list[str | bytes], folder: str = "INBOX", *, when=None) -> None:
    """APPEND through one connection (the seeding helper opens one per message)."""
    imap = server.client()
    try:
        imap.create(_utf7(folder))
        for message in messages:
            data = message.encode("utf-8") if isinstance(message, str) else message
            data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            typ, detail = imap.append(_utf7(folder), None, when, data)
            assert typ == "OK", detail
    finally:
        imap.logout()


def _utf7(folder: str) -> str:
    from newsletter.mail.imap import _quote

    return _quote(folder)


def count_and_unseen(server, folder: str = "INBOX") -> tuple[int, int]:
    imap = server.client()
    try:
        imap.select(_utf7(folder), readonly=True)
        _, everything = imap.uid("SEARCH", "ALL")
        _, unseen = imap.uid("SEARCH", "UNSEEN")
        return len(everything[0].split()), len(unseen[0].split())
    finally:
        imap.logout()


def imap_settings(settings: Settings, server, **changes) -> Settings:
    return replace(
        settings,
        from_=f"West Midlands HealthTech Cluster <{OWN}>",
        unsubscribe_mailto=MAILTO,
        imap_host="127.0.0.1",
        imap_port=server.plain_port,
        imap_security="none",
        imap_username=dovecot.USERNAME,
        imap_password=dovecot.PASSWORD,
        **changes,
    )


def sent_to(settings: Settings, members: int) -> None:
    """The journal of a bulletin sent to ``members`` members, Message-IDs as mid(n)."""
    with Journal.for_state_dir(settings.state_dir) as journal:
        for n in range(members):
            message = replace(make_message(member(n), row=n + 2), message_id=mid(n))
            journal.mark_sending(SLUG, message)
            journal.mark_sent(SLUG, member(n), "250 2.0.0 OK")


def after_a_bulletin() -> tuple[list[str | bytes], dict[str, str]]:
    """What a chair's inbox gets after the send, and the suppressions it must lead to."""
    messages: list[str | bytes] = [
        exchange_ndr_html(member(10), mid(10)),
        exchange_ndr_text(member(11), mid(11)),
        sendmail_headers_only(member(12), mid(12)),
        gmail_address_not_found(member(13), mid(13)),
        gmail_address_not_found(member(14), mid(14), encode_report=True),
        exim_delay_warning(member(20)),
        exim_delay_warning(member(20)),
        exchange_delayed(member(21), mid(21)),
        arf(member(30), mid(30)),
        dmarc_failure_report(member(31), mid(31)),
        read_receipt(member(32), mid(32)),
        mailto_unsubscribe(member(40)),
        mailto_unsubscribe(member(41), headers="Auto-Submitted: auto-generated\n"),
        gmail_reply(member(42), mid(42), "Unsubscribe"),
        outlook_html_reply(member(43), mid(43), "Unsubscribe"),
        gmail_reply(member(50), mid(50), "Thanks, a great issue!"),
        outlook_html_reply(member(51), mid(51), "See you at the Expo"),
        gmail_reply(member(52), mid(52), "Please remove me from your list"),
        # a bounce for an address that is not a member (a colleague's forward, say)
        gmail_address_not_found("stranger@elsewhere.org", "<not-ours@elsewhere.org>"),
        # odd mail that must not stop the run
        b"Subject:\r\n\r\n",  # headers and nothing else
        bytes(range(256)) * 40,
        b"From: x@y.z\r\nContent-Type: multipart/mixed\r\n\r\nno boundary at all\r\n",
        b"From: =?x-unknown?Q?J=F6rg?= <j@y.de>\r\nSubject: \xfc\xfc\r\n\r\n\xff\xfe\r\n",
        # an unsubscribe request from a sender the suppression list cannot hold (raw 8-bit
        # From): it failed every run's one write, so nothing was ever suppressed again
        b"From: J\xf6rg <j\xf6rg@y.de>\r\nSubject: Re: News\r\n\r\nUnsubscribe\r\n",
        b"From: a@b.c\r\nSubject: " + b"very long " * 3000 + b"\r\n\r\nx\r\n",
    ]
    for n, lang in enumerate(OOO_SUBJECTS):
        messages.append(out_of_office(member(60 + n), mid(60 + n), lang))
        messages.append(
            out_of_office(member(70 + n), mid(70 + n), lang, "X-Auto-Response-Suppress: All\n")
        )
    expected = {
        **{member(n): "bounced" for n in (10, 11, 12, 13, 14)},
        member(30): "complained",
        **{member(n): "unsubscribed" for n in (40, 41, 42, 43)},
    }
    return messages, expected


@needs_dovecot
def test_the_chairs_mailbox_after_a_bulletin_to_1000_members(settings: Settings, mailbox) -> None:
    settings = imap_settings(settings, mailbox, soft_bounce_limit=1)
    sent_to(settings, 1000)
    # Years of ordinary mail before the send (not read at all) and the feedback after it.
    old = imaplib.Time2Internaldate(dt.datetime(2023, 6, 12, 10, tzinfo=dt.UTC))
    fill(mailbox, [ordinary(n) for n in range(1500)], when=old)
    feedback, expected = after_a_bulletin()
    fill(mailbox, feedback)
    total = 1500 + len(feedback)
    assert count_and_unseen(mailbox) == (total, total)

    report = run_feedback(settings)
    assert suppressed_rows(settings) == expected
    # Delay warnings never count, even with a soft-bounce limit of 1.
    assert all(row.action == "ignored" for row in report.rows if row.kind == "delayed")
    assert {row.address for row in report.rows if row.kind == "delayed"} == {
        member(20), member(21)
    }  # fmt: skip
    # Out-of-office replies: ignored, whatever the language and headers.
    assert {row.address for row in report.rows if row.kind == "auto-reply"} == {
        member(60 + n) for n in range(len(OOO_SUBJECTS))
    } | {member(70 + n) for n in range(len(OOO_SUBJECTS))} | {
        member(32),  # the read receipt
        "noreply-dmarc-support@google.com",  # the DMARC report: member 31 did not complain
    }
    # People's replies are listed, never acted on; the stranger's bounce is left alone.
    senders = {reply.sender for reply in report.replies}
    assert {member(50), member(51), member(52)} <= senders
    [stranger] = [row for row in report.rows if row.address == "stranger@elsewhere.org"]
    assert stranger.action.startswith("left: ")
    [invalid] = [row for row in report.rows if row.address.startswith("j")]
    assert invalid.kind == "unsubscribe" and invalid.action.startswith("left: not a valid address")
    assert max(len(reply.subject) for reply in report.replies) <= 200
    assert report.already_processed == 0
    # Nothing deleted, nothing even marked read; the ordinary mail was never fetched.
    assert count_and_unseen(mailbox) == (total, total)

    # A second run does nothing at all.
    before = settings.suppressed.read_bytes()
    again = run_feedback(settings)
    assert again.rows == [] and again.replies == [] and again.suppressed == []
    assert again.already_processed == len(feedback)
    assert settings.suppressed.read_bytes() == before


def suppressed_rows(settings: Settings) -> dict[str, str]:
    """address → reason, from suppressed.csv as written."""
    import csv

    with settings.suppressed.open(encoding="utf-8", newline="") as file:
        return {row["email"]: row["reason"] for row in csv.DictReader(file)}


class DroppingProxy:
    """A TCP proxy in front of Dovecot that cuts the connection after the server has sent
    ``limit`` bytes, or when the client sends a command containing ``on``: the server
    going away in the middle of a run (``once``: and no longer answering at all)."""

    def __init__(
        self, port: int, limit: int | None = None, on: bytes = b"", *, once: bool = False
    ) -> None:
        self.port, self.limit, self.on, self.once = port, limit, on, once
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.listen_port = self.sock.getsockname()[1]
        self.cut = threading.Event()
        self.threads = [threading.Thread(target=self._serve, daemon=True)]
        self.ends: list[socket.socket] = []
        self.threads[0].start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.port))
            self.ends += [client, upstream]
            for args in ((client, upstream, None, self.on), (upstream, client, self.limit, b"")):
                thread = threading.Thread(target=self._pipe, args=args, daemon=True)
                self.threads.append(thread)
                thread.start()

    def _pipe(
        self, source: socket.socket, sink: socket.socket, limit: int | None, on: bytes
    ) -> None:
        sent = 0
        try:
            while data := source.recv(65536):
                if on and on in data:
                    self._cut()
                    break
                if limit is not None and sent + len(data) > limit:
                    sink.sendall(data[: limit - sent])
                    self._cut()
                    break
                sent += len(data)
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()

    def _cut(self) -> None:
        self.cut.set()
        if self.once:  # the server is gone: reconnecting is refused
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()

    def close(self) -> None:
        """Stop, and wait for every thread (later tests count the process's threads)."""
        for end in [self.sock, *self.ends]:
            try:
                end.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept()/recv()
            except OSError:
                pass
        self.sock.close()
        for thread in list(self.threads):
            thread.join(timeout=10)
        assert not any(thread.is_alive() for thread in self.threads)


@needs_dovecot
def test_server_gone_mid_run_is_one_line_and_the_rerun_does_everything_once(
    project: Path, settings: Settings, mailbox
) -> None:
    from support.helpers import run_cli

    settings = imap_settings(settings, mailbox)
    sent_to(settings, 300)
    bounces = [gmail_address_not_found(member(n), mid(n)) for n in range(200)]
    fill(mailbox, bounces)
    env = {
        "NEWSLETTER_FROM": f"Cluster <{OWN}>",
        "NEWSLETTER_IMAP_HOST": "127.0.0.1",
        "NEWSLETTER_IMAP_SECURITY": "none",
        "NEWSLETTER_IMAP_USERNAME": dovecot.USERNAME,
        "NEWSLETTER_IMAP_PASSWORD": dovecot.PASSWORD,
    }

    def through(proxy: DroppingProxy):
        try:
            return run_cli(["feedback"], {**env, "NEWSLETTER_IMAP_PORT": str(proxy.listen_port)})
        finally:
            proxy.close()
            assert proxy.cut.is_set()

    # Gone at the first message: nothing was read, nothing changed.
    first = through(DroppingProxy(mailbox.plain_port, on=b"FETCH"))
    [line] = first.stderr.strip().splitlines()
    assert line.startswith("error: 127.0.0.1:") and "connection lost while reading" in line
    assert "'INBOX'" in line and "nothing was changed; run newsletter feedback again" in line
    assert first.returncode not in (0, 70) and "Traceback" not in first.stdout + first.stderr
    assert not settings.suppressed.exists()

    # Gone about a third of the way: what was read is processed and saved.
    cut = through(DroppingProxy(mailbox.plain_port, limit=120_000, once=True))
    [line] = cut.stderr.strip().splitlines()
    assert cut.returncode not in (0, 70), cut.stderr
    assert "connection lost while reading message UID" in line and "'INBOX'" in line
    assert "processed and saved; run newsletter feedback again for the rest" in line
    saved = load_suppressed(settings.suppressed)
    assert 0 < len(saved) < 200

    # The re-run does the rest, each message once; a third run nothing.
    env["NEWSLETTER_IMAP_PORT"] = str(mailbox.plain_port)
    done = run_cli(["feedback"], env)
    assert done.returncode == 0, done.stderr
    assert f"already processed before: {len(saved)}" in done.stdout
    assert f"Suppressed: {200 - len(saved)}" in done.stdout
    assert sorted(load_suppressed(settings.suppressed)) == sorted(member(n) for n in range(200))
    again = run_cli(["feedback"], env)
    assert again.returncode == 0 and "Suppressed: 0" in again.stdout
    assert "already processed before: 200" in again.stdout
    assert count_and_unseen(mailbox) == (200, 200)


@needs_dovecot
def test_folders_with_non_ascii_names_and_a_wrong_folder_name(settings: Settings, mailbox) -> None:
    folder = "Rückläufer & Co"  # modified UTF-7 on the wire: R&APw-ckl&AOQ-ufer &- Co
    fill(mailbox, [exchange_ndr_html(member(5), mid(5))], folder)
    fill(mailbox, [ordinary(1)], "Éléments envoyés")
    settings = imap_settings(settings, mailbox, imap_folder=folder)
    sent_to(settings, 10)
    # and an unsubscribe request from a sender the list cannot hold: shown, left in place
    fill(mailbox, [b"From: J\xf6rg <j\xf6rg@y.de>\r\nSubject: unsubscribe\r\n\r\nx\r\n"], folder)
    report = run_feedback(settings, move_to="Traités")
    assert report.suppressed == [(member(5), "bounced", SLUG)]
    assert count_and_unseen(mailbox, "Traités") == (1, 1)
    assert count_and_unseen(mailbox, folder) == (1, 1)

    with pytest.raises(MailboxError) as caught:
        run_feedback(replace(settings, imap_folder="Bounces"), dry_run=True)
    message = str(caught.value)
    assert message.startswith(f"127.0.0.1:{mailbox.plain_port}: cannot open folder 'Bounces'")
    assert "NEWSLETTER_IMAP_FOLDER" in message and "\n" not in message
    # The folders as the chair's mail client shows them, not as IMAP spells them.
    assert "Rückläufer & Co" in message and "Éléments envoyés" in message
    assert "&APw-" not in message


@needs_dovecot
def test_server_gone_while_moving_keeps_the_suppressions_and_the_rerun_moves_the_rest(
    settings: Settings, mailbox
) -> None:
    settings = imap_settings(settings, mailbox)
    sent_to(settings, 20)
    fill(mailbox, [exchange_ndr_html(member(n), mid(n)) for n in range(5)])
    fill(mailbox, [gmail_reply(member(9), mid(9), "Thanks!")])
    proxy = DroppingProxy(mailbox.plain_port, on=b"UID MOVE")
    try:
        with pytest.raises(MailboxError) as caught:
            run_feedback(replace(settings, imap_port=proxy.listen_port), move_to="Processed")
    finally:
        proxy.close()
    message = str(caught.value)
    assert proxy.cut.is_set() and "\n" not in message
    assert message.startswith(f"127.0.0.1:{proxy.listen_port}: connection lost while moving")
    assert "suppressions are saved" in message and "--move-to" in message
    assert sorted(load_suppressed(settings.suppressed)) == sorted(member(n) for n in range(5))
    assert count_and_unseen(mailbox) == (6, 6)  # nothing lost, nothing deleted

    report = run_feedback(settings, move_to="Processed")
    assert report.rows == [] and report.moved == 5
    assert count_and_unseen(mailbox) == (1, 1)  # the reply stays
    assert count_and_unseen(mailbox, "Processed") == (5, 5)


@needs_dovecot
def test_starttls_on_the_implicit_tls_port_names_the_security_setting(
    settings: Settings, mailbox
) -> None:
    # The commonest mistake: port 993 with starttls. The server waits for a TLS hello that
    # never comes; the error must say which setting to change, not only "the port".
    settings = replace(
        imap_settings(settings, mailbox),
        imap_port=mailbox.tls_port,
        imap_security="starttls",
        imap_cafile=str(mailbox.cafile),
        smtp_timeout=1.0,
    )
    with pytest.raises(MailboxError) as caught:
        run_feedback(settings, dry_run=True)
    message = str(caught.value)
    assert message.startswith(f"127.0.0.1:{mailbox.tls_port}: no answer in time")
    assert "NEWSLETTER_IMAP_SECURITY" in message and "993 is ssl" in message


@needs_dovecot
def test_inbox_spelt_inbox_is_the_same_folder_to_the_memory(settings: Settings, mailbox) -> None:
    # A chair on Microsoft 365 writes NEWSLETTER_IMAP_FOLDER=Inbox, as Outlook shows it,
    # after a first run on the default INBOX: the same folder (RFC 3501), nothing redone.
    settings = imap_settings(settings, mailbox)
    sent_to(settings, 5)
    fill(mailbox, [gmail_reply(member(1), mid(1), "Thanks!")])
    assert len(run_feedback(settings).replies) == 1
    again = run_feedback(replace(settings, imap_folder="Inbox"))
    assert again.replies == [] and again.already_processed == 1 and again.folder == "INBOX"


@needs_dovecot
def test_a_dropped_link_is_reconnected_within_the_run(settings: Settings, mailbox) -> None:
    settings = imap_settings(settings, mailbox)
    sent_to(settings, 100)
    fill(mailbox, [gmail_address_not_found(member(n), mid(n)) for n in range(100)])
    # Every connection drops after ~60 kB: three or four of them for the whole folder.
    proxy = DroppingProxy(mailbox.plain_port, limit=60_000)
    try:
        report = run_feedback(replace(settings, imap_port=proxy.listen_port))
    finally:
        proxy.close()
    assert proxy.cut.is_set()
    assert sorted(load_suppressed(settings.suppressed)) == sorted(member(n) for n in range(100))
    assert [row.kind for row in report.rows] == ["hard-bounce"] * 100  # each once
    assert run_feedback(settings).already_processed == 100


@needs_dovecot
def test_a_message_the_server_fails_on_does_not_stop_every_run(settings: Settings, mailbox) -> None:
    # Dovecot ends the connection ("FETCH failed: Internal error") on a message file it
    # cannot read. Without skipping it, every run stopped there and never read the mail
    # after it.
    settings = imap_settings(settings, mailbox)
    sent_to(settings, 10)
    fill(mailbox, [gmail_address_not_found(member(n), mid(n)) for n in range(5)])
    maildir = mailbox.root / "mail" / dovecot.USERNAME
    damaged = next(
        path
        for path in sorted(maildir.glob("cur/*")) + sorted(maildir.glob("new/*"))
        if member(2).encode() in path.read_bytes()
    )
    damaged.chmod(0)
    try:
        report = run_feedback(settings)
        again = run_feedback(settings)
    finally:
        damaged.chmod(0o600)
    assert sorted(load_suppressed(settings.suppressed)) == sorted(
        member(n) for n in (0, 1, 3, 4)
    )  # fmt: skip
    [row] = [row for row in report.rows if row.kind == "unreadable"]
    assert row.action == "left: the server fails on it"
    assert again.rows == [] and again.already_processed == 5
    assert count_and_unseen(mailbox) == (5, 5)  # never deleted


@pytest.fixture(scope="module")
def no_move_server():
    """A Dovecot announcing UIDPLUS but not MOVE (as some older servers do): --move-to must
    copy, then remove exactly the copied UIDs — never a plain EXPUNGE."""
    if not dovecot.available():
        pytest.skip("dovecot-imapd not installed")
    server = dovecot.start(
        extra_config="protocol imap {\n  imap_capability = IMAP4rev1 LITERAL+ UIDPLUS IDLE\n}"
    )
    try:
        yield server
    finally:
        server.stop()


@needs_dovecot
def test_move_without_move_removes_only_the_copied_messages(
    settings: Settings, no_move_server
) -> None:
    server = no_move_server
    server.clear()
    settings = imap_settings(settings, server)
    sent_to(settings, 10)
    fill(server, [exchange_ndr_html(member(n), mid(n)) for n in range(3)])
    fill(server, [gmail_reply(member(8), mid(8), "Thanks!"), ordinary(1)])
    # Another mail client marked the ordinary message \Deleted without expunging it: a plain
    # EXPUNGE from us would destroy it.
    other = server.client()
    try:
        other.select("INBOX")
        _, found = other.uid("SEARCH", "SUBJECT", '"Board papers 1"')
        [marked] = found[0].split()
        other.uid("STORE", marked, "+FLAGS.SILENT", r"(\Deleted)")
        _, capabilities = other.capability()
        assert b" MOVE" not in capabilities[0] and b"UIDPLUS" in capabilities[0]
    finally:
        other.logout()

    report = run_feedback(settings, move_to="Processed")
    assert report.moved == 3
    assert count_and_unseen(server, "Processed") == (3, 3)
    assert count_and_unseen(server) == (2, 2)  # the reply, and the \Deleted one kept
    server.clear()


@needs_dovecot
def test_connection_lost_while_signing_in_is_not_called_a_wrong_password(
    settings: Settings, mailbox
) -> None:
    settings = imap_settings(settings, mailbox)
    proxy = DroppingProxy(mailbox.plain_port, on=b"LOGIN")
    try:
        with pytest.raises(MailboxError) as caught:
            run_feedback(replace(settings, imap_port=proxy.listen_port), dry_run=True)
    finally:
        proxy.close()
    message = str(caught.value)
    assert message.startswith(f"127.0.0.1:{proxy.listen_port}: connection lost while signing in")
    assert "refused" not in message and "run newsletter feedback again" in message
