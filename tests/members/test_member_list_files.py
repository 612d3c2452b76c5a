"""Members' lists as people save them, read back from what a dry run writes: an unclosed
quote, a workbook under a .csv name, addresses pasted with names or 'mailto:' or invisible
characters, status columns, Excel's 'sep=' line, a name cell holding an address, a
Mailchimp export of the unsubscribed, contacts without an address, every invalid row named."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from support.helpers import CHECK_ENV, CliResult, dry_run_cli, run_cli, said, write_issue

from newsletter.common.config import Settings
from newsletter.sending import campaign as campaign_mod
from newsletter.sending.checks import run_checks
from newsletter.sending.checks.findings import Severity

# ---- member lists ----------------------------------------------------------------------------

# Each test writes its list to members.csv and reads it back with `-r`.
LIST = "members.csv"


def write_list(project: Path, text: str) -> None:
    (project / LIST).write_text(text, encoding="utf-8")


def check_list() -> CliResult:
    return run_cli(["check", "december-2023", "-r", LIST], env=CHECK_ENV)


def dry_run_summary() -> CliResult:
    """What `send --dry-run` prints for the list."""
    return run_cli(["send", "december-2023", "--dry-run", "-r", LIST], env=CHECK_ENV)


def dry_run_list(project: Path) -> list[EmailMessage]:
    """The messages a dry run writes for the list, in its order."""
    return dry_run_cli(project, "december-2023", "-r", LIST)


def test_an_unclosed_quote_that_swallows_members_is_refused_at_its_row(project: Path) -> None:
    """A stray double quote in a name ran on to the end of the file: every later member was
    read as part of that cell, and check said READY for one member of four."""
    write_list(
        project,
        "email,first_name\n"
        'anna@hospital.de,"Anna\n'
        "bob@hospital.de,Bob\n"
        "carol@hospital.de,Carol\n"
        "dan@hospital.de,Dan\n",
    )
    for command in (["check", "december-2023"], ["send", "december-2023", "--dry-run"]):
        done = run_cli([*command, "-r", "members.csv"], env=CHECK_ENV)
        assert done.returncode == 2, done.stdout
        assert "READY" not in done.stdout
        assert done.stderr.startswith(
            'error: members.csv, row 2: a double quote (") in this row is not closed where the '
            "row ends: the rows after it (bob@hospital.de among them) were read as part of one"
        ), done.stderr
    # A cell that runs over lines without swallowing a member (an address, a note) is fine.
    write_list(
        project,
        "email,first_name,organisation,notes\n"
        'anna@hospital.de,Anna,"Klinik\nBerlin, Mitte","call me\nor mail b@x.org, thanks"\n'
        "bob@hospital.de,Bob,Trust,\n",
    )
    assert len(dry_run_list(project)) == 2


def test_a_workbook_saved_under_a_csv_name_is_named_as_one(project: Path) -> None:
    """An .xlsx renamed to .csv (a zip whose bytes all happened to decode) was read as text:
    "no 'email' column (columns found: 'PK\\x03\\x04…')"; an old .xls likewise."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as workbook:
        workbook.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        workbook.writestr("xl/worksheets/sheet1.xml", "<worksheet>email anna@h.de</worksheet>")
    (project / "members.csv").write_bytes(buffer.getvalue())
    (project / "old.csv").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    for name, kind in (("members.csv", "(.xlsx)"), ("old.csv", "Excel 97-2003 workbook (.xls)")):
        for command in (["check", "december-2023"], ["send", "december-2023", "--dry-run"]):
            done = run_cli([*command, "-r", name], env=CHECK_ENV)
            assert done.returncode == 2
            assert done.stderr.startswith(f"error: {name}: is ")
            assert f"{kind}, not a CSV file (in Excel use File > Save As > " in done.stderr
            assert "PK" not in done.stderr


def test_an_address_copied_with_its_name_or_as_a_mailto_link_is_used(project: Path) -> None:
    """'Jane Doe <jane@hospital.de>' (copied from a mail program's To line) made the row
    invalid, and check NOT READY, although the address is plain to see."""
    write_list(
        project,
        "email,first_name\n"
        "Jane Doe <jane@hospital.de>,Jane\n"
        '"Lee, Ann" <ann.lee@hospital.de>,Ann\n'
        "mailto:bob@hospital.de,Bob\n"
        "JANE@hospital.de,Jane again\n"
        "Eve <>,Eve\n",
    )
    done = check_list()
    assert (
        "info: members.csv: 3 rows held a name or 'mailto:' around the address: used the "
        "address (rows 2, 3, 4)"
    ) in done.stdout
    assert "row 6 'Eve <>': An email address must have an @-sign." in done.stdout
    messages = dry_run_list(project)
    got = [message["To"].addresses[0].addr_spec for message in messages]
    assert got == ["jane@hospital.de", "ann.lee@hospital.de", "bob@hospital.de"]
    assert [message["To"].addresses[0].display_name for message in messages] == [
        "Jane",
        "Ann",
        "Bob",
    ]


