"""`newsletter feedback` against a real Dovecot IMAP server on 127.0.0.1 (tests/support/dovecot.py):
TLS with a trustme certificate and plain to localhost, password sign-in, and the loop end to
end — send to a local SMTP server, bounce into the mailbox, feedback, the next send skips
exactly the suppressed members, a second run changes nothing, nothing is ever deleted.

XOAUTH2 is tested against Dovecot's oauth2 passdb, which checks each bearer token at an
RFC 7662 token introspection endpoint: a minimal one (support/dovecot.py) stands in for the
identity provider's, since only the IMAP side is under test here."""

from __future__ import annotations

import datetime as dt
import email
import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from support import dovecot
from support.helpers import cli_env, newsletter
from support.projects import DATA
from support.smtp_servers import MisbehavingHandler, make_message, start_server

from newsletter.common.config import Settings
from newsletter.common.errors import ConfigError, MailboxError
from newsletter.feedback.run import resubscribe, run_feedback
from newsletter.mail.imap import connect, derived_host, imap_params, password_login, xoauth2_login
from newsletter.members.suppression import load_suppressed
from newsletter.records.journal import Journal

CORPUS = DATA / "feedback"


def imap_settings(settings: Settings, server, *, tls: bool = True) -> Settings:
    return replace(
        settings,
        imap_host="127.0.0.1",
        imap_port=server.tls_port if tls else server.plain_port,
        imap_security="ssl" if tls else "none",
        imap_cafile=str(server.cafile) if tls else "",
        imap_username=dovecot.USERNAME,
        imap_password=dovecot.PASSWORD,
    )


def corpus(name: str, address: str, message_id: str) -> bytes:
    """A corpus message re-addressed to one of the test's members and its real Message-ID."""
    text = (CORPUS / name).read_text(encoding="utf-8")
    originals = {
        "postfix-dsn-user-unknown.eml": (
            "priya.shah@example.org",
            "<9c1f4e2ab07d3c5e8a6f0b12@wmhtc.co.uk>",
        ),
        "gmail-dsn-over-quota.eml": (
            "james.whitfield@example.org",
            "<3e5b8a6ef4b17a9c2e0d4f56@wmhtc.co.uk>",
        ),
        "arf-complaint.eml": (
            "james.whitfield@example.org",
            "<6b8e1d9b27e40d2f5b3a7289@wmhtc.co.uk>",
        ),
        "mailto-unsubscribe.eml": ("sian.griffiths@example.net", "<none>"),
        "out-of-office.eml": ("priya.shah@example.org", "<7c9f2e0c38f51e3a6c4b8390@wmhtc.co.uk>"),
        "human-reply.eml": (
            "james.whitfield@example.org",
            "<9e1b4a2e5a173a5c8e6d0512@wmhtc.co.uk>",
        ),
        "exim-failed-user-unknown.eml": (
            "sian.griffiths@example.net",
            "<1c3f6e4cd29f5e7a0c8b2d34@wmhtc.co.uk>",
        ),
    }
    old_address, old_id = originals[name]
    return text.replace(old_address, address).replace(old_id, message_id).encode("utf-8")


# --- the connection ------------------------------------------------------------------------


def test_tls_sign_in_reads_without_marking_seen(settings: Settings, mailbox) -> None:
    mailbox.append(b"From: a@example.org\nSubject: hello\n\nbody\n")
    params = imap_params(imap_settings(settings, mailbox))
    box = connect(params, password_login(dovecot.USERNAME, dovecot.PASSWORD))
    try:
        assert box.can_move()
        assert box.open_folder("INBOX", readonly=False) > 0
        [uid] = box.uids()
        assert b"Subject: hello" in box.fetch(uid)
    finally:
        box.close()
    client = mailbox.client()
    client.select("INBOX", readonly=True)
    _, flags = client.uid("FETCH", str(uid), "(FLAGS)")
    client.logout()
    assert b"\\Seen" not in flags[0]


