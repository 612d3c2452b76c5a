"""Claims a few at a time: one durable commit (one fsync) for several members, claims put
back as they were when their transaction never starts, and which unknown members were only
claimed, never begun (what `status` shows after a crash)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from support.smtp_servers import make_message

from newsletter.records.journal import Journal, address_key

SLUG = "2024-01-cluster-news"


def test_one_commit_claims_several_and_skips_the_sent_and_the_unknown(journal: Journal) -> None:
    sent, unknown, fresh, again = (
        make_message(f"{n}@example.org", row) for row, n in enumerate("abcd", 2)
    )
    for msg in (sent, unknown):
        assert journal.mark_sending(SLUG, msg)
    journal.mark_sent(SLUG, sent.to, "250 OK")
    claims = journal.claim(SLUG, [(sent, False), (unknown, False), (fresh, False), (again, False)])
    assert [claim is not None for claim in claims] == [False, False, True, True]
    assert journal.status_of(SLUG, fresh.to) == journal.status_of(SLUG, again.to) == "sending"
    assert journal.status_of(SLUG, sent.to) == "sent"
    # --resend-unknown: an unknown member may be claimed again; a sent one never.
    [resent, not_sent] = journal.claim(SLUG, [(unknown, True), (sent, True)])
    assert resent is not None and not_sent is None


def test_the_same_member_twice_in_one_claim_is_claimed_once(journal: Journal) -> None:
    msg = make_message("a@example.org")
    first, second = journal.claim(SLUG, [(msg, False), (msg, False)])
    assert first is not None and second is None
    assert journal.rows(SLUG)[0].attempts == 1


def test_a_claim_is_committed_with_full_sync_in_one_transaction(tmp_path: Path) -> None:
    # What another process sees right after the call (kill -9 cannot undo a commit), and
    # the synchronous setting it was made with (FULL: fsynced before returning).
    with Journal.for_state_dir(tmp_path) as journal:
        journal.claim(SLUG, [(make_message(f"m{n}@example.org", n), False) for n in range(8)])
        assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2
        other = sqlite3.connect(journal.path)
        try:
            (count,) = other.execute(
                "SELECT COUNT(*) FROM deliveries WHERE status = 'sending'"
            ).fetchone()
        finally:
            other.close()
    assert count == 8


def test_release_puts_each_member_back_as_it_was(journal: Journal) -> None:
    new, deferred, unknown = (
        make_message(f"{n}@example.org", row) for row, n in enumerate("abc", 2)
    )
    for msg in (deferred, unknown):
        journal.mark_sending(SLUG, msg)
    journal.mark_deferred(SLUG, deferred.to, "451 4.7.1 greylisted")
    before = {row.address: row for row in journal.rows(SLUG)}
    claims = journal.claim(SLUG, [(new, False), (deferred, False), (unknown, True)])
    assert all(claims)
    assert journal.counts(SLUG)["sending"] == 3
    journal.release(SLUG, [c for c in claims if c is not None])
    after = {row.address: row for row in journal.rows(SLUG)}
    assert new.to not in after  # never had a row: none again
    assert after == before  # status, attempts, reply, Message-ID and time as they were


def test_only_the_first_unsettled_member_of_a_claim_can_have_begun(journal: Journal) -> None:
    # One connection's claim of five: the first two settled, the third in flight when the
    # program died, the last two not begun (a transaction begins after the one before it
    # is recorded).
    msgs = [make_message(f"m{n}@example.org", n) for n in range(5)]
    journal.claim(SLUG, [(m, False) for m in msgs])
    journal.mark_sent(SLUG, msgs[0].to, "250 OK")
    journal.mark_failed(SLUG, msgs[1].to, "550 5.1.1 unknown user")
    assert journal.not_begun(SLUG) == {address_key(m.to) for m in msgs[3:]}


def test_a_member_with_no_reply_after_its_message_is_begun_and_the_next_one_too(
    journal: Journal,
) -> None:
    msgs = [make_message(f"m{n}@example.org", n) for n in range(4)]
    journal.claim(SLUG, [(m, False) for m in msgs])
    journal.mark_unknown(SLUG, msgs[0].to, "no reply within 30s after the message was sent")
    # msgs[1] began after it (the run goes on after an unknown): it may have been sent.
    assert journal.not_begun(SLUG) == {address_key(m.to) for m in msgs[2:]}


def test_claims_of_two_connections_are_told_apart(journal: Journal) -> None:
    first = [make_message(f"a{n}@example.org", n) for n in range(3)]
    second = [make_message(f"b{n}@example.org", 10 + n) for n in range(3)]
    journal.claim(SLUG, [(m, False) for m in first])
    journal.claim(SLUG, [(m, False) for m in second])
    # Each connection had its first claim in flight: only the others were not begun.
    assert journal.not_begun(SLUG) == {address_key(m.to) for m in (*first[1:], *second[1:])}


def test_an_earlier_unknown_claimed_again_and_put_back_counts_as_begun(
    journal: Journal,
) -> None:
    # --resend-unknown claims an earlier run's unknown member; released unsent, it is that
    # earlier unknown again: it may have been sent, so it must not read "not begun".
    old, other = make_message("old@example.org", 2), make_message("other@example.org", 3)
    journal.claim(SLUG, [(other, False), (old, False)])
    journal.mark_sent(SLUG, other.to, "250 OK")  # old: the first unsettled, in flight
    claims = journal.claim(SLUG, [(make_message("new@example.org", 4), False), (old, True)])
    journal.release(SLUG, [claims[1]])  # type: ignore[list-item]
    assert address_key(old.to) not in journal.not_begun(SLUG)
    assert journal.status_of(SLUG, old.to) == "sending"