def test_every_invalid_row_is_named_and_the_dry_run_says_a_send_would_stop(
    project: Path,
) -> None:
    """Past five invalid rows check said 'and 3 more' without the rows; the dry run listed
    them as 'skipped' while a real send refuses the list; a semicolon file's extra cell was
    blamed on 'an unquoted comma'."""
    rows = "".join(f"member{n}@,M{n}\n" for n in range(2, 10))  # rows 2-9 invalid
    write_list(
        project,
        f"email;first_name\n{rows.replace(',', ';')}anna@hospital.de;Anna;Klinik; Berlin\n"
        "bob@hospital.de;Bob\nBOB@hospital.de;Bob\n",
    )
    done = check_list()
    assert done.returncode == 1
    assert "; and 4 more (rows 7, 8, 9, 10) — fix them, or send with --skip-invalid" in (
        done.stdout
    )
    assert "1 duplicate address(es) will be sent once (row 12 left out)" in done.stdout
    dry = dry_run_summary()
    assert "  skipped:   9 invalid (rows 2, 3, 4, 5, 6, 7, 8, 9, 10)\n" in dry.stdout
    assert (
        "  refused:   a real send stops at invalid rows: fix them, or add --skip-invalid\n"
    ) in dry.stdout
    # Row 10's reason names the semicolon (shown by check when it is among the first five).
    write_list(
        project,
        "email;first_name\nanna@hospital.de;Anna;Klinik; Berlin\nbob@hospital.de;Bob\n",
    )
    done = check_list()
    assert "2 values more than the header has columns (an unquoted semicolon?)" in done.stdout


def test_a_subscribed_column_holding_status_words_is_read(project: Path) -> None:
    """A CRM's 'Subscribed' column holding Subscribed/Unsubscribed made every row invalid."""
    write_list(
        project,
        "Email,First Name,Subscribed\n"
        "ann@hospital.de,Ann,Subscribed\n"
        "bob@hospital.de,Bob,Unsubscribed\n"
        "cat@hospital.de,Cat,Opted out\n"
        "dan@hospital.de,Dan,maybe\n",
    )
    done = dry_run_summary()
    assert "  skipped:   1 invalid (row 5)\n" in done.stdout
    assert "  skipped:   2 unsubscribed (rows 3, 4)\n" in done.stdout
    messages = dry_run_list(project)
    assert [m["To"].addresses[0].addr_spec for m in messages] == ["ann@hospital.de"]


def test_excels_sep_line_names_the_delimiter(project: Path) -> None:
    """A CSV starting 'sep=;' (written for Excel, which hides the line) was refused with
    "no 'email' column (columns found: 'sep=')"."""
    (project / "members.csv").write_bytes(
        b"sep=;\r\nEmail Address;First Name;Company\r\n"
        b"ann@hospital.de;Ann;Klinik, Berlin\r\nbob@hospital.de;Bob;Trust\r\n"
    )
    messages = dry_run_list(project)
    assert [str(m["To"]) for m in messages] == ["Ann <ann@hospital.de>", "Bob <bob@hospital.de>"]
    done = check_list()
    assert "READY to send to 2 member(s)" in done.stdout


def test_a_name_cell_holding_an_address_is_warned_before_it_greets(project: Path) -> None:
    """Outlook fills a contact's name with the address when it knows no name: check said
    READY and the member was greeted 'Dear anna@hospital.de,'. Line breaks in a name never
    reach a header (the To line stays one address)."""
    write_list(
        project,
        "email,name\n"
        "anna@hospital.de,anna@hospital.de\n"
        'bob@hospital.de,"Bob\r\nBcc: victim@elsewhere.org"\n'
        "carol@hospital.de,Carol Lee\n",
    )
    done = check_list()
    assert (
        "warning: members.csv: the name used in the greeting holds an address for 2 members "
        "(rows 2, 3): row 2 would read 'Dear anna@hospital.de,' — put the member's name in the "
        "name column, or leave it empty to greet 'Dear member,'"
    ) in done.stdout
    messages = dry_run_list(project)
    assert [len(m.get_all("To")) for m in messages] == [1, 1, 1]
    assert all(m["Bcc"] is None for m in messages)
    assert messages[1]["To"].addresses[0].addr_spec == "bob@hospital.de"


