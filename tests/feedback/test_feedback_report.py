"""`newsletter feedback` as the chair meets it, end to end with real servers: the December
issue sent through aiosmtpd, what really comes back appended to a real Dovecot inbox, the CLI
run as a process on an 80-column terminal and a wide one.

Each test here failed before its fix:
- the table lost its kind and issue columns whenever a bounce's detail was long (rich
  squeezed them to nothing), on any terminal width;
- Outlook's "Automatic reply:" without Auto-Submitted was listed as a reply, and subjects
  were shown as =?utf-8?B?…?= (Outlook encodes every subject with a dash);
- `feedback` and later `feedback --move-to FOLDER` moved nothing: processed once, never moved;
- a bounce of the chair's own mail (not the bulletin) to a member counted as that member's
  soft bounce for the last issue;
- an "unsubscribe" from an address that is no member looked like a member taken off;
- the first run read the whole mailbox: years of the organisation's mail downloaded and
  every message listed as a reply to read; and so did a run before any send (no journal);
- an Exim bounce's detail began with the address and the host: 80 columns cut the reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import dovecot
from support.helpers import cli_env, newsletter
from support.projects import DATA
from support.smtp_servers import start_server

from newsletter.records.journal import Journal

CORPUS = DATA / "feedback"
pytestmark = pytest.mark.skipif(not dovecot.available(), reason="dovecot-imapd not installed")

MEMBERS = [
    "amira.haddad@nghealth.uk",  # Microsoft 365 NDR: address not found
    "helen.ward@nghealth.uk",  # Outlook automatic reply, no Auto-Submitted
    "ewa.kowalska@cdhealth.uk",  # a reply with a raw UTF-8 subject
    "dev.singh@nghealth.uk",  # the chair's own mail to her bounced (mailbox full)
    "nadia.rossi@cdhealth.uk",  # says nothing
]
STRANGER = "gareth.price@example.com"  # not a member; writes "unsubscribe"


def _message(name: str, replace: dict[str, str]) -> bytes:
    text = (CORPUS / name).read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text, (name, old)
        text = text.replace(old, new)
    return text.encode("utf-8")


def _sent_and_returned(project: Path, mailbox, tmp_path: Path) -> dict[str, str]:
    """Send December to the members for real, then fill the inbox; the CLI environment."""
    (project / "recipients.csv").write_text(
        "email,first_name\n" + "".join(f"{a},M{n}\n" for n, a in enumerate(MEMBERS)),
        encoding="utf-8",
    )
    with start_server(tls="starttls", auth=True, cafile_dir=tmp_path) as smtp:
        env = cli_env(
            smtp,
            NEWSLETTER_UNSUBSCRIBE_URL="https://wmhtc.co.uk/unsubscribe?token={token}",
            NEWSLETTER_UNSUBSCRIBE_MAILTO="unsubscribe@wmhtc.co.uk",
            **dovecot.imap_env(mailbox),
        )
        sent = newsletter(project, env, "send", "december-2023", "--yes")
        assert sent.returncode == 0, sent.stdout + sent.stderr
    with Journal.for_state_dir(project / ".newsletter") as journal:
        ids = {row.address: row.message_id for row in journal.rows("december-2023")}
    ndr = "exchange-online-ndr-recipient-not-found.eml"
    mailbox.append(
        _message(
            ndr,
            {
                "rachel.nguyen@example.net": MEMBERS[0],
                "<2d4a7f5de3a06f8b1d9c3e45@wmhtc.co.uk>": ids[MEMBERS[0]],
            },
        )
    )
    mailbox.append(
        _message(
            "outlook-automatic-reply-no-auto-submitted.eml",
            {
                "helen.ward@example.org": MEMBERS[1],
                "<ad1c5e7f0b2a4c6e8f1a3b5d@wmhtc.co.uk>": ids[MEMBERS[1]],
            },
        )
    )
    mailbox.append(
        _message(
            "reply-utf8-subject.eml",
            {
                "ewa.kowalska@example.net": MEMBERS[2],
                "<cf3e7a9b2d4c6e8a0b3c5d7f@wmhtc.co.uk>": ids[MEMBERS[2]],
            },
        )
    )
    mailbox.append(
        _message("postfix-dsn-chairs-own-mail.eml", {"dev.singh@example.org": MEMBERS[3]})
    )
    mailbox.append(_message("mailto-unsubscribe.eml", {"sian.griffiths@example.net": STRANGER}))
    assert len(mailbox.uids()) == 5
    return env


def _table_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if "@" in line and "-bounce" in line]


def test_the_report_keeps_every_column_and_reads_as_people_write(
    project: Path, mailbox, tmp_path: Path
) -> None:
    env = _sent_and_returned(project, mailbox, tmp_path)
    # The sending mailbox is the organisation's: years of mail before the first bulletin.
    imap = mailbox.client()
    try:
        old = _message("human-reply.eml", {})
        old = old.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        typ, _ = imap.append("INBOX", None, '"10-Jan-2023 09:00:00 +0000"', old)
        assert typ == "OK"
    finally:
        imap.logout()
    for columns in ("80", "160"):
        dry = newsletter(project, {**env, "COLUMNS": columns}, "feedback", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        out = dry.stdout
        table = out[: out.index("New:")]
        assert all(len(line) <= int(columns) for line in table.splitlines()), out
        # Every bounce row says what it is, whom, which issue and what was done.
        hard = [line for line in _table_lines(out) if MEMBERS[0] in line]
        assert len(hard) == 1 and "hard-bounce" in hard[0], out
        assert "december-2023" in hard[0] and "suppress" in hard[0], out
        assert "5.1.10" in out  # the server's words: beside the row, or under it
        header = next(line for line in out.splitlines() if "member" in line)
        assert "kind" in header and "issue" in header and "action" in header, out
        # Outlook's encoded "Automatic reply:" is an auto-reply, not a reply to read.
        oof = next(line for line in out.splitlines() if MEMBERS[1] in line)
        assert "auto-reply" in oof and "ignored" in oof, out
        replies = out[out.index("Replies to read") :]
        assert MEMBERS[1] not in replies
        assert "zgłoszenie" in out and "=?" not in out and "\ufffd" not in out, out
        # The chair's own mail bounced: not December's soft bounce.
        own = next(line for line in out.splitlines() if MEMBERS[3] in line)
        assert "left: not a bulletin" in own and "december-2023" not in own, out
        assert "soft 1 of" not in out
        stranger = next(line for line in out.splitlines() if STRANGER in line)
        assert "(not a member)" in stranger, out
        # Mail from before the first send is no feedback on it: not read, not listed.
        assert "james.whitfield@example.org" not in out and "Read from " in out, out
        assert "reply 1," in out, out
    assert not (project / "suppressed.csv").exists()


def test_feedback_then_move_to_still_tidies_what_was_processed(
    project: Path, mailbox, tmp_path: Path
) -> None:
    env = _sent_and_returned(project, mailbox, tmp_path)
    first = newsletter(project, env, "feedback")
    assert first.returncode == 0, first.stderr
    assert "Suppressed: 2" in first.stdout, first.stdout
    assert len(mailbox.uids("INBOX")) == 5

    # A French chair's folder: IMAP names it in modified UTF-7 ("Trait&AOk-s").
    dry = newsletter(project, env, "feedback", "--dry-run", "--move-to", "Traités")
    assert "Would move: 3 message(s) to Traités" in dry.stdout, dry.stdout
    assert len(mailbox.uids("INBOX")) == 5

    tidy = newsletter(project, env, "feedback", "--move-to", "Traités")
    assert tidy.returncode == 0, tidy.stderr
    assert "New: nothing new; already processed before: 5" in tidy.stdout, tidy.stdout
    assert "Moved: 3 message(s) to Traités" in tidy.stdout, tidy.stdout
    # The NDR, the automatic reply and the unsubscribe request moved; the reply and the
    # bounce of the chair's own mail stay for her to read. Nothing was deleted.
    assert len(mailbox.uids("INBOX")) == 2 and len(mailbox.uids("Trait&AOk-s")) == 3

    again = newsletter(project, env, "feedback", "--move-to", "Traités")
    assert "New: nothing new" in again.stdout and "Moved:" not in again.stdout, again.stdout
    assert len(mailbox.uids("INBOX")) == 2 and len(mailbox.uids("Trait&AOk-s")) == 3

    # Into the folder it reads, every message would come back as new with a new UID.
    loop = newsletter(project, env, "feedback", "--move-to", "inbox")
    assert loop.returncode == 2 and "is the folder feedback reads" in loop.stderr
    assert len(loop.stderr.strip().splitlines()) == 1 and "Traceback" not in loop.stderr

    status = newsletter(project, env, "status", "december-2023", "--json")
    assert json.loads(status.stdout)["feedback"] == {
        "hard": 1, "soft": 0, "complaint": 0, "unsubscribe": 0,
    }  # fmt: skip
    rows = (project / "suppressed.csv").read_text(encoding="utf-8").splitlines()
    assert sorted(r.split(",")[0] for r in rows[1:]) == sorted([MEMBERS[0], STRANGER])


def test_before_any_send_feedback_reads_the_last_30_days_and_says_so(
    project: Path, mailbox
) -> None:
    """No journal yet (feedback tried before the first send): the organisation's mailbox
    is not read from its first message; the last 30 days are, and the output says so."""
    import datetime as dt

    env = dovecot.imap_env(mailbox)
    imap = mailbox.client()
    try:
        old = _message("human-reply.eml", {}).replace(b"\n", b"\r\n")
        typ, _ = imap.append("INBOX", None, '"10-Jan-2023 09:00:00 +0000"', old)
        assert typ == "OK"
    finally:
        imap.logout()
    mailbox.append(_message("reply-utf8-subject.eml", {}))  # arrived today
    result = newsletter(project, env, "feedback", "--dry-run")
    assert result.returncode == 0, result.stderr
    first_day = dt.date.today() - dt.timedelta(days=30)
    assert f"Read from {first_day.isoformat()} on (the last 30 days: nothing was sent yet" in (
        result.stdout
    )
    assert "ewa.kowalska@example.net" in result.stdout  # today's reply is listed
    assert "james.whitfield@example.org" not in result.stdout, result.stdout  # 2023's is not
    assert "New: reply 1;" in result.stdout
    # --since still reaches further back, on purpose.
    wide = newsletter(project, env, "feedback", "--dry-run", "--since", "2023-01-01")
    assert wide.returncode == 0, wide.stderr
    assert "james.whitfield@example.org" in wide.stdout and "New: reply 2;" in wide.stdout
    assert (
        "Read from" not in wide.stdout
        and not (project / ".newsletter" / "journal.sqlite3").exists()
    )


def test_an_exim_bounce_shows_the_servers_reason_on_an_80_column_terminal(
    project: Path, mailbox, tmp_path: Path
) -> None:
    """Exim's plain-text bounce starts with the address, then the host: cut to the width
    that is left, the detail showed neither the reply nor the reason."""
    env = _sent_and_returned(project, mailbox, tmp_path)
    with Journal.for_state_dir(project / ".newsletter") as journal:
        ids = {row.address: row.message_id for row in journal.rows("december-2023")}
    mailbox.append(
        _message(
            "exim-failed-user-unknown.eml",
            {
                "sian.griffiths@example.net": MEMBERS[4],
                "<1c3f6e4cd29f5e7a0c8b2d34@wmhtc.co.uk>": ids[MEMBERS[4]],
            },
        )
    )
    dry = newsletter(project, {**env, "COLUMNS": "80"}, "feedback", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    out = dry.stdout
    row = next(line for line in out.splitlines() if MEMBERS[4] in line)
    assert "hard-bounce" in row and "suppress" in row, out
    # Beside the row or on the line under it: the reply and the reason, not the address.
    lines = out.splitlines()
    at = lines.index(row)
    shown = row + " " + (lines[at + 1] if at + 1 < len(lines) else "")
    assert "550 5.1.1 No such user here" in shown, out