def test_plain_to_localhost(settings: Settings, mailbox) -> None:
    params = imap_params(imap_settings(settings, mailbox, tls=False))
    box = connect(params, password_login(dovecot.USERNAME, dovecot.PASSWORD))
    try:
        assert box.open_folder("INBOX", readonly=True) > 0 and box.uids() == []
    finally:
        box.close()


def test_untrusted_certificate_and_wrong_password_are_one_line_errors(
    settings: Settings, mailbox
) -> None:
    params = imap_params(replace(imap_settings(settings, mailbox), imap_cafile=""))
    with pytest.raises(MailboxError, match="certificate not trusted") as caught:
        connect(params, password_login(dovecot.USERNAME, dovecot.PASSWORD))
    assert str(caught.value).startswith(f"127.0.0.1:{mailbox.tls_port}: ")
    params = imap_params(imap_settings(settings, mailbox))
    with pytest.raises(MailboxError, match="sign-in refused") as caught:
        connect(params, password_login(dovecot.USERNAME, "wrong-password-123"))
    assert "wrong-password-123" not in str(caught.value) and "\n" not in str(caught.value)


def test_xoauth2_sign_in_with_a_token_callable(settings: Settings, mailbox) -> None:
    settings = imap_settings(settings, mailbox)
    mailbox.append(corpus("human-reply.eml", "jane@example.org", "<x@example.org>"))
    calls = []

    def tokens() -> tuple[str, str]:
        calls.append(1)
        return dovecot.USERNAME, dovecot.GOOD_TOKEN

    report = run_feedback(settings, dry_run=True, authenticate=xoauth2_login(tokens))
    assert calls == [1] and [r.sender for r in report.replies] == ["jane@example.org"]
    params = imap_params(settings)
    with pytest.raises(MailboxError, match="sign-in refused") as caught:
        connect(params, xoauth2_login(lambda: (dovecot.USERNAME, "expired-token")))
    assert "expired-token" not in str(caught.value) and "sign in again" in str(caught.value)


def test_oauth_sign_in_for_smtp_signs_in_to_imap_too(settings: Settings, mailbox) -> None:
    # NEWSLETTER_SMTP_AUTH=oauth2 with the IT department's token command: the same token
    # source SMTP uses gives IMAP its XOAUTH2 token (no IMAP password set).
    command = f"{sys.executable} -c \"print('{dovecot.GOOD_TOKEN}')\""
    settings = replace(
        imap_settings(settings, mailbox),
        imap_username="",
        imap_password="",
        smtp_auth="oauth2",
        smtp_username=dovecot.USERNAME,
        smtp_oauth_token_command=command,
    )
    mailbox.append(corpus("human-reply.eml", "jane@example.org", "<x@example.org>"))
    report = run_feedback(settings, dry_run=True)
    assert [r.sender for r in report.replies] == ["jane@example.org"]
    revoked = replace(settings, smtp_oauth_token_command=f"{sys.executable} -c \"print('old')\"")
    with pytest.raises(MailboxError, match="sign in again"):
        run_feedback(revoked, dry_run=True)


def test_settings_defaults_and_refusals(settings: Settings) -> None:
    assert derived_host("smtp.office365.com") == "outlook.office365.com"
    assert derived_host("smtp.gmail.com") == "imap.gmail.com"
    assert derived_host("mail.example.org") == ""
    derived = imap_params(
        replace(settings, smtp_host="smtp.office365.com", smtp_username="d@x.org")
    )
    assert (derived.host, derived.port, derived.security, derived.username) == (
        "outlook.office365.com", 993, "ssl", "d@x.org",
    )  # fmt: skip
    with pytest.raises(ConfigError, match="NEWSLETTER_IMAP_HOST"):
        imap_params(replace(settings, smtp_host="mail.example.org"))
    with pytest.raises(ConfigError, match="NEWSLETTER_IMAP_SECURITY"):
        imap_params(replace(settings, imap_host="imap.example.org", imap_security="none"))


# --- soft bounces, RCPT refusals, resubscribe (in process) ---------------------------------


