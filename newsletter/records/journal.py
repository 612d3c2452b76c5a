"""The durable send record: one row per (issue, address), so a run can always be resumed.

The journal is written *before* each SMTP transaction (status ``sending``: the claim) and
*after* it (``sent``, ``failed`` or ``deferred``), in WAL mode with ``synchronous=FULL``.
Claims are made a few members at a time (see :meth:`Journal.claim`), in one commit whose
fsync makes them durable before any of their transactions starts; each outcome is committed
at once but left to the next fsync (see ``_finish``): one fsync per few messages instead of
two per message, and a lost outcome can only turn into "unknown", never lose a claim.
Whatever kills the process, even ``kill -9`` or a power cut, every member is in one of
these states:

* no row, ``deferred`` or ``failed``: certainly not accepted by the server;
* ``sent``: accepted (the server said 250);
* ``sending``: *unknown*: the process died while the member was claimed. Such members are
  never resent automatically; ``newsletter status`` lists them for a human decision. A
  connection begins its claims' transactions in claim order, each after the previous
  outcome is committed, so of the members a connection had claimed at once only the first
  still ``sending`` can have been sent: :meth:`Journal.not_begun` names the others (sure
  after a kill or a crash of the program; a power cut may have lost outcomes not yet
  fsynced). A run that stops by itself (Ctrl-C, a provider's limit) puts its claims not
  begun back as they were.

Test sends live in their own table and never count as member sends.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ..mail.envelope import Envelope
from .database import Database, open_database
from .schema import JOURNAL_SCHEMA as _SCHEMA

JOURNAL_NAME = "journal.sqlite3"
STATUSES = ("sending", "sent", "failed", "deferred")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def address_key(address: str) -> str:
    """How addresses are compared: casefolded, surrounding blanks ignored."""
    return address.strip().casefold()


@dataclass(frozen=True, slots=True)
class JournalRow:
    """One member's delivery record for an issue."""

    address: str
    row: int
    status: str
    attempts: int
    reply: str
    message_id: str
    updated: str


# What a claim replaces, in the order release() writes it back.
_CLAIMED_FIELDS = "address, row, status, attempts, reply, message_id, updated"


@dataclass(frozen=True, slots=True)
class Claim:
    """A member claimed for a transaction, with its record before the claim (None: it had
    none), so that a claim whose transaction never starts can be put back."""

    key: str
    before: tuple[object, ...] | None


@dataclass(frozen=True, slots=True)
class TestSend:
    """One ``--test`` copy."""

    __test__ = False  # not a pytest test class, despite the name

    address: str
    message_id: str
    sent_at: str


@dataclass(frozen=True, slots=True)
class RunStop:
    """Why a run stopped before its end: the provider refused the sender (a daily limit, a
    blocked account). Times are ISO 8601 in UTC; ``resume_after`` is "" when not known."""

    reason: str
    reply: str
    advice: str
    stopped: str
    resume_after: str = ""
    resume: str = ""  # the command that resumes the send ("newsletter send SLUG -r …")
    why: str = ""  # the typed reason's value (sending.stops.StopReason), for scripts


@dataclass(frozen=True, slots=True)
class IssueSummary:
    """Per-issue totals, for ``newsletter list``."""

    slug: str
    counts: dict[str, int]
    test_sends: int
    last_update: str