def test_mailchimps_unsubscribed_export_mails_nobody(project: Path) -> None:
    """Mailchimp exports unsubscribed and cleaned contacts as CSVs shaped like the members'
    one; passed by mistake, check said READY to mail every person who had opted out."""
    write_list(
        project,
        '"Email Address","First Name","Last Name",MEMBER_RATING,OPTIN_TIME,UNSUB_TIME,'
        "UNSUB_CAMPAIGN_TITLE,UNSUB_REASON\n"
        'ann@hospital.de,Ann,Lee,2,"2023-01-01 10:00:00","2023-06-01 09:00:00",June,"No longer '
        'interested"\n'
        'bob@hospital.de,Bob,Ray,2,"2023-01-01 10:00:00","2023-07-01 09:00:00",July,Other\n',
    )
    done = check_list()
    assert done.returncode == 1
    assert "error: members.csv: no members to send to" in done.stdout
    assert "2 unsubscribed member(s) skipped" in done.stdout
    assert dry_run_list(project) == []
    # A members' list that merely has the column, empty, mails everyone in it.
    write_list(
        project,
        "Email Address,First Name,CLEAN_TIME\nann@hospital.de,Ann,\nbob@hospital.de,Bob,"
        "2023-07-01 09:00:00\n",
    )
    messages = dry_run_list(project)
    assert [m["To"].addresses[0].addr_spec for m in messages] == ["ann@hospital.de"]


def test_invisible_characters_copied_with_an_address_are_dropped(project: Path) -> None:
    """An address pasted from a web page or Teams carried a zero-width space (or a BOM where
    two exports were joined): the row was invalid for a character the chair cannot see."""
    write_list(
        project,
        "email,first_name\n"
        "anna@hospital.de\u200b,Anna\n"
        "\ufeffbob@hospital.de,Bob\n"
        "carol@hos\u00adpital.de\u00a0,Carol\n",
    )
    done = check_list()
    assert "READY to send to 3 member(s)" in done.stdout, done.stdout
    messages = dry_run_list(project)
    assert [m["To"].addresses[0].addr_spec for m in messages] == [
        "anna@hospital.de",
        "bob@hospital.de",
        "carol@hospital.de",
    ]


# -- the member list: "Name <address>" whose name is another address -------------------------


def test_a_cell_showing_one_address_and_holding_another_is_not_unwrapped(project):
    # The new unwrapping mailed "priya.shah@member.org <someone@else.org>" to someone@else,
    # with Priya's greeting and her personal unsubscribe link: the chair reads Priya's
    # address in the spreadsheet, the mail went elsewhere. Which is meant cannot be told.
    import email
    import email.policy

    from support.helpers import run_cli

    env = {
        "NEWSLETTER_FROM": "Cluster News <news@wmhtc.co.uk>",
        "NEWSLETTER_UNSUBSCRIBE_URL": "https://wmhtc.co.uk/u?t={token}",
        "NEWSLETTER_SECRET": "a-long-random-test-secret",
    }
    write_list(
        project,
        "email,first_name\n"
        "priya.shah@member.org <someone@else.org>,Priya\n"
        "Jane Doe <jane@hospital.de>,Jane\n"
        "ann@hospital.de <mailto:ANN@hospital.de>,Ann\n",
    )
    check = run_cli(["check", "december-2023", "-r", "members.csv"], env=env)
    assert "it shows priya.shah@member.org but holds another address" in check.stdout
    done = run_cli(["send", "december-2023", "--dry-run", "-r", "members.csv"], env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    written = sorted((project / "outbox" / "december-2023").glob("*.eml"))
    to = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["To"]
        .addresses[0]
        .addr_spec
        for p in written
    ]
    assert to == ["jane@hospital.de", "ANN@hospital.de"], to


def test_a_contact_without_an_address_is_skipped_not_an_error(
    project: Path, ready: Settings
) -> None:
    # Google Contacts exports everyone, including people known by phone only.
    members = project / "google.csv"
    members.write_text(
        "First Name,Last Name,E-mail 1 - Label,E-mail 1 - Value,Phone 1 - Value\n"
        "Ann,Lee,* Work,ann@wmhtc.co.uk,\n"
        "Rachel,Nguyen,,,+44 121 496 0000\n",
        encoding="utf-8",
    )
    slug = write_issue(project, "## Hello\n\nText.\n")
    report = run_checks(campaign_mod.prepare(ready, slug, recipients=members))
    assert report.errors == []
    assert f"{members}: 1 row has no address and is skipped (row 3)" in said(
        report, Severity.WARNING
    )
    assert report.members == 1