def journal_with(settings: Settings, sends: list[tuple[str, str, str]], failed: dict | None = None):
    """Journal rows for (slug, address, message_id); ``failed``: address → RCPT reply."""
    failed = failed or {}
    with Journal.for_state_dir(settings.state_dir) as journal:
        for slug, address, message_id in sends:
            msg = replace(make_message(address), message_id=message_id)
            journal.mark_sending(slug, msg)
            if address in failed:
                journal.mark_failed(slug, address, failed[address])
            else:
                journal.mark_sent(slug, address, "250 ok")


def test_soft_bounces_suppress_after_the_limit_of_different_issues(
    settings: Settings, mailbox
) -> None:
    settings = replace(imap_settings(settings, mailbox), soft_bounce_limit=2)
    member = "flaky@example.org"
    journal_with(settings, [
        ("november-2023", member, "<n1@example.org>"), ("december-2023", member, "<d1@example.org>"),
    ])  # fmt: skip
    soft = "gmail-dsn-over-quota.eml"
    mailbox.append(corpus(soft, member, "<n1@example.org>"))
    mailbox.append(corpus(soft, member, "<n1@example.org>"))  # same issue twice: one count
    first = run_feedback(settings, today=dt.date(2023, 12, 20))
    assert [r.action for r in first.rows] == ["soft 1 of 2", "soft 1 of 2"]
    assert first.suppressed == [] and not settings.suppressed.exists()
    mailbox.append(corpus(soft, member, "<d1@example.org>"))
    second = run_feedback(settings, today=dt.date(2023, 12, 21))
    assert second.already_processed == 2
    assert second.suppressed == [(member, "bounced", "december-2023")]
    assert member in load_suppressed(settings.suppressed)
    assert "issue" in settings.suppressed.read_text().splitlines()[0]

    # Resubscribed: earlier soft bounces no longer count.
    resubscribe(settings, member, "mailbox fixed", now=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    assert member not in load_suppressed(settings.suppressed)
    with pytest.raises(Exception, match="not on the suppression list"):
        resubscribe(settings, member, "again")


def test_a_permanent_rcpt_refusal_is_a_hard_bounce_once(settings: Settings, mailbox) -> None:
    settings = imap_settings(settings, mailbox)
    journal_with(settings, [
        ("december-2023", "gone@example.org", "<g@example.org>"),
        ("december-2023", "full@example.org", "<f@example.org>"),
        ("december-2023", "fine@example.org", "<ok@example.org>"),
    ], failed={"gone@example.org": "550 5.1.1 <gone@example.org>: user unknown",
               "full@example.org": "552 5.2.2 mailbox full"})  # fmt: skip
    report = run_feedback(settings)
    assert report.suppressed == [("gone@example.org", "bounced", "december-2023")]
    assert [r.kind for r in report.rows] == ["rcpt-refused"]
    assert run_feedback(settings).rows == []  # remembered: not counted again


def test_a_send_refused_mostly_as_unknown_suppresses_nobody(settings: Settings, mailbox) -> None:
    """An inbound mail server set as the SMTP host refuses every outside address with
    '550 5.1.1': taking those for gone addresses would have suppressed the whole list."""
    settings = imap_settings(settings, mailbox)
    members = [f"m{n}@members.example.org" for n in range(6)]
    journal_with(
        settings,
        [("december-2023", a, f"<{n}@example.org>") for n, a in enumerate(members)],
        failed={a: f"550 5.1.1 <{a}>: Recipient address rejected: User unknown"
                for a in members[:5]},
    )  # fmt: skip
    report = run_feedback(settings)
    assert report.suppressed == [] and not settings.suppressed.exists()
    (row,) = report.rows
    assert row.kind == "rcpt-refused" and row.address == ""
    assert "5 members refused as unknown, 1 delivered — nobody suppressed" in row.action
    assert "NEWSLETTER_SMTP_HOST" in row.action


def test_an_old_unsubscribe_read_again_does_not_undo_a_resubscribe(
    settings: Settings, mailbox
) -> None:
    """The chair moved an old mail back into the inbox (a new UID), or the server renumbered
    the folder: the unsubscribe of 15 Dec 2023 re-suppressed a member resubscribed since."""
    settings = imap_settings(settings, mailbox)
    member = "sian.griffiths@example.net"
    mail = corpus("mailto-unsubscribe.eml", member, "<none>")
    mailbox.append(mail)
    first = run_feedback(settings)
    assert [a for a, _, _ in first.suppressed] == [member]
    resubscribe(settings, member, "asked by phone", now=dt.datetime(2024, 1, 5, tzinfo=dt.UTC))
    mailbox.append(mail)  # the same message again, under a new UID
    again = run_feedback(settings)
    assert again.suppressed == [] and member not in load_suppressed(settings.suppressed)
    (row,) = again.rows
    assert row.action.startswith("left: resubscribed since (2024-01-05)")
    # A new request, written after the resubscription, is honoured again.
    mailbox.append(mail.replace(b"Fri, 15 Dec 2023", b"Mon, 15 Jan 2024"))
    later = run_feedback(settings)
    assert [a for a, _, _ in later.suppressed] == [member]


# --- end to end, as the chair runs it -------------------------------------------------------


def test_send_bounce_feedback_then_the_next_send_skips_them(
    project: Path, mailbox, tmp_path: Path
) -> None:
    members = [f"member{n}@members.wmhtc.co.uk" for n in range(8)]
    (project / "recipients.csv").write_text(
        "email,first_name\n" + "".join(f"{a},M{n}\n" for n, a in enumerate(members)),
        encoding="utf-8",
    )
    refused = members[7]  # refused at RCPT during the send
    handler = MisbehavingHandler(unknown=[refused])
    with start_server(handler, tls="starttls", auth=True, cafile_dir=tmp_path) as smtp:
        env = cli_env(
            smtp,
            NEWSLETTER_UNSUBSCRIBE_URL="https://wmhtc.co.uk/u/{token}",
            NEWSLETTER_UNSUBSCRIBE_MAILTO="unsubscribe@wmhtc.co.uk",
            **dovecot.imap_env(mailbox),
        )
        sent = newsletter(project, env, "send", "december-2023", "--yes")
        assert sent.returncode == 1 and "Sent:      7" in sent.stdout, sent.stdout + sent.stderr
    with Journal.for_state_dir(project / ".newsletter") as journal:
        ids = {row.address: row.message_id for row in journal.rows("december-2023")}
    # What comes back: a hard bounce, a soft one, a complaint, an unsubscribe mail, an
    # out-of-office and a real reply.
    mailbox.append(corpus("postfix-dsn-user-unknown.eml", members[0], ids[members[0]]))
    mailbox.append(corpus("gmail-dsn-over-quota.eml", members[1], ids[members[1]]))
    mailbox.append(corpus("arf-complaint.eml", members[2], ids[members[2]]))
    mailbox.append(corpus("mailto-unsubscribe.eml", members[3], "<none>"))
    mailbox.append(corpus("out-of-office.eml", members[4], ids[members[4]]))
    mailbox.append(corpus("human-reply.eml", members[5], ids[members[5]]))
    assert len(mailbox.uids()) == 6

    dry = newsletter(project, env, "feedback", "--dry-run", "--move-to", "Newsletter feedback")
    assert dry.returncode == 0, dry.stderr
    assert "Would suppress: 4" in dry.stdout and "dry run" in dry.stdout
    assert "Would move: 5 message(s) to Newsletter feedback" in dry.stdout
    assert len(mailbox.uids("INBOX")) == 6
    assert not (project / "suppressed.csv").exists()
    assert not (project / ".newsletter" / "feedback.sqlite3").exists()

    real = newsletter(project, env, "feedback", "--move-to", "Newsletter feedback")
    assert real.returncode == 0, real.stderr
    assert (
        "Suppressed: 4" in real.stdout
        and "Moved: 5 message(s) to Newsletter feedback" in real.stdout
    )
    assert f"{members[5]}" in real.stdout and "Replies to read" in real.stdout
    assert dovecot.PASSWORD not in real.stdout + real.stderr
    rows = (project / "suppressed.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "email,reason,date,issue"
    assert sorted(rows[1:]) == sorted([
        f"{members[0]},bounced,{dt.date.today().isoformat()},december-2023",
        f"{members[2]},complained,{dt.date.today().isoformat()},december-2023",
        f"{members[3]},unsubscribed,{dt.date.today().isoformat()},december-2023",
        f"{refused},bounced,{dt.date.today().isoformat()},december-2023",
    ])  # fmt: skip

    # Nothing deleted: the reply stays in the inbox, the rest were moved.
    assert len(mailbox.uids("INBOX")) == 1 and len(mailbox.uids("Newsletter feedback")) == 5
    before = (project / "suppressed.csv").read_bytes()
    again = newsletter(project, env, "feedback")
    assert again.returncode == 0, again.stderr
    assert "New: nothing new" in again.stdout and "Suppressed: 0" in again.stdout
    assert (project / "suppressed.csv").read_bytes() == before

    # The next send's dry run skips exactly the suppressed members.
    dry_send = newsletter(project, env, "send", "december-2023", "--dry-run")
    assert dry_send.returncode == 0, dry_send.stderr
    written = sorted(
        email.message_from_bytes(p.read_bytes())["To"].rsplit("<", 1)[-1].rstrip(">")
        for p in (project / "outbox" / "december-2023").glob("*.eml")
    )
    assert written == sorted(set(members) - {members[0], members[2], members[3], refused})

    status = newsletter(project, env, "status", "december-2023", "--json")
    assert json.loads(status.stdout)["feedback"] == {
        "hard": 2, "soft": 1, "complaint": 1, "unsubscribe": 1,
    }  # fmt: skip
    text = newsletter(project, env, "status", "december-2023").stdout
    assert "bounced 3 (hard 2, soft 1), complained 1, unsubscribed 1" in text
    assert sys.executable  # the CLI ran as a real process


# -- feedback: a bounce for one address taken for another ---------------------------------

NDR_FOR_JOANN = b"""From: Mail Delivery System <MAILER-DAEMON@mx.hospital.de>
To: news@wmhtc.co.uk
Subject: Undeliverable: Board meeting
Date: Mon, 30 Nov 2026 09:31:07 +0100
Message-ID: <ndr-1@mx.hospital.de>
X-MS-Exchange-Message-Is-Ndr:
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

Delivery has failed to these recipients or groups:

joann@hospital.de
The email address you entered couldn't be found. 550 5.1.1 User unknown

--b
Content-Type: message/rfc822

From: news@wmhtc.co.uk
To: ann@hospital.de, joann@hospital.de
Subject: Board meeting
Message-ID: <board-1@wmhtc.co.uk>

See you on Monday.
--b--
"""


def test_a_bounce_for_joann_does_not_suppress_ann(project, mailbox, smtp_server):
    # A bounce read from the returned original (new: failures_from_returned) took every
    # To/Cc address whose text appeared *inside* the bounce's words: "joann@hospital.de"
    # named "ann@hospital.de" too, and Ann, who never bounced, was suppressed.
    members = ["ann@hospital.de", "joann@hospital.de"]
    (project / "recipients.csv").write_text(
        "email,first_name\n" + "".join(f"{a},M{n}\n" for n, a in enumerate(members)),
        encoding="utf-8",
    )
    env = cli_env(smtp_server, **dovecot.imap_env(mailbox))
    sent = newsletter(project, env, "send", "december-2023", "--yes")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    mailbox.append(NDR_FOR_JOANN)
    run = newsletter(project, env, "feedback", "--since", "2020-01-01")
    assert run.returncode == 0, run.stdout + run.stderr
    suppressed = (project / "suppressed.csv").read_text(encoding="utf-8")
    assert "joann@hospital.de" in suppressed
    assert "\nann@hospital.de" not in suppressed, suppressed
