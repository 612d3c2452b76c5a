"""The suppression list (load/add round trip) and unsubscribe tokens."""

from __future__ import annotations

import datetime
import string
from pathlib import Path

import pytest

from newsletter.common.errors import ConfigError, RecipientsError
from newsletter.members.recipients import RecipientReport, iter_recipients
from newsletter.members.suppression import (
    add_suppressed,
    load_suppressed,
    unsubscribe_token,
    verify_token,
)

TODAY = datetime.date(2024, 5, 17)


def test_missing_file_is_an_empty_list(tmp_path: Path) -> None:
    assert load_suppressed(tmp_path / "suppressed.csv") == frozenset()


def test_zero_byte_file_is_an_empty_list(tmp_path: Path) -> None:
    path = tmp_path / "suppressed.csv"
    path.touch()
    assert load_suppressed(path) == frozenset()


def test_add_then_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "suppressed.csv"
    added, present = add_suppressed(
        path, ["Ann@Example.org", " bob@example.com "], reason="unsubscribed", today=TODAY
    )
    assert (added, present) == (["Ann@example.org", "bob@example.com"], [])
    assert path.read_text(encoding="utf-8") == (
        "email,reason,date\n"
        "Ann@example.org,unsubscribed,2024-05-17\n"
        "bob@example.com,unsubscribed,2024-05-17\n"
    )
    assert load_suppressed(path) >= {"ann@example.org", "bob@example.com"}
    assert "Ann@example.org" not in load_suppressed(path)  # casefolded only

    before = path.read_bytes()
    added, present = add_suppressed(
        path, ["ANN@EXAMPLE.ORG"], reason="bounced", today=TODAY + datetime.timedelta(days=1)
    )
    assert (added, present) == ([], ["ANN@example.org"])
    assert path.read_bytes() == before  # nothing new: file untouched

    added, present = add_suppressed(
        path, ["cat@example.net", "bob@example.com"], reason="hard\nbounce", today=TODAY
    )
    assert (added, present) == (["cat@example.net"], ["bob@example.com"])
    assert path.read_text(encoding="utf-8").endswith("cat@example.net,hard bounce,2024-05-17\n")
    assert "cat@example.net" in load_suppressed(path)


def test_same_address_twice_in_one_call(tmp_path: Path) -> None:
    path = tmp_path / "suppressed.csv"
    added, present = add_suppressed(
        path, ["dan@example.org", "DAN@example.org"], reason="bounced", today=TODAY
    )
    assert (added, present) == (["dan@example.org"], ["DAN@example.org"])
    assert path.read_text(encoding="utf-8").count("example.org") == 1


def test_invalid_address_is_rejected_and_nothing_written(tmp_path: Path) -> None:
    path = tmp_path / "suppressed.csv"
    with pytest.raises(RecipientsError, match="cannot suppress 'not-an-address'") as caught:
        add_suppressed(
            path, ["ann@example.org", "not-an-address"], reason="unsubscribed", today=TODAY
        )
    assert "nothing was added" in str(caught.value)
    assert not path.exists()

    add_suppressed(path, ["ann@example.org"], reason="unsubscribed", today=TODAY)
    before = path.read_bytes()
    with pytest.raises(RecipientsError, match="line break"):
        add_suppressed(path, ["bob@example.org\r\nBcc: x@example.com"], reason="x", today=TODAY)
    assert path.read_bytes() == before
    # No temporary file left behind (the list's lock file stays, as locks do).
    assert [p for p in tmp_path.iterdir() if p.suffix != ".lock"] == [path]


