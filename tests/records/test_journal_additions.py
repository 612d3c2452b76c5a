"""Issue 17: the journal keeps each sent issue's words and why a run stopped, in two new
tables. A journal written before them (every chair's) opens and gains them, its record
untouched."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from newsletter.records.journal import Journal, RunStop

# The journal as the version before issue 17 wrote it: its four tables, no others.
OLD_SCHEMA = """
CREATE TABLE deliveries (slug TEXT NOT NULL, key TEXT NOT NULL, address TEXT NOT NULL,
    row INTEGER NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    reply TEXT NOT NULL DEFAULT '', message_id TEXT NOT NULL DEFAULT '',
    updated TEXT NOT NULL, PRIMARY KEY (slug, key)) WITHOUT ROWID;
CREATE TABLE test_sends (id INTEGER PRIMARY KEY, slug TEXT NOT NULL, address TEXT NOT NULL,
    message_id TEXT NOT NULL, sent_at TEXT NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE issue_runs (slug TEXT PRIMARY KEY, issue_hash TEXT NOT NULL,
    members INTEGER NOT NULL, updated TEXT NOT NULL);
INSERT INTO deliveries VALUES ('december-2023', 'ann@aston.co.uk', 'ann@aston.co.uk', 2,
    'sent', 1, '250 ok', '<a@wmhtc.co.uk>', '2023-12-14T09:00:00+00:00');
"""


def test_an_old_journal_gains_the_new_tables_and_keeps_its_record(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    with Journal.open(path) as journal:
        assert journal.counts("december-2023")["sent"] == 1
        assert journal.texts() == {} and journal.last_stop("december-2023") is None
        journal.record_text("december-2023", "cluster news", "the words of it")
        stop = RunStop("a limit", "550 5.4.5", "wait", "2023-12-14T09:00:00+00:00")
        journal.record_stop("december-2023", stop)
    with Journal.open(path) as journal:  # and again: nothing to do the second time
        assert journal.texts() == {"december-2023": ("cluster news", "the words of it")}
        assert journal.last_stop("december-2023") == stop
        journal.clear_stop("december-2023")
        assert journal.last_stop("december-2023") is None
        assert journal.counts("december-2023")["sent"] == 1
