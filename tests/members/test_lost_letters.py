"""Issue 17, item 3: letters lost in an Outlook export went unnoticed.

Outlook's CSV export writes the Windows ANSI code page (Windows-1252 in Western Europe),
which has no 'Ł': it writes '?' instead, and the messages read "To: ?ukasz Nowak", "Dear
?ukasz,". Read as Windows-1252, such names are named by `check` and the dry run, with why
and how to export again; a few accented names are shown as read to judge the rest by."""

from __future__ import annotations

from pathlib import Path

from support.helpers import run_cli

from newsletter.members.recipients import RecipientReport, iter_recipients

ENV = {
    "NEWSLETTER_SMTP_HOST": "smtp.wmhtc.co.uk",
    "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
    "NEWSLETTER_UNSUBSCRIBE_URL": "https://wmhtc.co.uk/u?t={token}",
    "NEWSLETTER_SECRET": "a-long-random-test-secret",
}
HEADER = '"First Name","Last Name","Company","E-mail Address"\r\n'
ROWS = [
    ("Zoë", "Brennan", "Mersey Medtech", "zoe@merseymedtech.com"),
    ("Łukasz", "Nowak", "Wrocław Devices", "lukasz@wroclawdevices.pl"),
    ("Ann", "Lee", "Aston Medical", "ann@astonmedical.co.uk"),
    ("Paweł", "Wałęsa", "Gdańsk Health", "pawel@gdanskhealth.pl"),
    ("Søren", "Ødegård", "Nordic Care", "soren@nordiccare.dk"),
]


def outlook_export(path: Path) -> Path:
    """The list as Outlook writes it: Windows-1252, '?' for each letter it cannot hold."""
    text = HEADER + "".join(",".join(f'"{cell}"' for cell in row) + "\r\n" for row in ROWS)
    path.write_bytes(text.encode("cp1252", errors="replace"))
    return path


def test_names_with_lost_letters_are_found_and_accented_names_shown(tmp_path: Path) -> None:
    report = RecipientReport()
    members = list(iter_recipients(outlook_export(tmp_path / "outlook.csv"), report=report))
    assert [m.first_name for m in members][:2] == ["Zoë", "?ukasz"]
    assert report.encoding == "Windows-1252"
    assert report.lost_letters == [
        (3, "?ukasz Nowak, Wroc?aw Devices"),
        (5, "Pawe? Wa??sa, Gda?sk Health"),
    ]
    assert report.accented == [(2, "Zoë Brennan"), (6, "Søren Ødegård")]


def test_a_utf8_list_with_a_question_mark_is_not_suspected(tmp_path: Path) -> None:
    path = tmp_path / "members.csv"
    path.write_text(
        "email,first_name,organisation\nann@aston.co.uk,Ann,Why? Ltd\n", encoding="utf-8"
    )
    report = RecipientReport()
    assert len(list(iter_recipients(path, report=report))) == 1
    assert report.lost_letters == [] and report.accented == []


def test_check_and_the_dry_run_name_the_rows_and_say_how_to_export_again(
    project: Path,
) -> None:
    members = outlook_export(project / "outlook.csv")
    checked = run_cli(["check", "december-2023", "-r", str(members)], ENV)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    line = next(x for x in checked.stdout.splitlines() if "where a letter belongs" in x)
    assert line.startswith(f"error: {members}: 2 names hold '?' where a letter belongs: ")
    assert "row 3 '?ukasz Nowak, Wroc?aw Devices', row 5 'Pawe? Wa??sa, Gda?sk Health'" in line
    assert "Windows-1252 (ANSI) export, whose code page has no such letter" in line
    assert "'CSV UTF-8 (Comma delimited)'" in line
    assert f"info: {members}: names as read: row 2 'Zoë Brennan', row 6 'Søren Ødegård'" in (
        checked.stdout
    )

    dry = run_cli(["send", "december-2023", "--dry-run", "-r", str(members)], ENV)
    assert dry.returncode == 0, dry.stderr
    assert "  refused:   2 names hold '?' where a letter belongs: row 3 '?ukasz" in dry.stdout
    assert "'CSV UTF-8 (Comma delimited)'" in dry.stdout
    assert "  names:     row 2 'Zoë Brennan', row 6 'Søren Ødegård'" in dry.stdout
