"""The SQLite journal: states, casefolding, durability settings, test sends, summaries."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from support.smtp_servers import make_message

from newsletter.records.journal import JOURNAL_NAME, Journal, JournalRow

SLUG = "2024-01-cluster-news"


def test_created_in_state_dir_with_wal_and_full_sync(tmp_path: Path) -> None:
    with Journal.for_state_dir(tmp_path / "deep" / "state") as j:
        assert j.path == tmp_path / "deep" / "state" / JOURNAL_NAME
        assert j.path.is_file()
        assert j._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert j._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_outcomes_leave_full_sync_in_place(journal: Journal) -> None:
    msg = make_message("a@x.org")
    journal.mark_sending(SLUG, msg)
    journal.mark_sent(SLUG, msg.to, "250 OK")  # committed without its own fsync...
    assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2
    journal.flush()  # ...which the next FULL commit provides
    assert journal.status_of(SLUG, msg.to) == "sent"


def test_lifecycle_and_counts(journal: Journal) -> None:
    ada, bob, cy, dan = (make_message(f"{n}@example.org", row) for row, n in enumerate("abcd", 2))
    for msg in (ada, bob, cy, dan):
        assert journal.mark_sending(SLUG, msg)
    journal.mark_sent(SLUG, ada.to, "250 2.0.0 Ok: queued as 1A2B")
    journal.mark_failed(SLUG, bob.to, "550 5.1.1 user unknown")
    journal.mark_deferred(SLUG, cy.to, "451 4.7.1 greylisted")
    assert journal.counts(SLUG) == {"sending": 1, "sent": 1, "failed": 1, "deferred": 1}
    assert journal.status_of(SLUG, ada.to) == "sent"
    assert journal.status_of(SLUG, "nobody@example.org") is None
    [failed] = journal.rows(SLUG, "failed")
    assert failed == JournalRow(
        bob.to, 3, "failed", 1, "550 5.1.1 user unknown", bob.message_id, failed.updated
    )
    assert failed.updated.startswith("2024-01-15T09:30:")
    assert failed.updated.endswith("+00:00")
    assert [r.address for r in journal.unknown(SLUG)] == [dan.to]
    assert [r.row for r in journal.rows(SLUG)] == [2, 3, 4, 5]  # CSV order


def test_addresses_compared_casefolded(journal: Journal) -> None:
    msg = make_message("Ada.Lovelace@Example.ORG")
    assert journal.mark_sending(SLUG, msg)
    journal.mark_sent(SLUG, "ada.lovelace@example.org", "250 OK")
    assert journal.status_of(SLUG, "ADA.LOVELACE@example.org") == "sent"
    assert journal.rows(SLUG)[0].address == "Ada.Lovelace@Example.ORG"  # as given


def test_claim_refuses_sent_and_unknown(journal: Journal) -> None:
    msg = make_message("ada@example.org")
    assert journal.mark_sending(SLUG, msg)
    # Left "sending" (a crash): unknown, so not claimed again unless asked for.
    assert not journal.mark_sending(SLUG, msg)
    assert journal.mark_sending(SLUG, msg, allow_unknown=True)
    assert journal.rows(SLUG)[0].attempts == 2
    journal.mark_sent(SLUG, msg.to, "250 OK")
    assert not journal.mark_sending(SLUG, msg, allow_unknown=True)
    # Other issues are independent.
    assert journal.mark_sending("2024-02", msg)


def test_deferred_and_failed_can_be_claimed_again(journal: Journal) -> None:
    msg = make_message("ada@example.org")
    journal.mark_sending(SLUG, msg)
    journal.mark_deferred(SLUG, msg.to, "451 later")
    assert journal.mark_sending(SLUG, msg)
    journal.mark_failed(SLUG, msg.to, "550 no")
    assert journal.mark_sending(SLUG, msg)


def test_finishing_an_unclaimed_address_is_a_bug(journal: Journal) -> None:
    with pytest.raises(KeyError):
        journal.mark_sent(SLUG, "ghost@example.org", "250 OK")


def test_test_sends_are_kept_apart(journal: Journal) -> None:
    journal.record_test_send(SLUG, "editor@example.org", "<t1@x>")
    journal.record_test_send(SLUG, "editor@example.org", "<t2@x>")
    assert [t.message_id for t in journal.test_sends(SLUG)] == ["<t1@x>", "<t2@x>"]
    assert journal.status_of(SLUG, "editor@example.org") is None
    assert journal.counts(SLUG) == {"sending": 0, "sent": 0, "failed": 0, "deferred": 0}


def test_issues_summary(journal: Journal) -> None:
    for row, address in enumerate(["a@x.org", "b@x.org", "c@x.org"]):
        journal.mark_sending("2024-01", make_message(address, row))
        journal.mark_sent("2024-01", address, "250 OK")
    journal.mark_sending("2024-02", make_message("a@x.org"))
    journal.mark_failed("2024-02", "a@x.org", "550 no")
    journal.record_test_send("2024-03", "editor@x.org", "<t@x>")
    summary = {s.slug: s for s in journal.issues_summary()}
    assert list(summary) == ["2024-01", "2024-02", "2024-03"]
    assert summary["2024-01"].counts["sent"] == 3
    assert summary["2024-02"].counts == {"sending": 0, "sent": 0, "failed": 1, "deferred": 0}
    assert summary["2024-03"].test_sends == 1
    assert summary["2024-03"].counts["sent"] == 0
    assert summary["2024-03"].last_update > summary["2024-01"].last_update


def test_state_survives_reopening(tmp_path: Path) -> None:
    with Journal.for_state_dir(tmp_path) as j:
        j.mark_sending(SLUG, make_message("a@x.org"))
        j.mark_sent(SLUG, "a@x.org", "250 OK")
        j.mark_sending(SLUG, make_message("b@x.org"))
    with Journal.for_state_dir(tmp_path) as j:
        assert j.counts(SLUG)["sent"] == 1
        assert [r.address for r in j.unknown(SLUG)] == ["b@x.org"]


def test_two_runs_never_claim_the_same_member(tmp_path: Path) -> None:
    # Two journals on one file stand for two processes (two `newsletter send` at once).
    first, second = Journal.for_state_dir(tmp_path), Journal.for_state_dir(tmp_path)
    messages = [make_message(f"m{i}@x.org", i) for i in range(200)]
    claimed: list[list[str]] = [[], []]

    def claim(index: int, journal: Journal) -> None:
        for msg in messages:
            if journal.mark_sending(SLUG, msg):
                claimed[index].append(msg.to)

    threads = [threading.Thread(target=claim, args=(i, j)) for i, j in enumerate((first, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed[0] + claimed[1]) == sorted(m.to for m in messages)
    first.close()
    second.close()


def test_lookups_on_a_large_journal_use_its_indexes(journal: Journal) -> None:
    rows = [
        (SLUG, f"m{i}@x.org", f"m{i}@x.org", i, "sent", 1, "250 OK", f"<{i}@x>", "2024-01-01")
        for i in range(20_000)
    ]
    with sqlite3.connect(journal.path) as db:
        db.executemany("INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    assert journal.counts(SLUG)["sent"] == 20_000
    assert journal.status_of(SLUG, "M5@x.org") == "sent"
    # Speed without a stopwatch: the per-member look-up (once per member on a resumed
    # send) and the counts must never scan the table.
    with sqlite3.connect(journal.path) as db:
        for query, args in (
            ("SELECT status FROM deliveries WHERE slug = ? AND key = ?", (SLUG, "k")),
            ("SELECT status, COUNT(*) FROM deliveries WHERE slug = ? GROUP BY status", (SLUG,)),
        ):
            plan = " ".join(str(r[-1]) for r in db.execute(f"EXPLAIN QUERY PLAN {query}", args))
            assert plan.startswith("SEARCH deliveries USING"), (query, plan)  # never "SCAN"
