"""What ``newsletter feedback`` remembers: processed messages and the events it acted on.

A SQLite file beside the send journal (``<state_dir>/feedback.sqlite3``), kept apart from it
so that reading the mailbox can never lock or slow a send. Four tables:

* ``processed``: (folder, UIDVALIDITY, UID) of every message already handled, so a re-run
  does nothing twice, and whether it was feedback ``--move-to`` may move (not a reply, not
  an unmatched bounce): a later ``feedback --move-to`` still tidies what an earlier run
  without it processed. A new UIDVALIDITY (the server renumbered the folder) makes every
  message new again; that is harmless because every action is idempotent (suppressing an
  address twice changes nothing, soft bounces count *different* issues).
* ``events``: per address and issue, what came back (hard, soft, complaint, unsubscribe,
  rcpt = refused at RCPT during a send): for soft-bounce counting and ``newsletter status``.
* ``runs``: when each (not dry) feedback run was, so ``status`` shows feedback counts only
  once one ran.
* ``resubscribed``: who was taken off the suppression list, when and why; soft bounces
  before that no longer count.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from .database import Database, open_database
from .journal import address_key as _key

LOG_NAME = "feedback.sqlite3"


class EventKind(StrEnum):
    """What came back for a member and an issue (the ``events`` table's ``kind``)."""

    HARD = "hard"  # a hard bounce: the address does not exist
    SOFT = "soft"  # a soft bounce: counted per issue
    COMPLAINT = "complaint"  # marked as spam
    UNSUBSCRIBE = "unsubscribe"  # asked by mail to be taken off
    RCPT = "rcpt"  # refused at RCPT during a send (the journal)


EVENT_KINDS = tuple(EventKind)

FEEDBACK_SCHEMA = """
CREATE TABLE IF NOT EXISTS processed (
    folder      TEXT    NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    at          TEXT    NOT NULL,
    movable     INTEGER NOT NULL DEFAULT 0,  -- feedback (not a reply): --move-to moves it
    PRIMARY KEY (folder, uidvalidity, uid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    key     TEXT NOT NULL,  -- casefolded address
    address TEXT NOT NULL,
    slug    TEXT NOT NULL,  -- '' when no issue could be matched
    kind    TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT '',
    at      TEXT NOT NULL,
    PRIMARY KEY (key, slug, kind)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_slug ON events (slug, kind);
-- One row per feedback run that changed nothing or something (not dry runs): what
-- `newsletter status` needs to tell "0 bounced" from "feedback never ran".
CREATE TABLE IF NOT EXISTS runs (at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resubscribed (
    id      INTEGER PRIMARY KEY,
    key     TEXT NOT NULL,
    address TEXT NOT NULL,
    reason  TEXT NOT NULL,
    at      TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Event:
    address: str
    slug: str
    kind: EventKind
    detail: str = ""


def _add_movable(db: sqlite3.Connection) -> None:
    """A memory written before ``movable`` existed gets it (inside the set-up transaction:
    two commands opening it at once no longer both try, "duplicate column name")."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(processed)")}
    if "movable" not in columns:
        db.execute("ALTER TABLE processed ADD COLUMN movable INTEGER NOT NULL DEFAULT 0")


class FeedbackLog(Database):
    """The feedback memory; every ``commit`` is one transaction."""

    @classmethod
    def for_state_dir(cls, state_dir: str | Path) -> FeedbackLog:
        path = Path(state_dir) / LOG_NAME
        return cls(open_database(path, FEEDBACK_SCHEMA, upgrade=_add_movable), path)

    @classmethod
    def open_existing(cls, state_dir: str | Path) -> FeedbackLog | None:
        """For read-only reports: None when feedback was never run."""
        return cls.for_state_dir(state_dir) if (Path(state_dir) / LOG_NAME).is_file() else None

    # -- reading -----------------------------------------------------------------------------

    def processed_uids(self, folder: str, uidvalidity: int) -> set[int]:
        return {
            uid
            for (uid,) in self._db.execute(
                "SELECT uid FROM processed WHERE folder = ? AND uidvalidity = ?",
                (folder, uidvalidity),
            )
        }

    def movable_uids(self, folder: str, uidvalidity: int) -> set[int]:
        """Processed messages that were feedback (what ``--move-to`` moves)."""
        return {
            uid
            for (uid,) in self._db.execute(
                "SELECT uid FROM processed WHERE folder = ? AND uidvalidity = ? AND movable",
                (folder, uidvalidity),
            )
        }

    def has_event(self, address: str, slug: str, kind: EventKind) -> bool:
        return (
            self._db.execute(
                "SELECT 1 FROM events WHERE key = ? AND slug = ? AND kind = ?",
                (_key(address), slug, kind),
            ).fetchone()
            is not None
        )

    def has_run(self) -> bool:
        """Whether a ``newsletter feedback`` run was recorded (a memory written before runs
        were: any processed message or event; ``resubscribe`` alone writes neither)."""
        return any(
            self._db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()
            for table in ("runs", "processed", "events")
        )

    def last_resubscribed(self, address: str) -> str | None:
        """When the address was last taken off the suppression list (ISO, UTC), if ever."""
        return self._db.execute(
            "SELECT MAX(at) FROM resubscribed WHERE key = ?", (_key(address),)
        ).fetchone()[0]

    def soft_bounce_issues(self, address: str) -> set[str]:
        """Issues that soft-bounced for this address since it was last resubscribed."""
        key = _key(address)
        since = self.last_resubscribed(address)
        sql = "SELECT slug FROM events WHERE key = ? AND kind = 'soft' AND slug != ''"
        params: tuple[object, ...] = (key,)
        if since:
            sql += " AND at > ?"
            params = (key, since)
        return {slug for (slug,) in self._db.execute(sql, params)}

    def counts(self, slug: str) -> dict[str, int]:
        """Per issue: members with a hard bounce (incl. RCPT refusals), soft, complaint,
        unsubscribe."""
        result = {"hard": 0, "soft": 0, "complaint": 0, "unsubscribe": 0}
        for kind, count in self._db.execute(
            "SELECT CASE kind WHEN 'rcpt' THEN 'hard' ELSE kind END AS k, COUNT(DISTINCT key) "
            "FROM events WHERE slug = ? GROUP BY k",
            (slug,),
        ):
            result[kind] = result.get(kind, 0) + count
        return result

    def events(self, slug: str) -> list[Event]:
        return [
            Event(address, slug, EventKind(kind), detail)
            for address, slug, kind, detail in self._db.execute(
                "SELECT address, slug, kind, detail FROM events WHERE slug = ? ORDER BY kind, key",
                (slug,),
            )
        ]

    # -- writing -----------------------------------------------------------------------------

    def commit(
        self,
        *,
        folder: str,
        uidvalidity: int,
        processed: Iterable[tuple[int, str, bool]],
        events: Iterable[Event],
        at: str,
    ) -> None:
        """Record one run's processed messages ``(uid, kind, movable)`` and events in one
        transaction."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT OR IGNORE INTO processed (folder, uidvalidity, uid, kind, at, movable) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (folder, uidvalidity, uid, kind, at, int(movable))
                    for uid, kind, movable in processed
                ],
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO events (key, address, slug, kind, detail, at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(_key(e.address), e.address, e.slug, e.kind, e.detail, at) for e in events],
            )
            self._db.execute("INSERT INTO runs (at) VALUES (?)", (at,))
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def record_resubscribe(self, address: str, reason: str, at: str) -> None:
        self._db.execute(
            "INSERT INTO resubscribed (key, address, reason, at) VALUES (?, ?, ?, ?)",
            (_key(address), address.strip(), reason, at),
        )
