"""The suppression-list writes `newsletter feedback` and `resubscribe` use."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from newsletter.common.errors import RecipientsError
from newsletter.feedback.run import rcpt_hard_refusal
from newsletter.members.suppression import load_suppressed, remove_suppressed, suppress_entries

DAY = dt.date(2023, 12, 20)


def test_many_entries_one_write_new_file_has_an_issue_column(tmp_path: Path) -> None:
    path = tmp_path / "suppressed.csv"
    written = suppress_entries(
        path,
        [("A@example.org", "bounced", "december-2023"), ("a@example.org", "complained", ""),
         ("b@example.org", "unsubscribed", "")],
        today=DAY,
    )  # fmt: skip
    assert [w[0] for w in written] == ["A@example.org", "b@example.org"]
    assert path.read_text() == (
        "email,reason,date,issue\nA@example.org,bounced,2023-12-20,december-2023\n"
        "b@example.org,unsubscribed,2023-12-20,\n"
    )
    assert suppress_entries(path, [("b@example.org", "bounced", "x")], today=DAY) == []


def test_existing_file_keeps_its_columns_delimiter_and_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "suppressed.csv"
    path.write_bytes(b"email;reason;date\r\nold@example.org;unsubscribed;2023-01-01\r\n")
    suppress_entries(path, [("new@example.org", "bounced", "december-2023")], today=DAY)
    assert path.read_bytes() == (
        b"email;reason;date\r\nold@example.org;unsubscribed;2023-01-01\r\n"
        b"new@example.org;bounced;2023-12-20\r\n"
    )
    assert remove_suppressed(path, "OLD@example.org") == 1
    assert path.read_bytes() == b"email;reason;date\r\nnew@example.org;bounced;2023-12-20\r\n"
    assert load_suppressed(path) == {"new@example.org"}
    assert remove_suppressed(path, "nobody@example.org") == 0


def test_an_invalid_address_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "suppressed.csv"
    with pytest.raises(RecipientsError, match="cannot suppress"):
        suppress_entries(
            path, [("ok@example.org", "bounced", ""), ("not an address", "bounced", "")], today=DAY
        )
    assert not path.exists()


@pytest.mark.parametrize(
    ("reply", "hard"),
    [
        ("550 5.1.1 <x@example.org>: Recipient address rejected: User unknown", True),
        ("550-5.1.1 The email account that you tried to reach does not exist", True),
        ("550 5.1.10 RESOLVER.ADR.RecipientNotFound", True),
        ("552 5.2.2 mailbox full", False),
        ("553 5.1.8 sender address domain does not exist", False),
        ("550 5.1.7 bad sender mailbox", False),
        ("550 5.7.1 rejected by policy", False),
        ("554 5.7.1 spam", False),
        ("451 4.1.1 try later", False),
    ],
)
def test_which_rcpt_refusals_are_hard_bounces(reply: str, hard: bool) -> None:
    assert rcpt_hard_refusal(reply) is hard
