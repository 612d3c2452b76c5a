"""`newsletter unsubscribe` and `resubscribe` as chairs use them: an address mistyped or
copied from a mail program, and a suppression list Excel saved in UTF-16 or ANSI or headed
'Email Address'."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.helpers import (
    run_cli,
    write_dated_issue,
    write_three_members,
)

# ---- the suppression list after Excel ------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "cp1252"])
def test_unsubscribe_into_a_list_excel_saved_as_utf16_or_ansi_keeps_it_readable(
    project: Path, encoding: str
) -> None:
    """UTF-8 rows were appended to a UTF-16 ('Unicode Text') or Windows-1252 list: a file
    no program reads right, and the next send refused it."""
    write_three_members(project)
    write_dated_issue(project, "march", "2026-03-10")
    suppressed = project / "suppressed.csv"
    suppressed.write_bytes(
        "Email\tReason\tDate\r\nann@nghealth.uk\tdésabonnée\t29/11/2026\r\n".encode(encoding)
    )
    assert run_cli(["unsubscribe", " BOB@mmedtech.uk "]).returncode == 0
    text = suppressed.read_bytes().decode("utf-8-sig")  # one encoding all through
    lines = text.splitlines()
    assert lines[:2] == ["Email\tReason\tDate", "ann@nghealth.uk\tdésabonnée\t29/11/2026"]
    assert len(lines) == 3 and lines[2].startswith("BOB@mmedtech.uk\tunsubscribed\t")
    dry = run_cli(["send", "march", "--dry-run"])
    assert dry.returncode == 0, dry.stderr
    assert "will send: 1 message(s)" in dry.stdout  # cat only
    assert run_cli(["resubscribe", "bob@mmedtech.uk"]).returncode == 0
    assert "BOB@" not in suppressed.read_bytes().decode("utf-8-sig")
    assert suppressed.read_bytes().startswith(b"\xef\xbb\xbfEmail\tReason")


def test_a_suppression_list_headed_email_address_is_read(project: Path) -> None:
    """Pasted from an export, the list's column was 'Email Address': every send, dry run
    and unsubscribe stopped at 'no email column' (the member list reads that header)."""
    write_three_members(project)
    write_dated_issue(project, "march", "2026-03-10")
    suppressed = project / "suppressed.csv"
    suppressed.write_text("Email Address,Reason\r\nann@nghealth.uk,asked\r\n", encoding="utf-8")
    dry = run_cli(["send", "march", "--dry-run"])
    assert dry.returncode == 0, dry.stderr
    assert "will send: 2 message(s)" in dry.stdout
    assert run_cli(["unsubscribe", "bob@mmedtech.uk"]).returncode == 0
    assert suppressed.read_text(encoding="utf-8").splitlines()[-1].startswith("bob@mmedtech.uk,")
    assert run_cli(["resubscribe", "ann@nghealth.uk"]).returncode == 0
    assert "ann@" not in suppressed.read_text(encoding="utf-8")


def test_unsubscribing_a_mistyped_address_says_it_is_no_member(project: Path) -> None:
    """'newsletter unsubscribe priya.sha@…' said 'suppressed priya.sha@…' and nothing else:
    the chair believed Priya unsubscribed, and priya.shah@… kept getting the bulletin."""
    write_three_members(project)
    result = run_cli(["unsubscribe", "ann@nghealth.co", " CAT@cdhealth.uk", "x@elsewhere.org"])
    assert result.returncode == 0
    notes = result.stderr.splitlines()
    assert len(notes) == 2  # CAT@… is a member (any case, any space): no note
    assert "ann@nghealth.co is not one of the members" in notes[0]
    assert "did you mean ann@nghealth.uk?" in notes[0]
    assert "x@elsewhere.org is not one of the members" in notes[1]
    assert "did you mean" not in notes[1]
    suppressed = (project / "suppressed.csv").read_text(encoding="utf-8")
    assert "ann@nghealth.co," in suppressed and "x@elsewhere.org," in suppressed


def test_an_address_copied_from_a_mail_program_is_unsubscribed_and_resubscribed(
    project: Path,
) -> None:
    """'newsletter unsubscribe "Cat Doe <cat@cdhealth.uk>"' (copied from Outlook's From line)
    was refused, though the members list reads that form; resubscribe repeated the address
    with its stray spaces."""
    write_three_members(project)
    result = run_cli(["unsubscribe", "Cat Doe <CAT@cdhealth.uk>", "mailto:ann@nghealth.uk"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "suppressed CAT@cdhealth.uk",
        "suppressed ann@nghealth.uk",
    ]
    assert result.stderr == ""  # both are members: no "not one of the members" note
    suppressed = (project / "suppressed.csv").read_text(encoding="utf-8")
    assert "CAT@cdhealth.uk," in suppressed and "<" not in suppressed
    result = run_cli(["resubscribe", " <cat@cdhealth.uk> ", "--reason", "asked again"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "resubscribed cat@cdhealth.uk: asked again"
    suppressed = (project / "suppressed.csv").read_text(encoding="utf-8")
    assert "cdhealth" not in suppressed and "ann@nghealth.uk," in suppressed