def test_existing_file_keeps_its_format(tmp_path: Path) -> None:
    # Saved from a European Excel: BOM, semicolons, CRLF, other column order, no final newline.
    path = tmp_path / "suppressed.csv"
    path.write_bytes(b"\xef\xbb\xbfDate;Email;Reason\r\n2023-01-02;old@example.org;bounced")
    added, _ = add_suppressed(path, ["new@example.org"], reason="unsubscribed", today=TODAY)
    assert added == ["new@example.org"]
    assert path.read_bytes() == (
        b"\xef\xbb\xbfDate;Email;Reason\r\n"
        b"2023-01-02;old@example.org;bounced\r\n"
        b"2024-05-17;new@example.org;unsubscribed\r\n"
    )
    assert load_suppressed(path) >= {"old@example.org", "new@example.org"}


def test_bad_address_in_file_is_an_error_with_row(tmp_path: Path) -> None:
    path = tmp_path / "suppressed.csv"
    path.write_text("email,reason,date\nann@example.org,x,\n\nnot valid,y,\n", encoding="utf-8")
    with pytest.raises(RecipientsError) as caught:
        load_suppressed(path)
    assert caught.value.row == 4
    assert "'not valid' is not a valid address" in caught.value.message
    # And nothing is appended to a file that cannot be read.
    with pytest.raises(RecipientsError):
        add_suppressed(path, ["bob@example.org"], reason="x", today=TODAY)
    assert "bob@" not in path.read_text(encoding="utf-8")


def test_file_without_email_column_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "suppressed.csv"
    path.write_text("address,reason\nann@example.org,x\n", encoding="utf-8")
    with pytest.raises(RecipientsError, match="no 'email' column"):
        load_suppressed(path)


def test_non_utf8_file_is_an_error_with_row(tmp_path: Path) -> None:
    path = tmp_path / "suppressed.csv"
    # UTF-8 with an ANSI row pasted in (an all-ANSI file is read as Windows-1252).
    path.write_bytes(
        "email,reason\nzoe@example.org,Zo\u00eb\n".encode()
        + "ann@example.org,d\u00e9j\u00e0 parti\n".encode("latin-1")
    )
    with pytest.raises(RecipientsError, match="not UTF-8") as caught:
        load_suppressed(path)
    assert caught.value.row == 3


def test_suppressed_members_are_skipped_when_streaming(tmp_path: Path) -> None:
    suppressed_csv = tmp_path / "suppressed.csv"
    add_suppressed(suppressed_csv, ["BOB@example.org"], reason="bounced", today=TODAY)
    members = tmp_path / "recipients.csv"
    members.write_text("email\nann@example.org\nBob@Example.org\n", encoding="utf-8")
    report = RecipientReport()
    sent = [
        r.email
        for r in iter_recipients(members, suppressed=load_suppressed(suppressed_csv), report=report)
    ]
    assert sent == ["ann@example.org"]
    assert report.suppressed == [(3, "Bob@example.org")]


# --- tokens ---------------------------------------------------------------------------------


def test_token_shape_and_determinism() -> None:
    token = unsubscribe_token("ann@example.org", "s3cret")
    assert len(token) == 32
    assert set(token) <= set(string.ascii_letters + string.digits + "-_")
    assert token == unsubscribe_token("ann@example.org", "s3cret")
    assert token == unsubscribe_token(" ANN@Example.org ", "s3cret")  # casefolded address


def test_token_verifies_only_with_same_secret_and_address() -> None:
    token = unsubscribe_token("ann@example.org", "s3cret")
    assert verify_token("ann@example.org", token, "s3cret")
    assert verify_token("Ann@EXAMPLE.org", token, "s3cret")
    assert not verify_token("ann@example.org", token, "another secret")
    assert not verify_token("bob@example.org", token, "s3cret")
    assert not verify_token("ann@example.org", token[:-1], "s3cret")
    assert not verify_token("ann@example.org", "", "s3cret")
    assert not verify_token("ann@example.org", "ü" * 32, "s3cret")  # non-ASCII: no TypeError


def test_empty_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="secret") as caught:
        unsubscribe_token("ann@example.org", "")
    assert caught.value.setting == "NEWSLETTER_SECRET"
    with pytest.raises(ConfigError):
        verify_token("ann@example.org", "x" * 32, "")
