"""The send journal's tables (:mod:`.journal`), as SQL applied each time it is opened: every
statement is ``IF NOT EXISTS``, so a journal an older version wrote gains the tables it
lacks. :func:`describe_tables` reads a schema back for the documentation's file-formats page."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

JOURNAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    slug       TEXT    NOT NULL,
    key        TEXT    NOT NULL,  -- casefolded address: what "the same member" means
    address    TEXT    NOT NULL,  -- as it was given
    row        INTEGER NOT NULL,  -- CSV row the address came from
    status     TEXT    NOT NULL CHECK (status IN ('sending', 'sent', 'failed', 'deferred')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    reply      TEXT    NOT NULL DEFAULT '',
    message_id TEXT    NOT NULL DEFAULT '',
    updated    TEXT    NOT NULL,  -- ISO 8601, UTC
    PRIMARY KEY (slug, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_status ON deliveries (slug, status);
CREATE TABLE IF NOT EXISTS test_sends (
    id         INTEGER PRIMARY KEY,
    slug       TEXT NOT NULL,
    address    TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sent_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS test_sends_slug ON test_sends (slug);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- newsletter feedback matches bounces and replies to members by the Message-ID it sent.
CREATE INDEX IF NOT EXISTS deliveries_message_id ON deliveries (message_id);
-- One row per issue a real send was started for: what the list and the issue were then.
CREATE TABLE IF NOT EXISTS issue_runs (
    slug       TEXT PRIMARY KEY,
    issue_hash TEXT    NOT NULL,  -- hash of the rendered issue the members got
    members    INTEGER NOT NULL,  -- members the list held (sent, pending, failed, ...)
    updated    TEXT    NOT NULL
);
-- What each issue a real send was started for said (content/likeness.py): a copy of it
-- under another name is recognised, even once its file is changed or gone. Public text,
-- the issue's own; no member data.
CREATE TABLE IF NOT EXISTS issue_texts (
    slug       TEXT PRIMARY KEY,
    subject    TEXT NOT NULL,  -- the subject's words, lower-case, without member fields
    words      TEXT NOT NULL,  -- the body's words, likewise
    updated    TEXT NOT NULL
);
-- Each member's last claim: claims are made a few at a time (one fsync for them all) and
-- a connection begins its claims' transactions in this order, each after the previous one's
-- outcome is committed; so after a crash, of a batch's members still "sending" only the
-- first can have begun (see not_begun).
CREATE TABLE IF NOT EXISTS claims (
    slug     TEXT    NOT NULL,
    key      TEXT    NOT NULL,
    batch    INTEGER NOT NULL,  -- one number per claim commit
    position INTEGER NOT NULL,  -- its place in the batch
    PRIMARY KEY (slug, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS claims_batch ON claims (batch);
-- Why the last run of an issue stopped before its end (a provider's daily limit, a
-- blocked account), for `status`; cleared by a run that ends without such a stop.
CREATE TABLE IF NOT EXISTS run_stops (
    slug         TEXT PRIMARY KEY,
    reason       TEXT NOT NULL,
    reply        TEXT NOT NULL,
    advice       TEXT NOT NULL,
    stopped      TEXT NOT NULL,  -- ISO 8601, UTC
    resume_after TEXT NOT NULL DEFAULT '',  -- ISO 8601, UTC; '' when not known
    resume       TEXT NOT NULL DEFAULT '',  -- the command that resumes it
    why          TEXT NOT NULL DEFAULT ''  -- the typed reason (sending.stops.StopReason)
);
"""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    meaning: str  # the values a CHECK allows, and the ``--`` comment beside the column


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]  # the primary key's columns
    columns: tuple[Column, ...]


def describe_tables(schema: str) -> list[Table]:
    """The tables ``schema`` creates, as SQLite reads them (in an in-memory database), with
    the comment written beside each column."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(schema)
        names = [row[0] for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")]  # fmt: skip
        tables = []
        for name in names:
            info = db.execute(f"PRAGMA table_info({name})").fetchall()
            key = tuple(c[1] for c in sorted(info, key=lambda c: c[5]) if c[5])
            columns = tuple(Column(c[1], c[2], _meaning(schema, name, c[1])) for c in info)
            tables.append(Table(name, key, columns))
        return tables
    finally:
        db.close()


def _meaning(schema: str, table: str, column: str) -> str:
    body = re.search(rf"CREATE TABLE IF NOT EXISTS {table} \((.*?)\n\)", schema, re.S)
    line = re.search(rf"^\s*{column}\s+(.*)$", body.group(1), re.M) if body else None
    if line is None:
        return ""
    comment = line.group(1).partition("--")[2].strip()
    allowed = re.search(r"CHECK \(\w+ IN \(([^)]*)\)\)", line.group(1))
    if allowed:
        values = ", ".join(v.strip().strip("'") for v in allowed.group(1).split(","))
        comment = "; ".join(filter(None, [f"one of {values}", comment]))
    return comment
