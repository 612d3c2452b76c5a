"""Many commands changing the suppression list at once lose nothing (issue 21, item 5).

Before the list was locked, 40 ``newsletter unsubscribe`` processes started together left
16 of the 40 addresses on it, concurrent ``resubscribe`` runs brought back addresses that
others had taken off, and crashed ("duplicate column name: movable") creating the feedback
log. Here 50 real processes unsubscribe and resubscribe different addresses while a real
``newsletter feedback`` run suppresses others (the members the send journal says were
refused as unknown): the list ends as exactly the expected set, and every process succeeds.
"""

from __future__ import annotations

import csv
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from support.crashpoints import environment, make_project

from newsletter.mail.envelope import Envelope
from newsletter.members.suppression import load_suppressed
from newsletter.records.feedback_log import FeedbackLog
from newsletter.records.journal import Journal

SLUG = "december-2023"
KEPT = [f"kept{n}@nghealth.uk" for n in range(5)]  # on the list before, left alone
BACK = [f"back{n}@mmedtech.uk" for n in range(25)]  # on the list before, resubscribed
LEAVING = [f"leaving{n}@cdhealth.uk" for n in range(25)]  # unsubscribed now
GONE = [f"gone{n}@nghealth.uk" for n in range(10)]  # refused at RCPT: feedback suppresses
DELIVERED = [f"fine{n}@mmedtech.uk" for n in range(20)]


def _journal(project: Path) -> None:
    """The send journal of a send in which GONE were refused as unknown and the others got it."""
    with Journal.for_state_dir(project / ".newsletter") as journal:
        for row, address in enumerate(GONE + DELIVERED, start=2):
            journal.mark_sending(SLUG, Envelope(address, row, f"<{row}@wmhtc.co.uk>", b""))
            if address in GONE:
                reply = f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
                journal.mark_failed(SLUG, address, reply)
            else:
                journal.mark_sent(SLUG, address, "250 2.0.0 Ok: queued")


def _start(project: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", *args], cwd=project, env=environment(project),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = make_project(tmp_path / "cluster", KEPT + BACK + LEAVING + GONE + DELIVERED)
    rows = ["email,reason,date"] + [f"{a},unsubscribed,2026-01-05" for a in KEPT + BACK]
    (folder / "suppressed.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    _journal(folder)
    return folder


def test_fifty_processes_and_a_feedback_run_at_once_lose_nothing(project: Path) -> None:
    # Interleaved, so that unsubscribes and resubscribes start side by side.
    commands = [("feedback",)]
    for leaving, back in zip(LEAVING, BACK, strict=True):
        commands += [("unsubscribe", leaving), ("resubscribe", back, "--reason", "back")]
    processes = [(args, _start(project, *args)) for args in commands]
    outcomes = [(args, p.wait(timeout=300), *p.communicate()) for args, p in processes]

    failed = [(args, code, err[-500:]) for args, code, _, err in outcomes if code != 0]
    assert failed == []
    suppressed = project / "suppressed.csv"
    expected = {a.casefold() for a in KEPT + LEAVING + GONE}
    assert load_suppressed(suppressed) == expected
    with suppressed.open(encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["email", "reason", "date"]  # the list's own header, kept
    emails = [row[0] for row in rows[1:]]
    assert sorted(emails) == sorted(expected)  # each once, every row whole (3 or 4 fields)
    assert all(len(row) in (3, 4) and row[2] for row in rows[1:])
    feedback_output = next(out for args, _, out, _ in outcomes if args == ("feedback",))
    assert all(address in feedback_output for address in GONE)
    with FeedbackLog.for_state_dir(project / ".newsletter") as log:
        assert all(log.last_resubscribed(address) for address in BACK)
        assert all(log.has_event(address, SLUG, "rcpt") for address in GONE)
    leftovers = [p.name for p in project.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def _open_at_once(state: Path, count: int) -> list[BaseException]:
    """``count`` threads open the feedback log in ``state`` at the same instant and write
    to it; what they raised."""
    import threading

    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def open_it() -> None:
        try:
            start.wait()
            with FeedbackLog.for_state_dir(state) as log:
                log.record_resubscribe("a@example.org", "test", "2026-01-01T00:00:00+00:00")
        except BaseException as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_commands_creating_the_feedback_log_at_once_all_set_it_up(tmp_path: Path) -> None:
    """Eight at once, ten times over: the set-up is done once (before: both saw no
    ``movable`` column, both added it, one crashed "duplicate column name"; and SQLite
    answers "database is locked" at once to a second switch of a new file to WAL)."""
    for round_ in range(10):
        state = tmp_path / f"state-{round_}"
        assert _open_at_once(state, 8) == [], round_
        with sqlite3.connect(state / "feedback.sqlite3") as db:
            columns = [row[1] for row in db.execute("PRAGMA table_info(processed)")]
            assert columns.count("movable") == 1
            assert db.execute("SELECT COUNT(*) FROM resubscribed").fetchone()[0] == 8
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_log_written_before_movable_existed_is_upgraded_once(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    with sqlite3.connect(state / "feedback.sqlite3") as db:  # as an older version made it
        db.execute(
            "CREATE TABLE processed (folder TEXT NOT NULL, uidvalidity INTEGER NOT NULL, "
            "uid INTEGER NOT NULL, kind TEXT NOT NULL, at TEXT NOT NULL, "
            "PRIMARY KEY (folder, uidvalidity, uid)) WITHOUT ROWID"
        )
        db.execute("INSERT INTO processed VALUES ('INBOX', 7, 42, 'bounce', '2026-01-01')")
    for _ in range(2):
        with FeedbackLog.for_state_dir(state) as log:
            assert log.processed_uids("INBOX", 7) == {42}
            assert log.movable_uids("INBOX", 7) == set()  # the old rows: not movable


def test_a_send_re_reading_the_list_never_sees_it_torn(tmp_path: Path) -> None:
    """A running send re-reads the list whenever it changed (plan._SuppressionWatch): while
    another process adds to it 60 times, every read is a whole list, never fewer rows than
    the read before, and the last read holds them all."""
    path = tmp_path / "suppressed.csv"
    path.write_text("email,reason,date\n", encoding="utf-8")
    added = [f"late{n}@nghealth.uk" for n in range(60)]
    writer = subprocess.Popen(
        [sys.executable, "-c",
         "import datetime, sys; from pathlib import Path\n"
         "from newsletter.members.suppression import add_suppressed\n"
         "for address in sys.argv[2:]:\n"
         "    add_suppressed(Path(sys.argv[1]), [address], reason='unsubscribed',\n"
         "                   today=datetime.date(2026, 3, 1))\n",
         str(path), *added],
        env=environment(tmp_path),
    )  # fmt: skip
    sizes: list[int] = []
    while writer.poll() is None:
        sizes.append(len(load_suppressed(path)))  # raises on a torn row
    assert writer.returncode == 0
    sizes.append(len(load_suppressed(path)))
    assert sizes == sorted(sizes) and sizes[-1] == len(added)
