"""The SQLite base the send journal and the feedback log share: how a file of ours is
opened (durable settings, schema set up once, race-free), and closed.

A new or older file is set up one process at a time (under the file's lock: SQLite does
not wait for a switch to WAL), the schema and any upgrade in one ``BEGIN IMMEDIATE``
transaction, stamped with the schema's fingerprint (``PRAGMA user_version``): two commands
opening it at once cannot both upgrade it (the second finds nothing left to do), and a file
already up to date is opened without any lock (``status`` during a send never waits).
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from ..common.files import locked

Upgrade = Callable[[sqlite3.Connection], None]


def fingerprint(schema: str, upgrade: Upgrade | None = None) -> int:
    """A positive 31-bit number that changes whenever the schema or its upgrade does."""
    text = schema + (f"\n-- upgrade: {upgrade.__qualname__}" if upgrade else "")
    return zlib.crc32(text.encode("utf-8")) & 0x7FFFFFFF or 1


def statements(schema: str) -> list[str]:
    """The schema's SQL statements, one by one (``executescript`` would commit the
    transaction they must run in)."""
    found: list[str] = []
    current = ""
    for line in schema.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            found.append(current.strip())
            current = ""
    if current.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in current.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement in the schema: {current.strip()[:60]}")
    return found


def open_database(
    path: Path,
    schema: str,
    *,
    upgrade: Upgrade | None = None,
    check_same_thread: bool = True,
) -> sqlite3.Connection:
    """A SQLite file of ours (created with its folder if needed), set up for durability:
    WAL, an fsync on every commit, a wait while another process writes, ``schema`` (and
    ``upgrade``, for a file an older version wrote) applied once, race-free."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: callers issue BEGIN/COMMIT themselves, so each commit point is
    # exactly where the durability argument needs it.
    db = sqlite3.connect(
        path, isolation_level=None, check_same_thread=check_same_thread, timeout=30
    )
    try:
        db.execute("PRAGMA busy_timeout=30000")  # another process (a second run) may write
        version = fingerprint(schema, upgrade)
        if not _ready(db, version):
            # SQLite does not wait for another connection that is switching a new file to
            # WAL (it answers "database is locked" at once): the set-up of a new or older
            # file is done one process at a time, under the file's lock.
            with locked(path):
                db.execute("PRAGMA journal_mode=WAL")
                _set_up(db, schema, upgrade, version)
        db.execute("PRAGMA synchronous=FULL")  # fsync on every commit: survives power loss
    except BaseException:
        db.close()
        raise
    return db


def _ready(db: sqlite3.Connection, version: int) -> bool:
    """Whether the file is set up already (WAL, this schema): then it is opened without
    any lock, and ``status`` during a send never waits."""
    (mode,) = db.execute("PRAGMA journal_mode").fetchone()
    return str(mode).lower() == "wal" and _version(db) == version


def _version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _set_up(db: sqlite3.Connection, schema: str, upgrade: Upgrade | None, version: int) -> None:
    db.execute("BEGIN IMMEDIATE")  # one writer: whoever comes second sees it done
    try:
        if _version(db) != version:
            for statement in statements(schema):
                db.execute(statement)
            if upgrade is not None:
                upgrade(db)
            db.execute(f"PRAGMA user_version = {version:d}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


class Database:
    """An open SQLite file of ours: closing it, and ``with`` for closing it."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    def close(self) -> None:
        self._db.close()

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