class Journal(Database):
    """The SQLite journal. Safe to share between threads (writes are serialised)."""

    def __init__(
        self, db: sqlite3.Connection, path: Path, clock: Callable[[], datetime] = _utc_now
    ) -> None:
        super().__init__(db, path)
        self._clock = clock
        # One connection shared by the delivery threads: sqlite3 objects are not safe for
        # concurrent use, and one writer at a time is what SQLite allows anyway.
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: str | Path, *, clock: Callable[[], datetime] = _utc_now) -> Journal:
        """Open (creating it and its folder if needed) the journal database at ``path``."""
        path = Path(path)
        # Shared by the delivery threads (serialised by the journal's lock).
        return cls(open_database(path, _SCHEMA, check_same_thread=False), path, clock)

    @classmethod
    def for_state_dir(
        cls, state_dir: str | Path, *, clock: Callable[[], datetime] = _utc_now
    ) -> Journal:
        """Open ``<state_dir>/journal.sqlite3``."""
        return cls.open(Path(state_dir) / JOURNAL_NAME, clock=clock)

    def flush(self) -> None:
        """Make every commit so far durable (fsync), e.g. at the end of a run."""
        # A small write committed with synchronous=FULL fsyncs the WAL, and with it every
        # earlier commit (the WAL is appended in order).
        self._write(
            "INSERT INTO meta (key, value) VALUES ('flushed', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (self._now(),),
        )

    def close(self) -> None:
        with self._lock:
            super().close()

    def _now(self) -> str:
        return self._clock().astimezone(UTC).isoformat(timespec="seconds")

    def _write(self, sql: str, params: tuple[object, ...], *, fsync: bool = True) -> int:
        with self._lock:
            if not fsync:
                self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    count = self._db.execute(sql, params).rowcount
                    self._db.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
            finally:
                if not fsync:
                    self._db.execute("PRAGMA synchronous=FULL")
            return count

    # -- reading --------------------------------------------------------------------------

    def status_of(self, slug: str, address: str) -> str | None:
        """The member's status for this issue, or None if never attempted."""
        with self._lock:
            found = self._db.execute(
                "SELECT status FROM deliveries WHERE slug = ? AND key = ?",
                (slug, address_key(address)),
            ).fetchone()
        return found[0] if found else None

    def addresses(self, slug: str, *statuses: str) -> set[str]:
        """Casefolded addresses with one of ``statuses`` (all if none given).

        One query into a set: a membership test per recipient stays cheap at 100k members.
        """
        sql = "SELECT key FROM deliveries WHERE slug = ?"
        params: list[object] = [slug]
        if statuses:
            sql += f" AND status IN ({', '.join('?' * len(statuses))})"
            params.extend(statuses)
        with self._lock:
            return {key for (key,) in self._db.execute(sql, params)}

    def counts(self, slug: str) -> dict[str, int]:
        """Members per status (every status present, 0 if none)."""
        result = dict.fromkeys(STATUSES, 0)
        with self._lock:
            for status, count in self._db.execute(
                "SELECT status, COUNT(*) FROM deliveries WHERE slug = ? GROUP BY status",
                (slug,),
            ):
                result[status] = count
        return result

    def rows(self, slug: str, status: str | None = None) -> list[JournalRow]:
        """Delivery records for ``newsletter status``, in CSV order."""
        sql = (
            "SELECT address, row, status, attempts, reply, message_id, updated "
            "FROM deliveries WHERE slug = ?"
        )
        params: tuple[object, ...] = (slug,)
        if status is not None:
            sql += " AND status = ?"
            params = (slug, status)
        with self._lock:
            found = self._db.execute(sql + " ORDER BY row, key", params).fetchall()
        return [JournalRow(*values) for values in found]

    def unknown(self, slug: str) -> list[JournalRow]:
        """Members whose transaction was interrupted: the server may or may not have it."""
        return self.rows(slug, "sending")

    def not_begun(self, slug: str) -> set[str]:
        """Casefolded addresses of members ``sending`` whose transaction had not begun when
        the run ended: claimed with others, behind one still without an outcome. Certain
        after the program was killed or crashed (each outcome is committed before the
        next transaction begins); a power cut can lose outcomes not yet fsynced, and then
        some of these may have been sent. Members in flight, or with no reply after the
        message went out, are not here."""
        with self._lock:
            found = self._db.execute(
                "SELECT d.key, d.reply, c.batch FROM deliveries d JOIN claims c "
                "ON c.slug = d.slug AND c.key = d.key "
                "WHERE d.slug = ? AND d.status = 'sending' ORDER BY c.batch, c.position",
                (slug,),
            ).fetchall()
        waiting: set[str] = set()
        first: set[int] = set()  # batches whose first member without an outcome was seen
        for key, reply, batch in found:
            if reply:  # "no reply within ...": the message went out
                continue
            if batch in first:
                waiting.add(key)
            first.add(batch)
        return waiting

    def test_sends(self, slug: str) -> list[TestSend]:
        with self._lock:
            found = self._db.execute(
                "SELECT address, message_id, sent_at FROM test_sends WHERE slug = ? ORDER BY id",
                (slug,),
            ).fetchall()
        return [TestSend(*values) for values in found]

    def issues_summary(self) -> list[IssueSummary]:
        """Totals for every issue in the journal (member sends and test sends), by slug."""
        per_slug: dict[str, dict[str, int]] = {}
        last: dict[str, str] = {}
        tests: dict[str, int] = {}
        with self._lock:
            for slug, status, count, updated in self._db.execute(
                "SELECT slug, status, COUNT(*), MAX(updated) FROM deliveries GROUP BY slug, status"
            ):
                per_slug.setdefault(slug, dict.fromkeys(STATUSES, 0))[status] = count
                last[slug] = max(last.get(slug, ""), updated)
            for slug, count, sent_at in self._db.execute(
                "SELECT slug, COUNT(*), MAX(sent_at) FROM test_sends GROUP BY slug"
            ):
                per_slug.setdefault(slug, dict.fromkeys(STATUSES, 0))
                tests[slug] = count
                last[slug] = max(last.get(slug, ""), sent_at)
        return [
            IssueSummary(slug, per_slug[slug], tests.get(slug, 0), last[slug])
            for slug in sorted(per_slug)
        ]

    def find_message_id(self, message_id: str) -> tuple[str, str] | None:
        """(slug, address) of the member send with this Message-ID (``<...@...>``)."""
        with self._lock:
            found = self._db.execute(
                "SELECT slug, address FROM deliveries WHERE message_id = ? LIMIT 1",
                (message_id.strip(),),
            ).fetchone()
        return (found[0], found[1]) if found else None

    def first_send(self) -> datetime | None:
        """When the first member send recorded here was made (UTC), None if none was."""
        with self._lock:
            (value,) = self._db.execute("SELECT MIN(updated) FROM deliveries").fetchone()
        return datetime.fromisoformat(value) if value else None

    def slugs_for_address(self, address: str) -> list[str]:
        """Issues this address was mailed (sent or attempted), most recent first."""
        with self._lock:
            found = self._db.execute(
                "SELECT slug FROM deliveries WHERE key = ? ORDER BY updated DESC",
                (address_key(address),),
            ).fetchall()
        return [slug for (slug,) in found]

    # -- writing (each call is one durable commit) ----------------------------------------

    def mark_sending(self, slug: str, msg: Envelope, *, allow_unknown: bool = False) -> bool:
        """Claim one member for one SMTP transaction (see :meth:`claim`); False if it is
        already ``sent``, or ``sending`` unless ``allow_unknown``."""
        return self.claim(slug, [(msg, allow_unknown)])[0] is not None

    def claim(self, slug: str, members: Sequence[tuple[Envelope, bool]]) -> list[Claim | None]:
        """Claim members for their SMTP transactions: ``sending``, in one commit made
        durable (one fsync for them all) before any of their transactions starts.

        ``members``: (message, allow_unknown) pairs. Each gets a :class:`Claim`, or None
        (and nothing changes for it) if it is already ``sent``, or ``sending`` (unknown, or
        in flight in another run) unless allow_unknown. Check and claim are one
        transaction, so two runs at once never both send.
        """
        claims: list[Claim | None] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                now = self._now()
                (batch,) = self._db.execute(
                    "SELECT COALESCE(MAX(batch), 0) + 1 FROM claims"
                ).fetchone()
                for msg, allow_unknown in members:
                    key = address_key(msg.to)
                    before = self._db.execute(
                        f"SELECT {_CLAIMED_FIELDS} FROM deliveries WHERE slug = ? AND key = ?",
                        (slug, key),
                    ).fetchone()
                    blocked = ("sent",) if allow_unknown else ("sent", "sending")
                    if before and before[2] in blocked:
                        claims.append(None)
                        continue
                    self._db.execute(
                        "INSERT INTO deliveries "
                        "(slug, key, address, row, status, attempts, message_id, updated) "
                        "VALUES (?, ?, ?, ?, 'sending', 1, ?, ?) "
                        "ON CONFLICT (slug, key) DO UPDATE SET status = 'sending', "
                        "attempts = attempts + 1, address = excluded.address, "
                        "row = excluded.row, message_id = excluded.message_id, "
                        "updated = excluded.updated",
                        (slug, key, msg.to, msg.row, msg.message_id, now),
                    )
                    self._db.execute(
                        "INSERT INTO claims (slug, key, batch, position) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (slug, key) DO UPDATE SET batch = excluded.batch, "
                        "position = excluded.position",
                        (slug, key, batch, len(claims)),
                    )
                    claims.append(Claim(key, tuple(before) if before else None))
                # synchronous=FULL: the fsync; nothing claimed, nothing to make durable.
                self._db.execute("COMMIT" if any(claims) else "ROLLBACK")
            except BaseException:
                self._rollback()
                raise
        return claims

    def release(self, slug: str, claims: Sequence[Claim]) -> None:
        """Put claimed members whose transaction never started back as they were (the run
        stopped before their turn). Not fsynced on its own: lost to a power cut, they read
        ``sending`` (unknown), never a second copy."""
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for claim in claims:
                        # Its batch and place no longer tell anything: without them, a
                        # member still "sending" (an earlier run's unknown) counts as begun.
                        self._db.execute(
                            "DELETE FROM claims WHERE slug = ? AND key = ?", (slug, claim.key)
                        )
                        if claim.before is None:
                            self._db.execute(
                                "DELETE FROM deliveries WHERE slug = ? AND key = ? "
                                "AND status = 'sending'",
                                (slug, claim.key),
                            )
                            continue
                        self._db.execute(
                            "UPDATE deliveries SET address = ?, row = ?, status = ?, "
                            "attempts = ?, reply = ?, message_id = ?, updated = ? "
                            "WHERE slug = ? AND key = ? AND status = 'sending'",
                            (*claim.before, slug, claim.key),
                        )
                    self._db.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
            finally:
                self._db.execute("PRAGMA synchronous=FULL")

    def _finish(self, slug: str, address: str, status: str, reply: str) -> None:
        # Committed at once (a killed process never loses it) but not fsynced on its own:
        # the WAL is sequential, so the next claim's fsync, or flush(), makes it durable.
        # Lost to a power cut in between, it reads "sending" (unknown): never a 2nd copy.
        changed = self._write(
            "UPDATE deliveries SET status = ?, reply = ?, updated = ? WHERE slug = ? AND key = ?",
            (status, reply, self._now(), slug, address_key(address)),
            fsync=False,
        )
        if not changed:
            raise KeyError(f"{address} was never marked sending for {slug}")

    def mark_sent(self, slug: str, address: str, reply: str) -> None:
        """The server accepted the message (its reply, e.g. ``250 2.0.0 Ok: queued``)."""
        self._finish(slug, address, "sent", reply)

    def mark_failed(self, slug: str, address: str, reply: str) -> None:
        """The server refused this recipient for good (e.g. ``550 5.1.1 user unknown``)."""
        self._finish(slug, address, "failed", reply)

    def mark_deferred(self, slug: str, address: str, reply: str) -> None:
        """Not accepted, worth trying again later (4xx, dropped connection, run stopped)."""
        self._finish(slug, address, "deferred", reply)

    def mark_unknown(self, slug: str, address: str, reply: str) -> None:
        """Sent, but no reply came in time: it stays ``sending`` (unknown), with the reason."""
        self._finish(slug, address, "sending", reply)

    def record_test_send(self, slug: str, to: str, message_id: str) -> None:
        """A ``--test`` copy; kept apart so it never counts as a member send."""
        self._write(
            "INSERT INTO test_sends (slug, address, message_id, sent_at) VALUES (?, ?, ?, ?)",
            (slug, to, message_id, self._now()),
        )

    # -- runs and the daily cap -------------------------------------------------------------

    def now(self) -> datetime:
        """The journal's clock (UTC): what "the last 24 hours" is measured against."""
        return self._clock().astimezone(UTC)

    def record_run(self, slug: str, issue_hash: str, members: int) -> None:
        """A real send of ``slug`` starts: the rendered issue's hash and the list's size."""
        self._write(
            "INSERT INTO issue_runs (slug, issue_hash, members, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (slug) DO UPDATE SET issue_hash = excluded.issue_hash, "
            "members = excluded.members, updated = excluded.updated",
            (slug, issue_hash, members, self._now()),
        )

    def last_run(self, slug: str) -> tuple[str, int] | None:
        """(issue hash, members) recorded by the last real send of ``slug``."""
        with self._lock:
            found = self._db.execute(
                "SELECT issue_hash, members FROM issue_runs WHERE slug = ?", (slug,)
            ).fetchone()
        return (found[0], found[1]) if found else None

    def record_text(self, slug: str, subject: str, words: str) -> None:
        """What a real send of ``slug`` says (subject's and body's words), as it starts."""
        self._write(
            "INSERT INTO issue_texts (slug, subject, words, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (slug) DO UPDATE SET subject = excluded.subject, "
            "words = excluded.words, updated = excluded.updated",
            (slug, subject, words, self._now()),
        )

    def texts(self) -> dict[str, tuple[str, str]]:
        """(subject's words, body's words) recorded for each issue, by slug."""
        with self._lock:
            found = self._db.execute("SELECT slug, subject, words FROM issue_texts").fetchall()
        return {slug: (subject, words) for slug, subject, words in found}

    def record_stop(self, slug: str, stop: RunStop) -> None:
        """Why this run of ``slug`` stopped early; ``clear_stop`` once a run gets past it."""
        self._write(
            "INSERT INTO run_stops "
            "(slug, reason, reply, advice, stopped, resume_after, resume, why) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (slug) DO UPDATE SET "
            "reason = excluded.reason, reply = excluded.reply, advice = excluded.advice, "
            "stopped = excluded.stopped, resume_after = excluded.resume_after, "
            "resume = excluded.resume, why = excluded.why",
            (
                slug,
                stop.reason,
                stop.reply,
                stop.advice,
                stop.stopped,
                stop.resume_after,
                stop.resume,
                stop.why,
            ),  # fmt: skip
        )

    def clear_stop(self, slug: str) -> None:
        self._write("DELETE FROM run_stops WHERE slug = ?", (slug,))

    def last_stop(self, slug: str) -> RunStop | None:
        """Why the last run of ``slug`` stopped early, if it did (and no run since ended
        without a stop)."""
        with self._lock:
            found = self._db.execute(
                "SELECT reason, reply, advice, stopped, resume_after, resume, why FROM run_stops "
                "WHERE slug = ?",
                (slug,),
            ).fetchone()
        return RunStop(*found) if found else None

    def run_members(self) -> dict[str, int]:
        """Members each issue's last real send was started for, by slug."""
        with self._lock:
            return dict(self._db.execute("SELECT slug, members FROM issue_runs"))

    def sent_since(self, window: timedelta) -> list[datetime]:
        """When each message of the last ``window`` went out, oldest first, over every
        issue: member sends (``sent``, and ``sending``: maybe sent) and test copies."""
        cutoff = (self.now() - window).isoformat(timespec="seconds")
        with self._lock:
            found = self._db.execute(
                "SELECT updated FROM deliveries WHERE status IN ('sent', 'sending') "
                "AND updated >= ? UNION ALL SELECT sent_at FROM test_sends WHERE sent_at >= ?",
                (cutoff, cutoff),
            ).fetchall()
        return sorted(datetime.fromisoformat(value) for (value,) in found)
